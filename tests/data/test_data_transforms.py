"""Aligned crops and flips/rotations."""

from __future__ import annotations

import numpy as np
import pytest

from irframe.data.transforms import augment, mod_crop, paired_random_crop, random_crop
from irframe.errors import DataError


def grid(h: int, w: int) -> np.ndarray:
    """Pixel (y, x) holds (y, x, 1000 y + x): every pixel is unique and its origin readable."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([yy, xx, yy * 1000 + xx], axis=2)


def upscale(lq: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement: a GT whose every ``scale x scale`` block is one LQ pixel.
    Crops and dihedral transforms commute with it, so LQ/GT consistency is an exact check."""
    return np.repeat(np.repeat(lq, scale, axis=0), scale, axis=1)


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_paired_crop_is_aligned_and_scale_aware(scale: int) -> None:
    lq = grid(12, 15)
    gt = upscale(lq, scale)
    rng = np.random.default_rng(scale)
    for _ in range(20):
        g, l = paired_random_crop(gt, lq, 5, scale, rng)
        assert l.shape == (5, 5, 3) and g.shape == (5 * scale, 5 * scale, 3)
        np.testing.assert_array_equal(g, upscale(l, scale))


def test_paired_crop_errors_name_the_sources() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(DataError, match=r"gt\.png is 10x10 but lq\.png is 4x5"):
        paired_random_crop(grid(10, 10), grid(4, 5), 2, 2, rng, "gt.png", "lq.png")
    with pytest.raises(DataError, match=r"lq\.png.*smaller than the LQ patch"):
        paired_random_crop(grid(8, 8), grid(4, 4), 6, 2, rng, "gt.png", "lq.png")
    with pytest.raises(DataError, match="smaller than the patch"):
        random_crop(grid(4, 4), 5, rng)


def test_crop_positions_cover_the_image() -> None:
    rng = np.random.default_rng(1)
    corners = {tuple(random_crop(grid(6, 6), 5, rng)[0, 0, :2]) for _ in range(200)}
    assert corners == {(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)}


@pytest.mark.parametrize("scale", [1, 3])
def test_augment_keeps_lq_and_gt_consistent_and_reaches_all_eight(scale: int) -> None:
    lq = grid(4, 4)
    gt = upscale(lq, scale)
    rng = np.random.default_rng(2)
    seen = set()
    for _ in range(200):
        g, l = augment([gt, lq], rng, use_flip=True, use_rot=True)
        np.testing.assert_array_equal(g, upscale(l, scale))
        assert g.flags.c_contiguous and l.flags.c_contiguous
        seen.add(l.tobytes())
    assert len(seen) == 8


def test_augment_is_seeded() -> None:
    img = grid(5, 5)
    a = [augment([img], np.random.default_rng(s))[0] for s in range(6)]
    b = [augment([img], np.random.default_rng(s))[0] for s in range(6)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_options_disable_transforms_and_mod_crop() -> None:
    img = grid(5, 7)
    rng = np.random.default_rng(3)
    for _ in range(10):
        np.testing.assert_array_equal(augment([img], rng, use_flip=False, use_rot=False)[0], img)
    flips = [augment([img], rng, use_flip=True, use_rot=False)[0] for _ in range(40)]
    assert {f.shape for f in flips} == {(5, 7, 3)}  # never transposed
    assert {f[0, 0, 1] for f in flips} == {0.0, 6.0}  # identity or horizontal flip
    assert {f[0, 0, 0] for f in flips} == {0.0}  # never flipped vertically
    assert mod_crop(grid(10, 11), 4).shape == (8, 8, 3)
    assert mod_crop(grid(10, 11), 1).shape == (10, 11, 3)
