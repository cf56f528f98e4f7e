"""``irframe new-plugin`` writes files that pass the repository's own ``ruff check`` (its config)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from irframe.scaffold import new_plugin

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed ([dev] extra)")
@pytest.mark.parametrize("name, arch", [("mynet", "MyNet"), ("deblur2", None)])
def test_the_scaffold_passes_the_repositorys_ruff_check(tmp_path, name, arch):
    kwargs = {"arch": arch} if arch else {}
    folder = new_plugin(name, tmp_path, **kwargs)
    run = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(folder)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
