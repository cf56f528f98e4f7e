"""Registries: registration, build-time key/type checks, entry-point plugins and their failures."""

from __future__ import annotations

import re
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from irframe.cli import main as cli_main
from irframe.errors import OptionsError, RegistryError
from irframe.registry import ARCHS, Registry


def make_plugin(root: Path, dist: str, module: str, ep_name: str, body: str) -> None:
    """Write an installed-looking plugin distribution (package + dist-info with entry_points.txt)."""
    pkg = root / module
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(body))
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[irframe.plugins]\n{ep_name} = {module}:register\n")


@pytest.fixture
def plugin_path(tmp_path, registry_sandbox):
    """A sys.path folder for fake plugins; removed (with their modules) afterwards."""
    sys.path.insert(0, str(tmp_path))
    before = set(sys.modules)
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in set(sys.modules) - before:
            if name.startswith("tp_"):
                del sys.modules[name]


ARCH_PLUGIN = """
import torch.nn as nn
from irframe.registry import ARCHS

def register():
    @ARCHS.register()
    class {cls}(nn.Module):
        def __init__(self, channels: int = 3):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)

        def forward(self, x):
            return self.conv(x)
"""


def test_register_build_and_signature_checks():
    reg = Registry("thing-test")

    @reg.register()
    class Thing:
        def __init__(self, width: int, lr: float = 1e-3, name: str = "a"):
            self.width, self.lr, self.name = width, lr, name

    t = reg.build({"type": "Thing", "width": 4, "lr": "2e-4"}, path="model")
    assert (t.width, t.lr) == (4, 2e-4)  # "2e-4" typed from the annotation
    with pytest.raises(OptionsError, match=r"model\.widht: unknown key.*did you mean 'width'"):
        reg.build({"type": "Thing", "widht": 4}, path="model")
    with pytest.raises(OptionsError, match=r"model\.width: .*got 'four'"):
        reg.build({"type": "Thing", "width": "four"}, path="model")
    with pytest.raises(OptionsError, match=r"model: missing required key\(s\) 'width'"):
        reg.build({"type": "Thing"}, path="model")
    with pytest.raises(OptionsError, match=r"model: missing required key 'type'"):
        reg.build({"width": 1}, path="model")


def test_unknown_name_lists_registered_and_closest():
    reg = Registry("gadget-test")
    for n in ("Restormer", "PromptIR", "IPT"):
        reg.register(n, type(n, (), {}))
    with pytest.raises(RegistryError) as exc:
        reg.get("Restormr")
    msg = str(exc.value)
    assert "unknown gadget-test 'Restormr'" in msg and "did you mean 'Restormer'" in msg
    assert "IPT, PromptIR, Restormer" in msg
    with pytest.raises(OptionsError, match=r"model\.type: unknown gadget-test 'ipt'; did you mean 'IPT'"):
        reg.build({"type": "ipt"}, path="model")


def test_direct_double_registration_is_an_error():
    reg = Registry("dup-test")
    reg.register("A", type("A", (), {}))
    with pytest.raises(RegistryError, match="'A' is registered twice"):
        reg.register("A", type("Other", (), {}))


def test_builtin_plugins_are_listed(capsys):
    assert cli_main(["list"]) == 0
    out = capsys.readouterr().out
    for plugin in ("restormer (irframe-restormer)", "promptir (irframe-promptir)", "ipt (irframe-ipt)"):
        assert plugin in out
    assert "FAILED" not in out


def test_third_party_plugin_by_entry_point_alone(plugin_path, registry_sandbox, capsys):
    make_plugin(plugin_path, "tp-net", "tp_net", "tpnet", ARCH_PLUGIN.format(cls="ThirdPartyNet"))
    registry_sandbox.refresh()
    net = ARCHS.build({"type": "ThirdPartyNet", "channels": 1})
    assert net.conv.in_channels == 1
    assert ARCHS.entry("ThirdPartyNet").provider == "tpnet"
    assert cli_main(["list", "arch"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  ThirdPartyNet +\[tpnet\]$", out, re.M)  # the name column is as wide as the longest name
    assert re.search(r"^      archs: ThirdPartyNet$", out, re.M)  # and the plugins listing shows what each provides


def test_same_name_from_two_plugins_names_both(plugin_path, registry_sandbox):
    make_plugin(plugin_path, "tp-one", "tp_one", "one", ARCH_PLUGIN.format(cls="SharedName"))
    make_plugin(plugin_path, "tp-two", "tp_two", "two", ARCH_PLUGIN.format(cls="SharedName"))
    with pytest.warns(RuntimeWarning, match="registered by two plugins"):
        registry_sandbox.refresh()
    with pytest.raises(RegistryError) as exc:
        ARCHS.get("SharedName")
    msg = str(exc.value)
    assert "plugin 'one'" in msg and "plugin 'two'" in msg
    # the rest of both plugins' registry keeps working
    assert "SharedName" not in ARCHS.names()


def test_broken_plugin_is_named_and_others_still_work(plugin_path, registry_sandbox, capsys):
    make_plugin(plugin_path, "tp-bad", "tp_bad", "badplug", "raise ImportError('no module named shiny')\n")
    make_plugin(plugin_path, "tp-good", "tp_good", "goodplug", ARCH_PLUGIN.format(cls="GoodNet"))
    with pytest.warns(RuntimeWarning, match=r"plugin 'badplug'.*ImportError: no module named shiny"):
        registry_sandbox.refresh()
    assert ARCHS.get("GoodNet") is not None
    with pytest.raises(
        RegistryError, match=r"plugin 'badplug' is installed but failed to load: ImportError: no module named shiny"
    ):
        ARCHS.get("BadNet")
    assert cli_main(["list"]) == 0
    assert "badplug (tp-bad) -> tp_bad:register: FAILED: ImportError: no module named shiny" in capsys.readouterr().out


def test_plugin_failing_midway_registers_nothing(plugin_path, registry_sandbox):
    body = ARCH_PLUGIN.format(cls="HalfNet").replace(
        "            return self.conv(x)\n", "            return self.conv(x)\n    raise RuntimeError('boom')\n"
    )
    make_plugin(plugin_path, "tp-half", "tp_half", "half", body)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        registry_sandbox.refresh()
    assert "HalfNet" not in ARCHS


def test_import_irframe_loads_no_plugin():
    import subprocess

    code = (
        "import sys, irframe, irframe.registry, irframe.options;"
        "bad=[m for m in sys.modules if m.startswith(('irframe_', 'torch', 'cv2', 'lmdb'))];"
        "print(bad); assert not bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
