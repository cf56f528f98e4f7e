"""Find the same photo in two image sets by content, not by name.

The classic test sets share photos under other names and sizes (Set14, Set12 and classic5 hold the
same Lena, Barbara, Peppers...; Rain100H's backgrounds include BSD photos), so a training set is
checked against a test set by what the images show: each image becomes a small gray thumbnail of
the whole frame (area-averaged, so a copy at another resolution gives nearly the same thumbnail),
normalised to zero mean and unit variance (a copy with other brightness or contrast, or a color copy
of a gray image, still matches), and every pair is compared under the 8 flips/rotations. A pair
whose thumbnails correlate above ``threshold`` is reported as a copy.

What it does not find: crops of a photo (a thumbnail of the whole frame changes) and heavy edits.

    python -m irframe.data.overlap --train ../shared/data/Set14/HR --test ../shared/data/BSD68/clean
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from irframe.data.io import IMAGE_EXTENSIONS, imread

__all__ = ["Copy", "find_copies", "thumbnail"]

SIDE = 24
"""Thumbnail side in pixels: small enough to ignore resampling and noise, large enough to tell photos apart."""


@dataclass(frozen=True)
class Copy:
    """One image of the training sets that shows the same photo as one of the test sets."""

    train: Path
    test: Path
    correlation: float
    transform: int  # which of the 8 flips/rotations of the training image matched (0: as it is)


def thumbnail(image: np.ndarray, side: int = SIDE) -> np.ndarray:
    """The normalised gray ``side`` x ``side`` thumbnail of a whole image (HxW or HxWxC, any range)."""
    img = image.astype(np.float32)
    if img.ndim == 3:
        img = img.mean(axis=2)
    small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
    small = small - small.mean()
    norm = float(np.linalg.norm(small))
    return small / norm if norm > 0 else small


def _dihedral(t: np.ndarray) -> list[np.ndarray]:
    out = []
    for k in range(4):
        r = np.rot90(t, k)
        out += [r, r[:, ::-1]]
    return out


def _images(folders: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: not a folder")
        files += sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    return files


def find_copies(
    train: Iterable[str | Path], test: Iterable[str | Path], threshold: float = 0.95
) -> tuple[list[Copy], int, int]:
    """The copies of test images among the training images (folders, searched recursively), the
    number of training images and the number of test images compared."""
    train_files, test_files = _images(train), _images(test)
    test_thumbs = np.stack([thumbnail(imread(p)).ravel() for p in test_files]) if test_files else np.zeros((0, SIDE**2))
    found = []
    for path in train_files:
        variants = np.stack([v.ravel() for v in _dihedral(thumbnail(imread(path)))])  # 8 x SIDE^2
        corr = variants @ test_thumbs.T  # cosine similarity of zero-mean thumbnails = correlation
        for j in np.flatnonzero(corr.max(axis=0) >= threshold):
            found.append(Copy(path, test_files[j], float(corr[:, j].max()), int(corr[:, j].argmax())))
    return found, len(train_files), len(test_files)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", nargs="+", required=True, help="training image folders")
    parser.add_argument("--test", nargs="+", required=True, help="test image folders")
    parser.add_argument("--threshold", type=float, default=0.95, help="thumbnail correlation that counts as a copy")
    args = parser.parse_args(argv)
    try:
        copies, n_train, n_test = find_copies(args.train, args.test, args.threshold)
    except (FileNotFoundError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for c in copies:
        print(f"copy: {c.train} ~ {c.test} (correlation {c.correlation:.3f}, transform {c.transform})")
    print(f"{len(copies)} copies among {n_train} training x {n_test} test images (threshold {args.threshold})")
    return 1 if copies else 0


if __name__ == "__main__":
    sys.exit(main())
