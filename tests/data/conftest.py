"""Helpers for the data-layer tests: small generated image folders."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest


def write_png(path: Path, img: np.ndarray) -> Path:
    """Write an integer array with OpenCV as is (BGR order, 8/16-bit), creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img), path
    return path


def random_uint8(rng: np.random.Generator, h: int, w: int, c: int = 3) -> np.ndarray:
    """Smooth-ish random 8-bit image (noise + gradient, so PNG/JPEG behave like on photos)."""
    base = rng.integers(0, 256, size=(h, w, c), dtype=np.int32)
    grad = np.linspace(0, 120, w, dtype=np.int32)[None, :, None]
    img = ((base + grad) % 256).astype(np.uint8)
    return img[:, :, 0] if c == 1 else img


@pytest.fixture
def helpers() -> SimpleNamespace:
    """``helpers.write_png`` / ``helpers.random_uint8`` (test modules cannot import conftest)."""
    return SimpleNamespace(write_png=write_png, random_uint8=random_uint8)


@pytest.fixture
def image_folder(tmp_path: Path):
    """Factory: ``image_folder(name, n, h, w, c=3, seed=0)`` -> folder of ``000.png ...``."""

    def make(name: str, n: int = 4, h: int = 24, w: int = 32, c: int = 3, seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        folder = tmp_path / name
        for i in range(n):
            write_png(folder / f"{i:03d}.png", random_uint8(rng, h, w, c))
        return folder

    return make


@pytest.fixture
def sr_pair_folders(tmp_path: Path):
    """Factory: GT/LQ folders where GT is the nearest-neighbour enlargement of LQ.

    Crops, flips and rotations commute with that enlargement, so a correct pipeline always yields
    ``gt == repeat(repeat(lq, scale, 0), scale, 1)``: alignment is checked exactly.
    """

    def make(scale: int = 2, n: int = 3, lq_h: int = 20, lq_w: int = 24, seed: int = 0) -> tuple[Path, Path]:
        rng = np.random.default_rng(seed)
        gt_dir, lq_dir = tmp_path / f"gt_x{scale}", tmp_path / f"lq_x{scale}"
        for i in range(n):
            lq = random_uint8(rng, lq_h, lq_w)
            write_png(lq_dir / f"img{i}.png", lq)
            write_png(gt_dir / f"img{i}.png", np.repeat(np.repeat(lq, scale, axis=0), scale, axis=1))
        return gt_dir, lq_dir

    return make
