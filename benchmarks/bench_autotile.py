"""Automatic tile size: estimated vs measured peak memory of the chosen tiling.

    python benchmarks/bench_autotile.py [--size 2048] [--budgets 256MB,1GB] [--device auto]
                                        [--probe-sides 128,256] [--precision fp32]

For a tiny Restormer (random weights) and a ``size`` x ``size`` RGB image, each budget goes through
:func:`irframe.nn.autotile.choose_tile` (its one-line choice is printed), then
:func:`irframe.nn.inference.restore` runs with the chosen tile while its peak memory is measured the
same way the probe measures (CUDA allocator peak; on the CPU the resident-set high-water mark after
``malloc_trim``, see :mod:`irframe.nn.autotile`). ``auto`` as a budget means the default (the
device's free memory times the safety factor). The image and the output live on the model's device.
"""

from __future__ import annotations

import argparse
import time

import torch

from irframe.nn.autotile import choose_tile, format_bytes, measure_peak, parse_memory
from irframe.nn.inference import restore

TINY_RESTORMER = {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
                  "heads": [1, 2, 4, 8]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048, help="image side (default 2048)")
    parser.add_argument("--budgets", default="256MB,1GB", help="comma list of budgets, or 'auto' (default 256MB,1GB)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--probe-sides", default="128,256", help="probe square sides (default 128,256)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)

    from irframe.registry import ARCHS

    torch.manual_seed(0)
    model = ARCHS.build(TINY_RESTORMER, path="bench.autotile").to(device).eval()
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(1)).to(device)
    sides = [int(s) for s in args.probe_sides.split(",") if s.strip()]
    print(f"tiny Restormer, {args.size}x{args.size} RGB on {device}, {args.precision}, probe sides {sides}")
    rows = []
    for text in (b.strip() for b in args.budgets.split(",") if b.strip()):
        budget = None if text == "auto" else parse_memory(text)
        start = time.perf_counter()
        choice = choose_tile(model, x.shape, budget, precision=args.precision, probe_sides=sides)
        probe_s = time.perf_counter() - start
        start = time.perf_counter()
        kwargs = choice.restore_kwargs()
        measured = measure_peak(lambda kw=kwargs: restore(model, x, precision=args.precision, **kw), device)
        run_s = time.perf_counter() - start
        rows.append((choice, measured, probe_s, run_s))
    print(f"{'budget':>11} {'tile':>6} {'estimate':>11} {'measured':>11} {'est/meas':>9} {'fits':>5} "
          f"{'probe s':>8} {'run s':>7}")
    for choice, measured, probe_s, run_s in rows:
        tile = "whole" if choice.tile is None else str(choice.tile)
        fits = "yes" if measured <= choice.budget_bytes else "NO"
        print(f"{format_bytes(choice.budget_bytes):>11} {tile:>6} {format_bytes(choice.estimated_peak_bytes):>11} "
              f"{format_bytes(measured):>11} {choice.estimated_peak_bytes / measured:9.2f} {fits:>5} "
              f"{probe_s:8.2f} {run_s:7.1f}")


if __name__ == "__main__":
    main()
