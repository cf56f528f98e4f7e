"""Training augmentations applied identically to a GT/LQ pair: aligned random crops and the eight
flips/90-degree rotations.

All functions take ``HWC`` numpy arrays and a :class:`numpy.random.Generator`; the same generator
state gives the same crop and transform. Crops are scale-aware: for SR the LQ patch is ``p`` and the
GT patch ``p * scale``, taken at the corresponding position (LQ top-left ``(y, x)`` <-> GT
``(y * scale, x * scale)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from irframe.errors import DataError


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right edges so height and width are multiples of ``scale``."""
    if scale <= 1:
        return img
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def random_crop(img: np.ndarray, patch_size: int, rng: np.random.Generator, source: str = "image") -> np.ndarray:
    """A ``patch_size`` square at a uniformly random position."""
    h, w = img.shape[:2]
    if h < patch_size or w < patch_size:
        raise DataError(f"{source}: image {h}x{w} is smaller than the patch size {patch_size}")
    y = int(rng.integers(0, h - patch_size + 1))
    x = int(rng.integers(0, w - patch_size + 1))
    return img[y : y + patch_size, x : x + patch_size]


def paired_random_crop(
    gt: np.ndarray,
    lq: np.ndarray,
    lq_patch_size: int,
    scale: int,
    rng: np.random.Generator,
    gt_source: str = "GT",
    lq_source: str = "LQ",
) -> tuple[np.ndarray, np.ndarray]:
    """Aligned random crops: an ``lq_patch_size`` LQ patch and the ``lq_patch_size * scale`` GT patch
    covering the same area.

    Raises:
        DataError: the sizes do not correspond (GT must be ``scale`` times LQ) or the LQ image is
            smaller than the patch; the message names both sources.
    """
    lh, lw = lq.shape[:2]
    gh, gw = gt.shape[:2]
    if (gh, gw) != (lh * scale, lw * scale):
        raise DataError(
            f"{gt_source} is {gh}x{gw} but {lq_source} is {lh}x{lw}; with scale {scale} the GT must be "
            f"{lh * scale}x{lw * scale}"
        )
    if lh < lq_patch_size or lw < lq_patch_size:
        raise DataError(f"{lq_source}: image {lh}x{lw} is smaller than the LQ patch size {lq_patch_size}")
    y = int(rng.integers(0, lh - lq_patch_size + 1))
    x = int(rng.integers(0, lw - lq_patch_size + 1))
    lq_patch = lq[y : y + lq_patch_size, x : x + lq_patch_size]
    g = lq_patch_size * scale
    gt_patch = gt[y * scale : y * scale + g, x * scale : x * scale + g]
    return gt_patch, lq_patch


def dihedral(img: np.ndarray, hflip: bool, vflip: bool, transpose: bool) -> np.ndarray:
    """One of the 8 flip/rotation transforms (a view; no copy)."""
    if hflip:
        img = img[:, ::-1]
    if vflip:
        img = img[::-1, :]
    if transpose:
        img = img.transpose(1, 0, 2) if img.ndim == 3 else img.T
    return img


def augment(
    imgs: Sequence[np.ndarray], rng: np.random.Generator, use_flip: bool = True, use_rot: bool = True
) -> list[np.ndarray]:
    """Apply the same random flip/rotation to every image (BasicSR's ``augment`` rule).

    ``use_flip`` enables a horizontal flip with probability 1/2; ``use_rot`` enables a vertical
    flip and a transpose, each with probability 1/2 (together: 90-degree rotations). With both, all
    8 dihedral transforms are equally likely. Returns contiguous copies.
    """
    # Always draw three numbers, so toggling an option does not shift later random draws.
    draws = rng.random(3)
    hflip = use_flip and draws[0] < 0.5
    vflip = use_rot and draws[1] < 0.5
    transpose = use_rot and draws[2] < 0.5
    return [np.ascontiguousarray(dihedral(img, hflip, vflip, transpose)) for img in imgs]
