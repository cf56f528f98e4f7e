"""The two-stage Real-ESRGAN demo recipe, shrunk to seconds: both stages train, the held-out set is
scored with each stage's weights, the report and figures are written and say what was used."""

from __future__ import annotations

import numpy as np
import torch

from irframe.recipes.realesrgan_demo import high_frequency_share, main
from irframe.train.synthetic import write_textured_images


def test_high_frequency_share_ranks_sharp_above_smooth():
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    smooth = (0.5 + 0.4 * torch.sin(2 * torch.pi * x / 32)).expand(3, 32, 32)  # one period: no high frequency
    checker = (((x + y) % 2) * 0.5 + 0.25).expand(3, 32, 32)
    assert high_frequency_share(checker) > 0.9 > 0.01 > high_frequency_share(smooth)


def test_two_stages_train_and_are_compared(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_textured_images(tmp_path / "train", 3, 80, seed=0)
    write_textured_images(tmp_path / "heldout", 2, 72, seed=1)
    args = ["--train", str(tmp_path / "train"), "--heldout", str(tmp_path / "heldout"), "--iters", "2",
            "--heldout-count", "2", "--crop", "64", "--threads", "1",
            "--set", "datasets.train.batch_size=2", "datasets.train.num_workers=0", "datasets.train.gt_size=32",
            "datasets.train.crop_pad_size=48"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "stage 1 (PSNR): PSNR" in out and "stage 2 (GAN): PSNR" in out and "discriminator accuracy" in out
    report = (tmp_path / "results" / "realesrgan_demo" / "report.md").read_text()
    assert ("| stage 2 (GAN) |" in report and "no perceptual loss" in report) or "VGG19 perceptual" in report
    assert "LPIPS:" in report  # measured, or why not
    for name in ("compare.png", "d_logits.png"):
        assert (tmp_path / "results" / "realesrgan_demo" / name).stat().st_size > 0
    last = tmp_path / "experiments" / "realesrgan_demo_gan" / "checkpoints" / "iter_000002"
    assert (last / "net_d.safetensors").is_file()
    assert np.isfinite([float(x) for x in report.split("| stage 1 (PSNR) | ")[1].split(" |")[:2]]).all()
