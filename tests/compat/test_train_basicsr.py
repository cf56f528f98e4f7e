"""A shrunk Restormer deraining file, in BasicSR's layout, trains through tools/train.py's entry point."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from irframe.options import load_with_bases
from irframe.train.cli import main as train_main

from .conftest import FIXTURES


def write_pairs(root: Path, n: int, size: int, seed: int) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    gt_dir, lq_dir = root / "target", root / "input"
    gt_dir.mkdir(parents=True)
    lq_dir.mkdir(parents=True)
    for i in range(n):
        gt = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        streaks = (rng.random((size, size, 1)) < 0.05) * 120
        cv2.imwrite(str(gt_dir / f"{i}.png"), gt)
        cv2.imwrite(str(lq_dir / f"{i}.png"), np.clip(gt + streaks, 0, 255).astype(np.uint8))
    return str(gt_dir), str(lq_dir)


@pytest.fixture
def shrunk_deraining(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Restormer's deraining file with a tiny net, 4 iterations in two progressive stages, tmp data."""
    monkeypatch.chdir(tmp_path)
    opt = load_with_bases(FIXTURES / "Deraining_Restormer.yml")
    train, val = opt["datasets"]["train"], opt["datasets"]["val"]
    train["dataroot_gt"], train["dataroot_lq"] = write_pairs(tmp_path / "train", 4, 32, 0)
    val["dataroot_gt"], val["dataroot_lq"] = write_pairs(tmp_path / "val", 1, 32, 1)
    train.update(num_worker_per_gpu=0, batch_size_per_gpu=2, mini_batch_sizes=[2, 1], iters=[2, 2],
                 gt_size=24, gt_sizes=[16, 24])
    opt["network_g"].update(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1])
    opt["train"].update(total_iter=4)
    opt["train"]["scheduler"]["periods"] = [2, 2]
    opt["train"]["mixing_augs"]["mixup"] = True  # Restormer's denoising setting, exercised here
    opt["val"]["val_freq"] = 4
    opt["logger"].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    path = tmp_path / "Deraining_tiny.yml"
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def test_shrunk_deraining_trains_with_its_progressive_schedule_and_tests(shrunk_deraining, capsys):
    assert train_main(["-opt", str(shrunk_deraining), "--threads", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("BasicSR-style option file translated") == 1
    root = Path("experiments") / "Deraining_Restormer"
    log = (root / "train.log").read_text()
    assert (
        "global batch (per process x processes x accumulation): 2 = 2 x 1 x 1, 1 = 1 x 1 x 1 (per progressive stage)"
        in log
    )
    saved = yaml.safe_load((root / "options.yml").read_text())  # the experiment records native options
    assert saved["train"]["progressive"] == {"iters": [2, 2], "patch_sizes": [16, 24], "batch_sizes": [2, 1]}
    assert saved["train"]["grad_clip"] == 0.01 and saved["train"]["mixing_augs"]["mixup"] is True
    weights = load_file(str(root / "checkpoints" / "iter_000004" / "model.safetensors"))
    assert all(torch.isfinite(v).all() for v in weights.values())

    # the trained weights are benchmarked by tools/test.py from a file in BasicSR's test layout
    from irframe.evaluate.cli import benchmark_main

    trained = load_with_bases(shrunk_deraining)
    test_file = {  # BasicSR's test layout (options/test/*.yml)
        "name": "Deraining_tiny", "model_type": "ImageCleanModel", "scale": 1, "num_gpu": 1, "manual_seed": 0,
        "datasets": {"test_1": {"name": "Rain100L", "type": "Dataset_PairedImage", "io_backend": {"type": "disk"},
                                "dataroot_gt": trained["datasets"]["val"]["dataroot_gt"],
                                "dataroot_lq": trained["datasets"]["val"]["dataroot_lq"]}},
        "network_g": trained["network_g"],
        "path": {"pretrain_network_g": "experiments/Deraining_Restormer/checkpoints/iter_000004/model.safetensors",
                 "strict_load_g": True},
        "val": {"save_img": False, "suffix": None, "metrics": {
            "psnr": {"type": "calculate_psnr", "crop_border": 0, "test_y_channel": True},
            "ssim": {"type": "calculate_ssim", "crop_border": 0, "test_y_channel": True}}},
    }
    Path("test_tiny.yml").write_text(yaml.safe_dump(test_file, sort_keys=False))
    capsys.readouterr()
    assert benchmark_main(["-opt", "test_tiny.yml", "--out", "results", "--no-progress", "--device", "cpu"]) == 0
    assert capsys.readouterr().err.count("BasicSR-style option file translated") == 1
    board = Path("results/leaderboard.md").read_text()
    assert "Deraining_tiny" in board and "Rain100L" in board and "PSNR" in board and "SSIM" in board


def test_resume_with_mixup_is_bit_identical(shrunk_deraining):
    assert (
        train_main(["-opt", str(shrunk_deraining), "--threads", "1", "--set", "name=full", "deterministic=true"]) == 0
    )
    assert train_main(["-opt", str(shrunk_deraining), "--threads", "1", "--set", "name=part", "deterministic=true",
                       "train.total_iter=2"]) == 0
    assert train_main(["-opt", str(shrunk_deraining), "--threads", "1", "--set", "name=part", "deterministic=true",
                       "--resume", "auto"]) == 0
    full = load_file("experiments/full/checkpoints/iter_000004/model.safetensors")
    resumed = load_file("experiments/part/checkpoints/iter_000004/model.safetensors")
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    # the mixing is really applied: without it the same run ends elsewhere
    assert train_main(["-opt", str(shrunk_deraining), "--threads", "1", "--set", "name=nomix", "deterministic=true",
                       "train.mixing_augs.mixup=false"]) == 0
    plain = load_file("experiments/nomix/checkpoints/iter_000004/model.safetensors")
    assert any(not torch.equal(full[k], plain[k]) for k in full)
