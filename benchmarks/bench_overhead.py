"""Training-loop overhead: one iteration of irframe's Trainer vs a bare hand-written PyTorch loop.

Both train their own copy of the same model (same initial weights) on the same in-memory batch
with the same optimizer, scheduler and L1 loss; the data loader is left out of both, so the ratio
isolates what the trainer adds (accelerate's wrappers, loss bookkeeping on the device, NaN
detection; EMA off, no progress bar). Rounds of the two loops are interleaved and the
ratio of the best rounds is printed (other load only adds time), with the median of the per-round
ratios next to it. Goal: <= 1.05x.

    python benchmarks/bench_overhead.py                  # CPU, small Restormer
    python benchmarks/bench_overhead.py --device cuda --dim 48 --blocks 4 6 6 8 --size 128
"""

from __future__ import annotations

import argparse
import copy
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def build_model(args: argparse.Namespace) -> torch.nn.Module:
    from irframe.registry import ARCHS

    torch.manual_seed(0)
    return ARCHS.build({
        "type": "Restormer", "dim": args.dim, "num_blocks": args.blocks, "num_refinement_blocks": args.blocks[0],
        "heads": [1, 2, 4, 8], "LayerNorm_type": "BiasFree",
    })


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

    from irframe.options import LossOptions
    from irframe.train.checkpointer import Checkpointer
    from irframe.train.ema import ModelEMA
    from irframe.train.logger import TrainLogger
    from irframe.train.loss import WeightedLoss
    from irframe.train.optim import build_optimizer, build_scheduler
    from irframe.train.trainer import LoopSettings, Trainer

    extra = {"dynamo_plugin": TorchDynamoPlugin(backend=compile_backend)} if compile_backend else {}
    accelerator = Accelerator(
        cpu=device == "cpu", mixed_precision=mixed_precision, step_scheduler_with_optimizer=False, **extra
    )
    ema = ModelEMA(model, ema_decay) if ema_decay > 0 else None
    optimizer = build_optimizer(model, optim or {"type": "AdamW", "lr": 1e-4})
    scheduler = build_scheduler(optimizer, {"type": "CosineAnnealingLR", "T_max": 100000})
    model, optimizer = accelerator.prepare(model, optimizer)
    if ema is not None:
        ema.model.to(accelerator.device)
    losses = WeightedLoss.from_options([LossOptions(type="L1Loss")]).to(accelerator.device)
    total = 10**9  # never reached: the benchmark calls run_iteration() itself
    logger = TrainLogger(None, None, total, 0, is_main=True, progress_bar=False)
    settings = LoopSettings(total_iter=total, print_freq=total, checkpoint_freq=total, grad_clip=grad_clip)
    checkpointer = Checkpointer(workdir, 1, {"type": "Restormer"})
    return Trainer(
        accelerator, model, optimizer, scheduler, losses, itertools.repeat(batch), settings, checkpointer, logger,
        ema=ema,
    )


def make_bare_step(model: torch.nn.Module, batch: dict):
    """The hand-written loop: zero_grad, forward, L1, backward, step, schedule."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=100000)
    lq, gt = batch["lq"], batch["gt"]
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = F.l1_loss(model(lq), gt)
        loss.backward()
        optimizer.step()
        scheduler.step()

    return step


def timed(fn, iters: int, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--blocks", type=int, nargs=4, default=[1, 1, 1, 1])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--iters", type=int, default=10, help="iterations per timed round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    base = build_model(args)
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(args.batch, 3, args.size, args.size, generator=g)
    batch = {"lq": (gt + 0.1 * torch.randn(gt.shape, generator=g)).to(args.device), "gt": gt.to(args.device)}
    bare = make_bare_step(copy.deepcopy(base).to(args.device), batch)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(copy.deepcopy(base), batch, args.device, Path(tmp))
        trainer.model.train()
        ours = trainer.run_iteration
        timed(bare, args.warmup, args.device)
        timed(ours, args.warmup, args.device)
        bare_times, our_times = [], []
        for _ in range(args.rounds):
            bare_times.append(timed(bare, args.iters, args.device))
            our_times.append(timed(ours, args.iters, args.device))
        trainer.logger.close()
    ratios = [o / b for o, b in zip(our_times, bare_times)]
    print(
        f"device {args.device}, Restormer dim {args.dim} blocks {args.blocks}, batch "
        f"{args.batch}x3x{args.size}x{args.size}, "
        f"{args.rounds} rounds of {args.iters} iterations"
    )
    print(
        f"bare PyTorch loop : best {min(bare_times) * 1e3:8.2f} ms/iteration, median "
        f"{statistics.median(bare_times) * 1e3:8.2f}"
    )
    print(
        f"irframe Trainer   : best {min(our_times) * 1e3:8.2f} ms/iteration, median "
        f"{statistics.median(our_times) * 1e3:8.2f}"
    )
    # Other load only ever adds time, so the best rounds are the least disturbed estimate.
    print(
        f"overhead ratio    : {min(our_times) / min(bare_times):.3f}x (best rounds; median of per-round ratios "
        f"{statistics.median(ratios):.3f}x; goal <= 1.05x)"
    )


if __name__ == "__main__":
    main()
