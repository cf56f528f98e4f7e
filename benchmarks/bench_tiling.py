"""Tiled vs whole-image inference: peak memory, time and the difference of the outputs.

    python benchmarks/bench_tiling.py [--size 2048] [--tile 256] [--overlap 32] [--device auto]
                                      [--models conv,restormer]

Runs a ``size`` x ``size`` image through :func:`irframe.nn.inference.restore`, once whole and once
tiled, for a small conv-only model and (if the ``Restormer`` arch is registered) a tiny Restormer.
Peak memory is the CUDA allocator's peak on a GPU; on the CPU each measurement runs in a fresh
process and reports the rise of its peak resident set size (Linux ``VmHWM``, reset through
``/proc/self/clear_refs``) above the RSS before the call. The input and the tiled output buffer stay
on the CPU in both modes; only tiles travel to the device.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import re
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

from irframe.nn.inference import restore
from irframe.nn.spec import ModelSpec

TINY_RESTORMER = {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
                  "heads": [1, 2, 4, 8]}


class SmallConv(nn.Module):
    """Five 3x3 convs, 32 channels: receptive-field radius 5, so an overlap >= 20 tiles exactly."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 32, 3, padding=1)]
        for _ in range(3):
            layers += [nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1)]
        layers += [nn.ReLU(), nn.Conv2d(32, 3, 3, padding=1)]
        self.body = nn.Sequential(*layers)
        self.spec = ModelSpec()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _build(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "conv":
        return SmallConv()
    from irframe.registry import ARCHS

    return ARCHS.build(TINY_RESTORMER, path="bench.restormer")


def _rss_kb(field: str) -> int | None:
    try:
        match = re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text())
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux)
        return True
    except OSError:
        return False


def _measure(name: str, tile: int | None, overlap: int, size: int, device: str, out_file: str) -> dict:
    """One run in this (fresh) process: time, peak memory; the output is saved to ``out_file``."""
    model = _build(name).to(device).eval()
    restore(model, torch.rand(1, 3, 64, 64), tile=tile and 32, tile_overlap=tile and 8)  # warm-up
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, size, size, generator=g)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        ok = _reset_peak_rss()
        base = _rss_kb("VmRSS") if ok else None
    start = time.perf_counter()
    y = restore(model, x, tile=tile, tile_overlap=overlap if tile else None)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if cuda:
        peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        hwm = _rss_kb("VmHWM")
        peak_mb = (hwm - base) / 1024 if base is not None and hwm is not None else float("nan")
    torch.save(y, out_file)
    return {"seconds": seconds, "peak_mb": peak_mb}


def _in_fresh_process(*args: object) -> dict:
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(_measure, *args).result()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048, help="image side")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--models", default="conv,restormer", help="comma list of conv, restormer")
    args = parser.parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    if "restormer" in names:
        from irframe.registry import ARCHS

        if "Restormer" not in ARCHS:
            print("Restormer is not registered (plugin missing): skipped")
            names.remove("restormer")

    print(f"{args.size}x{args.size} RGB on {device}; tile {args.tile}, overlap {args.overlap}")
    print(f"{'model':<10} {'mode':<6} {'time s':>8} {'peak MB':>9} {'max|tiled-whole|':>17}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            outputs, stats = {}, {}
            for mode, tile in (("whole", None), ("tiled", args.tile)):
                out_file = str(Path(tmp) / f"{name}_{mode}.pt")
                stats[mode] = _in_fresh_process(name, tile, args.overlap, args.size, device, out_file)
                outputs[mode] = torch.load(out_file, weights_only=True)
            diff = (outputs["tiled"] - outputs["whole"]).abs().max().item()
            for mode in ("whole", "tiled"):
                shown = f"{diff:17.3e}" if mode == "tiled" else f"{'-':>17}"
                print(f"{name:<10} {mode:<6} {stats[mode]['seconds']:8.2f} {stats[mode]['peak_mb']:9.1f} {shown}")
            ratio = stats["tiled"]["peak_mb"] / stats["whole"]["peak_mb"]
            lo, hi = outputs["whole"].min().item(), outputs["whole"].max().item()
            print(
                f"{'':<10} tiled/whole peak memory {ratio:.3f}, time "
                f"{stats['tiled']['seconds'] / stats['whole']['seconds']:.2f}x; "
                f"output range [{lo:.3f}, {hi:.3f}] (never clamped)"
            )

if __name__ == "__main__":
    main()
