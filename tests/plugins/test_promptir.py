"""PromptIR plugin: official state_dict layout, golden parity, detector, options, training step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from irframe_promptir.arch import PromptGenBlock, PromptIR
from irframe_promptir.detect import detect_promptir
from irframe_restormer.detect import detect_restormer

from irframe.errors import CheckpointError, OptionsError
from irframe.nn.autoload import detect_config
from irframe.registry import ARCHS, DETECTORS
from tests.helpers import FIXTURES, SHARED, golden_fill, read_official

SHARED_GOLDEN = SHARED / "golden" / "golden.json"

# golden.json's promptir_small config: dim stays 48 (official prompt widths).
GOLDEN_CFG = {"type": "PromptIR", "decoder": True, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1}
# A tiny PromptIR for fast tests: every width shrunk, prompt widths included.
TINY = {
    "type": "PromptIR",
    "dim": 8,
    "num_blocks": [1, 1, 1, 1],
    "num_refinement_blocks": 1,
    "prompt_dims": [8, 16, 24],
    "prompt_sizes": [8, 4, 2],
    "prompt_len": 3,
}


def shapes(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def meta_build(cfg: dict) -> torch.nn.Module:
    with torch.device("meta"):  # full-size models without allocating their weights
        return PromptIR(**{k: v for k, v in cfg.items() if k != "type"})


def test_state_dict_matches_official() -> None:
    expected, total = read_official("promptir")
    model = meta_build({"decoder": True})
    assert shapes(model) == expected  # names, shapes and order, unused layers included
    assert sum(v.numel() for v in model.state_dict().values()) == total


def test_registered_with_spec() -> None:
    assert ARCHS.entry("PromptIR").provider == "promptir"
    assert DETECTORS.entry("PromptIR").provider == "promptir"
    model = ARCHS.build(TINY, path="network_g")
    assert isinstance(model, PromptIR)
    assert (model.spec.in_channels, model.spec.size_multiple, model.spec.value_range) == (3, 8, 1.0)
    assert model.spec.tasks == ()


def test_golden_parity() -> None:
    data = np.load(FIXTURES / "golden" / "promptir_small.npz")
    model = ARCHS.build(GOLDEN_CFG).eval()
    golden_fill(model)
    with torch.no_grad():
        out = model(torch.from_numpy(data["input"]))
    assert out.shape == data["output"].shape
    assert np.abs(out.numpy() - data["output"]).max() < 1e-4


def test_golden_config_matches_shared_index() -> None:
    if not SHARED_GOLDEN.is_file():
        pytest.skip("../shared/golden/golden.json not present")
    assert json.loads(SHARED_GOLDEN.read_text())["archs"]["promptir_small.npz"]["config"] == GOLDEN_CFG


def test_prompt_generation_mixes_components_by_pooled_feature() -> None:
    torch.manual_seed(0)
    block = PromptGenBlock(prompt_dim=4, prompt_len=3, prompt_size=5, lin_dim=6)
    x = torch.rand(2, 6, 8, 12)
    out = block(x)
    assert out.shape == (2, 4, 8, 12)  # resized to the feature's size
    # Reference: softmax(Linear(mean)) weights the components, bilinear resize, 3x3 conv.
    weights = torch.softmax(block.linear_layer(x.mean(dim=(2, 3))), dim=1)
    mixed = (weights[:, :, None, None, None] * block.prompt_param).sum(dim=1)
    ref = block.conv3x3(torch.nn.functional.interpolate(mixed, size=(8, 12), mode="bilinear", align_corners=False))
    assert torch.allclose(out, ref, atol=1e-6)


@pytest.mark.parametrize("size", [(8, 8), (24, 40)])
def test_forward_any_multiple_of_8(size: tuple[int, int]) -> None:
    model = ARCHS.build(TINY).eval()
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        assert model(x).shape == x.shape
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.rand(1, 3, 20, 16))


def test_one_training_step_grads_reach_every_used_parameter() -> None:
    torch.manual_seed(0)
    model = ARCHS.build(TINY).train()
    loss = torch.nn.functional.l1_loss(model(torch.rand(2, 3, 16, 16)), torch.rand(2, 3, 16, 16))
    loss.backward()
    unused = model.unused_parameter_prefixes
    for name, p in model.named_parameters():
        if name.startswith(unused):
            assert p.grad is None, f"{name} is declared unused but got a gradient"
        else:
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name
    assert any(n.startswith(unused) for n, _ in model.named_parameters())  # kept for strict loading
    torch.optim.AdamW(model.parameters(), lr=1e-3).step()


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"decoder": False}, "decoder: must be True"),
        ({"prompt_dims": [8, 16]}, "prompt_dims"),
        ({"prompt_dims": [8, 16, 26]}, r"heads\[2\]=4 does not divide the 90 channels.*noise_level3"),
        ({"out_channels": 1}, "inp_channels == out_channels"),
        ({"prompt_len": 0}, "prompt_len"),
    ],
)
def test_bad_options_name_the_key(bad: dict, match: str) -> None:
    with pytest.raises(OptionsError, match=match):
        ARCHS.build({**TINY, **bad}, path="network_g")


def test_detector_on_official_shape_list() -> None:
    expected, _ = read_official("promptir")
    fake = {key: torch.zeros(shape, device="meta") for key, shape in expected}
    cfg = detect_promptir(fake)
    assert cfg is not None and cfg["type"] == "PromptIR" and cfg["dim"] == 48
    assert cfg["prompt_dims"] == [64, 128, 320] and cfg["num_blocks"] == [4, 6, 6, 8]
    assert shapes(meta_build(cfg)) == expected
    # Restormer's detector knows nothing of PromptIR's keys and may claim the file too; PromptIR's
    # detector is registered more specific, so the file is never taken for a plain Restormer.
    assert detect_restormer(fake) is not None
    assert detect_config(fake)["type"] == "PromptIR"


def test_detector_round_trip_on_tiny_config() -> None:
    cfg = {**TINY, "LayerNorm_type": "BiasFree", "bias": True, "ffn_expansion_factor": 2.0, "heads": [1, 1, 2, 2]}
    model = meta_build(cfg)
    detected = detect_promptir(model.state_dict())
    assert detected is not None
    for key, value in cfg.items():
        assert detected[key] == value, key
    assert shapes(meta_build(detected)) == shapes(model)


def test_detector_rejects_restormer_and_promptless_checkpoints() -> None:
    for name in ("restormer_withbias", "restormer_dualpixel"):
        entries, _ = read_official(name)
        assert detect_promptir({k: torch.zeros(s, device="meta") for k, s in entries}) is None
    assert detect_promptir({}) is None
    sd = {k: v for k, v in meta_build(TINY).state_dict().items() if not k.startswith("prompt")}
    with pytest.raises(CheckpointError, match="decoder=False"):
        detect_promptir(sd)
