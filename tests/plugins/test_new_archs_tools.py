"""The tools over the archs of issue 25 (SwinIR, HAT, NAFNet, the SR classics): what each ModelSpec
promises, checked on tiny configurations.

For every arch: ``model-stats`` (parameters, MACs), tiled inference at odd sizes (equal to the whole
image for the conv-only nets, given an overlap whose guard band covers their receptive field; close
for the attention/pooling ones), the x8 self-ensemble against the 8 passes computed here, ONNX export
run by onnxruntime against torch (dynamic height/width, then any size through padding), and
``--tile auto`` (:class:`~irframe.nn.autotile.AutoTiler`, as ``tools/infer.py`` uses it).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from irframe.evaluate.cli import stats_main
from irframe.evaluate.model_stats import measure
from irframe.nn.autotile import AutoTiler
from irframe.nn.inference import crop_to, pad_to_multiple, restore
from irframe.nn.spec import get_spec
from irframe.nn.stats import count_flops, count_params
from irframe.registry import ARCHS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RGB = {"num_in_ch": 3, "num_out_ch": 3}  # the SR classics' required channel arguments
SWIN = {"window_size": 4, "embed_dim": 12, "depths": [2], "num_heads": [2], "mlp_ratio": 2.0}
CONFIGS: dict[str, dict] = {
    "SwinIR_x2": {"type": "SwinIR", "upscale": 2, "img_size": 8, "upsampler": "pixelshuffle", **SWIN},
    # gray JPEG/denoising layout: window 7, computes in [0,255], no upsampler
    "SwinIR_jpeg": {"type": "SwinIR", "in_chans": 1, "upscale": 1, "img_size": 14, "upsampler": "",
                    "img_range": 255.0, **SWIN, "window_size": 7},
    "HAT": {"type": "HAT", "img_size": 16, "compress_ratio": 3, "squeeze_factor": 4, "upscale": 2,
            "upsampler": "pixelshuffle", **SWIN},
    "NAFNet": {"type": "NAFNet", "width": 8, "middle_blk_num": 1, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1]},
    "NAFNetLocal": {"type": "NAFNetLocal", "width": 8, "middle_blk_num": 1, "enc_blk_nums": [1, 1],
                    "dec_blk_nums": [1, 1], "train_size": [1, 3, 16, 16]},
    "EDSR": {"type": "EDSR", **RGB, "num_feat": 8, "num_block": 1, "upscale": 2},
    "RCAN": {"type": "RCAN", **RGB, "num_feat": 8, "num_group": 1, "num_block": 1, "squeeze_factor": 4, "upscale": 3},
    "MSRResNet": {"type": "MSRResNet", **RGB, "num_feat": 8, "num_block": 1, "upscale": 4},
    "RRDBNet_x4": {"type": "RRDBNet", **RGB, "scale": 4, "num_feat": 4, "num_block": 1, "num_grow_ch": 2},
    # scale 2 takes a pixel-unshuffled input (Real-ESRGAN x2plus)
    "RRDBNet_x2": {"type": "RRDBNet", **RGB, "scale": 2, "num_feat": 4, "num_block": 1, "num_grow_ch": 2},
    "SRVGGNetCompact": {"type": "SRVGGNetCompact", **RGB, "num_feat": 8, "num_conv": 2, "upscale": 2,
                        "act_type": "prelu"},
}
# Tiling: (image h, w, tile, overlap). Conv-only nets get an overlap of 4x their receptive-field
# radius (input pixels), so the guard band (overlap // 4) hides every tile border: exact output.
# The others (window attention, global or wide pooling) are checked against a generous bound.
TILING: dict[str, tuple[int, int, int, int]] = {
    "SwinIR_x2": (30, 37, 16, 8),
    "SwinIR_jpeg": (30, 37, 21, 7),
    "HAT": (30, 37, 16, 8),
    "NAFNet": (30, 37, 16, 8),
    "NAFNetLocal": (30, 37, 16, 8),
    "RCAN": (30, 37, 16, 8),
    "EDSR": (45, 51, 32, 24),  # radius 6: conv_first, 2 in the block, after body, upsample, conv_last
    "MSRResNet": (45, 51, 32, 24),  # radius 6
    "SRVGGNetCompact": (37, 43, 24, 20),  # radius 5: 4 convs and the nearest-upsampled base
    "RRDBNet_x4": (101, 97, 88, 80),  # radius 20: 15 convs in the RRDB, 2 around it, 4 on the way up
    "RRDBNet_x2": (181, 171, 160, 152),  # radius 38: the same at half resolution (pixel-unshuffle)
}
EXACT = {"EDSR", "MSRResNet", "SRVGGNetCompact", "RRDBNet_x4", "RRDBNet_x2"}
NAMES = list(CONFIGS)
# NAFNetLocal's export (its traceable local pooling) takes ~30 s and is covered by
# tests/plugins/test_nafnet.py::test_onnx_export_of_the_local_variant_takes_any_multiple.
ONNX_NAMES = [n for n in NAMES if n != "NAFNetLocal"]
ONNX_ATOL = 1e-4


_MODELS: dict[str, nn.Module] = {}


def tiny(name: str) -> nn.Module:
    """The tiny model of ``name``, in eval mode, with non-trivial weights (built once per session)."""
    if name not in _MODELS:
        cfg = CONFIGS[name]
        if cfg["type"] not in ARCHS:
            pytest.skip(f"arch {cfg['type']} is not registered (plugin not installed)")
        torch.manual_seed(0)
        model = ARCHS.build(dict(cfg), path=f"test.{name}").eval()
        with torch.no_grad():  # the official inits leave some branches near zero; perturb every weight
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.02)
        _MODELS[name] = model
    return _MODELS[name]


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def layer_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of the Conv2d / Linear layers of one forward, counted with hooks."""
    total = 0

    def hook(module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += out.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            total += out.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total


# -- (1) model-stats ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_model_stats_counts_params_and_layer_macs(name: str) -> None:
    model = tiny(name)
    spec = get_spec(model)
    side = 2 * spec.size_multiple * max(1, 8 // spec.size_multiple)  # 16 (14 for window 7)
    row = measure(model, name, CONFIGS[name]["type"], size=side)
    assert row.params == count_params(model) == sum(p.numel() for p in model.parameters())
    assert (row.height, row.width) == (side, side) and row.note == ""
    # layer MACs (what ptflops-style tools report) are exactly the conv/linear work of the forward
    assert row.layer_flops == 2 * layer_macs(model, torch.zeros(1, spec.in_channels, side, side))
    flops = count_flops(model, (spec.in_channels, side, side))
    assert flops.flops == row.flops
    if CONFIGS[name]["type"] in ("SwinIR", "HAT"):  # attention's q @ k^T and attn @ v come on top
        assert row.flops > row.layer_flops and flops.by_operator.get("bmm", 0) > 0
    else:
        assert row.flops == row.layer_flops


def test_model_stats_tool_over_the_tiny_configs(tmp_path: Path) -> None:
    """``tools/model_stats.py -opt ...`` (``irframe model-stats``) builds each on meta and prints one row each."""
    files = []
    for name in NAMES:
        path = tmp_path / f"{name}.yml"
        path.write_text(json.dumps({"name": name, "model": CONFIGS[name]}))
        files.append(str(path))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = stats_main(["-opt", *files, "--size", "30"])
    assert rc == 0
    rows = {line.split("|")[1].strip(): line for line in out.getvalue().splitlines() if line.startswith("| ")}
    assert set(NAMES) <= set(rows)
    # each measured at the size it can take: 30 rounded up to the size multiple
    assert "| 35x35 (size rounded up to a multiple of 7) |" in rows["SwinIR_jpeg"]
    assert "| 32x32 (size rounded up to a multiple of 4) |" in rows["HAT"]
    assert "| 32x32 (size rounded up to a multiple of 4) |" in rows["NAFNet"]
    assert "| 30x30 |" in rows["EDSR"] and "| 30x30 |" in rows["RRDBNet_x2"]


# -- (2) tiling ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_tiled_restore_matches_the_whole_image(name: str) -> None:
    model = tiny(name)
    spec = get_spec(model)
    h, w, tile, overlap = TILING[name]
    assert tile < min(h, w) and tile % spec.size_multiple == 0
    assert h % spec.size_multiple or w % spec.size_multiple or spec.size_multiple == 1
    x = rand(1, spec.in_channels, h, w, seed=1)
    whole = restore(model, x)
    tiled = restore(model, x, tile=tile, tile_overlap=overlap)
    assert whole.shape == tiled.shape == (1, spec.out_channels, h * spec.scale, w * spec.scale)
    diff = (tiled - whole).abs()
    if name in EXACT:
        assert diff.max().item() < 1e-5, f"{name}: tiles differ from the whole image by {diff.max().item():.2e}"
    else:  # windows and pooling see other context per tile: close, not equal
        assert diff.mean().item() < 0.01 and diff.max().item() < 0.25, (
            f"{name}: mean {diff.mean().item():.3e}, max {diff.max().item():.3e}"
        )


# -- (3) self-ensemble ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_self_ensemble_is_the_mean_of_the_eight_passes(name: str) -> None:
    model = tiny(name)
    spec = get_spec(model)
    h, w = 2 * spec.size_multiple + 1, 3 * spec.size_multiple - 1  # padded by restore when the multiple > 1
    x = rand(1, spec.in_channels, max(h, 9), max(w, 11), seed=2)
    got = restore(model, x, self_ensemble=True)
    xp, size = pad_to_multiple(x, spec.size_multiple)
    outs = []
    with torch.no_grad():
        for flip in (False, True):
            for k in range(4):
                t = torch.rot90(xp.flip(-1) if flip else xp, k, dims=(-2, -1))
                y = torch.rot90(model(t), -k, dims=(-2, -1))
                outs.append(y.flip(-1) if flip else y)
    want = crop_to(torch.stack(outs).mean(0), size, spec.scale)
    assert got.shape == (1, spec.out_channels, x.shape[-2] * spec.scale, x.shape[-1] * spec.scale)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)
    plain = restore(model, x)
    assert not torch.allclose(got, plain, atol=1e-6)  # the ensemble did something


# -- (4) ONNX ------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ONNX_NAMES)
def test_onnx_export_matches_torch(name: str, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")
    pytest.importorskip("onnxscript", reason="the [export] extra is not installed")
    from irframe.nn.export import OnnxModel, check_onnx, default_check_inputs, export_onnx

    model = tiny(name)
    spec = get_spec(model)
    # batch 1 and no graph optimizer: about twice as fast to export (test_export.py covers both)
    result = export_onnx(model, tmp_path / f"{name}.onnx", optimize=False, dynamic_batch=False)
    assert result.input_shape == (1, spec.in_channels, "height", "width")
    assert result.metadata["irframe.scale"] == str(spec.scale)
    assert result.metadata["irframe.size_multiple"] == str(spec.size_multiple)
    onnx_model = OnnxModel(result.path)
    diff = check_onnx(model, onnx_model, default_check_inputs(model))
    assert diff <= ONNX_ATOL, f"{name}: onnxruntime vs torch {diff:.2e}"
    # any size, through the padding restore does: the graph gives what restore gives
    x = rand(1, spec.in_channels, 4 * spec.size_multiple + 3, 2 * spec.size_multiple + 5, seed=3)
    xp, size = pad_to_multiple(x, spec.size_multiple)
    got = crop_to(onnx_model(xp), size, spec.scale)
    torch.testing.assert_close(got, restore(model, x), atol=ONNX_ATOL, rtol=0)


# -- (5) --tile auto -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_tile_auto_plans_and_runs(name: str) -> None:
    model = tiny(name)
    spec = get_spec(model)
    lines: list[str] = []
    tiler = AutoTiler(model, probe_sides=(16, 32), log=lines.append)
    x = rand(1, spec.in_channels, 30, 37, seed=4)
    choice = tiler(x)
    y = restore(model, x, **choice.restore_kwargs())
    assert y.shape == (1, spec.out_channels, 30 * spec.scale, 37 * spec.scale)
    assert lines and lines[0].startswith("auto tile for 30x37 on cpu")
    big = tiler((1, spec.in_channels, 2000, 2000))  # planned only: on the CPU the fastest is tiled
    assert big.tile is not None and big.tile % spec.size_multiple == 0 and big.tile < 2000
    assert big.overlap == spec.tile_overlap
