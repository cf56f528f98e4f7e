"""docs/plugins.md is real: its ``# file:`` blocks form a plugin that loads, passes its own tests and
trains through the guide's option file."""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

import irframe
from irframe.registry import ARCHS, ENTRY_POINT_GROUP, LOADER
from irframe.train.cli import main as train_main
from tests.helpers import ROOT, three_iteration_run

GUIDE = ROOT / "docs" / "plugins.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def guide_blocks() -> list[tuple[str, str]]:
    """``(language, text)`` of every fenced block of the guide."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(GUIDE.read_text(encoding="utf-8"))]


def guide_files() -> dict[str, str]:
    """``{path: text}`` of the blocks whose first line is ``# file: PATH``."""
    files = {}
    for _lang, text in guide_blocks():
        first = text.split("\n", 1)[0]
        if first.startswith("# file: "):
            files[first[len("# file: "):].strip()] = text
    return files


def write_plugin(site: Path, files: dict[str, str], api: int | None = None) -> Path:
    """Write the guide's files under ``site`` as an installed distribution (package + dist-info)."""
    for rel, text in files.items():
        if api is not None and rel.endswith("__init__.py"):
            text = text.replace("IRFRAME_PLUGIN_API = 1", f"IRFRAME_PLUGIN_API = {api}")
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    project = tomllib.loads(files["pyproject.toml"])["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    eps = project["entry-points"][ENTRY_POINT_GROUP]
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    return site


@pytest.fixture
def guide_site(tmp_path, registry_sandbox):
    """A folder on sys.path for the guide's plugin; its modules are forgotten afterwards."""
    site = tmp_path / "site"
    sys.path.insert(0, str(site))
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        for name in [n for n in sys.modules if n == "irframe_mynet" or n.startswith(("irframe_mynet.", "guide_tests"))]:
            del sys.modules[name]


def test_every_python_block_is_a_tested_file():
    blocks = guide_blocks()
    python = [text for lang, text in blocks if lang == "python"]
    assert len(python) >= 11
    assert all(text.startswith("# file: ") for text in python), "a python block the guide test would not run"
    files = guide_files()
    for kind in ("arch", "ported", "detect", "losses", "degradations", "datasets", "metrics", "optim"):
        assert f"irframe_mynet/{kind}.py" in files
        assert f'"{kind}"' in files["irframe_mynet/__init__.py"]  # register() imports it


def test_guide_plugin_loads_passes_its_tests_and_trains(tmp_path, guide_site, registry_sandbox, monkeypatch):
    files = guide_files()
    write_plugin(guide_site, files)
    registry_sandbox.refresh()
    info = LOADER.plugins["mynet"]
    assert info.error is None and info.distribution == "irframe-mynet"
    kinds = sorted({kind for kind, _ in info.components})
    assert kinds == sorted(["arch", "detector", "loss", "degradation", "dataset", "metric", "optimizer", "scheduler"])

    # the plugin's own tests (the guide's tests/test_mynet.py), called as pytest would
    spec = importlib.util.spec_from_file_location("guide_tests_mynet", guide_site / "tests" / "test_mynet.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    tests = [(n, f) for n, f in vars(module).items() if n.startswith("test_") and callable(f)]
    assert len(tests) >= 6
    for name, fn in tests:
        args = {"tmp_path": tmp_path / name} if "tmp_path" in inspect.signature(fn).parameters else {}
        for p in args.values():
            p.mkdir()
        fn(**args)

    # train through the guide's option file, then load the checkpoint with no options
    sets = three_iteration_run(tmp_path, 40)
    options = yaml.safe_load(files["options/train_mynet.yml"])
    assert options["model"]["type"] == "MyNet"
    opt = guide_site / "options" / "train_mynet.yml"
    code = train_main(["-opt", str(opt), "--threads", "1", "--set", *sets, "train.warmup_iter=1"])
    assert code == 0
    best = tmp_path / "exp" / "mynet_saltpepper" / "checkpoints" / "iter_000003"
    model = irframe.load_model(best)
    assert type(model) is ARCHS.get("MyNet") and model.irframe_config["width"] == 16


def test_a_plugin_for_another_api_version_is_refused_with_a_clear_message(guide_site, registry_sandbox):
    write_plugin(guide_site, guide_files(), api=2)
    with pytest.warns(RuntimeWarning, match="mynet"):
        registry_sandbox.refresh()
    error = LOADER.plugins["mynet"].error or ""
    # the message docs/plugins.md quotes
    assert "plugin 'mynet' targets irframe plugin API 2, but this irframe supports plugin API 1" in error
    assert "MyNet" not in ARCHS
