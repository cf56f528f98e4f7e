"""Our models in chaiNNer / ComfyUI: files written by irframe open in spandrel (the loader both use) and
give our output; plain files spandrel reads load back in :func:`irframe.load_model`.

Every irframe arch spandrel supports is here, in tiny configurations with non-default weights: our
training checkpoints (safetensors with our metadata) as they are, and ``irframe export``'s plain
``.pth``/``.safetensors`` (RCAN: the original layout). What does not open is tested too, so the
README's table stays true. Skipped without spandrel (``pip install "irframe[interop]"``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

import irframe
from irframe.cli import main as cli_main
from irframe.errors import CheckpointError, OptionsError
from irframe.nn.inference import restore
from irframe.nn.interop import (
    NOT_IN_SPANDREL,
    SPANDREL_ARCHS,
    compare_with_spandrel,
    export_weights,
    open_in_spandrel,
    spandrel_notes,
    spandrel_problems,
)
from irframe.nn.weights import save_weights
from irframe.registry import ARCHS

spandrel = pytest.importorskip("spandrel", reason='spandrel is not installed (pip install "irframe[interop]")')

try:
    import spandrel_extra_arches  # noqa: F401  (Restormer lives there)

    HAVE_EXTRA = True
except ImportError:
    HAVE_EXTRA = False

TOLERANCE = 1e-5
SWINIR = {"type": "SwinIR", "upscale": 2, "in_chans": 3, "img_size": 8, "window_size": 4, "depths": [2],
          "embed_dim": 12, "num_heads": [2], "mlp_ratio": 2.0, "upsampler": "pixelshuffle"}
RESTORMER = {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
             "heads": [1, 2, 4, 8]}
NAFNET = {"type": "NAFNet", "width": 8, "middle_blk_num": 1, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1]}
RCAN = {"type": "RCAN", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 16, "num_group": 2, "num_block": 2,
        "squeeze_factor": 4, "upscale": 2}

# Tiny configurations of every arch spandrel opens (name -> build config).
SUPPORTED: dict[str, dict[str, Any]] = {
    "SwinIR_x2": SWINIR,
    "SwinIR_denoise_gray": {**SWINIR, "upscale": 1, "upsampler": "", "in_chans": 1},
    "SwinIR_x2_direct_3conv": {**SWINIR, "upsampler": "pixelshuffledirect", "resi_connection": "3conv"},
    "SwinIR_x4_nearest_w8": {**SWINIR, "upscale": 4, "upsampler": "nearest+conv", "window_size": 8, "img_size": 16},
    "HAT_x2": {"type": "HAT", "img_size": 16, "window_size": 4, "embed_dim": 12, "depths": [2, 2],
               "num_heads": [2, 3], "compress_ratio": 3, "squeeze_factor": 4, "mlp_ratio": 2.0, "upscale": 2,
               "upsampler": "pixelshuffle"},
    "NAFNet": NAFNET,
    "NAFNet_gray": {**NAFNET, "img_channel": 1},
    "RRDBNet_x4": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 16, "num_block": 2},
    "RRDBNet_x2": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "scale": 2, "num_feat": 16, "num_block": 1},
    "RRDBNet_x1": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "scale": 1, "num_feat": 8, "num_block": 1},
    "SRVGGNetCompact_x4": {"type": "SRVGGNetCompact", "num_feat": 16, "num_conv": 4, "upscale": 4},
    "RCAN_x2": RCAN,
    "RCAN_x3_res_scale": {**RCAN, "upscale": 3, "res_scale": 0.5, "img_range": 1.0, "rgb_mean": [0.3, 0.5, 0.2]},
    "IPT_x2": {"type": "IPT", "n_feats": 16, "num_heads": 12, "num_layers": 1},
    "Restormer": RESTORMER,
    "Restormer_biasfree_bias": {**RESTORMER, "LayerNorm_type": "BiasFree", "bias": True},
    "Restormer_dual_pixel": {**RESTORMER, "inp_channels": 6, "dual_pixel_task": True},
}
# RCAN is BasicSR's layout here; spandrel knows the original one: only the export opens.
EXPORT_ONLY = {"RCAN"}


def needs_extra(config: dict[str, Any]) -> Any:
    return pytest.mark.skipif(
        config["type"] == "Restormer" and not HAVE_EXTRA,
        reason="Restormer is in spandrel-extra-arches, not installed",
    )


CASES = [pytest.param(name, marks=needs_extra(cfg), id=name) for name, cfg in SUPPORTED.items()]


def build(config: dict[str, Any]) -> torch.nn.Module:
    """The arch with seeded, non-default weights (so a wrong setting shows in the output)."""
    torch.manual_seed(0)
    model = ARCHS.build(dict(config)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    model.irframe_config = dict(config)
    return model


def save_ours(model: torch.nn.Module, config: dict[str, Any], path: Path) -> Path:
    """A checkpoint as training writes it: safetensors with the arch and config metadata."""
    return save_weights(model, path, {"arch": config["type"], "config": json.dumps(config)})


def test_every_arch_of_ours_that_spandrel_supports_is_tested() -> None:
    assert {cfg["type"] for cfg in SUPPORTED.values()} == set(SPANDREL_ARCHS) - {"NAFNetLocal"}
    for name, cfg in SUPPORTED.items():
        assert spandrel_problems(cfg) == [], name


@pytest.mark.parametrize("name", CASES)
def test_our_checkpoint_opens_in_spandrel_with_our_output(name: str, tmp_path: Path) -> None:
    config = SUPPORTED[name]
    model = build(config)
    path = save_ours(model, config, tmp_path / f"{name}.safetensors")
    if config["type"] in EXPORT_ONLY:
        with pytest.raises(spandrel.UnsupportedModelError):
            open_in_spandrel(path)
        return
    descriptor = open_in_spandrel(path)
    assert descriptor.architecture.id == SPANDREL_ARCHS[config["type"]]
    assert descriptor.scale == model.spec.scale
    assert compare_with_spandrel(path, model) < TOLERANCE


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize("name", CASES)
def test_export_opens_in_spandrel_and_loads_back_in_irframe(name: str, suffix: str, tmp_path: Path) -> None:
    config = SUPPORTED[name]
    model = build(config)
    checkpoint = save_ours(model, config, tmp_path / "ours.safetensors")
    report = export_weights(checkpoint, tmp_path / f"{name}{suffix}")
    assert report.problems == [] and report.arch == config["type"]
    assert compare_with_spandrel(report.path, model) < TOLERANCE
    if config["type"] in EXPORT_ONLY:
        return  # the original RCAN layout: see test_what_irframe_cannot_read_back
    # the reverse: the plain file (no metadata, as released files are) is recognised by our detectors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # detectors say which settings they assumed
        again = irframe.load_model(report.path)
    descriptor = open_in_spandrel(report.path)
    x = torch.rand(1, model.spec.in_channels, 48, 48, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        theirs = descriptor(x.clone())
    assert (restore(again, x).clamp(0, 1) - theirs).abs().max() < TOLERANCE


@pytest.mark.parametrize("name", [n for n, c in SUPPORTED.items() if c["type"] in ("SwinIR", "HAT", "NAFNet",
                                                                                   "SRVGGNetCompact", "IPT")])
def test_spandrels_own_state_dict_loads_in_irframe(name: str, tmp_path: Path) -> None:
    """A file written from spandrel's own model (what a chaiNNer user may have) loads with irframe.load_model."""
    config = SUPPORTED[name]
    model = build(config)
    descriptor = open_in_spandrel(save_ours(model, config, tmp_path / "ours.safetensors"))
    path = tmp_path / "from_spandrel.pth"
    torch.save(descriptor.model.state_dict(), path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = irframe.load_model(path)
    x = torch.rand(1, model.spec.in_channels, 48, 48, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        theirs = descriptor(x.clone())
    assert (restore(again, x).clamp(0, 1) - theirs).abs().max() < TOLERANCE


def test_ipt_gives_the_official_chop_output_on_larger_images(tmp_path: Path) -> None:
    """spandrel runs IPT with the official forward_chop; irframe's IPT forward does the same."""
    config = SUPPORTED["IPT_x2"]
    model = build(config)
    descriptor = open_in_spandrel(save_ours(model, config, tmp_path / "ipt.safetensors"))
    x = torch.rand(1, 3, 80, 64, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        assert (model(x).clamp(0, 1) - descriptor(x.clone())).abs().max() < TOLERANCE


@pytest.mark.parametrize("name", ["RRDBNet_x4", "RCAN_x2"])
def test_what_irframe_cannot_read_back(name: str, tmp_path: Path) -> None:
    """Known gaps (README): ESRGAN's old layout (spandrel's internal names, the original ESRGAN release) and
    the original RCAN layout are not recognised by irframe's detectors (they know BasicSR's names)."""
    config = SUPPORTED[name]
    model = build(config)
    report = export_weights(model, tmp_path / "plain.pth")
    path = tmp_path / "from_spandrel.pth"
    torch.save(open_in_spandrel(report.path).model.state_dict(), path)
    with pytest.raises(CheckpointError, match="no registered arch recognises"):
        irframe.load_model(path)


# -- what spandrel does not open as we run it: refused or flagged, and truly so -------------------
MISMATCHED: dict[str, tuple[dict[str, Any], str]] = {
    "SwinIR img_range": ({**SWINIR, "img_range": 255.0}, "differs"),
    "RRDBNet num_grow_ch": ({**SUPPORTED["RRDBNet_x4"], "num_grow_ch": 8}, "fails"),
    "SRVGGNetCompact relu": ({**SUPPORTED["SRVGGNetCompact_x4"], "act_type": "relu"}, "fails"),
    "IPT num_heads": ({**SUPPORTED["IPT_x2"], "num_heads": 2}, "differs"),
    "IPT two tasks": ({**SUPPORTED["IPT_x2"], "scale": [2, 3]}, "fails"),
    "EDSR": ({"type": "EDSR", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 16, "num_block": 2, "upscale": 2},
             "fails"),
    "MSRResNet": ({"type": "MSRResNet", "num_feat": 16, "num_block": 2, "upscale": 4}, "fails"),
    "PromptIR": ({**RESTORMER, "type": "PromptIR", "prompt_dims": [8, 16, 32], "prompt_sizes": [8, 4, 2]}, "fails"),
    "Baseline": ({**NAFNET, "type": "Baseline", "dw_expand": 2, "ffn_expand": 2}, "fails"),
}


@pytest.mark.parametrize("name", list(MISMATCHED))
def test_problems_are_named_and_real(name: str, tmp_path: Path) -> None:
    config, outcome = MISMATCHED[name]
    problems = spandrel_problems(config)
    assert problems, name
    if config["type"] in NOT_IN_SPANDREL:
        assert "ONNX" in problems[0]
    model = build(config)
    path = export_weights(model, tmp_path / "model.pth").path
    with pytest.raises(OptionsError, match="spandrel would not open"):
        export_weights(model, tmp_path / "strict.pth", allow_problems=False)
    if outcome == "fails":
        with pytest.raises(Exception):  # noqa: B017  (spandrel's own error types, or a torch shape error)
            compare_with_spandrel(path, model)
    else:
        assert compare_with_spandrel(path, model) > 1e-3


def test_nafnet_local_opens_as_plain_nafnet() -> None:
    assert spandrel_problems({**NAFNET, "type": "NAFNetLocal"}) == []
    assert "TLC" in spandrel_notes({**NAFNET, "type": "NAFNetLocal"})[0]


def test_export_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = build(RCAN)
    checkpoint = save_ours(model, RCAN, tmp_path / "rcan.safetensors")
    out = tmp_path / "rcan_x2.pth"
    assert cli_main(["export", str(checkpoint), str(out), "--check"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (RCAN" in printed and "note: RCAN is written in the original RCAN layout" in printed
    assert "check: spandrel's output vs irframe's" in printed
    assert cli_main(["export", str(checkpoint), str(out)]) == 1  # exists
    assert "already exists" in capsys.readouterr().err
    assert cli_main(["export", str(checkpoint), str(tmp_path / "x.onnx")]) == 1
    assert ".pth or .safetensors" in capsys.readouterr().err
    edsr = MISMATCHED["EDSR"][0]
    edsr_file = save_ours(build(edsr), edsr, tmp_path / "edsr.safetensors")
    assert cli_main(["export", str(edsr_file), str(tmp_path / "edsr.pth")]) == 0
    assert "warning: EDSR: spandrel has no EDSR; use ONNX" in capsys.readouterr().out
    assert cli_main(["export", str(edsr_file), str(tmp_path / "edsr2.pth"), "--strict"]) == 1
