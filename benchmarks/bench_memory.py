"""Peak memory of inference: irframe's ``restore`` vs the released Restormer forward, and ``--tile auto``.

    python benchmarks/bench_memory.py --official-repo PATH [--sizes 512,1024] [--paper] [--budgets 256MB,1GB]

Each measurement runs in a fresh process (``--child``), so one measurement's freed heap cannot
hide another's peak: the model (random weights, fixed seed) and one RGB image are built, then the
peak resident memory the forward adds is taken with :func:`irframe.nn.autotile.measure_peak`
(the Linux resident-set high-water mark after ``malloc_trim``, the method ``--tile auto`` probes
with). Rows:

- ``irframe``: :func:`irframe.nn.inference.restore` on the whole image (padding, ``inference_mode``);
- ``official``: the released ``Restormer`` class from a user's own checkout of
  https://github.com/swz30/Restormer (``basicsr/models/archs/restormer_arch.py``) with the same
  weights, under ``torch.no_grad()`` as its test scripts; skipped with a note without ``--official-repo``;
- ``--plain``: irframe's rows without the fused oneDNN inference kernels (the formulation training uses);
- ``--keep-heap``: irframe's rows with the allocator setting of the inference tools (:mod:`irframe.heap`:
  freed memory kept for reuse), the released row with glibc's default, as its scripts run;
- ``auto <budget>``: ``restore`` with the tile :func:`irframe.nn.autotile.choose_tile` picks for the
  budget (its choice printed), the measured peak beside the budget, and the time of planning (the
  probes and the checks of the chosen shape) and of the tiled restoration.

Default model: the reduced Restormer of ``bench_fast.py`` (dim 24, blocks 2/2/2/2); ``--paper``: the
paper-size model (26 M parameters; 1024x1024 takes minutes per forward on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import REDUCED_RESTORMER, cpu_line, load_line, released_net

PAPER = {"type": "Restormer"}


def child(args: argparse.Namespace) -> None:
    """One measurement in this process; prints one JSON line."""
    import torch

    from irframe.nn.autotile import choose_tile, measure_peak, parse_memory
    from irframe.nn.inference import restore
    from irframe.registry import ARCHS

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.keep_heap and args.child != "official":  # as tools/infer.py sets it; the released code as its scripts
        from irframe.heap import keep_freed_memory

        keep_freed_memory()
    if args.plain:  # the formulation autograd uses, without the fused oneDNN inference kernels
        import irframe.nn.onednn

        irframe.nn.onednn.ENABLED = False
    cfg = PAPER if args.paper else REDUCED_RESTORMER
    torch.manual_seed(0)
    model = ARCHS.build(cfg, path="bench_memory").eval()
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(1))
    result: dict = {}
    if args.child == "irframe":
        result["peak"] = measure_peak(lambda: restore(model, x), "cpu")
    elif args.child == "official":
        net = released_net(Path(args.official_repo), cfg, model).eval()

        def run() -> torch.Tensor:
            with torch.no_grad():
                return net(x)

        result["peak"] = measure_peak(run, "cpu")
    else:  # "auto:<budget>"
        budget = parse_memory(args.child.split(":", 1)[1])
        start = time.perf_counter()
        choice = choose_tile(model, tuple(x.shape), budget, "cpu", log=None)
        planned = time.perf_counter()
        result.update(tile=choice.tile, tiles=choice.tiles, estimate=choice.estimated_peak_bytes, budget=budget)
        result["peak"] = measure_peak(lambda: restore(model, x, tile=choice.tile, tile_overlap=choice.overlap), "cpu")
        result.update(plan_s=planned - start, run_s=time.perf_counter() - planned)
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--paper", action="store_true", help="the paper-size Restormer instead of the reduced one")
    parser.add_argument("--official-repo", default=None, metavar="PATH", help="a checkout of the Restormer repository")
    parser.add_argument("--budgets", default="256MB,1GB", help="--tile auto budgets (empty: none)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--plain", action="store_true", help="irframe without its fused oneDNN inference kernels")
    parser.add_argument(
        "--keep-heap", action="store_true",
        help="irframe's rows keep freed memory for reuse (irframe.heap), as tools/infer.py and tools/test.py set it",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=512, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return
    from irframe.nn.autotile import format_bytes

    model = "paper-size Restormer" if args.paper else "reduced Restormer (dim 24, blocks 2/2/2/2)"
    heap = "irframe's rows keep freed memory (irframe.heap)" if args.keep_heap else "glibc's default"
    print(f"{model}; {cpu_line()}; malloc: {heap}; {load_line()}")
    rows = ["irframe"] + (["official"] if args.official_repo else [])
    rows += [f"auto:{b}" for b in args.budgets.split(",") if b]
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"1x3x{size}x{size}:")
        peaks: dict[str, int] = {}
        for row in rows:
            cmd = [sys.executable, __file__, "--child", row, "--size", str(size)]
            cmd += ["--paper"] if args.paper else []
            cmd += ["--official-repo", args.official_repo] if args.official_repo else []
            cmd += ["--threads", str(args.threads)] if args.threads else []
            cmd += ["--plain"] if args.plain else []
            cmd += ["--keep-heap"] if args.keep_heap else []
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            peaks[row] = r["peak"]
            line = f"  {row:<14} peak {format_bytes(r['peak']):>10}"
            if row.startswith("auto:"):
                tile = "whole image" if r["tile"] is None else f"tile {r['tile']} ({r['tiles']} tiles)"
                fits = "fits" if r["peak"] <= r["budget"] else "OVER BUDGET"
                line += f"  budget {format_bytes(r['budget'])}: {tile}, estimate {format_bytes(r['estimate'])}, {fits}"
                line += f" (planning {r['plan_s']:.1f} s, restoring {r['run_s']:.1f} s)"
            print(line)
        if "official" in peaks:
            print(f"  irframe / official peak: {peaks['irframe'] / peaks['official']:.2f}x")
        else:
            print("  official: skipped (give --official-repo PATH, a checkout of the Restormer repository)")
    print(f"after: {load_line()}")


if __name__ == "__main__":
    main()
