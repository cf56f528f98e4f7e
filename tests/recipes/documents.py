"""Helpers of the recipe tests: the recipe's module, synthetic document pages, and the common
``--set`` overrides that shrink the document-denoising recipe to a seconds-long run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FULL_OPTIONS = ROOT / "options" / "restormer_dirty_documents.yml"
TINY_OPTIONS = ROOT / "options" / "restormer_dirty_documents_tiny.yml"


def load_tool() -> Any:
    """The recipe behind ``tools/dirty_documents.py``: :mod:`irframe.recipes.dirty_documents`."""
    from irframe.recipes import dirty_documents

    return dirty_documents


def clean_page(seed: int, h: int = 40, w: int = 56) -> np.ndarray:
    """A white page with dark "letters" (short bars) and a few mid-gray marks, uint8."""
    rng = np.random.default_rng(seed)
    page = np.full((h, w), 255, np.uint8)
    for top in range(4, h - 6, 9):  # text lines
        left = 3
        while left < w - 6:
            width = int(rng.integers(2, 5))
            page[top : top + 6, left : left + width] = int(rng.choice([0, 20, 90, 140]))
            left += width + int(rng.integers(1, 4))
    return page


def stain(page: np.ndarray, seed: int) -> np.ndarray:
    """The page with a smooth dark stain and some speckle, uint8 (what the model must remove)."""
    rng = np.random.default_rng(1000 + seed)
    h, w = page.shape
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    blot = 90.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.4 * max(h, w)) ** 2))
    noisy = page.astype(np.float64) - blot + rng.normal(0, 8, page.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def write_gray(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image), path
    return path


def fast_overrides(tmp_path: Path, iters: int = 2) -> list[str]:
    """``--set`` items turning the tiny recipe into a seconds-long run under ``tmp_path``."""
    split = tmp_path / "split"
    return [
        f"path.experiments_root={tmp_path / 'experiments'}",
        f"datasets.train.dataroot_lq={split / 'train' / 'noisy'}",
        f"datasets.train.dataroot_gt={split / 'train' / 'clean'}",
        f"datasets.val.dataroot_lq={split / 'val' / 'noisy'}",
        f"datasets.val.dataroot_gt={split / 'val' / 'clean'}",
        "model.dim=8",
        "model.heads=[1,1,1,1]",
        "datasets.train.gt_size=32",
        "datasets.train.batch_size=2",
        f"train.total_iter={iters}",
        "train.warmup_iter=0",
        f"train.scheduler.T_max={iters}",
        f"val.freq={iters}",
        f"logger.print_freq={iters}",
        f"logger.checkpoint_freq={iters}",
        "logger.progress_bar=false",
        "logger.tensorboard=false",
    ]
