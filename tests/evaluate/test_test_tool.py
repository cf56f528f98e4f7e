"""tools/test.py end to end on tiny sets with a toy model whose outputs are known."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from irframe.data.io import img2tensor, imread
from irframe.evaluate.cli import benchmark_main
from irframe.evaluate.leaderboard import Leaderboard
from irframe.metrics import calculate_psnr
from irframe.nn.weights import save_weights
from irframe.registry import METRICS

PSNR_ID = "PSNR-RGB crop0 8bit"
SSIM_ID = "SSIM-RGB crop0 8bit"


def paired(root: Path, **extra) -> dict:
    return {"type": "PairedImageDataset", "dataroot_gt": str(root / "gt"), "dataroot_lq": str(root / "lq"), **extra}


def run(out: Path, *argv: str) -> int:
    return benchmark_main([*argv, "--out", str(out), "--device", "cpu", "--no-progress"])


def test_two_models_merge_into_one_leaderboard(toy_arch, paired_set, write_options, tmp_path: Path) -> None:
    out = tmp_path / "results"
    sets = {"Toy": paired(paired_set)}
    opt_a = write_options("ident", {"type": "EvalToyNet"}, sets)
    opt_b = write_options("shifted", {"type": "EvalToyNet", "offset": 0.03}, sets)
    assert run(out, "-opt", str(opt_a)) == 0
    assert run(out, "-opt", str(opt_b)) == 0

    board = Leaderboard.load(out / "leaderboard.json")
    assert list(board.models) == ["ident", "shifted"]
    # the identity model's output is the LQ image: its PSNR is the LQ's, computed independently
    expected = np.mean(
        [
            calculate_psnr(
                cv2.imread(str(paired_set / "lq" / f"im{i}.png")), cv2.imread(str(paired_set / "gt" / f"im{i}.png")), 0
            )
            for i in range(3)
        ]
    )
    assert board.score("ident", "Toy", PSNR_ID) == pytest.approx(expected, abs=1e-9)
    assert board.score("shifted", "Toy", PSNR_ID) < board.score("ident", "Toy", PSNR_ID)

    md = (out / "leaderboard.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| ident |"))
    assert f"**{expected:.2f}**" in row
    assert "PSNR-RGB crop0 8bit" in md and "SSIM-RGB crop0 8bit" in md
    summary = list(csv.DictReader((out / "leaderboard.csv").open()))
    # the models, then the degraded inputs' own scores (the identity model's, here)
    assert [r["model"] for r in summary] == ["ident", "shifted", "degraded input"] and summary[0]["params"] == "1"
    assert float(summary[2][f"Toy/{PSNR_ID}"]) == pytest.approx(expected, abs=1e-9)
    per_image = list(csv.DictReader((out / "per_image.csv").open()))
    assert len(per_image) == 6 and {r["image"] for r in per_image} == {"im0", "im1", "im2"}
    assert all(float(r["runtime_s"]) > 0 for r in per_image)

    # rerunning one model (now a different offset) replaces its row only
    opt_a2 = write_options("ident", {"type": "EvalToyNet", "offset": -0.05}, sets, filename="ident2.yml")
    assert run(out, "-opt", str(opt_a2)) == 0
    board2 = Leaderboard.load(out / "leaderboard.json")
    assert list(board2.models) == ["ident", "shifted"]
    assert board2.score("shifted", "Toy", PSNR_ID) == board.score("shifted", "Toy", PSNR_ID)
    assert board2.score("ident", "Toy", PSNR_ID) != board.score("ident", "Toy", PSNR_ID)


def test_metrics_equal_a_direct_call_on_the_saved_images(toy_arch, paired_set, write_options, tmp_path: Path) -> None:
    out = tmp_path / "results"
    metrics = [{"type": "PSNR", "crop_border": 2, "test_y_channel": True}, {"type": "SSIM", "crop_border": 2}]
    opt = write_options("shifted", {"type": "EvalToyNet", "offset": 0.0123}, {"Toy": paired(paired_set)}, metrics)
    assert run(out, "-opt", str(opt)) == 0
    data = json.loads((out / "leaderboard.json").read_text())
    images = data["models"]["shifted"]["datasets"]["Toy"]["images"]
    built = [METRICS.build(m) for m in metrics]
    for img in images:
        saved = img2tensor(imread(out / img["output"]))[None]
        gt = img2tensor(imread(paired_set / "gt" / f"{img['name']}.png"))[None]
        for metric in built:
            assert img["metrics"][metric.protocol] == pytest.approx(float(metric(saved, gt)[0]), abs=1e-4)
    scores = data["models"]["shifted"]["datasets"]["Toy"]["scores"]
    assert scores["PSNR-Y crop2 8bit"] == pytest.approx(np.mean([i["metrics"]["PSNR-Y crop2 8bit"] for i in images]))


def test_report_html_references_existing_crops(toy_arch, paired_set, write_options, tmp_path: Path) -> None:
    out = tmp_path / "results"
    sets = {"Toy": paired(paired_set)}
    assert (
        run(out, "-opt", str(write_options("ident", {"type": "EvalToyNet"}, sets, report_images=2, report_crop=8))) == 0
    )
    shifted = {"type": "EvalToyNet", "offset": 0.1}
    assert run(out, "-opt", str(write_options("shifted", shifted, sets, report_images=2, report_crop=8))) == 0
    html = (out / "report.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == 8  # 2 images x (input + 2 models + GT)
    for src in sources:
        assert not src.startswith(("/", "http")) and (out / src).is_file(), src
    assert "<h2>Toy</h2>" in html and "ident" in html and "shifted" in html and "Ground truth" in html
    assert cv2.imread(str(out / sources[1])).shape[:2] == (8, 8)
    assert "PSNR" in html and "not run" not in html
    # a rerun with another crop size: the other model's old crop is not shown beside the new ones
    assert (
        run(
            out,
            "-opt",
            str(write_options("shifted", shifted, sets, report_images=2, report_crop=16, filename="s2.yml")),
        )
        == 0
    )
    html = (out / "report.html").read_text()
    assert len(re.findall(r'<img src="([^"]+)"', html)) == 6 and html.count("cropped elsewhere") == 2


def test_gray_16bit_inputs_give_gray_16bit_outputs(toy_arch, write_options, png, tmp_path: Path) -> None:
    root = tmp_path / "gray16"
    rng = np.random.default_rng(1)
    for i in range(2):
        gt = rng.integers(0, 65535, (12, 16), dtype=np.uint16)
        png(root / "gt" / f"g{i}.png", gt)
        png(root / "lq" / f"g{i}.png", gt // 2)
    sets = {"Gray": paired(root, channels=1)}
    opt = write_options("gray", {"type": "EvalToyNet", "channels": 1, "size_multiple": 8}, sets, report_images=1)
    out = tmp_path / "results"
    assert run(out, "-opt", str(opt)) == 0
    saved = cv2.imread(str(out / "images" / "gray" / "Gray" / "g0.png"), cv2.IMREAD_UNCHANGED)
    assert saved.dtype == np.uint16 and saved.shape == (12, 16)  # padded to 8 inside, cropped back
    np.testing.assert_array_equal(saved, cv2.imread(str(root / "lq" / "g0.png"), cv2.IMREAD_UNCHANGED))
    # an RGB model on a gray set (replicated channels) still writes gray files
    opt_rgb = write_options("rgb", {"type": "EvalToyNet"}, {"Gray": paired(root)}, filename="rgb.yml")
    assert run(out, "-opt", str(opt_rgb)) == 0
    saved_rgb = cv2.imread(str(out / "images" / "rgb" / "Gray" / "g1.png"), cv2.IMREAD_UNCHANGED)
    assert saved_rgb.ndim == 2 and saved_rgb.dtype == np.uint16


def test_online_degradation_is_the_same_for_every_model(toy_arch, paired_set, write_options, tmp_path: Path) -> None:
    noisy = {"Noisy": {"type": "OnlineDegradationDataset", "dataroot_gt": str(paired_set / "gt"),
                       "degradation": {"type": "GaussianNoise", "sigma": 25}}}
    out = tmp_path / "results"
    assert run(out, "-opt", str(write_options("a", {"type": "EvalToyNet"}, noisy, report_images=3))) == 0
    first = json.loads((out / "leaderboard.json").read_text())
    assert run(out, "-opt", str(write_options("b", {"type": "EvalToyNet"}, noisy, report_images=3))) == 0
    second = json.loads((out / "leaderboard.json").read_text())
    # identity models: the outputs are the degraded inputs, so equal scores mean equal inputs
    a_scores = second["models"]["a"]["datasets"]["Noisy"]["images"]
    b_scores = second["models"]["b"]["datasets"]["Noisy"]["images"]
    assert [i["metrics"] for i in a_scores] == [i["metrics"] for i in b_scores]
    assert first["report"]["Noisy"] == second["report"]["Noisy"]
    assert 15 < a_scores[0]["metrics"][PSNR_ID] < 25  # sigma 25 noise, not clean


def test_checkpoints_and_task_selection(toy_arch, paired_set, write_options, tmp_path: Path) -> None:
    ckpts = []
    for name, offset in (("w1", 0.02), ("w2", 0.05)):
        ckpts.append(tmp_path / f"{name}.safetensors")
        save_weights(toy_arch(offset=offset), ckpts[-1], {"arch": "EvalToyNet", "config": {"type": "EvalToyNet"}})
    model_cfg = {"type": "EvalToyNet", "tasks": ["a", "b"]}
    sets = {"TaskA": paired(paired_set, task="a"), "TaskB": paired(paired_set, task="b")}
    opt = write_options("multi", model_cfg, sets)
    out = tmp_path / "results"
    assert run(out, "-opt", str(opt), "--checkpoint", *map(str, ckpts)) == 0  # one option file, two checkpoints
    board = Leaderboard.load(out / "leaderboard.json")
    assert list(board.models) == ["multi@w1", "multi@w2"]
    entry = board.models["multi@w1"]
    assert entry["checkpoint"] == str(ckpts[0]) and entry["datasets"]["TaskB"]["task"] == "b"
    assert entry["params"] == 1
    # the loaded weights count (offset 0.02 beats 0.05), and task b doubles the offset
    assert board.score("multi@w1", "TaskA", PSNR_ID) > board.score("multi@w2", "TaskA", PSNR_ID)
    assert board.score("multi@w1", "TaskB", PSNR_ID) < board.score("multi@w1", "TaskA", PSNR_ID)
    # the arch recorded in a checkpoint must match the options' model
    save_weights(toy_arch(), tmp_path / "other.safetensors", {"arch": "Restormer", "config": {"type": "Restormer"}})
    assert run(out, "-opt", str(opt), "--checkpoint", str(tmp_path / "other.safetensors")) == 2


def test_clear_errors(toy_arch, paired_set, write_options, tmp_path: Path, capsys) -> None:
    out = tmp_path / "results"
    opt = write_options("a", {"type": "EvalToyNet"}, {"Toy": paired(paired_set)})
    no_test = tmp_path / "no_test.yml"
    no_test.write_text("name: x\nmodel: {type: EvalToyNet}\n")
    assert run(out, "-opt", str(no_test)) == 2
    assert "no 'test:' section" in capsys.readouterr().err
    assert run(out, "-opt", str(opt), str(opt), "--checkpoint", "a.pth", "b.pth", "c.pth") == 2
    assert "3 checkpoints for 2 option files" in capsys.readouterr().err
    assert run(out, "-opt", str(opt), "--set", "test.metrics.0.crop_bordr=4") == 2
    assert "did you mean 'crop_border'" in capsys.readouterr().err
    assert run(out, "-opt", str(opt), "--checkpoint", str(tmp_path / "missing.safetensors")) == 2
    assert "missing.safetensors" in capsys.readouterr().err
    assert not (out / "leaderboard.json").exists()


def test_lmdb_benchmark_gives_the_same_numbers_as_folders(toy_arch, paired_set, write_options, tmp_path: Path) -> None:
    from irframe.data.lmdb_pack import create_lmdb

    create_lmdb(paired_set / "gt", tmp_path / "gt.lmdb")
    create_lmdb(paired_set / "lq", tmp_path / "lq.lmdb")
    lmdb_set = {"type": "PairedImageDataset", "dataroot_gt": str(tmp_path / "gt.lmdb"),
                "dataroot_lq": str(tmp_path / "lq.lmdb"), "io_backend": {"type": "lmdb"}}
    out = tmp_path / "results"
    opt = write_options(
        "shifted", {"type": "EvalToyNet", "offset": 0.02}, {"Folder": paired(paired_set), "LMDB": lmdb_set}
    )
    assert run(out, "-opt", str(opt)) == 0
    board = Leaderboard.load(out / "leaderboard.json")
    assert board.score("shifted", "LMDB", PSNR_ID) == board.score("shifted", "Folder", PSNR_ID)
    assert (out / "images" / "shifted" / "LMDB" / "im0.png").is_file()


def test_blind_model_on_a_set_with_task_labels(toy_arch, paired_set, write_options, tmp_path: Path) -> None:
    from irframe.registry import ARCHS

    class Blind(torch.nn.Module):  # forward(x) only, like PromptIR
        def __init__(self) -> None:
            super().__init__()
            self.inner = toy_arch()
            self.spec = self.inner.spec

        def forward(self, x):
            return self.inner(x)

    ARCHS.register("EvalBlindNet", Blind)
    out = tmp_path / "results"
    assert (
        run(
            out,
            "-opt",
            str(write_options("blind", {"type": "EvalBlindNet"}, {"Toy": paired(paired_set, task="derain")})),
        )
        == 0
    )
    board = Leaderboard.load(out / "leaderboard.json")
    assert board.models["blind"]["datasets"]["Toy"]["task"] == "derain"
