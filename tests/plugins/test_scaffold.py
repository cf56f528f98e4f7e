"""``irframe new-plugin``: the skeleton is refused for bad names, and as generated it installs with
pip, shows in ``irframe list``, trains through YAML with tools/train.py and passes its own tests."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

from irframe.cli import main as cli_main
from irframe.errors import OptionsError
from irframe.registry import ENTRY_POINT_GROUP, PLUGIN_API_VERSION
from irframe.scaffold import arch_name_for, new_plugin, plugin_files
from tests.helpers import ROOT, three_iteration_run

# Runs a script (path) or a module ("-mNAME") with a folder added as a site dir, so the editable
# install's .pth file is processed exactly as in a real site-packages (the venv is not modified).
BOOT = (
    "import runpy, site, sys; site.addsitedir(sys.argv.pop(1)); t = sys.argv[1]; sys.argv = sys.argv[1:]; "
    "runpy.run_module(t[2:], run_name='__main__', alter_sys=True) if t.startswith('-m') "
    "else runpy.run_path(t, run_name='__main__')"
)


@pytest.mark.parametrize("bad", ["1net", "my-net", "class", "", "näive"])
def test_invalid_names_are_refused(tmp_path, bad):
    with pytest.raises(OptionsError, match="not a valid Python identifier"):
        new_plugin(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_is_never_overwritten(tmp_path, capsys):
    root = new_plugin("mynet", tmp_path)
    assert root == tmp_path / "irframe-mynet"
    marker = root / "irframe_mynet" / "arch.py"
    marker.write_text("# edited by the user\n")
    assert cli_main(["new-plugin", "mynet", "--dir", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert marker.read_text() == "# edited by the user\n"
    assert cli_main(["new-plugin", "bad-name", "--dir", str(tmp_path)]) == 1
    assert "'bad-name' is not a valid Python identifier" in capsys.readouterr().err


def test_skeleton_contents():
    files = plugin_files("swin_ir", arch="SwinIR")
    assert arch_name_for("swin_ir") == "SwinIr"
    assert set(files) == {
        "pyproject.toml", "README.md", "irframe_swin_ir/__init__.py", "irframe_swin_ir/arch.py",
        "irframe_swin_ir/detect.py", "options/train_swin_ir.yml", "tests/test_swin_ir.py",
    }
    project = tomllib.loads(files["pyproject.toml"])
    assert project["project"]["name"] == "irframe-swin_ir"
    assert project["project"]["entry-points"][ENTRY_POINT_GROUP] == {"swin_ir": "irframe_swin_ir:register"}
    for path, text in files.items():
        if path.endswith(".py"):
            ast.parse(text, filename=path)  # every generated module is valid Python
    init = ast.parse(files["irframe_swin_ir/__init__.py"])
    declared = [
        n.value.value for n in init.body if isinstance(n, ast.Assign) and n.targets[0].id == "IRFRAME_PLUGIN_API"
    ]
    assert declared == [PLUGIN_API_VERSION]
    options = yaml.safe_load(files["options/train_swin_ir.yml"])
    assert options["model"]["type"] == "SwinIR"
    assert "class SwinIR(nn.Module)" in files["irframe_swin_ir/arch.py"]
    assert '@DETECTORS.register("SwinIR")' in files["irframe_swin_ir/detect.py"]


def _run(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run([sys.executable, "-c", BOOT, str(site), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_generated_plugin_installs_lists_trains_and_passes_its_tests(tmp_path):
    setuptools = pytest.importorskip("setuptools", reason="building the plugin without network needs setuptools here")
    if tuple(int(v) for v in setuptools.__version__.split(".")[:2]) < (70, 1):  # older ones need `wheel` to build
        pytest.importorskip("wheel", reason="setuptools < 70.1 needs the wheel package to build without network")
    root = new_plugin("toynet", tmp_path)
    site = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "--target", str(site), "-e", str(root)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert list(site.glob("*.pth")), "an editable install writes a .pth file"

    listed = _run(["-mirframe.cli", "list", "arch"], site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^  Toynet +\[toynet\]$", listed.stdout, re.M), listed.stdout
    assert "toynet (irframe-toynet) -> irframe_toynet:register: 2 components" in listed.stdout
    assert "FAILED" not in listed.stdout

    sets = [*three_iteration_run(tmp_path, 72), "train.scheduler.T_max=3"]
    train = _run([str(ROOT / "tools" / "train.py"), "-opt", str(root / "options" / "train_toynet.yml"), "--set", *sets],
                 site, tmp_path)
    assert train.returncode == 0, train.stdout + train.stderr
    assert (tmp_path / "exp" / "toynet_denoise" / "checkpoints" / "iter_000003" / "model.safetensors").is_file()

    tests = _run(["-mpytest", "-q", "-p", "no:cacheprovider", "tests"], site, root)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "5 passed" in tests.stdout
