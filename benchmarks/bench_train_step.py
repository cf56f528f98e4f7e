"""Training speed: one step of irframe's Trainer vs the official training step, on the released model code.

    python benchmarks/bench_train_step.py --official-repo PATH --promptir-repo PATH \\
        [--models restormer,promptir] [--batch 4] [--patch 64] [--steps 5] [--rounds 5] [--threads N] [--no-compile]
        [--isolated] [--heap default|keep|tools]

One training step (forward, L1, backward, gradient clipping at 0.01, AdamW with Restormer's option-file
settings: lr 3e-4, betas (0.9, 0.999), weight decay 1e-4) on a reduced Restormer and a reduced PromptIR,
the same initial weights and the same in-memory batch (``--batch`` x 3 x ``--patch`` x ``--patch``, no
data loader) for every variant:

- ``official``: the released model code, imported from the user's own checkout (never shipped with
  irframe): Restormer from ``--official-repo PATH`` (https://github.com/swz30/Restormer,
  ``basicsr/models/archs/restormer_arch.py``), PromptIR from ``--promptir-repo PATH``
  (https://github.com/va1shn9v/PromptIR, ``net/model.py``), loaded strictly with our weights and
  stepped by a bare loop in BasicSR's ``optimize_parameters`` order (:func:`common.reference_step`):
  ``zero_grad``, forward, L1, ``backward``, ``clip_grad_norm_(0.01)``, ``step``;
- ``irframe``: irframe's ``Trainer.run_iteration`` (:func:`common.make_trainer`: the SupervisedStep
  with ``train.losses: [L1Loss]``, ``train.optim`` AdamW as above, ``train.grad_clip: 0.01``; EMA off,
  no mixed precision, no warm-up, no gradient accumulation, no progress bar). The Trainer always
  steps a schedule (a constant one when ``train.scheduler`` is null; ``make_trainer``'s cosine over
  1e5 iterations here, same cost): microseconds a step, and the first step's rate is the base rate;
- ``irframe+compile``: the same with ``train.compile: true`` (torch.compile, inductor, through
  accelerate's dynamo plugin, as :func:`irframe.train.build.make_accelerator` does). Its first two
  steps (the compilation) are timed apart, printed, and left out of the figures.

Reduced models: Restormer dim 24, blocks [2,2,2,2], refinement 2 (heads [1,2,4,8], WithBias);
PromptIR dim 48 (the released constructor hard-codes the prompt widths 64/128/320 and the channel
sums written for dim 48, so only dim 48 builds consistently and loads our weights strictly), blocks
[2,2,2,2], refinement 2, decoder prompts on.

Reading the output: per model, a check first: each variant takes one step from the same weights on
the same batch and the largest difference of its updated parameters to the official step's is
printed beside the largest update itself (the arch code differs, so they agree to rounding, not
bit for bit; far below the update means the same step). Then rounds of ``--steps`` steps of all
variants, interleaved: each variant's best round (ms/step; other load only adds time) and the median
of its per-round ratios to ``official`` (below 1: faster than the official step). The goal is
``irframe+compile`` <= 0.8x on the CPU. The load average (``os.getloadavg()``) is printed before
and after; a model whose checkout is not given is skipped with a note.

``--isolated`` runs each variant in a spawned process of its own (rounds still interleaved, driven
through a pipe). In one process the released step's time moved by a quarter between runs (1143-1466 ms
median for PromptIR on one day) with what the other variants had left in glibc's heap; in its own
process each step meets only its own allocations, as a user's training does. ``--heap`` says which
allocator setting each variant runs with: ``tools`` (the ``--isolated`` default) as each tool runs,
irframe's variants keeping freed memory as ``tools/train.py`` does (:mod:`irframe.heap`) and the released
step with glibc's default as BasicSR runs; ``keep`` for every variant (the computations alone);
``default`` (the in-process default) glibc's default for all.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from common import (
    REDUCED_RESTORMER,
    RELEASED,
    add_heap_argument,
    cpu_line,
    heap_setting,
    keeps_heap,
    load_line,
    make_trainer,
    reference_step,
    released_net,
    timed,
)

DEVICE = "cpu"
GRAD_CLIP = 0.01  # Restormer's train.use_grad_clip: clip_grad_norm_(..., 0.01) in optimize_parameters
OPTIM = {"type": "AdamW", "lr": 3e-4, "betas": [0.9, 0.999], "weight_decay": 1e-4}  # Restormer's option files
GOAL = 0.8


# Reduced configs; each arch's released code comes from the checkout its option names (common.RELEASED).
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "restormer": (
        "Restormer (dim 24, blocks [2,2,2,2], refinement 2)",
        REDUCED_RESTORMER,
    ),
    "promptir": (
        "PromptIR (dim 48, blocks [2,2,2,2], refinement 2, prompts 64/128/320)",
        {"type": "PromptIR", "dim": 48, "num_blocks": [2, 2, 2, 2], "num_refinement_blocks": 2, "decoder": True},
    ),
}


def params_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    from irframe.nn.weights import unwrap_model

    return {k: p.detach().clone() for k, p in unwrap_model(model).named_parameters()}


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a)


def _released_repo(cfg: dict[str, Any], args: argparse.Namespace) -> Path | None:
    """The user's checkout of ``cfg``'s released code, or ``None`` (a note printed) when not given or not one."""
    released = RELEASED[cfg["type"]]
    repo = getattr(args, released.option.lstrip("-").replace("-", "_"))
    if not repo:
        print(f"  skipped: give {released.option} PATH, a checkout of {released.url}")
        return None
    if not (Path(repo) / released.file).is_file():
        print(f"  skipped: {Path(repo) / released.file} not found (a checkout of {released.url}?)")
        return None
    return Path(repo)


def _start(cfg: dict[str, Any], args: argparse.Namespace) -> tuple[torch.nn.Module, dict[str, torch.Tensor], dict]:
    """The seeded initial model, its parameters and the batch: the same in every variant and process."""
    from irframe.registry import ARCHS

    torch.manual_seed(0)
    base = ARCHS.build(cfg, path="model")
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(args.batch, 3, args.patch, args.patch, generator=g)
    return base, params_of(base), {"lq": gt + 0.1 * torch.randn(gt.shape, generator=g), "gt": gt}


class Variant:
    """One variant, built and stepped once (its first step timed; compiled ones a second step too).

    ``step`` runs one training step; ``first`` (s) and ``note`` describe the untimed steps; ``after``
    holds the parameters after the first step (the agreement check); ``close()`` ends a Trainer's run.
    """

    def __init__(self, variant: str, cfg: dict[str, Any], repo: Path, args: argparse.Namespace, workdir: Path,
                 base: torch.nn.Module, batch: dict) -> None:
        self.trainer: Any = None
        if variant == "official":
            model = released_net(repo, cfg, base)
            optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.999), weight_decay=1e-4)
            self.step: Callable[[], Any] = reference_step(model, batch, optimizer, grad_clip=GRAD_CLIP)
        else:
            backend = "inductor" if variant == "irframe+compile" else None
            self.trainer = make_trainer(copy.deepcopy(base), batch, DEVICE, workdir / variant, grad_clip=GRAD_CLIP,
                                        optim=OPTIM, compile_backend=backend)
            self.trainer.model.train()
            model, self.step = self.trainer.model, self.trainer.run_iteration
        start = time.perf_counter()
        self.step()
        self.first = time.perf_counter() - start
        self.after = params_of(model)
        self.note = ""
        if variant == "irframe+compile":
            start = time.perf_counter()
            self.step()  # a backward or optimizer graph may only compile on the second step
            second = time.perf_counter() - start
            self.note = f"first step (compiles) {self.first:.1f} s, second {second:.2f} s (both excluded)"

    def close(self) -> None:
        if self.trainer is not None:
            from irframe.train.build import _shutdown

            self.trainer.logger.close()
            _shutdown(self.trainer.accelerator)


def _variants(args: argparse.Namespace) -> list[str]:
    return ["official", "irframe"] + ([] if args.no_compile else ["irframe+compile"])


def bench_model(title: str, cfg: dict[str, Any], args: argparse.Namespace, workdir: Path) -> None:
    """All variants in this process, rounds interleaved (``--isolated``: :func:`_isolated_rounds` instead)."""
    print(f"\n{title}:")
    repo = _released_repo(cfg, args)
    if repo is None:
        return
    if args.isolated:
        first, notes, after, times, start_params = _isolated_rounds(cfg, repo, args, workdir)
    else:
        from irframe.train.build import _shutdown

        base, start_params, batch = _start(cfg, args)
        built: dict[str, Variant] = {}
        for variant in _variants(args):
            trainers = [v.trainer for v in built.values() if v.trainer is not None]
            if trainers:  # accelerate keeps process-wide settings: forget them before another dynamo plugin
                _shutdown(trainers[-1].accelerator)
            built[variant] = Variant(variant, cfg, repo, args, workdir, base, batch)
        first = {k: v.first for k, v in built.items()}
        notes = {k: v.note for k, v in built.items()}
        after = {k: v.after for k, v in built.items()}
        for v in built.values():  # one more untimed step each
            v.step()
        times: dict[str, list[float]] = {k: [] for k in built}
        for _ in range(args.rounds):
            for k, v in built.items():
                times[k].append(timed(v.step, args.steps, DEVICE))
        trainers = [v.trainer for v in built.values() if v.trainer is not None]
        for trainer in trainers:
            trainer.logger.close()
        _shutdown(trainers[-1].accelerator)
        torch._dynamo.reset()
    _report(cfg, args, first, notes, after, times, start_params)


def _report(cfg: dict[str, Any], args: argparse.Namespace, first: dict[str, float], notes: dict[str, str],
            after: dict[str, dict], times: dict[str, list[float]], start_params: dict) -> None:
    for variant, note in notes.items():
        if note:
            print(f"  {variant}: {note}")
    update = max_diff(after["official"], start_params)
    print(f"  one step from the same weights (first step: official {first['official']:.2f} s, irframe "
          f"{first['irframe']:.2f} s); largest parameter update {update:.2e}:")
    for variant in after:
        if variant != "official":
            diff = max_diff(after[variant], after["official"])
            print(f"    {variant:<16} max|diff| of the updated parameters to official {diff:.2e}")
    where = " (each variant in its own process)" if args.isolated else ""
    print(f"  {args.rounds} rounds of {args.steps} steps, batch {args.batch}x3x{args.patch}x{args.patch}{where}:")
    for k, ts in times.items():
        ratios = [t / o for t, o in zip(ts, times["official"])]
        goal = f"   (goal <= {GOAL}x)" if k == "irframe+compile" else ""
        print(
            f"    {k:<16} best {min(ts) * 1e3:9.1f} ms/step   median {statistics.median(ts) * 1e3:9.1f}"
            f"   median ratio to official {statistics.median(ratios):5.3f}x{goal}"
        )
    best = ", ".join(f"{k} {min(ts) / min(times['official']):.3f}x" for k, ts in times.items() if k != "official")
    print(f"  ({cfg['type'].lower()}: ratio of the best rounds: {best})")


def _worker(conn: Any, cfg: dict[str, Any], repo: Path, args: argparse.Namespace, workdir: Path, variant: str) -> None:
    """One variant in this (spawned) process: its first-step report, then a round's time per ``"run"``."""
    from irframe.heap import keep_freed_memory

    if args.threads:
        torch.set_num_threads(args.threads)
    if keeps_heap(variant, args.heap):
        keep_freed_memory()
    base, start_params, batch = _start(cfg, args)
    v = Variant(variant, cfg, repo, args, workdir, base, batch)
    v.step()  # one more untimed step, as in one process
    conn.send((v.first, v.note, v.after, start_params))
    try:
        while conn.recv() == "run":
            conn.send(timed(v.step, args.steps, DEVICE))
    finally:
        v.close()


def _isolated_rounds(
    cfg: dict[str, Any], repo: Path, args: argparse.Namespace, workdir: Path
) -> tuple[dict[str, float], dict[str, str], dict[str, dict], dict[str, list[float]], dict]:
    """Each variant in a spawned process of its own (none sees the others' heap, threads or compiled
    state), rounds interleaved across them: first-step times, notes, parameters after one step, times."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    conns: dict[str, Any] = {}
    procs = []
    first: dict[str, float] = {}
    notes: dict[str, str] = {}
    after: dict[str, dict] = {}
    start_params: dict = {}
    times: dict[str, list[float]] = {k: [] for k in _variants(args)}
    try:
        for k in times:  # one at a time: a worker builds (and compiles) while the others wait
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, cfg, repo, args, workdir, k), daemon=True)
            proc.start()
            procs.append(proc)
            conns[k] = parent
            first[k], notes[k], after[k], start_params = parent.recv()
        for _ in range(args.rounds):
            for k, conn in conns.items():
                conn.send("run")
                times[k].append(conn.recv())
    finally:
        for conn in conns.values():
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send("stop")
        for proc in procs:
            proc.join(timeout=60)
    return first, notes, after, times, start_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-repo", default=None, metavar="PATH", help="a checkout of the Restormer repository")
    parser.add_argument("--promptir-repo", default=None, metavar="PATH", help="a checkout of the PromptIR repository")
    parser.add_argument("--models", default="restormer,promptir", help="comma-separated: restormer, promptir")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=64, help="patch side (a multiple of 8)")
    parser.add_argument("--steps", type=int, default=5, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--no-compile", action="store_true", help="leave out irframe+compile")
    parser.add_argument("--isolated", action="store_true",
                        help="each variant in a process of its own (rounds still interleaved): no variant's heap, "
                             "threads or compiled state touches another's timing")
    add_heap_argument(parser, "tools/train.py")
    args = parser.parse_args()
    heap = heap_setting(parser, args, "tools/train.py")
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in CASES]
    if unknown:
        parser.error(f"--models: unknown {unknown}; choose from {list(CASES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_line()}; malloc: {heap}; {load_line()}")
    print("command: python benchmarks/bench_train_step.py " + " ".join(sys.argv[1:]))
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            bench_model(*CASES[name], args, Path(tmp))
    print(f"\nafter: {torch.get_num_threads()} threads, {load_line()}")


if __name__ == "__main__":
    main()
