"""tools/test.py on an option file without test.metrics, and the leaderboard's degraded-input row."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from irframe.evaluate.cli import benchmark_main
from irframe.evaluate.leaderboard import BASELINE_ROW, DatasetResult, Leaderboard, MetricInfo, ModelRun
from irframe.metrics import calculate_psnr

PSNR_ID = "PSNR-RGB crop0 8bit"
SSIM_ID = "SSIM-RGB crop0 8bit"


def _options(tmp_path: Path, paired_set: Path, **extra) -> Path:
    data = {
        "name": "ident",
        "model": {"type": "EvalToyNet", "offset": 0.02},
        "test": {"datasets": {"Toy": {"type": "PairedImageDataset", "dataroot_gt": str(paired_set / "gt"),
                                      "dataroot_lq": str(paired_set / "lq")}}},
        **extra,
    }
    path = tmp_path / "opts.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run(opt: Path, out: Path) -> int:
    return benchmark_main(["-opt", str(opt), "--out", str(out), "--device", "cpu", "--no-progress"])


def test_no_test_metrics_scores_psnr_ssim_and_says_so(toy_arch, paired_set, tmp_path, capsys):
    out = tmp_path / "results"
    assert _run(_options(tmp_path, paired_set), out) == 0
    captured = capsys.readouterr()
    assert "test.metrics is empty; scoring with PSNR and SSIM, BasicSR's protocol on RGB" in captured.err
    # each set's line as soon as it is done, with the inputs' own scores
    assert re.search(
        r"ident \| Toy: PSNR [0-9.]+, SSIM [0-9.]+ \(degraded input: PSNR [0-9.]+, SSIM [0-9.]+\) \[3 images, ",
        captured.err,
    )
    board = Leaderboard.load(out / "leaderboard.json")
    assert board.score("ident", "Toy", PSNR_ID) is not None and board.score("ident", "Toy", SSIM_ID) is not None
    row = next(line for line in (out / "leaderboard.md").read_text().splitlines() if line.startswith("| ident |"))
    assert "–" not in row.split("|")[3]  # a value, never a blank row


def test_no_test_metrics_falls_back_to_val_metrics(toy_arch, paired_set, tmp_path, capsys):
    out = tmp_path / "results"
    opt = _options(tmp_path, paired_set, val={"metrics": [{"type": "PSNR", "crop_border": 2, "test_y_channel": True}]})
    assert _run(opt, out) == 0
    assert "scoring with the file's val.metrics (PSNR)" in capsys.readouterr().err
    assert list(Leaderboard.load(out / "leaderboard.json").metrics) == ["PSNR-Y crop2 8bit"]


def test_leaderboard_has_a_degraded_input_row_with_the_inputs_own_scores(toy_arch, paired_set, tmp_path):
    out = tmp_path / "results"
    assert _run(_options(tmp_path, paired_set), out) == 0
    expected = np.mean(
        [
            calculate_psnr(
                cv2.imread(str(paired_set / "lq" / f"im{i}.png")), cv2.imread(str(paired_set / "gt" / f"im{i}.png")), 0
            )
            for i in range(3)
        ]
    )
    board = Leaderboard.load(out / "leaderboard.json")
    assert board.baseline_score("Toy", PSNR_ID) == pytest.approx(expected, abs=1e-9)
    md = (out / "leaderboard.md").read_text()
    base = next(line for line in md.splitlines() if line.startswith(f"| *{BASELINE_ROW}* |"))
    assert f"{expected:.2f}" in base and "**" not in base  # a reference, never bold
    assert "the metrics of the inputs themselves" in md
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert rows[-1]["model"] == BASELINE_ROW and float(rows[-1][f"Toy/{PSNR_ID}"]) == pytest.approx(expected)
    assert BASELINE_ROW in (out / "report.html").read_text()


def test_no_baseline_row_when_sizes_differ_or_nothing_was_measured():
    board = Leaderboard()
    info = MetricInfo("PSNR", PSNR_ID, True)
    run = ModelRun("A", "Toy")
    run.datasets["SR"] = DatasetResult("SR", {PSNR_ID: 30.0})  # x2 SR: no input-size baseline
    board.merge(run, [info])
    _, rows, _ = board.summary_rows()
    assert [r[0] for r in rows] == ["A"] and "baseline" not in board.to_json()
