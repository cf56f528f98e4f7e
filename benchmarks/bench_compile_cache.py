"""What ``inference.compile``'s first call costs, without and with the on-disk kernel cache.

    python benchmarks/bench_compile_cache.py [--size 128] [--threads N] [--model restormer|nafnet]

Runs the same script three times, each in a fresh process (so nothing is cached in memory), with
``IRFRAME_CACHE`` pointing at one new temporary folder: ``cold`` (empty cache: dynamo traces,
inductor generates and compiles C++), ``warm`` (the kernels of the first process found on disk:
tracing only) and ``warm again``. Each process prints the first call's time (compile included), the
steady time of a compiled call and that of the eager model, so the lines read as: what the first
image costs on a new machine, what it costs on every later run, and what each later image costs.
The reduced Restormer of ``bench_fast.py`` (random weights, fixed seed) is the model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from common import REDUCED_NAFNET, REDUCED_RESTORMER

CASES = {"restormer": REDUCED_RESTORMER, "nafnet": REDUCED_NAFNET}


def child(model_name: str, size: int, threads: int | None) -> None:
    """One process: compile, time the first and the steady calls, print one JSON line."""
    import torch

    from irframe.nn.inference import compile_model, restore
    from irframe.registry import ARCHS

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = ARCHS.build(CASES[model_name], path=model_name).eval()
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    compiled = compile_model(model)
    start = time.perf_counter()
    restore(compiled, x)
    first = time.perf_counter() - start

    def best(fn, rounds: int = 5) -> float:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    steady = best(lambda: restore(compiled, x))
    eager = best(lambda: restore(model, x))
    print(json.dumps({"first": first, "steady": steady, "eager": eager}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--model", choices=sorted(CASES), default="restormer")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.model, args.size, args.threads)
        return
    print(f"{args.model} at {args.size}x{args.size}, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "IRFRAME_CACHE": cache}
        env.pop("TORCHINDUCTOR_CACHE_DIR", None)  # irframe's folder, not one the shell set
        cmd = [sys.executable, __file__, "--child", "--model", args.model, "--size", str(args.size)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        for label in ("cold", "warm", "warm again"):
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(
                f"  {label:<10} first call {r['first']:7.1f} s | then {r['steady'] * 1e3:7.1f} ms/image compiled,"
                f" {r['eager'] * 1e3:7.1f} ms eager ({r['steady'] / r['eager']:.2f}x)"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
