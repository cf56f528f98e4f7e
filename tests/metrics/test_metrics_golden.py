"""PSNR / SSIM parity with BasicSR's golden figures (numpy reference and batched torch path).

Golden values: BasicSR ``calculate_psnr`` / ``calculate_ssim`` on 128x128 Kodak crops (BGR uint8)
with sigma-25 noise, copied into tests/fixtures/metrics. Tolerances from the issue: 1e-4 dB, 1e-5.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from irframe.metrics import calculate_psnr, calculate_ssim
from irframe.registry import METRICS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "metrics"
PSNR_TOL = 1e-4
SSIM_TOL = 1e-5

GOLDEN = json.loads((FIXTURES / "metrics_golden.json").read_text())["values"]
CROPS = dict(np.load(FIXTURES / "metrics_kodak_crops.npz"))


def _case_id(case: dict) -> str:
    return f"{case['image']}-crop{case['crop_border']}-{'y' if case['test_y_channel'] else 'rgb'}"


def _bgr_to_tensor(img: np.ndarray) -> torch.Tensor:
    """BGR uint8 HWC -> RGB float32 NCHW in [0,1] (what the engine feeds metrics)."""
    return torch.from_numpy(np.ascontiguousarray(img[..., ::-1])).permute(2, 0, 1)[None].float() / 255.0


@pytest.mark.parametrize("case", GOLDEN, ids=_case_id)
def test_numpy_matches_basicsr(case: dict) -> None:
    noisy, gt = CROPS[f"{case['image']}/noisy_bgr"], CROPS[f"{case['image']}/gt_bgr"]
    kw = dict(crop_border=case["crop_border"], test_y_channel=case["test_y_channel"])
    assert calculate_psnr(noisy, gt, **kw) == pytest.approx(case["psnr"], abs=PSNR_TOL)
    assert calculate_ssim(noisy, gt, **kw) == pytest.approx(case["ssim"], abs=SSIM_TOL)


def test_numpy_chw_order_matches_hwc() -> None:
    noisy, gt = CROPS["kodim01/noisy_bgr"], CROPS["kodim01/gt_bgr"]
    hwc = calculate_ssim(noisy, gt, 4, test_y_channel=True)
    chw = calculate_ssim(noisy.transpose(2, 0, 1), gt.transpose(2, 0, 1), 4, input_order="CHW", test_y_channel=True)
    assert chw == hwc


@pytest.mark.parametrize("crop_border", [0, 4])
@pytest.mark.parametrize("test_y_channel", [False, True])
def test_torch_metrics_match_basicsr_batched(crop_border: int, test_y_channel: bool) -> None:
    """All four images in one batch; every per-image value equals the golden one."""
    cases = [c for c in GOLDEN if c["crop_border"] == crop_border and c["test_y_channel"] == test_y_channel]
    noisy = torch.cat([_bgr_to_tensor(CROPS[f"{c['image']}/noisy_bgr"]) for c in cases])
    gt = torch.cat([_bgr_to_tensor(CROPS[f"{c['image']}/gt_bgr"]) for c in cases])
    opts = {"crop_border": crop_border, "test_y_channel": test_y_channel}
    psnr = METRICS.build({"type": "PSNR", **opts})(noisy, gt)
    ssim = METRICS.build({"type": "SSIM", **opts})(noisy, gt)
    assert psnr.shape == ssim.shape == (len(cases),)
    np.testing.assert_allclose(psnr.numpy(), [c["psnr"] for c in cases], rtol=0, atol=PSNR_TOL)
    np.testing.assert_allclose(ssim.numpy(), [c["ssim"] for c in cases], rtol=0, atol=SSIM_TOL)
