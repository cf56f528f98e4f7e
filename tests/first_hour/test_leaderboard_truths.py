"""What the leaderboard says is true of what it shows: gray sets are labelled gray, and the bold
note says when nothing can be bold (one model)."""

from __future__ import annotations

import numpy as np
import yaml

from irframe.evaluate.cli import benchmark_main
from irframe.evaluate.leaderboard import DatasetResult, ImageResult, Leaderboard, MetricInfo, ModelRun, gray_protocol
from tests.evaluate.conftest import write_png

PSNR = MetricInfo("PSNR", "PSNR-RGB crop0 8bit", True)


def _run(name: str, scores: dict[str, tuple[float, int]]) -> ModelRun:
    run = ModelRun(name=name, arch="Toy")
    for set_name, (value, channels) in scores.items():
        image = ImageResult("a", {PSNR.id: value}, 0.1, 16)
        run.datasets[set_name] = DatasetResult(set_name, {PSNR.id: value}, [image], channels=channels)
    return run


def test_gray_sets_are_labelled_by_the_channels_scored():
    assert gray_protocol("PSNR-RGB crop0 8bit") == "PSNR-gray crop0 8bit"
    assert gray_protocol("SSIM-Y crop4 8bit") == "SSIM-gray crop4 8bit"  # Y of a gray image is the image
    assert gray_protocol("RMSE-[0,1] all-channels crop0 float") == "RMSE-[0,1] all-channels crop0 float"
    board = Leaderboard()
    board.merge(_run("A", {"BSD68": (28.3, 1), "Kodak24": (30.3, 3)}), [PSNR])
    md = board.to_markdown()
    assert "1. PSNR protocol: `PSNR-gray crop0 8bit` (higher is better)." in md
    assert "2. PSNR protocol: `PSNR-RGB crop0 8bit` (higher is better)." in md
    header = next(line for line in md.splitlines() if line.startswith("| Model"))
    assert "BSD68 PSNR¹" in header and "Kodak24 PSNR²" in header
    assert board.protocol("BSD68", PSNR.id) == "PSNR-gray crop0 8bit"
    assert list(board.metrics) == [PSNR.id]  # one metric id: the column's identity is unchanged


def test_one_model_says_nothing_is_bold_and_two_say_what_bold_means():
    board = Leaderboard()
    board.merge(_run("A", {"Set5": (30.0, 3)}), [PSNR])
    md = board.to_markdown()
    assert "**" not in md.split("| Model", 1)[1].split("\n\n", 1)[0]  # the table bolds nothing...
    assert "No value is bold: each column has one model's value" in md and "in **bold**" not in md  # ...and says so
    board.merge(_run("B", {"Set5": (31.0, 3)}), [PSNR])
    md = board.to_markdown()
    assert "**31.00**" in md and "Best value per column in **bold**" in md


def test_tools_test_py_labels_a_gray_set_gray(toy_arch, tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        gt = rng.integers(0, 256, (16, 16), dtype=np.uint8)
        write_png(tmp_path / "gt" / f"{i}.png", gt)
        write_png(tmp_path / "lq" / f"{i}.png", np.clip(gt + rng.normal(0, 10, gt.shape), 0, 255).astype(np.uint8))
    opt = tmp_path / "gray.yml"
    opt.write_text(yaml.safe_dump({
        "name": "gray", "model": {"type": "EvalToyNet", "channels": 1},
        "test": {"datasets": {"G": {"type": "PairedImageDataset", "channels": 1, "dataroot_gt": str(tmp_path / "gt"),
                                    "dataroot_lq": str(tmp_path / "lq")}}},
    }))
    out = tmp_path / "results"
    assert benchmark_main(["-opt", str(opt), "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    md = (out / "leaderboard.md").read_text()
    assert "`PSNR-gray crop0 8bit`" in md and "PSNR-RGB" not in md
    assert Leaderboard.load(out / "leaderboard.json").models["gray"]["datasets"]["G"]["channels"] == 1
    report = (out / "report.html").read_text()
    assert "PSNR-gray crop0 8bit" in report and "No value is bold" in report


def test_gray_label_needs_every_model_on_the_set_to_be_gray():
    board = Leaderboard()
    board.merge(_run("A", {"S": (30.0, 1)}), [PSNR])
    old = _run("B", {"S": (29.0, 1)})
    old.datasets["S"].channels = None  # a result from before channels were recorded
    board.merge(old, [PSNR])
    assert board.protocol("S", PSNR.id) == PSNR.protocol  # not known for every row: the metric's own label
