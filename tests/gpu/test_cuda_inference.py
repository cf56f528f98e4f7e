"""CUDA cases of every inference path that chooses a device, dtype or memory format.

Marked ``cuda``: skipped where torch sees no GPU (tests/conftest.py), run by benchmarks/gpu/run.sh.

- ``restore``: the model's device decides where tiles run, the input's where the output goes
  (``_model_device``, ``out_device``), the blend accumulates in float32 (``tiled_forward``);
- ``autocast_context``: bf16/fp16 autocast on CUDA (fp16 refused only on the CPU);
- the archs' memory format: Restormer/PromptIR switch to channels-last only on the CPU
  (``channels_last_on_cpu``), so CUDA runs NCHW and a channels-last CUDA input still works;
- ``--tile auto``: free memory from ``torch.cuda.mem_get_info`` (``available_memory``), peaks from
  ``max_memory_allocated`` (``measure_peak``), the plan for a CUDA model (``AutoTiler``);
- ``load_for_eval(device="cuda")`` / ``irframe.load_model(device=...)`` and ``compile_model`` (inductor);
- metrics on CUDA tensors (SSIM's batched path on the GPU) equal the CPU's.
"""

from __future__ import annotations

import pytest
import torch

from irframe.nn.inference import autocast_context, restore
from tests.helpers import TINY_ARCHS, build_tiny_arch

pytestmark = pytest.mark.cuda

CONFIGS = TINY_ARCHS


def _build(name: str) -> torch.nn.Module:
    return build_tiny_arch(name).eval()


def _image(h: int = 52, w: int = 60) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_cuda_restore_matches_cpu_and_output_follows_input(name: str) -> None:
    model = _build(name)
    x = _image()
    ref = restore(model, x)
    model.cuda()
    out = restore(model, x)  # CPU image, CUDA model: runs on the GPU, comes back to the CPU
    assert out.device.type == "cpu" and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-3, atol=2e-3)  # TF32/cuDNN vs CPU kernels
    on_gpu = restore(model, x.cuda())
    assert on_gpu.device.type == "cuda"
    tiled = restore(model, x.cuda(), tile=48, tile_overlap=16, out_device="cpu")
    assert tiled.device.type == "cpu" and tiled.shape == ref.shape


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("name", ["Restormer", "PromptIR"])
def test_cuda_half_precision_autocast(name: str, precision: str) -> None:
    model = _build(name).cuda()
    seen: list[torch.dtype] = []
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    x = _image().cuda()
    ref = restore(model, x)
    out = restore(model, x, precision=precision)
    assert seen[-1] == (torch.bfloat16 if precision == "bf16" else torch.float16)  # autocast really ran
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert (out - ref).abs().max().item() < 0.05
    assert all(p.dtype == torch.float32 for p in model.parameters())
    ctx = autocast_context("cuda", precision)
    assert isinstance(ctx, torch.autocast)


@pytest.mark.parametrize("name", ["Restormer", "PromptIR"])
def test_cuda_memory_format_stays_nchw_and_channels_last_input_works(name: str) -> None:
    from irframe_restormer.blocks import channels_last_on_cpu

    x = _image().cuda()
    assert channels_last_on_cpu(x) is x  # only the CPU switches layout
    model = _build(name).cuda()
    ref = restore(model, x)
    cl = restore(model, x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(cl, ref, rtol=1e-3, atol=1e-3)
    model = model.to(memory_format=torch.channels_last)  # weights channels-last too (a user's choice)
    torch.testing.assert_close(restore(model, x), ref, rtol=1e-3, atol=1e-3)


def test_cuda_auto_tile_reads_free_memory_and_measures_peaks() -> None:
    from irframe.nn.autotile import AutoTiler, available_memory, measure_peak

    free, total = torch.cuda.mem_get_info()
    avail = available_memory("cuda")
    assert 0 < avail <= total and avail >= free * 0.9
    peak = measure_peak(lambda: torch.empty(64 << 20, dtype=torch.uint8, device="cuda").fill_(1), "cuda")
    assert 64 << 20 <= peak < (64 << 20) * 1.5
    model = _build("Restormer").cuda()
    x = _image(300, 300).cuda()
    lines: list[str] = []
    budget = AutoTiler(model, None, log=lines.append)(x)
    assert budget.device.startswith("cuda") and budget.tile is None  # a 300x300 image fits an empty GPU
    small = AutoTiler(model, 8 << 20, log=lines.append)(x)  # 8 MiB forces tiles
    assert small.tile is not None and small.tile < 300
    out = restore(model, x, **small.restore_kwargs())
    assert out.shape == x.shape and "on cuda" in lines[-1]


def test_cuda_load_for_eval_and_load_model_place_on_device(tmp_path) -> None:
    from irframe.evaluate.models import load_for_eval
    from irframe.nn.autoload import load_model
    from irframe.nn.weights import save_weights

    model = _build("Restormer")
    path = save_weights(
        model,
        tmp_path / "r.safetensors",
        {"arch": "Restormer", "config": __import__("json").dumps({"type": "Restormer", **CONFIGS["Restormer"]})},
    )
    loaded = load_for_eval(None, path, device="cuda")
    assert next(loaded.model.parameters()).device.type == "cuda"
    auto = load_model(path, device="cuda")
    assert next(auto.parameters()).device.type == "cuda"


def test_cuda_compile_inference_with_inductor(tmp_path) -> None:
    from irframe.nn.inference import compile_model
    from irframe.nn.spec import ModelSpec

    # a small conv net: inductor's first compile stays seconds (the paper models: benchmarks/gpu)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.GELU(), torch.nn.Conv2d(16, 3, 3, padding=1)
    )
    model.spec = ModelSpec()
    model = model.cuda().eval()
    x = _image(64, 64).cuda()
    ref = restore(model, x)
    compiled = compile_model(model)
    torch.testing.assert_close(restore(compiled, x), ref, rtol=1e-3, atol=2e-3)
    assert set(compiled.state_dict()) == {f"_orig_mod.{k}" for k in model.state_dict()}
    from irframe.nn.weights import save_weights, unwrap_model

    save_weights(compiled, tmp_path / "c.safetensors")
    from safetensors.torch import load_file

    assert set(load_file(str(tmp_path / "c.safetensors"))) == set(unwrap_model(compiled).state_dict())


def test_cuda_metrics_equal_cpu() -> None:
    from irframe.registry import METRICS

    a = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    b = (a + 0.05 * torch.randn(a.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    for cfg in ({"type": "PSNR", "crop_border": 4, "test_y_channel": True}, {"type": "SSIM", "crop_border": 4}):
        metric = METRICS.build(cfg)
        torch.testing.assert_close(metric(a.cuda(), b.cuda()).cpu(), metric(a, b), rtol=1e-5, atol=1e-4)
