"""A plugin whose ``register()`` calls ``sys.exit()`` is a failed plugin, not the end of every tool.

The loader caught ``Exception`` only: a ``SystemExit`` raised while loading plugins (at the first
registry lookup of any command) ended ``irframe list``, ``tools/train.py``, ``tools/test.py``...
silently with that exit status. Now it is reported like any other plugin error; only Ctrl-C
(``KeyboardInterrupt``) still stops the tool.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

EXITING_PLUGIN = """
import sys

IRFRAME_PLUGIN_API = 1


def register():
    sys.exit({code})
"""

INTERRUPTED_PLUGIN = """
def register():
    raise KeyboardInterrupt
"""


def _write_plugin(root: Path, module: str, body: str) -> None:
    """An installed-looking distribution: a package and a dist-info with its entry point."""
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(body)
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[irframe.plugins]\n{module} = {module}:register\n")


@pytest.fixture
def plugin_root(tmp_path: Path, registry_sandbox):
    sys.path.insert(0, str(tmp_path))
    before = set(sys.modules)
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in set(sys.modules) - before:
            if name.startswith("tpexit"):
                del sys.modules[name]


def test_sys_exit_in_register_is_a_failed_plugin(plugin_root: Path, registry_sandbox) -> None:
    from irframe.registry import LOSSES, failed_plugins_note

    _write_plugin(plugin_root, "tpexit_quits", EXITING_PLUGIN.format(code=0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry_sandbox.refresh()  # raised SystemExit(0) out of here
    info = registry_sandbox.plugins["tpexit_quits"]
    assert info.error == "SystemExit: its register() called sys.exit(0)"
    assert any("tpexit_quits" in str(w.message) and "failed to load" in str(w.message) for w in caught)
    assert "plugin 'tpexit_quits' is installed but failed to load: SystemExit" in failed_plugins_note()
    assert LOSSES.get("L1Loss") is not None  # the other components are all there


def test_ctrl_c_while_loading_a_plugin_still_stops(plugin_root: Path, registry_sandbox) -> None:
    _write_plugin(plugin_root, "tpexit_ctrlc", INTERRUPTED_PLUGIN)
    with pytest.raises(KeyboardInterrupt):
        registry_sandbox.refresh()


def test_every_tool_still_runs_beside_a_plugin_that_exits(tmp_path: Path) -> None:
    import os

    _write_plugin(tmp_path, "tpexit_tool", EXITING_PLUGIN.format(code=3))
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)]), "OMP_NUM_THREADS": "1"}
    listing = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", "import sys; from irframe.cli import main; sys.exit(main(['list']))"],
        capture_output=True, text=True, env=env, timeout=180, check=False,
    )
    assert listing.returncode == 0, listing.stderr
    failed = "tpexit_tool (tpexit_tool) -> tpexit_tool:register: FAILED: SystemExit: its register() called sys.exit(3)"
    assert failed in listing.stdout
    stats = subprocess.run(
        [sys.executable, str(root / "tools" / "model_stats.py"), "--arch", "Restormer", "--no-flops"],
        capture_output=True, text=True, env=env, timeout=180, check=False,
    )
    assert stats.returncode == 0 and "Restormer" in stats.stdout, (stats.returncode, stats.stdout, stats.stderr)
    assert "plugin 'tpexit_tool' (tpexit_tool:register) failed to load" in stats.stderr
