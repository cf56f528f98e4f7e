"""Real-ESRGAN's high-order degradation: per sample in the data workers vs batched on the device.

    python benchmarks/bench_degradation.py [--num-images 16] [--size 200] [--crop-pad 200] [--patch 128]
                                           [--batch 8] [--batches 3] [--rounds 3]

The same ``RealESRGANDataset`` (Real-ESRGAN's x4plus degradation keys, scale 4), the same generated
images, the same sampler seeds, hence the same GT crops and the same draws, three ways:

1. ``degrade_on: workers``, ``num_workers`` 0: every sample degraded on its own in the loading process;
2. the same with ``num_workers`` 2;
3. ``degrade_on: device`` on the CPU device: the loader (``num_workers`` 0) reads, crops and sharpens,
   then the whole batch is degraded at once (``realesrgan_batch.synthesize``, what the training step
   runs; without the pair pool, which only moves pairs around);

in interleaved rounds (1, 2, 3, 1, 2, 3, ...), samples per second of each round, then the median per
way and the ratios, all measured in this run. The machine's load average is printed before and
after: the figures only compare ways measured side by side. No assertions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from irframe.data.degradations.realesrgan_batch import synthesize
from irframe.data.samplers import ProgressiveBatchSampler
from irframe.registry import DATASETS


def make_images(folder: Path, num: int, size: int, seed: int = 0) -> None:
    """Photo-like random images: smooth colour fields plus texture."""
    rng = np.random.default_rng(seed)
    for i in range(num):
        coarse = rng.uniform(0, 255, (size // 32 + 1, size // 32 + 1, 3)).astype(np.float32)
        smooth = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
        img = np.clip(smooth + rng.normal(0, 12, (size, size, 3)), 0, 255).round().astype(np.uint8)
        cv2.imwrite(str(folder / f"{i:04d}.png"), img)


def rate(dataset: Any, args: argparse.Namespace, workers: int, batched: bool) -> float:
    """Samples per second of ``args.batches`` batches (the first batch, worker start-up, untimed)."""
    sampler = ProgressiveBatchSampler(len(dataset), [(args.batches + 1, args.batch, args.patch)], seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, persistent_workers=False)
    it = iter(loader)
    first = next(it)
    if batched:
        synthesize(first)
    count = 0
    start = time.perf_counter()
    for batch in it:
        out = synthesize(batch) if batched else batch
        count += int(out["lq"].shape[0])
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-images", type=int, default=16)
    parser.add_argument("--size", type=int, default=200, help="generated image side")
    parser.add_argument("--crop-pad", type=int, default=200, help="crop_pad_size (Real-ESRGAN: 400)")
    parser.add_argument("--patch", type=int, default=128, help="gt_size (Real-ESRGAN: 256)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (Real-ESRGAN: 12 per GPU)")
    parser.add_argument("--batches", type=int, default=3, help="timed batches per round and way")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} "
          f"on {os.cpu_count()} CPUs; torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "gt"
        folder.mkdir()
        make_images(folder, args.num_images, args.size)
        base = {"type": "RealESRGANDataset", "dataroot_gt": str(folder), "scale": 4, "gt_size": args.patch,
                "crop_pad_size": args.crop_pad, "use_flip": True}
        per_sample = DATASETS.build({**base, "degrade_on": "workers"}, path="per-sample")
        batched = DATASETS.build({**base, "degrade_on": "device"}, path="batched")
        ways = {
            "per sample, workers=0": (per_sample, 0, False),
            "per sample, workers=2": (per_sample, 2, False),
            "batched on the CPU device, workers=0": (batched, 0, True),
        }
        rates: dict[str, list[float]] = {name: [] for name in ways}
        for r in range(args.rounds):
            for name, (ds, workers, on_device) in ways.items():
                rates[name].append(rate(ds, args, workers, on_device))
            print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.1f}" for n, v in rates.items()))
    load_after = os.getloadavg()
    print(f"\n{args.batches} batches of {args.batch} x {args.patch}px GT patches (degraded on {args.crop_pad}px "
          f"crops) per round, {args.rounds} interleaved rounds; median samples/s:")
    median = {name: statistics.median(v) for name, v in rates.items()}
    for name, value in median.items():
        print(f"  {name:40s} {value:7.1f}   (rounds: {', '.join(f'{v:.1f}' for v in rates[name])})")
    base_rate = median["per sample, workers=0"]
    print("ratios (this run):")
    print(f"  per sample workers=2 / workers=0: {median['per sample, workers=2'] / base_rate:.2f}x")
    print(f"  batched / per sample workers=0:   {median['batched on the CPU device, workers=0'] / base_rate:.2f}x")
    print(f"  batched / per sample workers=2:   "
          f"{median['batched on the CPU device, workers=0'] / median['per sample, workers=2']:.2f}x")
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")


if __name__ == "__main__":
    main()
