"""MATLAB/BasicSR bicubic parity against the golden files (copied into tests/fixtures/data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from irframe.data.degradations import BicubicDownsample, imresize
from irframe.errors import DataError, OptionsError
from irframe.registry import DEGRADATIONS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
GOLDEN = sorted(FIXTURES.glob("bicubic_*.npz"))
# The golden outputs come from BasicSR's numpy path, which computes in float32; ours is float64.
TOL = 1e-6


def test_fixtures_present() -> None:
    assert len(GOLDEN) == 3, f"bicubic fixtures missing in {FIXTURES}"


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_downsample_matches_golden(path: Path, scale: int) -> None:
    ref = np.load(path)
    img = ref["input_uint8_rgb"] / 255.0
    out = imresize(img, 1 / scale)
    expected = ref[f"down_x{scale}"]
    assert out.shape == expected.shape == (120 // scale, 120 // scale, 3)
    assert np.abs(out - expected).max() < TOL


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_upsample_matches_golden(path: Path) -> None:
    ref = np.load(path)
    out = imresize(ref["down_x2"].astype(np.float64), 2)
    assert np.abs(out - ref["up_x2_of_down_x2"]).max() < TOL


def test_registered_degradation_matches_function_and_keeps_float32() -> None:
    ref = np.load(GOLDEN[0])
    img = (ref["input_uint8_rgb"] / 255.0).astype(np.float32)
    deg = DEGRADATIONS.build({"type": "BicubicDownsample", "scale": 4})
    out = deg(img, np.random.default_rng(0))
    assert out.dtype == np.float32 and out.shape == (30, 30, 3)
    assert np.abs(out - ref["down_x4"]).max() < TOL


def test_gray_2d_and_non_integer_sizes() -> None:
    img = np.random.default_rng(0).random((25, 31))
    out = imresize(img, 1 / 3)
    assert out.shape == (9, 11)  # ceil(25/3), ceil(31/3), as MATLAB
    hwc = imresize(img[:, :, None], 1 / 3)
    np.testing.assert_allclose(hwc[:, :, 0], out, atol=1e-12)


def test_constant_image_stays_constant() -> None:
    img = np.full((17, 23, 3), 0.25)
    for scale in (1 / 4, 1 / 3, 2.0, 3.0):
        np.testing.assert_allclose(imresize(img, scale), 0.25, atol=1e-12)


def test_downsample_requires_multiple_of_scale_and_float() -> None:
    deg = BicubicDownsample(scale=3)
    with pytest.raises(DataError, match="multiple of the scale"):
        deg(np.zeros((10, 9, 3), np.float32), np.random.default_rng(0))
    with pytest.raises(DataError, match="float"):
        imresize(np.zeros((4, 4, 3), np.uint8), 0.5)
    with pytest.raises(OptionsError, match="scale"):
        DEGRADATIONS.build({"type": "BicubicDownsample", "scale": 0})
