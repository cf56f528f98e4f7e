"""Checkpoint detectors run isolated: a careless plugin's detector never breaks loading for others.

The detectors here come from fake third-party plugins installed by entry point (as a user's
``pip install`` would), so the messages name the plugin the way users see them.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import irframe
from irframe.data.io import imwrite
from irframe.errors import CheckpointError
from irframe.evaluate.cli import infer_main
from irframe.nn.autoload import detect_config, detector_metadata
from irframe.nn.weights import save_weights
from irframe.registry import ARCHS
from tests.core.test_registry import make_plugin

TINY_RESTORMER = {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
                  "heads": [1, 2, 4, 8], "LayerNorm_type": "BiasFree"}

# A detector that indexes a key without checking it is there (the bug of issue 16).
CARELESS = """
from irframe.registry import DETECTORS

def register():
    @DETECTORS.register("Careless")
    def detect_careless(state_dict):
        width = state_dict["careless_stem.weight"].shape[0]
        return {"type": "CarelessNet", "width": width}
"""

# A detector that recognises its family and refuses an unsupported variant on purpose, and reads
# the optional hints to decide (SwinIR's img_range is not in the weights).
DELIBERATE = """
from irframe.errors import CheckpointError
from irframe.evaluate.cli import infer_main
from irframe.registry import DETECTORS

SEEN = []

def register():
    @DETECTORS.register("SwinLike")
    def detect_swinlike(state_dict, *, filename=None, metadata=None):
        SEEN.append((filename, dict(metadata or {})))
        if "swin_stem.weight" not in state_dict:
            return None
        if "swin_variant_lightweight.weight" in state_dict:
            raise CheckpointError("a SwinLike file of the lightweight variant, which this plugin does not support")
        return {"type": "SwinLikeNet"}

    @DETECTORS.register("Kwargs")
    def detect_kwargs(state_dict, **hints):
        SEEN.append(("kwargs", sorted(hints)))
        return None
"""


@pytest.fixture
def plugins(tmp_path, registry_sandbox):
    """Install fake plugins by entry point for one test; returns ``install(dist, module, ep, body)``."""
    root = tmp_path / "site"
    root.mkdir()
    sys.path.insert(0, str(root))
    before = set(sys.modules)

    def install(dist: str, module: str, ep_name: str, body: str) -> None:
        make_plugin(root, dist, module, ep_name, body)
        registry_sandbox.refresh()

    try:
        yield install
    finally:
        sys.path.remove(str(root))
        for name in set(sys.modules) - before:
            if name.startswith("tp_"):
                del sys.modules[name]


def tiny_restormer_file(folder: Path) -> tuple[Path, torch.nn.Module]:
    model = ARCHS.build(TINY_RESTORMER)
    path = folder / "restormer_tiny.pth"
    torch.save({"params": model.state_dict()}, path)
    return path, model


def test_careless_detector_does_not_break_other_archs(tmp_path, plugins):
    plugins("tp-careless", "tp_careless", "careless", CARELESS)
    path, model = tiny_restormer_file(tmp_path)
    with pytest.warns(RuntimeWarning) as record:
        loaded = irframe.load_model(path)
    assert type(loaded).__name__ == "Restormer" and loaded.irframe_config["dim"] == 8
    message = " ".join(str(w.message) for w in record)
    assert "Careless [careless]" in message and "KeyError" in message and "careless_stem.weight" in message
    assert "Restormer [restormer] matched" in message
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_careless_detector_is_named_when_nothing_matches(plugins):
    plugins("tp-careless", "tp_careless", "careless", CARELESS)
    with pytest.raises(CheckpointError) as exc:
        detect_config({"other.weight": torch.zeros(2)}, source="mystery.pth")
    msg = str(exc.value)
    assert msg.startswith("mystery.pth: no registered arch recognises this checkpoint")
    assert "Careless [careless]: FAILED (raised KeyError: 'careless_stem.weight'" in msg
    assert "a bug in plugin 'careless'" in msg
    assert "Restormer [restormer]: no match" in msg  # the others still decided


def test_deliberate_checkpoint_error_surfaces(plugins):
    plugins("tp-swinlike", "tp_swinlike", "swinlike", DELIBERATE)
    sd = {"swin_stem.weight": torch.zeros(4, 3, 3, 3), "swin_variant_lightweight.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError) as exc:
        detect_config(sd, source="lightweight.pth")
    msg = str(exc.value)
    assert msg.startswith(
        "lightweight.pth: SwinLike [swinlike] recognised it but refused it: a SwinLike file of the "
        "lightweight variant, which this plugin does not support"
    )
    assert "Restormer [restormer]: no match" in msg


def test_rejection_is_a_warning_when_another_detector_matches(plugins):
    plugins("tp-swinlike", "tp_swinlike", "swinlike", DELIBERATE)
    plugins("tp-greedy", "tp_greedy", "greedy", """
from irframe.registry import DETECTORS

def register():
    DETECTORS.register("Greedy", lambda sd: {"type": "GreedyNet"} if "swin_stem.weight" in sd else None)
""")
    sd = {"swin_stem.weight": torch.zeros(1), "swin_variant_lightweight.weight": torch.zeros(1)}
    with pytest.warns(
        RuntimeWarning, match=r"SwinLike \[swinlike\]: recognised but rejected.*Greedy \[greedy\] matched"
    ):
        assert detect_config(sd) == {"type": "GreedyNet"}


def test_hints_reach_detectors_that_ask_for_them(tmp_path, plugins):
    plugins("tp-swinlike", "tp_swinlike", "swinlike", DELIBERATE)
    seen = sys.modules["tp_swinlike"].SEEN
    model = ARCHS.build(TINY_RESTORMER)
    # safetensors metadata that is not our own {arch, config}: a hint, e.g. SwinIR's img_range
    st = save_weights(model, tmp_path / "w.safetensors", {"img_range": "1.0"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the old-style detectors (fn(state_dict)) still work, silently
        assert type(irframe.load_model(st)).__name__ == "Restormer"
    assert (str(st), {"img_range": "1.0"}) in seen
    assert ("kwargs", ["filename", "metadata"]) in seen
    # a torch file: its top-level entries besides the weights are the metadata hint
    seen.clear()
    pth = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in model.state_dict().items()}, "epoch": 7,
                "hyper_parameters": {"img_range": 255.0}}, pth)
    irframe.load_model(pth)
    assert (str(pth), {"epoch": 7, "hyper_parameters": {"img_range": 255.0}}) in seen


def test_detector_metadata_hint():
    sd = {"w": torch.zeros(1)}
    assert detector_metadata({"params": sd, "params_ema": sd, "iter": 5}, {}) == {"iter": 5}
    assert detector_metadata({"w": torch.zeros(1)}, {"a": "b"}) == {"a": "b"}


@pytest.mark.parametrize(
    "body, expect",
    [
        # returns something that is not a config
        (
            "DETECTORS.register('Odd', lambda sd: 'Restormer')",
            r"Odd \[odd\]: FAILED \(returned 'Restormer', not None or a build config",
        ),
        # a config without a type
        ("DETECTORS.register('Odd', lambda sd: {'dim': 8})", r"Odd \[odd\]: FAILED \(returned \{'dim': 8\}"),
        # tries to modify the state dict the others will read
        (
            "DETECTORS.register('Odd', lambda sd: sd.pop('other.weight'))",
            r"Odd \[odd\]: FAILED \(raised AttributeError",
        ),
    ],
)
def test_misbehaving_detectors_are_reported(plugins, body, expect):
    plugins("tp-odd", "tp_odd", "odd", f"from irframe.registry import DETECTORS\n\ndef register():\n    {body}\n")
    sd = {"other.weight": torch.zeros(2)}
    with pytest.raises(CheckpointError, match=expect):
        detect_config(sd)
    assert list(sd) == ["other.weight"]


def test_same_named_detectors_of_two_plugins_both_run(plugins):
    one = (
        "from irframe.registry import DETECTORS\n\ndef register():\n"
        "    DETECTORS.register('Dup', lambda sd: {{'type': '{t}'}} if '{k}' in sd else None)\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the name clash itself is warned about by the registry
        plugins("tp-dup-a", "tp_dup_a", "dupa", one.format(t="NetA", k="a.weight"))
        plugins("tp-dup-b", "tp_dup_b", "dupb", one.format(t="NetB", k="b.weight"))
    assert detect_config({"a.weight": torch.zeros(1)}) == {"type": "NetA"}
    assert detect_config({"b.weight": torch.zeros(1)}) == {"type": "NetB"}


def test_infer_tool_survives_a_careless_detector(tmp_path, plugins, capsys):
    """tools/infer.py with a careless plugin installed: the right model loads; an unknown file is one
    error line naming the detector and its plugin, never a traceback."""
    plugins("tp-careless", "tp_careless", "careless", CARELESS)
    path, _ = tiny_restormer_file(tmp_path)
    img = tmp_path / "in.png"
    imwrite(img, np.random.default_rng(0).random((16, 16, 3), dtype=np.float32))
    base = ["--input", str(img), "--device", "cpu", "--no-progress"]
    with pytest.warns(RuntimeWarning, match=r"Careless \[careless\].*KeyError"):
        assert infer_main([*base, "--checkpoint", str(path), "--output", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "in.png").is_file()
    bad = tmp_path / "mystery.pth"
    torch.save({"mystery.weight": torch.zeros(2)}, bad)
    capsys.readouterr()
    assert infer_main([*base, "--checkpoint", str(bad), "--output", str(tmp_path / "out2")]) != 0
    err = capsys.readouterr().err
    assert "error:" in err and "Careless [careless]: FAILED (raised KeyError" in err, err


def test_no_match_names_plugins_that_failed_to_load(plugins):
    with pytest.warns(RuntimeWarning, match="failed to load"):
        plugins("tp-broken", "tp_broken", "broken", "def register():\n    import tp_missing_dependency\n")
    with pytest.raises(CheckpointError) as exc:
        detect_config({"swin.weight": torch.zeros(1)}, source="swin.pth")
    msg = str(exc.value)
    assert "no registered arch recognises" in msg
    assert "plugin 'broken' is installed but failed to load: ModuleNotFoundError" in msg
