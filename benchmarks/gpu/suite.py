"""The GPU check suite: CUDA tests, training in fp32/bf16/fp16, side-by-side figures, one summary.

    python benchmarks/gpu/suite.py [--dry-run] [--out DIR] [--budget SECONDS] [--only STAGE ...]

Stages (each writes its rows to ``results.json``; a stage that fails is reported, the others run):

1. ``tests``: the suite's CUDA-marked tests (``pytest -m cuda``); with ``--dry-run`` they are only
   collected (they import and are found), since they skip without CUDA.
2. ``train``: the demo model and the paper-size Restormer, PromptIR and IPT (models and ``train:``
   settings of their option files) trained on generated images through ``run_training`` in fp32,
   bf16 and fp16: finite losses, the loss going down (first vs last logged window), the last
   checkpoint reloaded on the CPU and run.
3. ``overhead``: iterations/s and peak memory of our ``Trainer`` vs a reference loop
   (re-implementation of the official training step: zero_grad, forward, L1, backward, clip, step,
   the BasicSR per-tensor EMA; ``torch.autocast`` + ``GradScaler`` for bf16/fp16) on the same model,
   batch and patch (each paper's first progressive stage / its option file's batch and patch).
4. ``compile``: the Trainer's iteration with ``train.compile`` (accelerate's dynamo plugin, inductor)
   vs without, compile time apart; ``restore`` of a compiled model vs eager.
5. ``inference``: ``restore`` of the paper-size models at 256/512/1024 px in fp32 and bf16, whole
   images where they fit the GPU's free memory, else tiled (``AutoTiler``): time and peak memory.
6. ``stages``: the largest progressive stage of each paper's schedule (Restormer 384x384 at the
   paper's global batch 8, PromptIR 128x128 at 32, IPT 48x48 at 256): peak memory of one
   training step per sample (measured at two batch sizes), whether the paper's global batch fits
   24 / 40 / 80 GiB on one card, and with what ``grad_accum`` a card reaches it.

``--dry-run`` runs every stage on the CPU with tiny models and sizes in seconds (fp16 is skipped
there: autocast has no CPU fp16; compile uses dynamo's ``aot_eager`` backend, since inductor's
C++ compile takes minutes on a small CPU) so CI keeps the script working. Outputs under ``--out``
(default ``$OUT`` or ``./gpu_results``): ``results.json``, ``summary.md`` (paste into
benchmarks/RESULTS.md) and ``cuda_tests.txt``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))  # benchmarks/common.py, imported as the scripts beside it do
import common  # noqa: E402  (needs the line above)
from common import timed  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # summary.py beside this script
from summary import CARDS_GIB, STAGES, write_summary  # noqa: E402

GIB = 1024**3
USABLE = 0.92  # of a card's memory a training process can count on (CUDA context, allocator slack)
# Each stage's share of the time left when it starts (relative to the stages still to run).
SHARES = {"tests": 0.22, "train": 0.28, "overhead": 0.1, "inference": 0.1, "stages": 0.08, "compile": 0.22}
TINY = {
    "Restormer": {
        "type": "Restormer",
        "dim": 8,
        "num_blocks": [1, 1, 1, 1],
        "num_refinement_blocks": 1,
        "heads": [1, 2, 4, 8],
    },
    "PromptIR": {
        "type": "PromptIR",
        "dim": 8,
        "num_blocks": [1, 1, 1, 1],
        "num_refinement_blocks": 1,
        "heads": [1, 2, 4, 8],
        "decoder": True,
    },
    "IPT": {
        "type": "IPT",
        "n_feats": 16,
        "patch_size": 48,
        "patch_dim": 3,
        "num_heads": 2,
        "num_layers": 1,
        "num_queries": 1,
        "scale": [2],
        "rgb_range": 255,
    },
}


# -- what is measured ------------------------------------------------------------------------------
@dataclass
class Paper:
    """One paper's model and training settings, read from its option file."""

    name: str  # row label
    option_file: str
    model: dict[str, Any]
    train: dict[str, Any]  # optim, losses, grad_clip, ema_decay of the option file
    scale: int  # output / input size (IPT x2)
    patch: int  # LQ patch side of the first stage (overhead, compile)
    batch: int  # per-process batch of the first stage
    big_patch: int  # LQ patch side of the largest stage
    big_global_batch: int  # the paper's global batch at that stage
    paper_setup: str  # how the paper reached it


@dataclass
class Plan:
    """Sizes of one run of the suite (GPU or ``--dry-run``)."""

    device: str
    dry_run: bool
    papers: list[Paper]
    demo: dict[str, Any]
    precisions: dict[str, list[str]]  # train.mixed_precision values per model (training, overhead)
    train_iters: int
    demo_iters: int
    train_patch: int  # LQ side of the training runs
    train_batch: int
    workers: int
    overhead_iters: int
    overhead_rounds: int
    infer_sides: list[int]
    infer_precisions: list[str]
    compile_backend: str
    compile_models: list[str]
    compile_precisions: list[str]
    budget_s: float
    started: float = field(default_factory=time.perf_counter)
    stage_end: float = math.inf  # perf_counter() time at which the running stage should stop starting work

    def left(self) -> float:
        """Seconds left to the running stage (its share, and the whole budget)."""
        now = time.perf_counter()
        return min(self.budget_s - (now - self.started), self.stage_end - now)

    def start_stage(self, stage: str, remaining: list[str]) -> None:
        """Give ``stage`` its share of the budget left (unused time rolls over to later stages)."""
        total_left = self.budget_s - (time.perf_counter() - self.started)
        share = SHARES[stage] / sum(SHARES[s] for s in remaining)
        self.stage_end = time.perf_counter() + total_left * share


def paper_models(dry_run: bool) -> list[Paper]:
    """Restormer (deraining), PromptIR (all-in-one), IPT (x2 fine-tuning) from their option files."""
    from irframe.options import load_options

    rows = []
    # (row, option file, scale, processes the paper trained on: the option files' comments)
    specs = [
        ("Restormer", "options/restormer_derain.yml", 1, 8),
        ("PromptIR", "options/promptir_allinone.yml", 1, 4),
        ("IPT", "options/ipt_finetune_sr_x2.yml", 2, 32),
    ]
    for name, file, scale, world in specs:
        opts = load_options(ROOT / file)
        assert opts.train is not None
        train = opts.train.model_dump(mode="json")
        keep = {k: train[k] for k in ("optim", "losses", "grad_clip", "ema_decay")}
        loader = opts.datasets["train"]
        extra = loader.model_extra or {}
        gt = int(extra.get("gt_size") or extra.get("defaults", {}).get("gt_size", 128))
        prog = opts.train.progressive
        if prog is not None:
            # the largest stage: most pixels per optimizer step at the paper's global batch (ties: the
            # larger patch, i.e. Restormer's last stage, 384x384 x 8, over 192x192 x 32)
            stages = [(p, b) for p, b in zip(prog.patch_sizes, prog.batch_sizes)]
            big_patch, per_gpu = max(stages, key=lambda s: (s[0] ** 2 * s[1], s[0]))
            patch, batch = prog.patch_sizes[0], prog.batch_sizes[0]
        else:
            patch, big_patch, batch = gt // scale, gt // scale, loader.batch_size
            per_gpu = batch
        big_batch = per_gpu * world
        setup = f"{world} processes x {per_gpu} at {big_patch}x{big_patch}"
        model = TINY[name] if dry_run else opts.model
        if dry_run:
            patch, batch, big_patch, big_batch = (48 if name == "IPT" else 32), 2, (48 if name == "IPT" else 32), 4
        rows.append(Paper(name, file, dict(model), keep, scale, patch, batch, big_patch, big_batch, setup))
    return rows


def make_plan(args: argparse.Namespace) -> Plan:
    from irframe.options import load_options

    demo = load_options(ROOT / "options" / "demo.yml").model
    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda and not args.dry_run:
        raise SystemExit("no CUDA device: run with --dry-run on the CPU")
    dry = args.dry_run
    return Plan(
        device="cuda" if cuda else "cpu",
        dry_run=dry,
        papers=paper_models(dry),
        demo=dict(demo),
        # the dry run takes each code path once (fp16 has no CPU autocast); the GPU every combination
        precisions=(
            {"demo": ["no"], "Restormer": ["bf16"], "PromptIR": ["no"], "IPT": ["bf16"]} if dry
            else {name: ["no", "bf16", "fp16"] for name in ("demo", "Restormer", "PromptIR", "IPT")}
        ),
        train_iters=args.train_iters or (2 if dry else 100),
        demo_iters=args.train_iters or (2 if dry else 200),
        train_patch=32 if dry else 64,
        train_batch=2 if dry else 8,
        workers=0 if dry else 4,
        overhead_iters=1 if dry else 5,
        overhead_rounds=1 if dry else 2,
        infer_sides=[32] if dry else [256, 512, 1024],
        infer_precisions=["bf16"] if dry else ["fp32", "bf16"],
        compile_backend="aot_eager" if dry else "inductor",
        compile_models=["Restormer"] if dry else ["Restormer", "PromptIR", "IPT"],
        compile_precisions=["no"] if dry else ["no", "bf16"],
        budget_s=math.inf if dry else args.budget,
    )


# -- helpers ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def peak_memory(device: str) -> Iterator[dict[str, float | None]]:
    """``{"peak_gib": ...}`` filled after the block (``None`` on the CPU)."""
    out: dict[str, float | None] = {"peak_gib": None}
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    yield out
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        out["peak_gib"] = torch.cuda.max_memory_allocated() / GIB


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def failure(exc: BaseException) -> str:
    """A row's status for a run that raised: ``OOM``/``FAILED``, the error's type and its first line."""
    first = (str(exc).splitlines() or [""])[0][:200]  # an exception may have no message at all
    return f"{'OOM' if is_oom(exc) else 'FAILED'}: {type(exc).__name__}: {first}"


def free_cuda() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def build(cfg: dict[str, Any]) -> torch.nn.Module:
    from irframe.registry import ARCHS

    torch.manual_seed(0)
    return ARCHS.build(cfg, path="model")


def batch_for(paper: Paper, batch: int, patch: int, device: str) -> dict[str, torch.Tensor]:
    """A noisy (or, for IPT, x``scale``-downsampled) batch: LQ ``patch`` px, GT ``patch*scale`` px."""
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(batch, 3, patch * paper.scale, patch * paper.scale, generator=g)
    lq = F.interpolate(gt, scale_factor=1 / paper.scale, mode="area") if paper.scale > 1 else gt
    lq = (lq + 0.1 * torch.randn(lq.shape, generator=g)).clamp(0, 1)
    return {"lq": lq.to(device), "gt": gt.to(device)}


def shutdown(accelerator: Any) -> None:
    from irframe.train.build import _shutdown

    _shutdown(accelerator)


# -- stage 1: CUDA tests ---------------------------------------------------------------------------
def stage_tests(plan: Plan, out: Path) -> list[dict[str, Any]]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "tests"]
    if plan.dry_run:
        cmd.insert(3, "--collect-only")
    else:  # 4 pytest workers share the GPU (the tests are small); pytest-xdist comes with [dev]
        cmd[3:3] = ["-n", "4"]
    timeout = min(max(plan.left(), 150.0), 240.0)  # the tests come first: later stages get what is left
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        text, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        text, rc = text + f"\nTIMEOUT after {timeout:.0f} s", 124
    (out / "cuda_tests.txt").write_text(f"$ {' '.join(cmd)}\n{text}", encoding="utf-8")
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", text)}
    collected = re.search(r"(\d+)(?:/\d+)? tests? collected", text)
    if collected:
        counts["collected"] = int(collected.group(1))
    return [{"command": " ".join(cmd[1:]), "returncode": rc, **counts, "ok": rc == 0}]


# -- stage 2: training runs ------------------------------------------------------------------------
def train_options(name: str, model: dict[str, Any], train: dict[str, Any], scale: int, data: Path, plan: Plan,
                  iters: int, precision: str, root: Path) -> dict[str, Any]:
    # a model with a fixed input size (IPT's patch_size) trains on exactly that LQ patch
    gt = int(model.get("patch_size") or plan.train_patch) * scale
    ds: dict[str, Any] = {
        "type": "OnlineDegradationDataset",
        "dataroot_gt": str(data),
        "gt_size": gt,
        "use_flip": True,
        "use_rot": True,
        "batch_size": plan.train_batch,
        "num_workers": plan.workers,
        "pin_memory": plan.device == "cuda",
        "persistent_workers": plan.workers > 0,
        "degradation": {"type": "BicubicDownsample", "scale": scale}
        if scale > 1
        else {"type": "GaussianNoise", "sigma": 25},
    }
    if scale > 1:
        ds["scale"] = scale
    return {
        "name": name, "seed": 0, "model": model, "datasets": {"train": ds},
        "train": {**train, "total_iter": iters, "mixed_precision": precision},
        "logger": {"print_freq": max(1, iters // 5), "checkpoint_freq": iters, "keep_checkpoints": 1,
                   "tensorboard": False, "progress_bar": False},
        "path": {"experiments_root": str(root)},
    }


# the trainer's report line; the rate is left out of a window holding only the start-up iteration
_LOSS_LINE = re.compile(r"iter (\d+)/\d+ \| lr \S+ \| loss (\S+)(?:.*? \| ([\d.]+) it/s)?")


def stage_train(plan: Plan, out: Path) -> list[dict[str, Any]]:
    from irframe.evaluate.models import load_for_eval
    from irframe.nn.inference import restore
    from irframe.options import load_options, validate_options
    from irframe.train.build import run_training
    from irframe.train.synthetic import write_textured_images

    demo_train = load_options(ROOT / "options" / "demo.yml").train
    assert demo_train is not None
    demo_keep = {
        k: v
        for k, v in demo_train.model_dump(mode="json").items()
        if k in ("optim", "losses", "grad_clip", "ema_decay")
    }
    jobs = [("demo", plan.demo, demo_keep, 1, plan.demo_iters)]
    jobs += [(p.name, p.model, p.train, p.scale, plan.train_iters) for p in plan.papers]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_textured_images(data, 16 if plan.dry_run else 48, max(plan.train_patch * 2, 96) + 16)
        for name, model, train, scale, iters in jobs:
            for precision in plan.precisions[name]:
                row: dict[str, Any] = {"model": name, "precision": precision, "iters": iters, "batch": plan.train_batch,
                                       "lq_patch": int(model.get("patch_size") or plan.train_patch)}
                rows.append(row)
                if plan.left() < 30:
                    row["status"] = "skipped: time budget"
                    continue
                raw = train_options(
                    f"{name}_{precision}", model, train, scale, data, plan, iters, precision, Path(tmp) / "exp"
                )
                try:
                    start = time.perf_counter()
                    result = run_training(validate_options(raw, source=f"gpu-suite:{name}"))
                    row["wall_s"] = round(time.perf_counter() - start, 1)
                    log = (result.experiment / "train.log").read_text()
                    points = [(int(i), float(loss), speed) for i, loss, speed in _LOSS_LINE.findall(log)]
                    losses = [p[1] for p in points]
                    speeds = [float(p[2]) for p in points if p[2]]
                    row["first_loss"], row["last_loss"] = losses[0], losses[-1]
                    row["finite"] = all(math.isfinite(v) for v in losses)
                    row["loss_down"] = losses[-1] < losses[0]
                    row["it_s"] = speeds[-1] if speeds else None  # the last window (data loading included, warm)
                    loaded = load_for_eval(None, result.last_checkpoint, device="cpu")
                    probe = torch.rand(1, 3, 48, 48)
                    row["reload_cpu"] = bool(torch.isfinite(restore(loaded.model, probe)).all())
                    # a few dry-run iterations cannot show a trend: there only finiteness and the reload count
                    good = row["finite"] and row["reload_cpu"] and (row["loss_down"] or plan.dry_run)
                    row["status"] = "ok" if good else "CHECK"
                except Exception as exc:  # one failing run is reported; the other runs still go
                    row["status"] = failure(exc)
                    traceback.print_exc()
                finally:
                    free_cuda()
                print(f"train {name} {precision}: {row}", flush=True)
    return rows


# -- stage 3: Trainer vs reference loop ------------------------------------------------------------
def reference_step(model: torch.nn.Module, batch: dict[str, torch.Tensor], paper: Paper, precision: str,
                   device: str) -> Callable[[], None]:
    """Reference loop (re-implementation of the official training step), same settings as ours:
    BasicSR's ``optimize_parameters`` (Restormer) with the paper's optimizer, gradient clipping and
    EMA, AMP as PyTorch's recipe (:func:`common.reference_step`)."""
    from irframe.train.optim import build_optimizer

    return common.reference_step(
        model, batch, build_optimizer(model, paper.train["optim"]), grad_clip=paper.train.get("grad_clip"),
        ema_decay=float(paper.train.get("ema_decay") or 0.0), precision=precision, device=device,
    )


def trainer_step(model: torch.nn.Module, batch: dict[str, torch.Tensor], paper: Paper, precision: str, device: str,
                 workdir: Path, compile_backend: str | None = None) -> Any:
    trainer = common.make_trainer(
        model,
        batch,
        device,
        workdir,
        mixed_precision=precision,
        grad_clip=paper.train.get("grad_clip"),
        ema_decay=float(paper.train.get("ema_decay") or 0.0),
        optim=paper.train["optim"],
        compile_backend=compile_backend,
    )
    trainer.model.train()
    return trainer


def stage_overhead(plan: Plan, out: Path) -> list[dict[str, Any]]:
    rows = []
    for paper in plan.papers:
        for precision in plan.precisions[paper.name]:
            row: dict[str, Any] = {
                "model": paper.name,
                "precision": precision,
                "batch": paper.batch,
                "lq_patch": paper.patch,
            }
            rows.append(row)
            if plan.left() < 30:
                row["status"] = "skipped: time budget"
                continue
            trainer = None
            try:
                base = build(paper.model)
                batch = batch_for(paper, paper.batch, paper.patch, plan.device)
                ref = reference_step(copy.deepcopy(base).to(plan.device), batch, paper, precision, plan.device)
                with tempfile.TemporaryDirectory() as tmp:
                    trainer = trainer_step(copy.deepcopy(base), batch, paper, precision, plan.device, Path(tmp))
                    del base
                    ours = trainer.run_iteration
                    timed(ref, 2, plan.device)
                    timed(ours, 2, plan.device)
                    ref_t, our_t = [], []
                    with peak_memory(plan.device) as ref_mem:
                        ref_t.append(timed(ref, plan.overhead_iters, plan.device))
                    with peak_memory(plan.device) as our_mem:
                        our_t.append(timed(ours, plan.overhead_iters, plan.device))
                    for _ in range(plan.overhead_rounds - 1):  # interleaved rounds, best kept
                        ref_t.append(timed(ref, plan.overhead_iters, plan.device))
                        our_t.append(timed(ours, plan.overhead_iters, plan.device))
                    trainer.meter.report()  # the loss sums stay finite (a device sync)
                row.update(
                    reference_it_s=round(1 / min(ref_t), 3), trainer_it_s=round(1 / min(our_t), 3),
                    ratio=round(min(our_t) / min(ref_t), 3), reference_peak_gib=ref_mem["peak_gib"],
                    trainer_peak_gib=our_mem["peak_gib"], status="ok",
                )
            except Exception as exc:
                row["status"] = failure(exc)
                traceback.print_exc()
            finally:
                if trainer is not None:
                    trainer.logger.close()
                    shutdown(trainer.accelerator)
                free_cuda()
            print(f"overhead {paper.name} {precision}: {row}", flush=True)
    return rows


# -- stage 4: torch.compile ------------------------------------------------------------------------
def stage_compile(plan: Plan, out: Path) -> list[dict[str, Any]]:
    from irframe.nn.inference import compile_model, restore

    rows = []
    for paper in plan.papers:
        if paper.name not in plan.compile_models:
            continue
        for precision in plan.compile_precisions:
            row: dict[str, Any] = {"model": paper.name, "what": "train iteration", "precision": precision,
                                   "batch": paper.batch, "lq_patch": paper.patch, "backend": plan.compile_backend}
            rows.append(row)
            if plan.left() < 90:  # a cold inductor compile of a paper model takes about a minute
                row["status"] = "skipped: time budget"
                continue
            times: dict[str, float] = {}
            try:
                base = build(paper.model)
                batch = batch_for(paper, paper.batch, paper.patch, plan.device)
                for variant, backend in (("eager", None), ("compiled", plan.compile_backend)):
                    trainer = None
                    with tempfile.TemporaryDirectory() as tmp:
                        try:
                            trainer = trainer_step(
                                copy.deepcopy(base), batch, paper, precision, plan.device, Path(tmp), backend
                            )
                            first = time.perf_counter()
                            timed(trainer.run_iteration, 1, plan.device)
                            times[f"{variant}_first_s"] = time.perf_counter() - first
                            timed(trainer.run_iteration, 2, plan.device)
                            with peak_memory(plan.device) as mem:
                                times[f"{variant}_ms"] = 1e3 * min(
                                    timed(trainer.run_iteration, plan.overhead_iters, plan.device)
                                    for _ in range(plan.overhead_rounds)
                                )
                            times[f"{variant}_peak_gib"] = mem["peak_gib"]  # type: ignore[assignment]
                        finally:
                            if trainer is not None:
                                trainer.logger.close()
                                shutdown(trainer.accelerator)
                            free_cuda()
                row.update({k: (round(v, 3) if isinstance(v, float) else v) for k, v in times.items()})
                row["speedup"] = round(times["eager_ms"] / times["compiled_ms"], 3)
                row["compile_s"] = round(times["compiled_first_s"] - times["eager_first_s"], 1)
                row["status"] = "ok"
            except Exception as exc:
                row["status"] = failure(exc)
                traceback.print_exc()
            torch._dynamo.reset()
            print(f"compile {paper.name} {precision}: {row}", flush=True)
        if plan.dry_run:  # restore of a compiled model is tested in tests/train/test_compile.py
            continue
        # inference: restore() of a compiled model vs eager, at the first inference size
        side = plan.infer_sides[0]
        row = {"model": paper.name, "what": f"restore {side}px", "precision": "fp32", "backend": plan.compile_backend}
        rows.append(row)
        if plan.left() < 60:
            row["status"] = "skipped: time budget"
            continue
        try:
            model = build(paper.model).to(plan.device).eval()
            compiled = compile_model(model)  # what inference.compile / infer.py --compile do
            x = torch.rand(1, 3, side, side, device=plan.device)
            run_eager, run_compiled = functools.partial(restore, model, x), functools.partial(restore, compiled, x)
            first = time.perf_counter()
            timed(run_compiled, 1, plan.device)
            row["compile_s"] = round(time.perf_counter() - first, 1)
            eager_ms = 1e3 * min(timed(run_eager, 3, plan.device) for _ in range(2))
            comp_ms = 1e3 * min(timed(run_compiled, 3, plan.device) for _ in range(2))
            row.update(eager_ms=round(eager_ms, 2), compiled_ms=round(comp_ms, 2), speedup=round(eager_ms / comp_ms, 3),
                       max_abs_diff=float((restore(compiled, x) - restore(model, x)).abs().max()), status="ok")
        except Exception as exc:
            row["status"] = failure(exc)
            traceback.print_exc()
        torch._dynamo.reset()
        free_cuda()
        print(f"compile {paper.name} restore: {row}", flush=True)
    return rows


# -- stage 5: inference at 256/512/1024 ------------------------------------------------------------
def stage_inference(plan: Plan, out: Path) -> list[dict[str, Any]]:
    from irframe.nn.autotile import AutoTiler
    from irframe.nn.inference import restore

    rows = []
    for paper in plan.papers:
        model = build(paper.model).to(plan.device).eval()
        for precision in plan.infer_precisions:
            tiler = AutoTiler(model, None, precision=precision, log=None)
            last: tuple[int, float] | None = None  # (side, seconds) of the previous size
            for side in plan.infer_sides:
                row: dict[str, Any] = {"model": paper.name, "side": side, "precision": precision}
                rows.append(row)
                # time grows with the pixels (IPT: (side / 12)^2 overlapping 48x48 patches, one by one)
                estimate = last[1] * (side / last[0]) ** 2 if last else 0.0
                if plan.left() < 20 or estimate > plan.left() - 10:
                    row["status"] = (
                        f"skipped: time budget (estimated {estimate:.0f} s)" if estimate else "skipped: time budget"
                    )
                    continue
                try:
                    x = torch.rand(1, 3, side, side, device=plan.device)
                    choice = tiler(x)
                    kw = choice.restore_kwargs()
                    run = functools.partial(restore, model, x, precision=precision, **kw)
                    if last is None:  # warm-up: CUDA context, kernels, allocator
                        run()
                    with peak_memory(plan.device) as mem:
                        sec = timed(run, 1, plan.device)
                    last = (side, sec)
                    row.update(tile=kw["tile"] or "whole", ms=round(sec * 1e3, 2), peak_gib=mem["peak_gib"],
                               estimated_gib=round(choice.estimated_peak_bytes / GIB, 3), status="ok")
                except Exception as exc:
                    row["status"] = failure(exc)
                    traceback.print_exc()
                free_cuda()
                print(f"inference {paper.name} {side} {precision}: {row}", flush=True)
        del model
        free_cuda()
    return rows


# -- stage 6: the largest progressive stage on 24/40/80 GiB cards ----------------------------------
def step_peak(paper: Paper, batch: int, precision: str, device: str) -> float | None:
    """Peak memory (GiB) of one reference training step at ``batch`` x ``big_patch`` (``None`` on the CPU)."""
    model = build(paper.model).to(device)
    data = batch_for(paper, batch, paper.big_patch, device)
    step = reference_step(model, data, paper, precision, device)
    step()  # optimizer state exists from the second step on
    with peak_memory(device) as mem:
        step()
    del model, data, step
    free_cuda()
    return mem["peak_gib"]


def fit_cards(fixed: float, per_sample: float, global_batch: int) -> dict[str, str]:
    """For each card: ``fits`` (the global batch on one card) or ``batch B x grad_accum A``."""
    out = {}
    for card in CARDS_GIB:
        room = card * USABLE - fixed
        most = int(room // per_sample) if per_sample > 0 else global_batch
        if most >= global_batch:
            out[f"{card}GiB"] = f"fits (batch {global_batch})"
        elif most < 1:
            out[f"{card}GiB"] = "1 sample does not fit"
        else:
            accum = math.ceil(global_batch / most)
            while global_batch % accum:  # an even split: batch x accum == the global batch
                accum += 1
            out[f"{card}GiB"] = f"batch {global_batch // accum} x grad_accum {accum}"
    return out


def stage_stages(plan: Plan, out: Path) -> list[dict[str, Any]]:
    rows = []
    for paper in plan.papers:
        for precision in ("no", "bf16"):
            row: dict[str, Any] = {"model": paper.name, "precision": precision, "lq_patch": paper.big_patch,
                                   "global_batch": paper.big_global_batch, "paper": paper.paper_setup}
            rows.append(row)
            if plan.left() < 30:
                row["status"] = "skipped: time budget"
                continue
            if plan.device != "cuda":
                row["status"] = "ok (no CUDA: memory not measured)"
                continue
            try:
                p1, p2 = step_peak(paper, 1, precision, plan.device), step_peak(paper, 2, precision, plan.device)
                assert p1 is not None and p2 is not None
                per_sample = max(p2 - p1, 1e-6)
                fixed = p1 - per_sample
                row.update(
                    peak_b1_gib=round(p1, 3),
                    peak_b2_gib=round(p2, 3),
                    per_sample_gib=round(per_sample, 3),
                    fixed_gib=round(fixed, 3),
                    predicted_global_gib=round(fixed + per_sample * paper.big_global_batch, 2),
                )
                row.update(fit_cards(fixed, per_sample, paper.big_global_batch))
                row["status"] = "ok"
                free = torch.cuda.mem_get_info()[0] / GIB
                if row["predicted_global_gib"] < free * 0.9 and plan.left() > 30:  # check the prediction once
                    try:
                        row["measured_global_gib"] = round(
                            step_peak(paper, paper.big_global_batch, precision, plan.device) or 0, 2
                        )
                    except Exception as exc:  # the linear prediction was wrong: say so, keep the rest
                        row["measured_global_gib"] = ("OOM" if is_oom(exc) else "FAILED") + f": {type(exc).__name__}"
            except Exception as exc:
                row["status"] = failure(exc)
                traceback.print_exc()
            free_cuda()
            print(f"stage {paper.name} {precision}: {row}", flush=True)
    return rows


# -- the summary -----------------------------------------------------------------------------------
def environment(plan: Plan) -> dict[str, Any]:
    import accelerate

    env: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "python": platform.python_version(),
        "torch": torch.__version__, "accelerate": accelerate.__version__, "device": plan.device,
        "dry_run": plan.dry_run, "cpus": os.cpu_count(),
    }
    if plan.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / GIB, 1),
                   capability=f"{props.major}.{props.minor}", bf16=torch.cuda.is_bf16_supported(),
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny models and sizes (seconds): CI's check")
    parser.add_argument(
        "--out", default=os.environ.get("OUT") or "gpu_results", help="output folder (default $OUT or gpu_results)"
    )
    parser.add_argument(
        "--budget", type=float, default=420.0, help="seconds for all stages; later items are skipped past it"
    )
    parser.add_argument("--only", nargs="+", choices=STAGES, default=list(STAGES), help="run only these stages")
    parser.add_argument("--train-iters", type=int, default=None, help="iterations of each training run")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.backends.cudnn.benchmark = False
    plan = make_plan(args)
    if plan.dry_run:
        torch.set_num_threads(1)  # tiny tensors: threads only wait on each other on a small CPU
    results: dict[str, Any] = {"environment": environment(plan)}
    funcs = {"tests": stage_tests, "train": stage_train, "overhead": stage_overhead, "compile": stage_compile,
             "inference": stage_inference, "stages": stage_stages}
    failed = False
    todo = [s for s in STAGES if s in args.only]
    for i, stage in enumerate(todo):
        plan.start_stage(stage, todo[i:])
        print(f"== {stage} ({plan.left():.0f} s for it)", flush=True)
        try:
            results[stage] = funcs[stage](plan, out)
        except Exception as exc:  # a broken stage is reported in the summary; the others still run
            traceback.print_exc()
            results[stage] = [{"status": f"FAILED: {type(exc).__name__}: {exc}"}]
            failed = True
        results["wall_s"] = round(time.perf_counter() - plan.started, 1)
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    print(write_summary(results, out))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
