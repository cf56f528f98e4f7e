"""``restore(..., precision=...)``: bf16 autocast on the CPU stays close to fp32; fp16 on the CPU is refused.

On a 128x128 Kodak crop (../shared/data/Kodak24/clean/kodim01.png, or a generated textured image
when ../shared is absent) with Gaussian noise (sigma 25), a tiny random-weight Restormer:

- the output is float32 and bf16 really ran (a conv inside the model produced bfloat16);
- PSNR(bf16 output, fp32 output) > 35 dB (float, RGB): bf16 keeps 8 mantissa bits;
- the BasicSR PSNR (8-bit, RGB) against the clean image changes by less than 0.1 dB.
Observed on the kodim01 crop: bf16 vs fp32 60.4 dB, PSNR change -0.002 dB (printed with -s).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from irframe.nn.inference import autocast_context, restore
from irframe.registry import ARCHS, METRICS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_RESTORMER = {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
                  "heads": [1, 2, 4, 8]}
SIGMA = 25 / 255
# as tests/conftest.py's SHARED (not importable under --import-mode=importlib)
SHARED = Path(os.environ.get("IRFRAME_SHARED", Path(__file__).resolve().parents[3] / "shared"))


def _generated_image(size: int = 128) -> torch.Tensor:
    """Smooth gradients, stripes of several frequencies and a sharp-edged square: [3,H,W] in [0,1]."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    r = 0.5 + 0.4 * torch.sin(2 * math.pi * (3 * xx + 1.5 * yy))
    g = 0.3 + 0.5 * xx * yy + 0.15 * torch.sin(2 * math.pi * 11 * yy)
    b = 0.2 + 0.6 * ((xx - 0.5).abs() < 0.2).float() * ((yy - 0.5).abs() < 0.2).float() + 0.1 * yy
    return torch.stack([r, g, b]).clamp(0, 1)


def _clean_image() -> tuple[torch.Tensor, str]:
    path = SHARED / "data" / "Kodak24" / "clean" / "kodim01.png"
    if not path.is_file():
        return _generated_image(), "generated"
    from irframe.data.io import imread

    img = torch.from_numpy(imread(path)).permute(2, 0, 1)  # HWC -> CHW, [0,1]
    return img[:, 200:328, 300:428].contiguous(), f"{path.name} crop"


@pytest.fixture
def model() -> torch.nn.Module:
    if "Restormer" not in ARCHS:
        pytest.skip("Restormer plugin not installed")
    torch.manual_seed(0)
    return ARCHS.build(TINY_RESTORMER, path="test.precision").eval()


def _float_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / (a - b).pow(2).mean().item())


def test_bf16_close_to_fp32_on_a_real_image(model: torch.nn.Module) -> None:
    clean, source = _clean_image()
    noisy = clean + SIGMA * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    seen: list[torch.dtype] = []
    model.output.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))

    out32 = restore(model, noisy)
    out16 = restore(model, noisy, precision="bf16")
    assert seen == [torch.float32, torch.bfloat16]  # autocast really ran the conv in bf16
    assert out16.dtype == torch.float32 and out16.shape == out32.shape == clean.shape
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights untouched

    psnr = METRICS.build({"type": "PSNR", "crop_border": 0, "test_y_channel": False})
    p32 = psnr(out32[None], clean[None]).item()
    p16 = psnr(out16[None], clean[None]).item()
    agreement = _float_psnr(out16, out32)
    print(f"\n{source}: PSNR vs clean fp32 {p32:.3f} dB, bf16 {p16:.3f} dB (change {p16 - p32:+.3f} dB); "
          f"bf16 vs fp32 {agreement:.1f} dB")
    assert agreement > 35.0
    assert abs(p16 - p32) < 0.1


def test_bf16_with_tiles_and_self_ensemble_gives_float32(model: torch.nn.Module) -> None:
    x = torch.rand(1, 3, 40, 44, generator=torch.Generator().manual_seed(1))
    ref = restore(model, x, tile=32, tile_overlap=16, self_ensemble=True)
    out = restore(model, x, tile=32, tile_overlap=16, self_ensemble=True, precision="bf16")
    assert out.dtype == torch.float32
    assert (out - ref).abs().max().item() < 0.05  # bf16 rounding only, no accumulation in 16 bits


def test_fp16_on_cpu_and_unknown_precisions_are_clear_errors(model: torch.nn.Module) -> None:
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="'fp16' is not supported on the CPU.*bf16"):
        restore(model, x, precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16, got 'int8'"):
        restore(model, x, precision="int8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no autocast for device type 'meta'"):
        autocast_context("meta", "bf16")
    assert not model.training  # restore() put the mode back after the error


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_on_cuda_gives_float32(model: torch.nn.Module) -> None:
    model = model.cuda()
    x = torch.rand(1, 3, 64, 64)
    out = restore(model, x, precision="fp16")
    assert out.dtype == torch.float32 and out.device.type == "cpu"
    assert (out - restore(model, x)).abs().max().item() < 0.01
