"""irframe.load_model: detect the arch of a checkpoint from its keys/shapes or our metadata."""

from __future__ import annotations

import json

import pytest
import torch

import irframe
from irframe.errors import CheckpointError, RegistryError
from irframe.nn.autoload import detect_config
from irframe.nn.weights import save_weights
from irframe.registry import ARCHS, DETECTORS
from tests.helpers import official_state_dict


@pytest.mark.parametrize(
    "name, arch, expect",
    [
        ("restormer_withbias", "Restormer", {"LayerNorm_type": "WithBias", "dual_pixel_task": False}),
        ("restormer_biasfree", "Restormer", {"LayerNorm_type": "BiasFree"}),
        ("restormer_gray_biasfree", "Restormer", {"inp_channels": 1, "out_channels": 1}),
        ("restormer_dualpixel", "Restormer", {"inp_channels": 6, "out_channels": 3, "dual_pixel_task": True}),
        ("promptir", "PromptIR", {}),
        ("ipt_sr2", "IPT", {"scale": [2]}),
        ("ipt_sr4", "IPT", {"scale": [4]}),
        ("ipt_pretrain", "IPT", {"scale": [2, 3, 4, 1, 1, 1], "num_queries": 6}),
    ],
)
def test_official_layouts_are_detected(name, arch, expect):
    config = detect_config(official_state_dict(name))
    assert config["type"] == arch
    for k, v in expect.items():
        assert config[k] == v, (k, config)


@pytest.mark.parametrize("wrapper", ["params", "params_ema", "lightning", "ddp"])
def test_load_model_unwraps_official_wrappers(tmp_path, wrapper):
    model = ARCHS.build({"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
                         "heads": [1, 2, 4, 8], "LayerNorm_type": "BiasFree"})
    sd = model.state_dict()
    payload = {
        "params": {"params": sd},
        "params_ema": {"params_ema": sd},
        "lightning": {"state_dict": {f"net.{k}": v for k, v in sd.items()}, "epoch": 3},
        "ddp": {f"module.{k}": v for k, v in sd.items()},
    }[wrapper]
    path = tmp_path / ("model.ckpt" if wrapper == "lightning" else "model.pth")
    torch.save(payload, path)
    loaded = irframe.load_model(path)
    assert type(loaded).__name__ == "Restormer" and loaded.irframe_config["dim"] == 8
    assert loaded.irframe_config["LayerNorm_type"] == "BiasFree"
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_our_safetensors_metadata_is_used(tmp_path):
    cfg = {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1}
    model = ARCHS.build(cfg)
    path = save_weights(model, tmp_path / "w.safetensors", {"arch": "Restormer", "config": json.dumps(cfg)})
    loaded = irframe.load_model(path)
    assert loaded.irframe_config == cfg
    folder = tmp_path / "iter_000010"
    folder.mkdir()
    save_weights(model, folder / "model.safetensors", {"arch": "Restormer", "config": json.dumps(cfg)})
    assert irframe.load_model(folder).irframe_source.endswith("model.safetensors")


def test_no_match_and_several_matches_list_what_was_tried(registry_sandbox):
    with pytest.raises(CheckpointError, match=r"no registered arch recognises.*Restormer \[restormer\]: no match"):
        detect_config({"foo.weight": torch.zeros(1)}, source="x.pth")
    DETECTORS.register("Greedy", lambda sd: {"type": "Restormer"})
    with pytest.raises(
        CheckpointError, match=r"several archs claim this checkpoint: (PromptIR, Greedy|Greedy, PromptIR)"
    ):
        detect_config(official_state_dict("promptir"))


def test_wrong_shapes_are_refused(tmp_path):
    cfg = {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1}
    sd = ARCHS.build(cfg).state_dict()
    sd["output.weight"] = torch.zeros(3, 8, 3, 3)  # level-1 output conv reads 2*dim channels
    torch.save({"params": sd}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"bad\.pth"):
        irframe.load_model(tmp_path / "bad.pth")


def test_more_specific_detector_wins_without_knowing_the_others_keys(registry_sandbox):
    """A detector registered more_specific_than another takes a file both claim; the other still
    takes the files only it claims; a declared cycle is ambiguous and lists the candidates."""
    DETECTORS.register("Broad", lambda sd: {"type": "BroadNet"} if "stem.weight" in sd else None)
    DETECTORS.register(
        "Narrow",
        lambda sd: {"type": "NarrowNet"} if "stem.weight" in sd and "extra.weight" in sd else None,
        more_specific_than=("Broad",),
    )
    both = {"stem.weight": torch.zeros(1), "extra.weight": torch.zeros(1)}
    assert detect_config(both)["type"] == "NarrowNet"
    assert detect_config({"stem.weight": torch.zeros(1)})["type"] == "BroadNet"
    DETECTORS.register(
        "Cyclic",
        lambda sd: {"type": "CyclicNet"} if "extra.weight" in sd else None,
        more_specific_than=("Narrow",),
    )
    DETECTORS.register(
        "Cyclic2", lambda sd: {"type": "Cyclic2Net"} if "extra.weight" in sd else None, more_specific_than=("Cyclic",)
    )
    # Cyclic beats Narrow, Cyclic2 beats Cyclic: a chain, so Cyclic2 alone remains
    assert detect_config(both)["type"] == "Cyclic2Net"


def test_detectors_that_refine_each_other_are_ambiguous(registry_sandbox):
    DETECTORS.register("PingDet", lambda sd: {"type": "Ping"}, more_specific_than=("PongDet",))
    DETECTORS.register("PongDet", lambda sd: {"type": "Pong"}, more_specific_than=("PingDet",))
    with pytest.raises(CheckpointError, match=r"several archs claim this checkpoint.*candidates: .*PingDet"):
        detect_config({"z.weight": torch.zeros(1)}, source="x.pth")


def test_more_specific_than_is_for_detectors_only():
    with pytest.raises(RegistryError, match="detectors only"):
        ARCHS.register("NotADetector", torch.nn.Identity, more_specific_than=("Restormer",))
