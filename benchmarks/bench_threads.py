"""CPU threads: the demo model's training step with 1 thread vs torch's default vs irframe's policy,
on the machine as it is and with a synthetic load (busy-loop processes), ratios in one run.

torch's default (one thread per core) competes with every other busy process for the cores; the
policy of :mod:`irframe.threads` (cores available / local processes - loader workers, capped by the
cores the machine has free) is meant to match the better of the two in both situations. The three
settings are timed in interleaved rounds (median ms/step of each), first without added load, then
with ``--busy`` busy-loop processes running; the policy decides afresh once the load is running.

    python benchmarks/bench_threads.py                 # demo model, batch 8x3x48x48, busy = nproc
    python benchmarks/bench_threads.py --busy 4 --rounds 5 --steps 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice, read before anything changes it
OPTIONS = Path(__file__).resolve().parents[1] / "options" / "demo.yml"


def build_step(batch: int, size: int):
    """One training step of the demo's model (options/demo.yml: AdamW, L1) on a fixed batch."""
    from irframe.options import load_options
    from irframe.registry import ARCHS

    opts = load_options(OPTIONS)
    torch.manual_seed(0)
    model = ARCHS.build(opts.model)
    optim = torch.optim.AdamW(model.parameters(), lr=2e-3)
    lq, gt = torch.rand(batch, 3, size, size), torch.rand(batch, 3, size, size)

    def step() -> None:
        loss = F.l1_loss(model(lq), gt)
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)

    return step


def time_settings(step, settings: dict[str, int], rounds: int, steps: int, cap: float) -> dict[str, tuple[float, int]]:
    """(median seconds per step, rounds timed) of each ``{label: threads}``, rounds interleaved.

    A setting more than ``cap`` times slower than the fastest after a round is not timed again
    (an oversubscribed default can take 20x longer; its first rounds already show it).
    """
    times: dict[str, list[float]] = {label: [] for label in settings}
    for threads in settings.values():  # warm-up at every thread count
        torch.set_num_threads(threads)
        step()
    active = dict(settings)
    for _ in range(rounds):
        for label, threads in active.items():
            torch.set_num_threads(threads)
            start = time.perf_counter()
            for _ in range(steps):
                step()
            times[label].append((time.perf_counter() - start) / steps)
        fastest = min(statistics.median(v) for v in times.values())
        active = {k: v for k, v in active.items() if statistics.median(times[k]) <= cap * fastest}
    return {label: (statistics.median(values), len(values)) for label, values in times.items()}


def scenario(name: str, step, rounds: int, steps: int, cap: float) -> dict[str, float]:
    from irframe.threads import choose_threads

    choice = choose_threads("auto", env={k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"})
    settings = {
        "1 thread": 1,
        f"torch default ({DEFAULT_THREADS})": DEFAULT_THREADS,
        f"policy ({choice.threads})": choice.threads,
    }
    print(f"\n[{name}] load average {os.getloadavg()[0]:.2f}; policy: {choice.line()}")
    timed = time_settings(step, settings, rounds, steps, cap)
    result = {label: sec for label, (sec, _) in timed.items()}
    one = result["1 thread"]
    default = result[f"torch default ({DEFAULT_THREADS})"]
    for label, (sec, n) in timed.items():
        print(
            f"  {label:<20}: {sec * 1e3:8.1f} ms/step   vs 1 thread {sec / one:5.2f}x"
            f"   vs default {sec / default:5.2f}x"
            + (f"   ({n} round{'s' if n != 1 else ''}: > {cap:g}x the fastest)" if n < rounds else "")
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="batch size (the demo's: 8)")
    parser.add_argument("--size", type=int, default=48, help="crop side (the demo's gt_size: 48)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per setting")
    parser.add_argument("--steps", type=int, default=2, help="steps per round")
    parser.add_argument(
        "--cap", type=float, default=5.0, help="stop timing a setting this many times slower than the fastest"
    )
    parser.add_argument(
        "--busy", type=int, default=os.cpu_count() or 2, help="busy-loop processes of the loaded run (0: no loaded run)"
    )
    args = parser.parse_args(argv)

    print(
        f"nproc {os.cpu_count()}, affinity {len(os.sched_getaffinity(0))}, torch {torch.__version__}, "
        f"default threads {DEFAULT_THREADS}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}"
    )
    print(
        f"demo model training step, batch {args.batch}x3x{args.size}x{args.size}, "
        f"{args.rounds} rounds x {args.steps} steps"
    )
    step = build_step(args.batch, args.size)
    quiet = scenario("machine as it is", step, args.rounds, args.steps, args.cap)
    if args.busy <= 0:
        return 0
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        time.sleep(1.0)  # let the busy loops get scheduled before the policy looks at the load
        loaded = scenario(f"with {args.busy} busy-loop processes", step, args.rounds, args.steps, args.cap)
    finally:
        for proc in busy:
            proc.terminate()
        for proc in busy:
            proc.wait()
    print("\npolicy vs the better of 1 thread and the default (1.00x = matches the better one):")
    for name, result in (("as it is", quiet), ("loaded", loaded)):
        policy = next(v for k, v in result.items() if k.startswith("policy"))
        best = min(v for k, v in result.items() if not k.startswith("policy"))
        print(f"  {name:<9}: {policy / best:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
