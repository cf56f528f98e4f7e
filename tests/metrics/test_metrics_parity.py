"""Torch metrics vs the numpy (BasicSR) reference on generated and real images.

The torch path takes RGB [0,1] float tensors and quantises like BasicSR's ``tensor2img``; the numpy
path takes the same image as BGR 0-255 uint8. Tolerances: 1e-4 dB (PSNR), 1e-5 (SSIM).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from irframe.metrics import calculate_psnr, calculate_ssim
from irframe.registry import METRICS

PSNR_TOL = 1e-4
SSIM_TOL = 1e-5
PROTOCOLS = [(0, False), (4, False), (0, True), (4, True)]


def _to_bgr_uint8(x: torch.Tensor) -> np.ndarray:
    """BasicSR's tensor2img for one CHW RGB image: clamp, *255, round, uint8, BGR."""
    img = (x.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return np.ascontiguousarray(img[..., ::-1]) if img.shape[2] == 3 else img


def _assert_parity(pred: torch.Tensor, gt: torch.Tensor) -> None:
    for crop_border, y in PROTOCOLS:
        opts = {"crop_border": crop_border, "test_y_channel": y}
        psnr = METRICS.build({"type": "PSNR", **opts})(pred, gt)
        ssim = METRICS.build({"type": "SSIM", **opts})(pred, gt)
        for i in range(pred.shape[0]):
            a, b = _to_bgr_uint8(pred[i]), _to_bgr_uint8(gt[i])
            assert psnr[i].item() == pytest.approx(calculate_psnr(a, b, crop_border, test_y_channel=y), abs=PSNR_TOL)
            assert ssim[i].item() == pytest.approx(calculate_ssim(a, b, crop_border, test_y_channel=y), abs=SSIM_TOL)


@pytest.mark.parametrize("channels,size", [(3, (37, 50)), (1, (24, 31)), (3, (19, 64))])
def test_parity_on_generated_images(channels: int, size: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(channels * 100 + size[0])
    h, w = size
    # smooth structure plus noise; values leave [0,1] to exercise the clamp
    yy, xx = torch.meshgrid(torch.linspace(0, 3, h), torch.linspace(0, 5, w), indexing="ij")
    base = (0.5 + 0.4 * torch.sin(yy + xx))[None, None].expand(3, channels, h, w).clone()
    gt = (base + 0.05 * torch.rand(3, channels, h, w, generator=g)).clamp(0, 1)
    pred = gt + 0.1 * torch.randn(3, channels, h, w, generator=g)
    _assert_parity(pred, gt)


def _real_images(shared: Path, folder: str, count: int) -> list[Path]:
    root = shared / "data" / folder / "clean"
    if not root.is_dir():
        pytest.skip(f"{root} not present")
    return sorted(root.glob("*.png"))[:count]


@pytest.mark.parametrize("folder", ["Kodak24", "CBSD68"])
def test_parity_on_real_noisy_images(folder: str, shared_dir: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    g = torch.Generator().manual_seed(25)
    for path in _real_images(shared_dir, folder, 2):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        gt = torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).permute(2, 0, 1)[None].float() / 255.0
        noisy = gt + (25 / 255.0) * torch.randn(gt.shape, generator=g)
        _assert_parity(noisy, gt)


def test_quantize_false_measures_float_values() -> None:
    gt = torch.full((1, 3, 16, 16), 0.5)
    pred = gt + 0.001  # below half an 8-bit step: invisible after quantisation
    assert torch.isinf(METRICS.build({"type": "PSNR"})(pred, gt)).all()
    exact = 10 * np.log10(1.0 / ((pred.double() - gt.double()) ** 2).mean().item())
    assert METRICS.build({"type": "PSNR", "quantize": False})(pred, gt).item() == pytest.approx(exact, abs=1e-6)
