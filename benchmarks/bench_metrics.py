"""Batched torch PSNR/SSIM vs the per-image numpy (BasicSR) reference: throughput and agreement.

    python benchmarks/bench_metrics.py [--num 64] [--size 256] [--batch 16] [--device auto]
                                       [--crop-border 4] [--y]

Generates ``num`` ground-truth/noisy 8-bit RGB pairs, measures images per second of
``calculate_psnr`` + ``calculate_ssim`` image by image (numpy) and of the registered ``PSNR`` + ``SSIM``
metrics on batches (torch, on ``--device``), and prints the speed ratio and the largest difference
between the two paths.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from irframe.metrics import calculate_psnr, calculate_ssim
from irframe.registry import METRICS


def _make_pairs(num: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``num`` smooth random RGB uint8 images and sigma-25 noisy copies, NHWC."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    freq = rng.uniform(2, 9, size=(num, 3, 2))
    phase = rng.uniform(0, 6.3, size=(num, 3))
    gt = 127.5 + 100 * np.sin(
        freq[..., 0, None, None] * yy * 6.3 + freq[..., 1, None, None] * xx * 6.3 + phase[..., None, None]
    )
    gt = np.clip(gt.transpose(0, 2, 3, 1), 0, 255).round().astype(np.uint8)
    noisy = np.clip(gt + rng.normal(0, 25, gt.shape), 0, 255).round().astype(np.uint8)
    return gt, noisy


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=64, help="image pairs")
    parser.add_argument("--size", type=int, default=256, help="image side")
    parser.add_argument("--batch", type=int, default=16, help="torch batch size")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--crop-border", type=int, default=4)
    parser.add_argument("--y", action="store_true", help="test_y_channel")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)

    gt, noisy = _make_pairs(args.num, args.size)
    kw = dict(crop_border=args.crop_border, test_y_channel=args.y)

    start = time.perf_counter()
    ref_psnr = [calculate_psnr(n[..., ::-1], g[..., ::-1], **kw) for n, g in zip(noisy, gt)]  # BGR as cv2
    ref_ssim = [calculate_ssim(n[..., ::-1], g[..., ::-1], **kw) for n, g in zip(noisy, gt)]
    numpy_s = time.perf_counter() - start

    psnr = METRICS.build({"type": "PSNR", **kw})
    ssim = METRICS.build({"type": "SSIM", **kw})
    gt_t = torch.from_numpy(gt).permute(0, 3, 1, 2).float().div(255).to(device)
    noisy_t = torch.from_numpy(noisy).permute(0, 3, 1, 2).float().div(255).to(device)
    psnr(noisy_t[:1], gt_t[:1]), ssim(noisy_t[:1], gt_t[:1])  # warm-up (kernels, allocator)
    _sync(device)
    start = time.perf_counter()
    out_psnr, out_ssim = [], []
    for i in range(0, args.num, args.batch):
        out_psnr.append(psnr(noisy_t[i : i + args.batch], gt_t[i : i + args.batch]))
        out_ssim.append(ssim(noisy_t[i : i + args.batch], gt_t[i : i + args.batch]))
    _sync(device)
    torch_s = time.perf_counter() - start

    d_psnr = np.abs(torch.cat(out_psnr).cpu().numpy() - ref_psnr).max()
    d_ssim = np.abs(torch.cat(out_ssim).cpu().numpy() - ref_ssim).max()
    print(f"{args.num} pairs of {args.size}x{args.size} RGB, crop_border={args.crop_border}, Y={args.y}")
    print(f"numpy per image (BasicSR reference): {args.num / numpy_s:9.1f} images/s  ({numpy_s:.3f} s)")
    print(f"torch batched on {device} (batch {args.batch}): {args.num / torch_s:9.1f} images/s  ({torch_s:.3f} s)")
    print(f"speed ratio torch / numpy: {numpy_s / torch_s:.1f}x")
    print(f"max |difference|: PSNR {d_psnr:.2e} dB, SSIM {d_ssim:.2e}")


if __name__ == "__main__":
    main()
