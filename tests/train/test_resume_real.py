"""Resume equality through the real components: a tiny Restormer, online noise, random crops and
flips, progressive patch/batch stages across the interruption, EMA, warm-up and cosine schedule."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from irframe.options import load_options
from irframe.train.build import run_training
from irframe.train.synthetic import write_textured_images

OPTIONS = Path(__file__).resolve().parents[2] / "options" / "demo.yml"


def test_interrupted_and_resumed_run_ends_bit_identical(tmp_path):
    write_textured_images(tmp_path / "train", 6, 40, seed=0)
    write_textured_images(tmp_path / "val", 1, 24, seed=1)
    common = [
        "deterministic=true", "model.dim=8", f"datasets.train.dataroot_gt={tmp_path / 'train'}",
        f"datasets.val.dataroot_gt={tmp_path / 'val'}", f"path.experiments_root={tmp_path / 'exp'}",
        "train.warmup_iter=1", "train.scheduler.T_max=4", "val.freq=2", "val.save_images=false",
        "logger.checkpoint_freq=2", "logger.progress_bar=false", "logger.tensorboard=false",
        # stage 1: 3 iterations of 2 x 16px patches; stage 2: 3 of 1 x 24px (the resume is in stage 1)
        "train.progressive={iters: [3, 3], patch_sizes: [16, 24], batch_sizes: [2, 1]}",
    ]
    full = run_training(load_options(OPTIONS, [*common, "name=full", "train.total_iter=6"]))
    run_training(load_options(OPTIONS, [*common, "name=cut", "train.total_iter=2"]))
    resumed = run_training(load_options(OPTIONS, [*common, "name=cut", "train.total_iter=6"]), resume="auto")
    for name in ("model.safetensors", "ema.safetensors"):
        a, b = load_file(str(full.last_checkpoint / name)), load_file(str(resumed.last_checkpoint / name))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
