"""The registered metric objects: building, protocol/direction, checks, RMSE pooling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from irframe.errors import OptionsError
from irframe.metrics import calculate_psnr
from irframe.registry import METRICS


def test_all_metrics_registered_with_direction_and_protocol() -> None:
    assert {"PSNR", "SSIM", "RMSE", "LPIPS"} <= set(METRICS.names())
    psnr = METRICS.build({"type": "PSNR", "crop_border": 4, "test_y_channel": True})
    assert (psnr.name, psnr.higher_is_better, psnr.protocol) == ("PSNR", True, "PSNR-Y crop4 8bit")
    ssim = METRICS.build({"type": "SSIM", "quantize": False})
    assert (ssim.name, ssim.higher_is_better, ssim.protocol) == ("SSIM", True, "SSIM-RGB crop0 float")
    rmse = METRICS.build({"type": "RMSE"})
    assert (rmse.name, rmse.higher_is_better, rmse.quantize) == ("RMSE", False, False)
    assert "RMSE" in rmse.protocol and "float" in rmse.protocol


def test_bad_options_are_named() -> None:
    with pytest.raises(OptionsError, match="crop_boder.*crop_border"):
        METRICS.build({"type": "PSNR", "crop_boder": 4})
    with pytest.raises(OptionsError, match="crop_border must be >= 0"):
        METRICS.build({"type": "SSIM", "crop_border": -1})
    with pytest.raises(OptionsError, match="crop_border"):
        METRICS.build({"type": "PSNR", "crop_border": "four"})


def test_bad_inputs_raise_clear_errors() -> None:
    psnr = METRICS.build({"type": "PSNR"})
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(x, torch.rand(1, 3, 16, 15))
    with pytest.raises(ValueError, match="NCHW"):
        psnr(x[0], x[0])
    with pytest.raises(TypeError, match="float"):
        psnr((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="crop_border 8 leaves nothing"):
        METRICS.build({"type": "PSNR", "crop_border": 8})(x, x)
    with pytest.raises(ValueError, match="at least 11x11"):
        METRICS.build({"type": "SSIM", "crop_border": 3})(x, x)
    with pytest.raises(ValueError, match="1 or 3"):
        METRICS.build({"type": "PSNR", "test_y_channel": True})(torch.rand(1, 4, 16, 16), torch.rand(1, 4, 16, 16))


def test_identical_images_give_inf_psnr_unit_ssim_zero_rmse() -> None:
    x = torch.rand(2, 3, 24, 24)
    assert torch.isinf(METRICS.build({"type": "PSNR"})(x, x)).all()
    np.testing.assert_allclose(METRICS.build({"type": "SSIM"})(x, x).numpy(), 1.0, atol=1e-12)
    assert (METRICS.build({"type": "RMSE"})(x, x) == 0).all()


def test_psnr_known_value_and_output_format() -> None:
    gt = torch.zeros(2, 1, 8, 8)
    pred = torch.zeros(2, 1, 8, 8)
    pred[0] += 10 / 255.0  # every pixel off by 10 levels: PSNR = 20 log10(255 / 10)
    pred[1] += 1 / 255.0
    values = METRICS.build({"type": "PSNR"})(pred, gt)
    assert values.dtype == torch.float64 and values.shape == (2,)
    assert values[0].item() == pytest.approx(20 * math.log10(25.5), abs=1e-9)
    assert values[1].item() == pytest.approx(20 * math.log10(255.0), abs=1e-9)
    a = (pred[0, 0] * 255).round().numpy().astype(np.uint8)
    assert values[0].item() == pytest.approx(calculate_psnr(a, np.zeros_like(a), 0), abs=1e-12)


def test_rmse_per_image_and_kaggle_pooling() -> None:
    rmse = METRICS.build({"type": "RMSE"})
    gt = torch.zeros(2, 1, 4, 4)
    pred = torch.stack([torch.full((1, 4, 4), 0.1), torch.full((1, 4, 4), 0.3)])
    values = rmse(pred, gt)
    np.testing.assert_allclose(values.numpy(), [0.1, 0.3], atol=1e-7)
    # Kaggle pools all pixels: images of 16 and 48 pixels -> sqrt((16*0.01 + 48*0.09) / 64)
    pooled = rmse.reduce(values, num_pixels=torch.tensor([16, 48]))
    assert pooled == pytest.approx(math.sqrt((16 * 0.01 + 48 * 0.09) / 64), abs=1e-7)
    assert rmse.reduce(values) == pytest.approx(math.sqrt((0.01 + 0.09) / 2), abs=1e-7)
    assert METRICS.build({"type": "PSNR"}).reduce(torch.tensor([30.0, 32.0])) == pytest.approx(31.0)


def test_metrics_do_not_track_gradients() -> None:
    pred = torch.rand(1, 3, 16, 16, requires_grad=True)
    out = METRICS.build({"type": "SSIM", "quantize": False})(pred, torch.rand(1, 3, 16, 16))
    assert not out.requires_grad
