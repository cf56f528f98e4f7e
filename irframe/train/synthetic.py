"""Synthetic textured images for the demo and the tests (no download needed).

Each image mixes what restoration networks must preserve: smooth colour gradients, oriented
sinusoidal gratings of several frequencies, and flat shapes with sharp edges. The content is a
pure function of ``(seed, index)``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from irframe.data.io import imwrite


def textured_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """One ``size x size`` RGB float32 image in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.empty((size, size, 3), np.float32)
    base = rng.uniform(0.2, 0.8, 3)
    slope = rng.uniform(-0.3, 0.3, (2, 3))
    for c in range(3):  # a smooth gradient per channel
        img[..., c] = base[c] + slope[0, c] * (xx - 0.5) + slope[1, c] * (yy - 0.5)
    for _ in range(int(rng.integers(2, 4))):  # gratings
        angle = rng.uniform(0, np.pi)
        freq = rng.uniform(2, 10)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
        img += wave[..., None] * rng.uniform(0.03, 0.12) * rng.uniform(0.5, 1.0, 3)
    for _ in range(int(rng.integers(3, 7))):  # flat shapes with hard edges
        color = tuple(float(v) for v in rng.uniform(0, 1, 3))
        cx, cy = (int(v) for v in rng.integers(0, size, 2))
        r = int(rng.integers(max(2, size // 16), max(3, size // 4)))
        if rng.random() < 0.5:
            cv2.circle(img, (cx, cy), r, color, thickness=-1, lineType=cv2.LINE_AA)
        else:
            cv2.rectangle(img, (cx - r, cy - r // 2), (cx + r, cy + r // 2), color, thickness=-1)
    return np.clip(img, 0.0, 1.0)


def write_textured_images(folder: str | Path, count: int, size: int, seed: int = 0, prefix: str = "img") -> list[Path]:
    """Write ``count`` PNGs ``<prefix>_0000.png``... into ``folder``; return their paths."""
    folder = Path(folder)
    paths = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        path = folder / f"{prefix}_{i:04d}.png"
        imwrite(path, textured_image(rng, size))
        paths.append(path)
    return paths


def write_degraded_copies(
    src: str | Path, dst: str | Path, *, sigma: float = 0.0, scale: int = 1, suffix: str = "", seed: int = 0
) -> list[Path]:
    """LQ copies of every PNG in ``src``: ``scale``-times smaller (area) and/or Gaussian noise (0..255 sigma).

    The LQ file of ``name.png`` is ``name<suffix>.png`` (e.g. ``x2`` for SR benchmarks).
    """
    from irframe.data.io import imread

    out = []
    for i, path in enumerate(sorted(Path(src).glob("*.png"))):
        img = imread(path)
        if scale > 1:
            h, w = img.shape[0] // scale, img.shape[1] // scale
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        if sigma > 0:
            rng = np.random.default_rng([seed, i])
            img = img + rng.standard_normal(img.shape).astype(np.float32) * (sigma / 255.0)
        target = Path(dst) / f"{path.stem}{suffix}.png"
        imwrite(target, np.clip(img, 0.0, 1.0))
        out.append(target)
    return out
