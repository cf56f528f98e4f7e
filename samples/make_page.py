"""Write ``samples/page.png``: a synthetic stained page (text, a coffee ring, a fold, smudges, noise).

    python samples/make_page.py [OUT.png] [--clean CLEAN.png]

Seeded: the same pixels every run (OpenCV's Hershey font, numpy's default_rng(3)). It stands in
for a page of Kaggle's "Denoising Dirty Documents", whose images may not be redistributed; the
zoo's ``restormer_dirty_documents_tiny`` (trained on two of those pages) cleans it (RMSE 0.174 ->
0.028 against the clean page ``--clean`` writes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

HEIGHT, WIDTH = 258, 540  # the size of the competition's smaller pages
LINES = (
    "The first hour with irframe: a stained page,",
    "restored by a tiny Restormer trained on two",
    "scanned pages of the Kaggle competition",
    "Denoising Dirty Documents. Coffee rings,",
    "folds and smudges should all disappear.",
)


def make_page(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``(stained, clean)`` uint8 gray pages."""
    rng = np.random.default_rng(seed)
    clean = np.full((HEIGHT, WIDTH), 255, np.uint8)
    for i, text in enumerate(LINES):
        cv2.putText(clean, text, (22, 40 + i * 44), cv2.FONT_HERSHEY_SIMPLEX, 0.72, 0, 1, cv2.LINE_AA)
    ink = clean.astype(np.float32) / 255
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    smudge = cv2.GaussianBlur(rng.standard_normal((HEIGHT, WIDTH)).astype(np.float32), (0, 0), 25)
    paper = 0.86 + 0.08 * smudge / np.abs(smudge).max()  # paper tone with low-frequency smudges
    d = np.sqrt((yy - 150) ** 2 + (xx - 380) ** 2)
    ring = np.exp(-((d - 70) ** 2) / (2 * 4.0**2)) * 0.35 + (d < 70) * 0.12  # a coffee ring
    fold = np.exp(-((xx - 0.35 * yy - 150) ** 2) / (2 * 3.0**2)) * 0.2
    paper = paper - ring - fold
    stained = np.minimum(paper, ink * paper + (1 - ink) * 0.08) + rng.normal(0, 0.02, paper.shape)
    return np.rint(np.clip(stained, 0, 1) * 255).astype(np.uint8), clean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(Path(__file__).with_name("page.png")))
    parser.add_argument("--clean", default=None, help="also write the clean page here")
    args = parser.parse_args()
    stained, clean = make_page()
    cv2.imwrite(args.out, stained)
    if args.clean:
        cv2.imwrite(args.clean, clean)


if __name__ == "__main__":
    main()
