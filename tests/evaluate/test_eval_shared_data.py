"""A small tools/test.py run on the real Set5 (x2) and Dirty Documents pairs, when ../shared is present."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from irframe.evaluate.cli import benchmark_main
from irframe.evaluate.leaderboard import Leaderboard
from irframe.metrics import calculate_psnr


def test_set5_x2_and_dirty_documents(shared_dir: Path, toy_arch, write_options, tmp_path: Path) -> None:
    set5 = shared_dir / "data" / "Set5"
    docs = shared_dir / "data" / "DirtyDocuments"
    if not (set5 / "LR_bicubic" / "X2").is_dir() or not (docs / "noisy").is_dir():
        pytest.skip("Set5 x2 or Dirty Documents not present")
    # nearest-neighbour x2 "SR" (padded to 4 inside); BasicSR's LR names: baby.png -> babyx2.png
    sr = write_options(
        "nearest_x2",
        {"type": "EvalToyNet", "scale": 2, "size_multiple": 4},
        {
            "Set5": {
                "type": "PairedImageDataset",
                "dataroot_gt": str(set5 / "HR"),
                "dataroot_lq": str(set5 / "LR_bicubic" / "X2"),
                "scale": 2,
                "filename_tmpl": "{}x2",
            }
        },
        [{"type": "PSNR", "crop_border": 2, "test_y_channel": True}],
        report_images=1,
    )
    doc = write_options(
        "identity_docs",
        {"type": "EvalToyNet", "channels": 1},
        {
            "Docs": {
                "type": "PairedImageDataset",
                "dataroot_gt": str(docs / "clean"),
                "dataroot_lq": str(docs / "noisy"),
                "channels": 1,
            }
        },
        [{"type": "RMSE"}],
        report_images=1,
    )
    out = tmp_path / "results"
    assert benchmark_main(["-opt", str(sr), str(doc), "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    board = Leaderboard.load(out / "leaderboard.json")
    images = board.models["nearest_x2"]["datasets"]["Set5"]["images"]
    assert sorted(i["name"] for i in images) == ["baby", "bird", "butterfly", "head", "woman"]
    for img in images:  # BasicSR's numpy PSNR on the saved file equals the leaderboard's value
        saved = cv2.imread(str(out / img["output"]))
        hr = cv2.imread(str(set5 / "HR" / f"{img['name']}.png"))[: saved.shape[0], : saved.shape[1]]
        expected = calculate_psnr(saved, hr, crop_border=2, test_y_channel=True)
        assert img["metrics"]["PSNR-Y crop2 8bit"] == pytest.approx(expected, abs=1e-6)
    assert 20 < board.score("nearest_x2", "Set5", "PSNR-Y crop2 8bit") < 35
    rmse = board.score("identity_docs", "Docs", "RMSE-[0,1] all-channels crop0 float")
    noisy = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) / 255.0 for p in sorted((docs / "noisy").glob("*.png"))]
    clean = [
        cv2.imread(str(docs / "clean" / p.name), cv2.IMREAD_GRAYSCALE) / 255.0
        for p in sorted((docs / "noisy").glob("*.png"))
    ]
    pooled = np.sqrt(np.mean(np.concatenate([((n - c) ** 2).ravel() for n, c in zip(noisy, clean)])))
    assert rmse == pytest.approx(pooled, rel=1e-6)  # Kaggle's pooled RMSE of the noisy pages
    assert (out / "report.html").is_file()
