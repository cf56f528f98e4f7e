"""Plugins: ``provider:Name`` between same-named components, disabling plugins, the plugin API
version, and the "failed to load" state in every lookup error."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from irframe.cli import main as cli_main
from irframe.errors import OptionsError, RegistryError
from irframe.registry import ARCHS, DISABLE_ENV, LOSSES, PLUGIN_API_VERSION, failed_plugins_note
from tests.core.test_registry import ARCH_PLUGIN, make_plugin, plugin_path  # noqa: F401 (fixture)

SHADOW_LOSS = """
IRFRAME_PLUGIN_API = {api}
from irframe.registry import LOSSES

def register():
    @LOSSES.register("L1Loss")
    class ShadowL1:
        def __init__(self, scale: float = 2.0):
            self.scale = scale
"""


def _refresh_quietly(loader) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        loader.refresh()


def test_provider_name_picks_between_same_named_components(plugin_path, registry_sandbox, capsys):
    make_plugin(plugin_path, "tp-one", "tp_one", "one", ARCH_PLUGIN.format(cls="SharedName"))
    make_plugin(plugin_path, "tp-two", "tp_two", "two", ARCH_PLUGIN.format(cls="SharedName"))
    _refresh_quietly(registry_sandbox)
    with pytest.raises(RegistryError, match=r"pick one with type: 'one:SharedName' or 'two:SharedName'"):
        ARCHS.get("SharedName")
    one, two = ARCHS.get("one:SharedName"), ARCHS.get("two:SharedName")
    assert "one:SharedName" in ARCHS and "three:SharedName" not in ARCHS and "SharedName" not in ARCHS
    assert one is not two and one.__module__ == "tp_one" and two.__module__ == "tp_two"
    net = ARCHS.build({"type": "two:SharedName", "channels": 1}, path="model")
    assert type(net) is two and net.conv.in_channels == 1
    with pytest.raises(OptionsError, match=r"model\.channels: expected int"):
        ARCHS.build({"type": "one:SharedName", "channels": True}, path="model")
    assert cli_main(["list", "arch"]) == 0
    assert "pick one with type: one:SharedName or two:SharedName" in capsys.readouterr().out


def test_plugin_shadowing_a_core_component(plugin_path, registry_sandbox):
    make_plugin(plugin_path, "tp-shadow", "tp_shadow", "shadow", SHADOW_LOSS.format(api=1))
    _refresh_quietly(registry_sandbox)
    with pytest.raises(RegistryError, match=r"'irframe:L1Loss' or 'shadow:L1Loss'"):
        LOSSES.get("L1Loss")
    assert LOSSES.entry("irframe:L1Loss").provider == "irframe"
    assert LOSSES.build({"type": "shadow:L1Loss", "scale": 3}).scale == 3
    with pytest.raises(
        RegistryError, match=r"unknown loss 'shadw:L1Loss': no plugin named 'shadw'; did you mean 'shadow'"
    ):
        LOSSES.get("shadw:L1Loss")
    with pytest.raises(RegistryError, match=r"plugin 'restormer' registers no loss 'L1Loss'.*'irframe:L1Loss'"):
        LOSSES.get("restormer:L1Loss")


def test_disabled_plugin_is_not_loaded_and_named_in_errors(plugin_path, registry_sandbox, monkeypatch, capsys):
    make_plugin(plugin_path, "tp-shadow", "tp_shadow", "shadow", SHADOW_LOSS.format(api=1))
    monkeypatch.setenv(DISABLE_ENV, "shadow, nosuchplugin")
    registry_sandbox.refresh()
    assert "tp_shadow" not in sys.modules
    assert LOSSES.entry("L1Loss").provider == "irframe"  # no conflict: the shadowing plugin is off
    with pytest.raises(RegistryError, match=rf"plugin 'shadow' is disabled \({DISABLE_ENV}=shadow, nosuchplugin\)"):
        LOSSES.get("ShadowOnly")
    with pytest.raises(RegistryError, match=r"unknown loss 'shadow:L1Loss': plugin 'shadow' is disabled"):
        LOSSES.get("shadow:L1Loss")
    assert cli_main(["list", "loss"]) == 0
    assert f"shadow (tp-shadow) -> tp_shadow:register: disabled ({DISABLE_ENV}=" in capsys.readouterr().out


def test_incompatible_plugin_api_is_refused_at_load(plugin_path, registry_sandbox, capsys):
    make_plugin(plugin_path, "tp-future", "tp_future", "future", SHADOW_LOSS.format(api=PLUGIN_API_VERSION + 1))
    with pytest.warns(RuntimeWarning, match=r"plugin 'future'.*failed to load"):
        registry_sandbox.refresh()
    info = registry_sandbox.plugins["future"]
    want = (
        f"PluginError: plugin 'future' targets irframe plugin API {PLUGIN_API_VERSION + 1}, but this irframe "
        f"supports plugin API {PLUGIN_API_VERSION}"
    )
    assert info.error.startswith(want)
    assert LOSSES.entry("L1Loss").provider == "irframe"  # nothing of it was registered
    assert f"plugin 'future' is installed but failed to load: {want}" in failed_plugins_note()
    with pytest.raises(RegistryError, match=r"plugin 'future' is installed but failed to load: PluginError"):
        LOSSES.get("future:L1Loss")
    with pytest.raises(RegistryError, match=r"unknown arch 'FutureNet'.*plugin 'future' is installed but failed"):
        ARCHS.get("FutureNet")
    assert cli_main(["list"]) == 0
    assert (
        "future (tp-future) -> tp_future:register: FAILED: PluginError: plugin 'future' targets"
        in capsys.readouterr().out
    )


def test_plugin_without_declaration_is_compatible(plugin_path, registry_sandbox):
    make_plugin(plugin_path, "tp-old", "tp_old", "old", ARCH_PLUGIN.format(cls="OldNet"))
    registry_sandbox.refresh()
    assert registry_sandbox.plugins["old"].error is None and registry_sandbox.plugins["old"].api is None
    assert ARCHS.get("OldNet") is not None


def test_builtin_plugins_declare_the_api_version(registry_sandbox):
    for name in ("restormer", "promptir", "ipt"):
        assert registry_sandbox.plugins[name].api == PLUGIN_API_VERSION
    assert failed_plugins_note() == ""


def test_api_version_is_exported_without_torch():
    code = (
        "import sys, irframe; assert irframe.PLUGIN_API_VERSION == 1;"
        "bad=[m for m in sys.modules if m.startswith(('irframe_', 'torch'))]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
