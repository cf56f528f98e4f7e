"""The contributor checks: ruff and mypy are configured in pyproject.toml, cover the code, and run in CI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python >= 3.11")


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def test_mypy_checks_the_core_and_every_plugin_package() -> None:
    mypy = _pyproject()["tool"]["mypy"]
    assert mypy["python_version"] == "3.10"
    files = set(mypy["files"])
    for path in files:
        assert (ROOT / path).is_dir(), f"[tool.mypy] files: {path} does not exist"
    plugin_packages = {p.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("plugins/*/irframe_*/__init__.py")}
    assert plugin_packages, "no plugin package found under plugins/"
    assert {"irframe", *plugin_packages} <= files, f"not type-checked: {({'irframe', *plugin_packages}) - files}"
    assert "ignore_errors" not in mypy
    for override in mypy.get("overrides", []):
        assert not override.get("ignore_errors"), f"blanket ignore_errors for {override['module']}"


def test_ci_lints_and_type_checks_before_the_tests() -> None:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    tests = next(i for i, line in enumerate(lines) if line.startswith("python -m pytest -q"))
    assert lines.index("ruff check .") < tests
    assert lines.index("mypy") < tests
    dev = _pyproject()["project"]["optional-dependencies"]["dev"]
    assert any(d.startswith("ruff") for d in dev) and any(d.startswith("mypy") for d in dev)


def test_ruff_rule_set_catches_what_it_is_configured_for(tmp_path: Path) -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    bad = tmp_path / "bad.py"
    long_call = "print(" + ", ".join(["'x'"] * 30) + ")"
    bad.write_text(f"import sys\nimport os\n\nprint(os.sep, sys.argv)\n{long_call}\n")
    proc = subprocess.run(
        [ruff, "check", "--config", str(ROOT / "pyproject.toml"), "--output-format", "concise", "--no-cache", str(bad)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "I001" in proc.stdout and "E501" in proc.stdout, proc.stdout
    good = tmp_path / "good.py"
    good.write_text("import os\nimport sys\n\nprint(os.sep, sys.argv)\n")
    proc = subprocess.run(
        [ruff, "check", "--config", str(ROOT / "pyproject.toml"), "--no-cache", str(good)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
