"""Tiny stand-in components for the training tests: a conv net, a one-task-per-batch-aware
multi-task net, and a synthetic paired dataset whose randomness is keyed by sample index.

Importing registers nothing; :func:`register_toys` does (tests call it inside the
``registry_sandbox`` fixture so the toys never leak into other tests' registries).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from irframe.data.datasets.base import parse_key
from irframe.nn.spec import ModelSpec
from irframe.options import deep_merge
from irframe.registry import ARCHS, DATASETS


class ToyNet(nn.Module):
    """Two 3x3 convs with a residual: enough to learn denoising a little."""

    def __init__(self, channels: int = 3, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, channels, 3, padding=1)
        )
        self.spec = ModelSpec(in_channels=channels, out_channels=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ToyDisc(nn.Module):
    """A discriminator without normalisation (one logit per pixel): its gradients over a batch equal
    the mean of its micro-batches' (no batch statistics, no power iteration)."""

    role = "discriminator"

    def __init__(self, num_in_ch: int = 3, num_feat: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(num_in_ch, num_feat, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(num_feat, 1, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ToyMultiTaskNet(nn.Module):
    """Per-task heads and a shared body; ``forward(x, task, return_features)`` like IPT."""

    def __init__(self, tasks: list[str] = ["a", "b"], width: int = 8) -> None:  # noqa: B006
        super().__init__()
        self.tasks = list(tasks)
        self.heads = nn.ModuleList(nn.Conv2d(3, width, 3, padding=1) for _ in self.tasks)
        self.body = nn.Conv2d(width, width, 3, padding=1)
        self.tails = nn.ModuleList(nn.Conv2d(width, 3, 3, padding=1) for _ in self.tasks)
        self.spec = ModelSpec(tasks=tuple(self.tasks))
        self.seen_tasks: list[Any] = []

    def forward(self, x: torch.Tensor, task: str | int | None = None, return_features: bool = False) -> Any:
        self.seen_tasks.append(task)
        t = self.tasks.index(task) if isinstance(task, str) else int(task or 0)
        feats = torch.relu(self.body(self.heads[t](x)))
        out = x + self.tails[t](feats)
        return (out, feats.flatten(2).transpose(1, 2)) if return_features else out


class ToyPairs(Dataset):
    """``length`` smooth random images with Gaussian noise; sample ``i`` is the same on every call.

    Args:
        length: number of samples.
        size: image side.
        sigma: noise level (0..255 scale).
        tasks: if set, sample ``i`` carries task ``tasks[i % len(tasks)]``.
        seed: base seed of the content.
        nan_at: indices whose LQ is NaN (for the NaN-handling tests).
        gt_size: the image side under the name training patches have (``size`` otherwise), for the
            checks that read ``datasets.train.gt_size``.
    """

    def __init__(
        self, length: int = 16, size: int = 16, sigma: float = 25.0, tasks: list[str] | None = None,
        seed: int = 0, nan_at: list[int] | None = None, gt_size: int | None = None,
    ) -> None:
        self.length, self.size, self.sigma = length, gt_size or size, sigma
        self.tasks = tasks
        self.seed = seed
        self.nan_at = set(nan_at or [])

    def __len__(self) -> int:
        return self.length

    @property
    def task_indices(self) -> dict[str, list[int]]:
        assert self.tasks
        return {t: list(range(i, self.length, len(self.tasks))) for i, t in enumerate(self.tasks)}

    def __getitem__(self, key: Any) -> dict[str, Any]:
        index = parse_key(key, self.length, "ToyPairs").index
        rng = np.random.default_rng([self.seed, index])
        coarse = rng.random((3, self.size // 4, self.size // 4)).astype(np.float32)
        gt = torch.from_numpy(coarse).repeat_interleave(4, 1).repeat_interleave(4, 2)
        noise = torch.from_numpy(rng.standard_normal(gt.shape).astype(np.float32)) * (self.sigma / 255)
        lq = gt + noise
        if index in self.nan_at:
            lq = torch.full_like(lq, float("nan"))
        sample = {"lq": lq, "gt": gt, "lq_path": f"toy/{index}", "gt_path": f"toy/{index}", "name": f"toy{index:03d}"}
        if self.tasks:
            sample["task"] = self.tasks[index % len(self.tasks)]
        return sample


class ToyFeatureLoss(nn.Module):
    """A feature loss (like IPT's contrastive one): mean squared feature."""

    uses_features = True

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return feats.pow(2).mean()


def toy_options(root: Path, **sections: Any) -> dict[str, Any]:
    """A small, fast option mapping on the toy components; ``sections`` deep-override it."""
    base: dict[str, Any] = {
        "name": "toy",
        "seed": 3,
        "deterministic": True,
        "model": {"type": "ToyNet"},
        "datasets": {
            "train": {"type": "ToyPairs", "batch_size": 4},
            "val": {"type": "ToyPairs", "length": 3, "seed": 9},
        },
        "train": {
            "total_iter": 8,
            "optim": {"type": "AdamW", "lr": 2e-3},
            "scheduler": {"type": "CosineAnnealingLR", "T_max": 8},
            "losses": [{"type": "L1Loss"}],
            "ema_decay": 0.9,
        },
        "val": {"freq": 4, "metrics": [{"type": "PSNR"}]},
        "logger": {"print_freq": 4, "checkpoint_freq": 4, "tensorboard": False, "progress_bar": False},
        "path": {"experiments_root": str(root)},
    }
    return deep_merge(base, sections)


def register_toys() -> None:
    """Register the toy arch, multi-task arch and dataset (idempotent)."""
    for registry, name, obj in (
        (ARCHS, "ToyNet", ToyNet),
        (ARCHS, "ToyMultiTaskNet", ToyMultiTaskNet),
        (ARCHS, "ToyDisc", ToyDisc),
        (DATASETS, "ToyPairs", ToyPairs),
    ):
        if name not in registry:
            registry.register(name, obj)
