"""Dual-pixel defocus deblurring through tools/infer.py (--input-right) and tools/test.py (a
DualPixelDataset benchmark set): 16-bit views in, 16-bit restored images out."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from irframe.data.io import img2tensor, imread
from irframe.evaluate.cli import benchmark_main, infer_main
from irframe.nn.inference import restore
from irframe.nn.weights import save_weights
from irframe.registry import ARCHS, METRICS

DP_RESTORMER = {
    "type": "Restormer", "inp_channels": 6, "out_channels": 3, "dual_pixel_task": True, "dim": 8,
    "num_blocks": [1, 1, 1, 1], "heads": [1, 1, 1, 1], "num_refinement_blocks": 1, "bias": True,
}


@pytest.fixture
def dp_ckpt(tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    """A tiny dual-pixel Restormer with non-trivial weights, saved with its config."""
    torch.manual_seed(0)
    model = ARCHS.build(DP_RESTORMER).eval()
    with torch.no_grad():  # outputs near the input's range (no value-range warnings), still input-dependent
        model.output.bias.fill_(0.5)
        model.output.weight.mul_(0.1)
    path = tmp_path / "dp.safetensors"
    save_weights(model, path, {"arch": "Restormer", "config": DP_RESTORMER})
    return model, path


@pytest.fixture
def views(tmp_path: Path) -> Path:
    """``target/``, ``inputL/``, ``inputR/`` with two 16-bit 20x28 triplets (sizes not multiples of 8)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "dpdd"
    for sub in ("target", "inputL", "inputR"):
        (root / sub).mkdir(parents=True)
    for name in ("a", "b"):
        gt = rng.integers(5000, 60000, (20, 28, 3), dtype=np.uint16)
        for sub, shift in (("target", 0), ("inputL", 700), ("inputR", -900)):
            assert cv2.imwrite(str(root / sub / f"{name}.png"), (gt.astype(np.int32) + shift).astype(np.uint16))
    return root


def expected_output(model: torch.nn.Module, left: Path, right: Path) -> np.ndarray:
    """The restored image as tools must save it: restore(cat(L, R)) rounded to 16 bit, RGB."""
    x = torch.cat([img2tensor(imread(left)), img2tensor(imread(right))], 0)
    y = restore(model, x[None])[0].numpy().transpose(1, 2, 0)
    return np.clip(np.rint(y.astype(np.float64) * 65535), 0, 65535).astype(np.uint16)


def infer(*argv: str) -> int:
    return infer_main([*argv, "--device", "cpu", "--no-progress"])


def test_infer_folder_with_right_views_writes_16bit(dp_ckpt, views: Path, tmp_path: Path) -> None:
    model, ckpt = dp_ckpt
    out = tmp_path / "out"
    assert infer("--checkpoint", str(ckpt), "--input", str(views / "inputL"), "--input-right", str(views / "inputR"),
                 "--output", str(out)) == 0
    for name in ("a", "b"):
        saved = cv2.imread(str(out / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert saved.dtype == np.uint16 and saved.shape == (20, 28, 3)
        np.testing.assert_array_equal(saved[:, :, ::-1], expected_output(model, views / "inputL" / f"{name}.png",
                                                                          views / "inputR" / f"{name}.png"))


def test_infer_single_file_pair(dp_ckpt, views: Path, tmp_path: Path) -> None:
    model, ckpt = dp_ckpt
    out = tmp_path / "one"
    left, right = views / "inputL" / "b.png", views / "inputR" / "b.png"
    assert (
        infer("--checkpoint", str(ckpt), "--input", str(left), "--input-right", str(right), "--output", str(out)) == 0
    )
    saved = cv2.imread(str(out / "b.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(saved[:, :, ::-1], expected_output(model, left, right))


def test_infer_view_errors(dp_ckpt, views: Path, tmp_path: Path, capsys) -> None:
    _model, ckpt = dp_ckpt
    # a 6-channel model without right views
    assert infer("--checkpoint", str(ckpt), "--input", str(views / "inputL"), "--output", str(tmp_path / "o1")) == 2
    err = capsys.readouterr().err
    assert "takes 6 channels: two views" in err and "give the right views with --input-right" in err
    # a 3-channel model given right views
    rgb = tmp_path / "rgb.safetensors"
    cfg = {k: v for k, v in DP_RESTORMER.items() if k not in ("inp_channels", "out_channels", "dual_pixel_task")}
    save_weights(ARCHS.build(cfg), rgb, {"arch": "Restormer", "config": cfg})
    assert infer("--checkpoint", str(rgb), "--input", str(views / "inputL"), "--input-right", str(views / "inputR"),
                 "--output", str(tmp_path / "o2")) == 2
    assert "this model takes 3-channel images, not two stacked views" in capsys.readouterr().err
    # unpaired names, and right views that are not there
    (views / "inputR" / "b.png").rename(views / "inputR" / "c.png")
    assert infer("--checkpoint", str(ckpt), "--input", str(views / "inputL"), "--input-right", str(views / "inputR"),
                 "--output", str(tmp_path / "o3")) == 2
    err = capsys.readouterr().err
    assert "1 input(s) without a right view:" in err and "b.png" in err and "1 right view(s) without an input: c" in err
    assert (
        infer(
            "--checkpoint",
            str(ckpt),
            "--input",
            str(views / "inputL"),
            "--input-right",
            str(views / "inputL" / "a.png"),
            "--output",
            str(tmp_path / "o4"),
        )
        == 2
    )
    assert "is one file but --input holds 2 images" in capsys.readouterr().err
    # the right-view folder is never an output
    assert infer("--checkpoint", str(ckpt), "--input", str(views / "inputL"), "--input-right", str(views / "inputR"),
                 "--output", str(views / "inputR")) == 2
    assert "the output folder is the right-view folder" in capsys.readouterr().err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o3").exists()


def test_benchmark_on_a_dual_pixel_set(dp_ckpt, views: Path, tmp_path: Path) -> None:
    model, ckpt = dp_ckpt
    opt = tmp_path / "dp.yml"
    opt.write_text(yaml.safe_dump({
        "name": "dp",
        "model": DP_RESTORMER,
        "test": {
            "datasets": {"DPDD": {
                "type": "DualPixelDataset", "dataroot_gt": str(views / "target"),
                "dataroot_lqL": str(views / "inputL"), "dataroot_lqR": str(views / "inputR"),
            }},
            "metrics": [{"type": "PSNR", "quantize": False}],
            "checkpoint": str(ckpt),
        },
    }))
    out = tmp_path / "results"
    assert benchmark_main(["-opt", str(opt), "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    data = json.loads((out / "leaderboard.json").read_text())
    images = data["models"]["dp"]["datasets"]["DPDD"]["images"]
    assert [img["name"] for img in images] == ["a", "b"]
    psnr = METRICS.build({"type": "PSNR", "quantize": False})
    for img in images:
        saved = cv2.imread(str(out / img["output"]), cv2.IMREAD_UNCHANGED)
        assert saved.dtype == np.uint16  # 16-bit views -> 16-bit restored image
        expected = expected_output(
            model, views / "inputL" / f"{img['name']}.png", views / "inputR" / f"{img['name']}.png"
        )
        np.testing.assert_array_equal(saved[:, :, ::-1], expected)
        x = torch.cat([img2tensor(imread(views / sub / f"{img['name']}.png")) for sub in ("inputL", "inputR")], 0)
        gt = img2tensor(imread(views / "target" / f"{img['name']}.png"))
        value = float(psnr(restore(model, x[None]), gt[None])[0])  # the float output, as measured
        assert img["metrics"]["PSNR-RGB crop0 float"] == pytest.approx(value, abs=1e-9)
    assert (out / "report.html").is_file()


def test_benchmark_on_lmdb_triplets_keeps_16bit(dp_ckpt, views: Path, tmp_path: Path) -> None:
    """Restormer's DPDD test set comes as LMDBs: outputs of its 16-bit records are 16-bit too."""
    from irframe.data.lmdb_pack import create_lmdb

    model, ckpt = dp_ckpt
    for sub in ("target", "inputL", "inputR"):
        create_lmdb(views / sub, tmp_path / f"{sub}.lmdb", progress=False)
    opt = tmp_path / "dp_lmdb.yml"
    opt.write_text(
        yaml.safe_dump(
            {
                "name": "dp",
                "test": {
                    "datasets": {
                        "DPDD": {
                            "type": "DualPixelDataset",
                            "dataroot_gt": str(tmp_path / "target.lmdb"),
                            "io_backend": {"type": "lmdb"},
                            "dataroot_lqL": str(tmp_path / "inputL.lmdb"),
                            "dataroot_lqR": str(tmp_path / "inputR.lmdb"),
                        }
                    },
                    "metrics": [{"type": "PSNR", "quantize": False}],
                },
            }
        )
    )
    out = tmp_path / "results"
    assert (
        benchmark_main(
            ["-opt", str(opt), "--checkpoint", str(ckpt), "--out", str(out), "--device", "cpu", "--no-progress"]
        )
        == 0
    )
    images = json.loads((out / "leaderboard.json").read_text())["models"]["dp"]["datasets"]["DPDD"]["images"]
    for img in images:
        saved = cv2.imread(str(out / img["output"]), cv2.IMREAD_UNCHANGED)
        assert saved.dtype == np.uint16 and img["output"].endswith(f"{img['name']}.png")
        expected = expected_output(
            model, views / "inputL" / f"{img['name']}.png", views / "inputR" / f"{img['name']}.png"
        )
        np.testing.assert_array_equal(saved[:, :, ::-1], expected)
