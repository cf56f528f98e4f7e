"""Leaderboard merging and rendering (no model involved)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from irframe.errors import DataError
from irframe.evaluate.leaderboard import (
    DatasetResult,
    ImageResult,
    Leaderboard,
    MetricInfo,
    ModelRun,
    update_leaderboard,
)

PSNR = MetricInfo("PSNR", "PSNR-Y crop4 8bit", True)
RMSE = MetricInfo("RMSE", "RMSE-[0,1] all-channels crop0 float", False)


def make_run(name: str, sets: dict[str, tuple[float, float]], params: int = 1000) -> ModelRun:
    """A run with one image per set: ``{set: (psnr, rmse)}``."""
    run = ModelRun(name=name, arch="Toy", params=params, device="cpu")
    for set_name, (psnr, rmse) in sets.items():
        image = ImageResult("a", {PSNR.id: psnr, RMSE.id: rmse}, runtime_s=0.5, pixels=16)
        run.datasets[set_name] = DatasetResult(set_name, {PSNR.id: psnr, RMSE.id: rmse}, [image])
    return run


def test_merge_keeps_other_models_and_rerun_replaces_only_its_rows(tmp_path: Path) -> None:
    update_leaderboard(tmp_path, [make_run("A", {"Set5": (30.0, 0.05)})], [PSNR, RMSE])
    update_leaderboard(tmp_path, [make_run("B", {"Set5": (31.0, 0.04), "Set14": (28.0, 0.06)})], [PSNR, RMSE])
    board = Leaderboard.load(tmp_path / "leaderboard.json")
    assert list(board.models) == ["A", "B"]
    # rerun of A on Set5 and a new set: A's Set5 replaced, B untouched
    update_leaderboard(tmp_path, [make_run("A", {"Set5": (32.5, 0.03), "Set14": (27.0, 0.07)})], [PSNR, RMSE])
    board = Leaderboard.load(tmp_path / "leaderboard.json")
    assert list(board.models) == ["A", "B"]  # position kept
    assert board.score("A", "Set5", PSNR.id) == 32.5
    assert board.score("B", "Set5", PSNR.id) == 31.0
    assert board.score("B", "Set14", PSNR.id) == 28.0
    # a rerun on one set keeps the model's other sets
    update_leaderboard(tmp_path, [make_run("A", {"Set14": (27.5, 0.07)})], [PSNR, RMSE])
    board = Leaderboard.load(tmp_path / "leaderboard.json")
    assert board.score("A", "Set5", PSNR.id) == 32.5 and board.score("A", "Set14", PSNR.id) == 27.5
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_markdown_bolds_best_by_direction_and_names_protocols(tmp_path: Path) -> None:
    paths = update_leaderboard(
        tmp_path,
        [make_run("A", {"Set5": (30.0, 0.05)}), make_run("B", {"Set5": (31.0, 0.06)})],
        [PSNR, RMSE],
    )
    md = paths["md"].read_text()
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| Model"))
    assert "Set5 PSNR¹" in header and "Set5 RMSE²" in header and "Params (M)" in header and "Runtime (s/img)" in header
    row_a = next(line for line in lines if line.startswith("| A |"))
    row_b = next(line for line in lines if line.startswith("| B |"))
    assert "**31.00**" in row_b and "30.00" in row_a and "**30.00**" not in row_a  # PSNR: higher wins
    assert "**0.0500**" in row_a and "**0.0600**" not in row_b  # RMSE: lower wins
    assert "1. PSNR protocol: `PSNR-Y crop4 8bit` (higher is better)." in md
    assert "2. RMSE protocol: `RMSE-[0,1] all-channels crop0 float` (lower is better)." in md
    assert "| 0.00 | 0.500 | cpu |" in row_a  # params in millions, median runtime, device


def test_ties_share_bold_and_single_entry_is_not_bold(tmp_path: Path) -> None:
    board = Leaderboard()
    board.merge(make_run("A", {"Set5": (30.001, 0.05), "Set14": (25.0, 0.1)}), [PSNR, RMSE])
    board.merge(make_run("B", {"Set5": (29.999, 0.05)}), [PSNR, RMSE])
    header, rows, bold = board.summary_rows()
    col = header.index("Set5 PSNR¹")
    assert rows[0][col] == rows[1][col] == "30.00" and bold[0][col] and bold[1][col]
    col14 = header.index("Set14 PSNR¹")
    assert rows[1][col14] == "–" and not bold[0][col14]  # only A ran Set14: nothing to beat


def test_csv_files_and_json_per_image_values(tmp_path: Path) -> None:
    run = make_run("A", {"Set5": (30.0, 0.05)})
    run.datasets["Set5"].images.append(
        ImageResult("b", {PSNR.id: math.inf, RMSE.id: 0.0}, 0.25, 16, "images/A/Set5/b.png")
    )
    paths = update_leaderboard(tmp_path, [run], [PSNR, RMSE])
    summary = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert summary[0]["model"] == "A" and float(summary[0]["Set5/PSNR-Y crop4 8bit"]) == 30.0
    assert float(summary[0]["runtime_s"]) == pytest.approx(0.375)  # median of 0.5 and 0.25
    per_image = list(csv.DictReader(io.StringIO(paths["per_image"].read_text())))
    assert [(r["image"], r["PSNR-Y crop4 8bit"]) for r in per_image] == [("a", "30.0"), ("b", "inf")]
    assert per_image[1]["output"] == "images/A/Set5/b.png"
    data = json.loads(paths["json"].read_text())  # strict JSON: inf stored as a string
    images = data["models"]["A"]["datasets"]["Set5"]["images"]
    assert images[1]["metrics"][PSNR.id] == "inf"
    assert Leaderboard.load(paths["json"]).image_metrics("A", "Set5")["b"][PSNR.id] == math.inf
    assert data["metrics"][RMSE.id] == {"name": "RMSE", "protocol": RMSE.protocol, "higher_is_better": False}


def test_same_metric_name_with_two_protocols_gets_two_columns() -> None:
    psnr_rgb = MetricInfo("PSNR", "PSNR-RGB crop0 8bit", True)
    board = Leaderboard()
    run = ModelRun("A", "Toy")
    run.datasets["Set5"] = DatasetResult("Set5", {PSNR.id: 33.0, psnr_rgb.id: 31.0})
    board.merge(run, [PSNR, psnr_rgb])
    header, _rows, _ = board.summary_rows()
    assert "Set5 PSNR¹" in header and "Set5 PSNR²" in header
    assert "PSNR-RGB crop0 8bit" in board.to_markdown()


def test_corrupt_or_foreign_leaderboard_is_an_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "leaderboard.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="leaderboard.json"):
        update_leaderboard(tmp_path, [make_run("A", {"Set5": (30.0, 0.05)})], [PSNR])
    assert bad.read_text() == "{not json"  # never overwritten
    bad.write_text(json.dumps({"format": 99}))
    with pytest.raises(DataError, match="format 99"):
        Leaderboard.load(bad)
