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
import statistics
import tempfile
from pathlib import Path

import torch
from common import make_trainer, reference_step, timed


def build_model(args: argparse.Namespace) -> torch.nn.Module:
    from irframe.registry import ARCHS

    torch.manual_seed(0)
    return ARCHS.build({
        "type": "Restormer", "dim": args.dim, "num_blocks": args.blocks, "num_refinement_blocks": args.blocks[0],
        "heads": [1, 2, 4, 8], "LayerNorm_type": "BiasFree",
    })


def make_bare_step(model: torch.nn.Module, batch: dict):
    """The hand-written loop: zero_grad, forward, L1, backward, step, schedule."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=100000)
    return reference_step(model, batch, optimizer, scheduler=scheduler)


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
