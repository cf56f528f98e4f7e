"""Automatic tile size: estimated vs measured peak memory, and on a CPU the time of each tile size.

    python benchmarks/bench_autotile.py [--size 2048] [--budgets 256MB,1GB] [--device auto]
                                        [--probe-sides 128,256] [--precision fp32]
    python benchmarks/bench_autotile.py --tiles 256,384,512,768,whole [--size 2048] [--rounds 2] [--dim 16]

Budgets (default): for a tiny Restormer (random weights) and a ``size`` x ``size`` RGB image, each
budget goes through :func:`irframe.nn.autotile.choose_tile` (its one-line choice is printed), then
:func:`irframe.nn.inference.restore` runs with the chosen tile while its peak memory is measured the
same way the probe measures (CUDA allocator peak; on the CPU the resident-set high-water mark after
``malloc_trim``, see :mod:`irframe.nn.autotile`). ``auto`` as a budget means the default (the
device's free memory times the safety factor). The image and the output live on the model's device.

Tiles (``--tiles``): every listed tile size (``whole``: the image at once) restores the same image,
in interleaved rounds (each round runs every size once, so a busy phase of the machine hits all
alike); per size: tiles, pixels processed (overlaps included), the best time, the time per
megapixel of the image, the measured peak beside the estimate :func:`~irframe.nn.autotile.plan_tile`
compares with the budget, and :func:`~irframe.nn.autotile.cpu_work` (the CPU rule's prediction,
relative). The last lines say what ``--tile auto`` chooses with an unlimited budget: the CPU rule
(the fastest that fits) and the largest that fits (the GPU rule, the CPU's before).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from irframe.nn.autotile import (
    choose_tile,
    cpu_work,
    estimate_peak,
    format_bytes,
    measure_peak,
    parse_memory,
    plan_tile,
    probe_memory,
)
from irframe.nn.inference import restore, tile_starts

TINY_RESTORMER = {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
                  "heads": [1, 2, 4, 8]}


def _model(dim: int, device: torch.device) -> torch.nn.Module:
    from irframe.registry import ARCHS

    torch.manual_seed(0)
    config = {**TINY_RESTORMER, "dim": dim}
    if dim != TINY_RESTORMER["dim"]:  # the zoo's denoisers: dim 16, ffn 2.0, BiasFree
        config.update(ffn_expansion_factor=2.0, bias=False, LayerNorm_type="BiasFree")
    return ARCHS.build(config, path="bench.autotile").to(device).eval()


def budgets(args: argparse.Namespace, model: torch.nn.Module, x: torch.Tensor, device: torch.device) -> None:
    sides = [int(s) for s in args.probe_sides.split(",") if s.strip()]
    print(f"Restormer dim {args.dim}, {args.size}x{args.size} RGB on {device}, {args.precision}, probe sides {sides}")
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


def tiles(args: argparse.Namespace, model: torch.nn.Module, x: torch.Tensor, device: torch.device) -> None:
    sizes: list[int | None] = [None if t.strip() == "whole" else int(t) for t in args.tiles.split(",") if t.strip()]
    profile = probe_memory(model, precision=args.precision)
    spec, n = profile.spec, args.size
    overlap = spec.tile_overlap
    print(f"Restormer dim {args.dim}, {n}x{n} RGB on {device}, {torch.get_num_threads()} threads, overlap {overlap}, "
          f"{args.rounds} interleaved rounds; probe "
          + ", ".join(f"{p.height}: {format_bytes(p.peak_bytes)}" for p in profile.probes))
    best: dict[int | None, float] = {}
    peaks: dict[int | None, int] = {}
    for _round in range(args.rounds):
        for tile in sizes:
            start = time.perf_counter()
            peak = measure_peak(lambda t=tile: restore(model, x, tile=t, precision=args.precision), device)
            elapsed = time.perf_counter() - start
            best[tile] = min(best.get(tile, float("inf")), elapsed)
            peaks[tile] = max(peaks.get(tile, 0), peak)
            print(f"  round {_round + 1}: {'whole' if tile is None else tile}: {elapsed:.1f} s, "
                  f"{format_bytes(peak)}; load {os.getloadavg()[0]:.1f}", flush=True)
    fastest = min(best.values())
    work = {t: cpu_work(n, n, t, overlap) for t in sizes}
    least_work = min(work.values())
    print(f"{'tile':>6} {'tiles':>5} {'MP done':>8} {'best s':>7} {'s/MP':>6} {'x fastest':>9} {'measured':>11} "
          f"{'estimate':>11} {'est/meas':>8} {'cpu_work':>8}")
    for tile in sizes:
        count = 1 if tile is None else len(tile_starts(n, tile, overlap)) ** 2
        done = n * n if tile is None else count * min(tile, n) ** 2
        estimate = estimate_peak(profile, x.shape, tile)
        print(f"{'whole' if tile is None else tile:>6} {count:5d} {done / 1e6:8.2f} {best[tile]:7.1f} "
              f"{best[tile] / (n * n / 1e6):6.2f} {best[tile] / fastest:9.2f} {format_bytes(peaks[tile]):>11} "
              f"{format_bytes(estimate):>11} {estimate / peaks[tile]:8.2f} {work[tile] / least_work:8.2f}")
    unlimited = 2**50
    for rule in ("fastest", "largest"):
        choice = plan_tile(profile, x.shape, unlimited, prefer=rule)  # type: ignore[arg-type]
        print(f"--tile auto, unlimited budget, rule {rule!r}: "
              f"{'whole image' if choice.tile is None else f'tile {choice.tile} ({choice.tiles} tiles)'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048, help="image side (default 2048)")
    parser.add_argument("--budgets", default="256MB,1GB", help="comma list of budgets, or 'auto' (default 256MB,1GB)")
    parser.add_argument("--tiles", default=None, help="comma list of tile sizes and/or 'whole': time each (CPU rule)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of --tiles (default 2; best kept)")
    parser.add_argument("--dim", type=int, default=8, help="Restormer width (default 8; 16: the zoo's denoisers)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--probe-sides", default="128,256", help="probe square sides (default 128,256)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    model = _model(args.dim, device)
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(1)).to(device)
    (tiles if args.tiles else budgets)(args, model, x, device)


if __name__ == "__main__":
    main()
