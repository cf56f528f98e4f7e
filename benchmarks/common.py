"""What the benchmarks share: timing with a device sync, irframe's Trainer fed one batch, the
hand-written reference training step it is compared with, and the released model code loaded from
a user's own checkout (never shipped here).

The scripts of ``benchmarks/`` import it as ``common`` (a script's folder is on ``sys.path``);
``benchmarks/gpu/suite.py`` puts ``benchmarks/`` there first.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import itertools
import os
import platform
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

# The reduced configs the CPU speed benchmarks share (bench_fast, bench_train_step, bench_memory,
# bench_compile_cache): small enough for a 2-core CPU, every kind of block of the paper-size models.
REDUCED_RESTORMER = {"type": "Restormer", "dim": 24, "num_blocks": [2, 2, 2, 2], "num_refinement_blocks": 2}
REDUCED_NAFNET = {
    "type": "NAFNet", "width": 16, "enc_blk_nums": [1, 1, 1, 8], "middle_blk_num": 1, "dec_blk_nums": [1, 1, 1, 1],
}


@dataclass(frozen=True)
class Released:
    """Where an arch's released code lives: the option naming the user's checkout, the repository,
    and the model file inside it."""

    option: str
    url: str
    file: str


RELEASED = {
    "Restormer": Released(
        "--official-repo", "https://github.com/swz30/Restormer", "basicsr/models/archs/restormer_arch.py"
    ),
    "PromptIR": Released("--promptir-repo", "https://github.com/va1shn9v/PromptIR", "net/model.py"),
    "IPT": Released("--ipt-repo", "https://github.com/huawei-noah/Pretrained-IPT", "model/ipt.py"),
}


def load_line() -> str:
    """The machine's load averages, for the lines printed before and after a benchmark."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def cpu_line() -> str:
    """Which CPU ran the figures: its model name with the vendor's family/model numbers from
    ``/proc/cpuinfo`` (machines that print the same name, "AMD EPYC", differ: the ratios against the
    released code moved by 0.1-0.2 between two such VMs, benchmarks/RESULTS.md), or ``platform``'s answer."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if not sep:
                break  # the first processor's block ends at its blank line
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return f"CPU {platform.processor() or platform.machine()}"
    ids = ", ".join(f"{k} {fields[k]}" for k in ("cpu family", "model", "stepping") if k in fields)
    name = fields.get("model name", platform.machine())
    return f"CPU {name} ({ids})" if ids else f"CPU {name}"


RELEASED_VARIANTS = ("official", "network:released")  # the variants that run the released code


def add_heap_argument(parser: argparse.ArgumentParser, tool: str) -> None:
    """``--heap default|keep|tools``: which glibc malloc setting each variant runs with (:mod:`irframe.heap`);
    ``tool`` names the irframe tool whose setting ``tools`` copies (``tools/infer.py``, ``tools/train.py``)."""
    parser.add_argument(
        "--heap", choices=("default", "keep", "tools"), default=None,
        help="glibc's malloc: 'default' for every variant; 'keep' freed memory for reuse in every variant "
             "(irframe.heap, the released code's too); 'tools' (--isolated only, its default): irframe's "
             f"variants keep it as {tool} does, the released code runs with glibc's default as its scripts do",
    )


def heap_setting(parser: argparse.ArgumentParser, args: argparse.Namespace, tool: str) -> str:
    """Settle ``args.heap`` (default ``tools`` with ``--isolated``, else ``default``), refuse ``tools`` in one
    process, set ``keep`` for this process when the variants share it, and say the setting for the header."""
    if args.heap is None:
        args.heap = "tools" if args.isolated else "default"
    if args.heap == "tools" and not args.isolated:
        parser.error("--heap tools needs --isolated (one process cannot run two malloc settings)")
    said = {
        "default": "glibc's default in every variant",
        "keep": "every variant keeps freed memory (irframe.heap)",
        "tools": f"irframe's variants keep freed memory as {tool} does, the released code has glibc's default",
    }[args.heap]
    if args.heap == "keep" and not args.isolated:
        from irframe.heap import keep_freed_memory

        said += ": " + keep_freed_memory()
    return said


def keeps_heap(variant: str, heap: str) -> bool:
    """Whether ``variant``'s own process keeps freed memory (:mod:`irframe.heap`) under ``--heap``."""
    return heap == "keep" or (heap == "tools" and variant not in RELEASED_VARIANTS)


def released_file(arch: str, repo: Path, rel: str | None = None) -> Path:
    """``rel`` (default: the arch's model file) inside the user's checkout ``repo``; exits naming the
    option and the repository when it is not there."""
    released = RELEASED[arch]
    rel = released.file if rel is None else rel
    file = repo / rel
    if not file.is_file():
        raise SystemExit(f"{released.option} {repo}: {rel} not found (a checkout of {released.url}?)")
    return file


def load_file(file: Path, name: str) -> types.ModuleType:
    """The Python file ``file`` imported as a module named ``name`` (not added to ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def released_net(repo: Path, cfg: dict, ours: torch.nn.Module) -> torch.nn.Module:
    """The released Restormer or PromptIR class (``cfg["type"]``) from the user's checkout, built
    with ``cfg``'s options and loaded with ``ours``' weights (strict). PromptIR gets ``decoder=True``
    unless ``cfg`` says otherwise, as the released train.py/test.py build it."""
    arch = cfg["type"]
    module = load_file(released_file(arch, repo), f"official_{arch.lower()}_model")
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    if arch == "PromptIR":
        kwargs.setdefault("decoder", True)
    net = getattr(module, arch)(**kwargs)
    net.load_state_dict(ours.state_dict(), strict=True)
    return net


def sync(device: str) -> None:
    """Wait for the GPU's queued work (nothing to wait for on the CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], iters: int, device: str) -> float:
    """Seconds per call of ``fn`` over ``iters`` calls (the device synchronised before and after)."""
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return (time.perf_counter() - start) / iters


def make_trainer(
    model: torch.nn.Module,
    batch: dict,
    device: str,
    workdir: Path,
    *,
    mixed_precision: str = "no",
    grad_clip: float | None = None,
    ema_decay: float = 0.0,
    optim: dict | None = None,
    compile_backend: str | None = None,
):
    """irframe's Trainer around ``model``, fed the same batch forever (no experiment folder I/O).

    ``mixed_precision``, ``grad_clip``, ``ema_decay``, ``optim`` as the ``train:`` options;
    ``compile_backend`` (e.g. ``"inductor"``) compiles through accelerate's dynamo plugin, as
    ``train.compile`` does. Call ``irframe.train.build._shutdown(trainer.accelerator)`` before
    making another trainer with other accelerate settings in the same process.
    """
    from accelerate import Accelerator
    from accelerate.utils import TorchDynamoPlugin

    from irframe.options import TrainOptions
    from irframe.train.build import training_compile_options
    from irframe.train.ema import ModelEMA
    from irframe.train.logger import TrainLogger
    from irframe.train.step import StepContext, SupervisedStep
    from irframe.train.trainer import LoopSettings, Trainer
    from irframe.train.training_state import Checkpointer

    # the inductor options train.compile passes (channels-last backward graphs on the CPU)
    options = training_compile_options(device == "cpu") if compile_backend == "inductor" else None
    extra = {"dynamo_plugin": TorchDynamoPlugin(backend=compile_backend, options=options)} if compile_backend else {}
    accelerator = Accelerator(
        cpu=device == "cpu", mixed_precision=mixed_precision, step_scheduler_with_optimizer=False, **extra
    )
    total = 10**9  # never reached: the benchmark calls run_iteration() itself
    train = TrainOptions(
        total_iter=total,
        optim=optim or {"type": "AdamW", "lr": 1e-4},
        scheduler={"type": "CosineAnnealingLR", "T_max": 100000},
        losses=[{"type": "L1Loss"}],
        grad_clip=grad_clip,
        ema_decay=ema_decay,
    )
    ema = ModelEMA(model, ema_decay) if ema_decay > 0 else None
    step = SupervisedStep(StepContext(model, train, ema))
    step.prepare(accelerator)
    logger = TrainLogger(None, None, total, 0, is_main=True, progress_bar=False)
    settings = LoopSettings(total_iter=total, print_freq=total, checkpoint_freq=total)
    checkpointer = Checkpointer(workdir, 1, {"type": "Restormer"})
    return Trainer(accelerator, step, itertools.repeat(batch), settings, checkpointer, logger)


def reference_step(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    scheduler: Any = None,
    grad_clip: float | None = None,
    ema_decay: float = 0.0,
    precision: str = "no",
    device: str = "cpu",
) -> Callable[[], None]:
    """The training step a user would otherwise write (a re-implementation of BasicSR's
    ``optimize_parameters``, named as one in every figure): zero_grad, forward, L1, backward,
    ``clip_grad_norm_`` (with ``grad_clip``), step, the scheduler's step (when given), then with
    ``ema_decay`` BasicSR's ``model_ema`` as a per-tensor ``mul_().add_()`` loop. ``precision``
    ``bf16``/``fp16``: autocast around forward and loss, as PyTorch's AMP recipe, with a GradScaler
    for fp16 (``no``/``fp32``: plain float32).
    """
    ema = copy.deepcopy(model).eval().requires_grad_(False) if ema_decay > 0 else None
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.split(":")[0]) if precision == "fp16" else None
    lq, gt = batch["lq"], batch["gt"]
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        ctx = torch.autocast(device.split(":")[0], dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with ctx:
            loss = F.l1_loss(model(lq), gt)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            with torch.no_grad():
                net = dict(model.named_parameters())
                for k, p in ema.named_parameters():
                    p.data.mul_(ema_decay).add_(net[k].data, alpha=1 - ema_decay)

    return step
