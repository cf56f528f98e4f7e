"""Degradations: statistics, determinism under a seed, layouts, options and pipelines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from irframe.data.degradations import (
    Compose,
    DefocusBlur,
    GaussianNoise,
    Haze,
    JPEGCompression,
    LowLight,
    MotionBlur,
    RainStreaks,
    RandomChoice,
    depth_proxy,
    disk_kernel,
    line_kernel,
)
from irframe.errors import DataError, OptionsError
from irframe.registry import DEGRADATIONS

FAMILIES = {
    "BicubicDownsample": {"scale": 2},
    "GaussianNoise": {"sigma": 25},
    "RainStreaks": {},
    "Haze": {"beta_range": [0.5, 2.0]},
    "MotionBlur": {},
    "DefocusBlur": {"radius_range": [1, 4]},
    "JPEGCompression": {"quality_range": [10, 60]},
    "LowLight": {},
    "Compose": {"degradations": [{"type": "MotionBlur", "length": 5}, {"type": "GaussianNoise", "sigma": 10}]},
    "RandomChoice": {"degradations": [{"type": "GaussianNoise"}, {"type": "Haze"}], "p": [1, 1]},
}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def photo(h: int = 32, w: int = 32, c: int = 3, seed: int = 1) -> np.ndarray:
    """A textured float32 image in [0.1, 0.9]."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.3 * np.sin(xx / 3.0)[..., None] * np.cos(yy / 5.0)[..., None]
    noise = rng(seed).uniform(-0.1, 0.1, (h, w, c))
    return np.clip(base + noise, 0.1, 0.9).astype(np.float32)


def test_every_family_is_registered() -> None:
    assert set(FAMILIES) <= set(DEGRADATIONS.names())


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_seeded_determinism_layout_and_range(name: str) -> None:
    deg = DEGRADATIONS.build({"type": name, **FAMILIES[name]})
    for c in (3, 1):
        img = photo(c=c)
        a, b = deg(img, rng(7)), deg(img, rng(7))
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32 and a.ndim == 3 and a.shape[2] == c
        assert np.isfinite(a).all()
        if name != "BicubicDownsample":
            assert a.shape == img.shape
            assert a.min() >= 0.0 and a.max() <= 1.0  # all of these clip or are bounded by default
        assert not np.shares_memory(a, img)
        np.testing.assert_array_equal(img, photo(c=c))  # input untouched
    random_ones = {
        "GaussianNoise",
        "RainStreaks",
        "Haze",
        "MotionBlur",
        "DefocusBlur",
        "JPEGCompression",
        "LowLight",
        "Compose",
        "RandomChoice",
    }
    if name in random_ones:
        outs = {deg(photo(), rng(s)).tobytes() for s in range(4)}
        assert len(outs) > 1, f"{name} ignores the generator"


@pytest.mark.parametrize(
    "bad, error",
    [
        (np.zeros((8, 8, 3), np.float64), "float32"),
        (np.zeros((8, 8), np.float32), "HxWxC"),
        (np.zeros((8, 8, 4), np.float32), "HxWxC"),
        ([[0.0]], "numpy array"),
    ],
)
def test_input_contract_is_checked(bad, error: str) -> None:
    with pytest.raises(DataError, match=error):
        GaussianNoise(sigma=5)(bad, rng())


def test_generator_required() -> None:
    with pytest.raises(TypeError, match="Generator"):
        GaussianNoise()(photo(), 0)  # type: ignore[arg-type]


# -- noise ---------------------------------------------------------------------------------------
def test_gaussian_noise_std_and_mean_unclipped() -> None:
    img = np.full((256, 256, 3), 0.5, np.float32)
    out = GaussianNoise(sigma=25, clip=False)(img, rng())
    residual = out - img
    assert abs(residual.std() * 255 - 25) < 0.5  # 2%
    assert abs(residual.mean()) < 1e-3
    # channels are independent (colour noise)
    corr = np.corrcoef(residual[:, :, 0].ravel(), residual[:, :, 1].ravel())[0, 1]
    assert abs(corr) < 0.02


def test_gaussian_noise_clip_and_quantize() -> None:
    dark = np.full((64, 64, 3), 0.02, np.float32)
    clipped = GaussianNoise(sigma=25)(dark, rng())
    assert clipped.min() == 0.0 and clipped.mean() > 0.03  # clipping at 0 biases the mean up
    unclipped = GaussianNoise(sigma=25, clip=False)(dark, rng())
    assert unclipped.min() < -0.1
    q = GaussianNoise(sigma=25, quantize=True)(dark, rng())
    np.testing.assert_allclose(q * 255, np.rint(q * 255), atol=1e-4)


def test_blind_noise_level_is_uniform_in_range() -> None:
    deg = GaussianNoise(sigma_range=(0, 50), clip=False)
    img = np.full((32, 32, 3), 0.5, np.float32)
    g = rng(3)
    levels = np.array([(deg(img, g) - img).std() * 255 for _ in range(300)])
    assert levels.min() >= 0 and levels.max() <= 52
    assert abs(levels.mean() - 25) < 3
    assert (levels < 10).mean() > 0.1 and (levels > 40).mean() > 0.1  # spread, not a fixed level


def test_value_and_range_together_is_an_error() -> None:
    with pytest.raises(OptionsError, match="not both"):
        GaussianNoise(sigma=15, sigma_range=(0, 50))
    with pytest.raises(OptionsError, match="greater"):
        DEGRADATIONS.build({"type": "Haze", "beta_range": [2, 1]})
    with pytest.raises(OptionsError, match="at least 0"):
        GaussianNoise(sigma=-1)
    with pytest.raises(OptionsError, match="sigma"):
        DEGRADATIONS.build({"type": "GaussianNoise", "sigam": 5})


# -- rain ----------------------------------------------------------------------------------------
def test_rain_only_brightens_and_follows_density_and_angle() -> None:
    img = photo(64, 64)
    out = RainStreaks(density=0.02)(img, rng())
    assert (out >= img - 1e-6).all() and out.max() <= 1.0
    light = RainStreaks(density=0.002).streak_map(96, 96, rng(1))
    heavy = RainStreaks(density=0.03).streak_map(96, 96, rng(1))
    assert (heavy > 0.05).mean() > 2 * (light > 0.05).mean()
    # vertical streaks: neighbours along a column are far more alike than along a row
    s = RainStreaks(density=0.01, length=25, angle=0).streak_map(128, 128, rng(2))
    s = s - s.mean()
    vertical = (s[1:, :] * s[:-1, :]).mean()
    horizontal = (s[:, 1:] * s[:, :-1]).mean()
    assert vertical > 2 * horizontal
    # achromatic streaks: equal change in every channel on a gray image
    gray = np.full((32, 32, 3), 0.3, np.float32)
    o = RainStreaks(density=0.05)(gray, rng())
    np.testing.assert_allclose(o[:, :, 0], o[:, :, 2], atol=1e-6)


# -- haze ----------------------------------------------------------------------------------------
def test_haze_follows_scattering_model() -> None:
    img = photo()
    out = Haze(beta=1.5, airlight=0.9, depth="uniform")(img, rng())
    t = math.exp(-1.5)
    np.testing.assert_allclose(out, img * t + 0.9 * (1 - t), atol=1e-6)
    black = np.zeros((33, 33, 3), np.float32)
    radial = Haze(beta=2.0, airlight=1.0, depth="radial")(black, rng())
    assert radial[16, 16, 0] > radial[0, 0, 0]  # centre is farthest, hence haziest
    np.testing.assert_allclose(radial[16, 16], 1 - math.exp(-2.0), atol=1e-5)
    vertical = depth_proxy(10, 4, "vertical")
    assert vertical[0, 0] == 1.0 and vertical[-1, 0] == 0.0 and (vertical >= 0).all()
    with pytest.raises(OptionsError, match="depth"):
        Haze(depth="stereo")  # type: ignore[arg-type]
    with pytest.raises(OptionsError, match="airlight"):
        Haze(airlight=1.5)


# -- blur ----------------------------------------------------------------------------------------
def test_blur_kernels_are_normalised_and_shaped() -> None:
    k = line_kernel(9, 0)
    assert k.shape == (11, 11) and abs(k.sum() - 1) < 1e-6
    assert np.count_nonzero(k.sum(axis=1)) == 1  # horizontal line: one row
    kv = line_kernel(9, 90)
    np.testing.assert_allclose(kv, k.T, atol=1e-6)
    d = disk_kernel(3)
    assert d.shape == (7, 7) and abs(d.sum() - 1) < 1e-6
    np.testing.assert_allclose(d, d.T, atol=1e-7)
    np.testing.assert_allclose(d, d[::-1, ::-1], atol=1e-7)
    assert d[3, 3] > 0 and d[0, 0] == 0
    assert disk_kernel(0.2).shape == (1, 1)


def test_motion_blur_smears_along_its_direction_only() -> None:
    img = np.zeros((40, 40, 1), np.float32)
    img[:, 20:] = 1.0  # vertical edge
    horizontal = MotionBlur(length=9, angle=0)(img, rng())
    vertical = MotionBlur(length=9, angle=90)(img, rng())
    assert np.abs(horizontal - img).max() > 0.3  # the edge is smeared across columns
    np.testing.assert_allclose(vertical, img, atol=1e-6)  # motion along the edge changes nothing
    const = np.full((20, 20, 3), 0.4, np.float32)
    np.testing.assert_allclose(MotionBlur()(const, rng()), 0.4, atol=1e-6)


def test_defocus_reduces_noise_variance() -> None:
    noise = rng(5).random((64, 64, 3), dtype=np.float32)
    small, large = DefocusBlur(radius=1)(noise, rng()), DefocusBlur(radius=4)(noise, rng())
    assert large.std() < small.std() < noise.std()
    np.testing.assert_allclose(large.mean(), noise.mean(), atol=0.01)


# -- jpeg ----------------------------------------------------------------------------------------
def test_jpeg_quality_controls_error_and_output_is_8bit() -> None:
    img = np.repeat(photo(64, 64, c=1), 3, axis=2)  # luma detail only: chroma subsampling is lossless here
    low, high = JPEGCompression(quality=10)(img, rng()), JPEGCompression(quality=95)(img, rng())
    assert np.abs(low - img).mean() > 2 * np.abs(high - img).mean()
    np.testing.assert_allclose(low * 255, np.rint(low * 255), atol=1e-4)
    gray = JPEGCompression(quality=30)(photo(c=1), rng())
    assert gray.shape == (32, 32, 1)
    with pytest.raises(OptionsError, match="quality"):
        JPEGCompression(quality=0)


# -- low light -----------------------------------------------------------------------------------
def test_low_light_formula_and_noise() -> None:
    img = photo()
    clean = LowLight(gamma=2.5, brightness=0.4, noise_sigma=0)(img, rng())
    np.testing.assert_allclose(clean, 0.4 * img.astype(np.float64) ** 2.5, atol=1e-6)
    flat = np.full((128, 128, 3), 0.8, np.float32)
    noisy = LowLight(gamma=2.0, brightness=0.5, noise_sigma=10, clip=False)(flat, rng())
    assert abs(noisy.mean() - 0.32) < 2e-3 and abs(noisy.std() * 255 - 10) < 0.3
    assert clean.mean() < img.mean() / 2


# -- pipelines -----------------------------------------------------------------------------------
def test_compose_applies_in_order_with_one_generator() -> None:
    steps = [{"type": "MotionBlur", "length": 7, "angle": 30}, {"type": "GaussianNoise", "sigma": 20}]
    pipeline = DEGRADATIONS.build({"type": "Compose", "degradations": steps})
    img = photo()
    g = rng(11)
    manual = GaussianNoise(sigma=20)(MotionBlur(length=7, angle=30)(img, g), g)
    np.testing.assert_array_equal(pipeline(img, rng(11)), manual)
    np.testing.assert_array_equal(Compose([])(img, rng()), img)


def test_random_choice_frequencies_and_nested_yaml() -> None:
    choice = RandomChoice(
        [{"type": "Haze", "beta": 1.0, "airlight": 1.0, "depth": "uniform"}, {"type": "LowLight", "noise_sigma": 0}],
        p=[3, 1],
    )
    assert choice.p == [0.75, 0.25]
    img = np.full((1, 1, 3), 0.5, np.float32)
    g = rng(0)
    hazy = sum(float(choice(img, g)[0, 0, 0]) > 0.5 for _ in range(2000))
    assert abs(hazy / 2000 - 0.75) < 0.04
    nested = DEGRADATIONS.build(
        {"type": "Compose", "degradations": [{"type": "RandomChoice", "degradations": [{"type": "JPEGCompression"}]}]}
    )
    assert nested(photo(), rng()).shape == (32, 32, 3)


def test_pipeline_option_errors_name_the_child() -> None:
    with pytest.raises(OptionsError, match=r"degradations\[1\]"):
        DEGRADATIONS.build({"type": "Compose", "degradations": [{"type": "Haze"}, {"type": "Hazee"}]})
    with pytest.raises(OptionsError, match="2 weights"):
        RandomChoice([{"type": "Haze"}, {"type": "LowLight"}], p=[1.0])
    with pytest.raises(OptionsError, match="non-negative"):
        RandomChoice([{"type": "Haze"}], p=[-1.0])
    with pytest.raises(OptionsError, match="list"):
        Compose({"type": "Haze"})  # type: ignore[arg-type]
