"""Data-loading throughput: PNG folder vs LMDB, DataLoader workers, degradation pipelines.

    python benchmarks/bench_data.py [--folder PATH] [--num-images 200] [--size 256] [--patch 128]
                                    [--batch 16] [--iters 25] [--workers 0 2]

Measures, in one run on the same images:

1. random ``patch x patch`` paired crops (GT and LQ read from the same images, flips and rotations
   on) per second from a PNG folder and from an LMDB made of it, with 0 and 2 DataLoader workers;
2. the samples per second of each degradation on ``patch``-sized crops, and of an online
   (GT folder + degradation pipeline) dataset;

and prints the ratios (LMDB / PNG, 2 workers / 0 workers). No assertions: numbers depend on the
machine, disk cache and image content. By default ``num-images`` smooth random ``size x size``
RGB images are generated in a temporary folder; ``--folder`` uses real images instead (e.g.
``../shared/data/CBSD68/clean``; images smaller than the patch are not allowed).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from irframe.data.lmdb_pack import create_lmdb
from irframe.data.samplers import ProgressiveBatchSampler
from irframe.registry import DATASETS, DEGRADATIONS

DEGRADATION_CASES: list[dict[str, Any]] = [
    {"type": "GaussianNoise", "sigma_range": [0, 50]},
    {"type": "BicubicDownsample", "scale": 4},
    {"type": "MotionBlur", "length_range": [5, 25]},
    {"type": "DefocusBlur", "radius_range": [1, 5]},
    {"type": "RainStreaks", "density_range": [0.005, 0.03]},
    {"type": "Haze", "beta_range": [0.5, 2.0]},
    {"type": "JPEGCompression", "quality_range": [10, 60]},
    {"type": "LowLight", "gamma_range": [1.5, 3.0]},
    {
        "type": "RandomChoice",
        "degradations": [
            {"type": "GaussianNoise", "sigma": 15},
            {"type": "GaussianNoise", "sigma": 25},
            {"type": "GaussianNoise", "sigma": 50},
            {"type": "RainStreaks"},
            {"type": "Haze"},
        ],
    },
]


def make_images(folder: Path, num: int, size: int, seed: int = 0) -> None:
    """Photo-like random images: smooth colour fields plus texture (compress like real PNGs)."""
    rng = np.random.default_rng(seed)
    for i in range(num):
        coarse = rng.uniform(0, 255, (size // 32 + 1, size // 32 + 1, 3)).astype(np.float32)
        smooth = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
        texture = rng.normal(0, 12, (size, size, 3))
        img = np.clip(smooth + texture, 0, 255).round().astype(np.uint8)
        cv2.imwrite(str(folder / f"{i:04d}.png"), img)


def loader_rate(dataset: Dataset, batch: int, patch: int, iters: int, workers: int) -> float:
    """Samples per second through a DataLoader (the first batch, worker start-up, is not timed)."""
    sampler = ProgressiveBatchSampler(len(dataset), [(iters + 1, batch, patch)], seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, persistent_workers=False)
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    count = sum(len(b["name"]) for b in it)
    return count / (time.perf_counter() - start)


def degradation_rate(cfg: dict[str, Any], patch: int, repeats: int) -> float:
    """Calls per second of one degradation on ``patch`` x ``patch`` RGB crops."""
    deg = DEGRADATIONS.build(cfg)
    rng = np.random.default_rng(0)
    img = rng.random((patch, patch, 3), dtype=np.float32)
    deg(img, rng)  # warm-up (kernel caches, lazy imports)
    start = time.perf_counter()
    for _ in range(repeats):
        deg(img, rng)
    return repeats / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, help="real images to use instead of generated ones")
    parser.add_argument("--num-images", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--iters", type=int, default=25, help="timed batches per configuration")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument(
        "--torch-threads", type=int, default=1,
        help="torch threads of the main process (default 1, as in DataLoader workers: with more, OpenMP "
        "spin-waiting in collate distorts the 0-worker figures on a busy machine)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.torch_threads)

    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        tmp_dir = Path(tmp)
        if args.folder is None:
            folder = tmp_dir / "png"
            folder.mkdir()
            make_images(folder, args.num_images, args.size)
            what = f"{args.num_images} generated {args.size}x{args.size} PNGs"
        else:
            folder = args.folder
            what = f"images of {folder}"
        start = time.perf_counter()
        report = create_lmdb(folder, tmp_dir / "db.lmdb", progress=False)
        pack_s = time.perf_counter() - start
        png_mb = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 2**20
        print(f"data: {what} ({png_mb:.1f} MiB); LMDB packed in {pack_s:.1f}s ({report.total / pack_s:.0f} img/s)")

        common = {"gt_size": args.patch, "use_flip": True, "use_rot": True}
        datasets = {
            "png": DATASETS.build(
                {"type": "PairedImageDataset", "dataroot_gt": str(folder), "dataroot_lq": str(folder), **common}
            ),
            "lmdb": DATASETS.build(
                {
                    "type": "PairedImageDataset",
                    "dataroot_gt": str(tmp_dir / "db.lmdb"),
                    "dataroot_lq": str(tmp_dir / "db.lmdb"),
                    "io_backend": {"type": "lmdb"},
                    **common,
                }
            ),
        }
        print(f"\npaired random {args.patch}x{args.patch} crops (GT + LQ reads, flips/rotations), batch {args.batch}:")
        rates: dict[tuple[str, int], float] = {}
        for workers in args.workers:
            for name, ds in datasets.items():
                rates[name, workers] = loader_rate(ds, args.batch, args.patch, args.iters, workers)
                print(f"  {name:5s} workers={workers}: {rates[name, workers]:8.1f} samples/s")
        for workers in args.workers:
            print(f"  ratio lmdb/png, workers={workers}: {rates['lmdb', workers] / rates['png', workers]:.2f}x")
        if len(args.workers) > 1:
            lo, hi = min(args.workers), max(args.workers)
            for name in datasets:
                print(f"  ratio {name} workers={hi}/workers={lo}: {rates[name, hi] / rates[name, lo]:.2f}x")

        print(f"\ndegradations on {args.patch}x{args.patch} RGB crops (one process):")
        for cfg in DEGRADATION_CASES:
            label = cfg["type"] if cfg["type"] != "RandomChoice" else "RandomChoice(PromptIR-like 5 tasks)"
            print(f"  {label:38s} {degradation_rate(cfg, args.patch, 50):8.1f} samples/s")

        online = DATASETS.build(
            {
                "type": "OnlineDegradationDataset",
                "dataroot_gt": str(folder),
                "degradation": DEGRADATION_CASES[-1],
                **common,
            }
        )
        clean = DATASETS.build(
            {"type": "OnlineDegradationDataset", "dataroot_gt": str(folder), "degradation": [], **common}
        )
        print("\nonline-degradation dataset (read GT + crop + pipeline), through the DataLoader:")
        for workers in args.workers:
            with_deg = loader_rate(online, args.batch, args.patch, args.iters, workers)
            without = loader_rate(clean, args.batch, args.patch, args.iters, workers)
            print(
                f"  workers={workers}: {with_deg:8.1f} samples/s with the pipeline, {without:8.1f} without "
                f"(ratio {with_deg / without:.2f}x)"
            )


if __name__ == "__main__":
    main()
