"""Fixtures of the evaluation tests: a registered toy arch with a predictable output, tiny image sets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

from irframe.nn.spec import ModelSpec


class EvalToyNet(nn.Module):
    """Identity plus a constant ``offset`` (nearest upsampling for ``scale > 1``): outputs are known.

    One learnable parameter (``offset``) so checkpoints load and parameter counts are non-zero.
    ``tasks`` makes it a multi-task model whose task ``i`` adds ``offset * (i + 1)``.
    """

    def __init__(
        self,
        channels: int = 3,
        scale: int = 1,
        size_multiple: int = 1,
        offset: float = 0.0,
        tasks: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.offset = nn.Parameter(torch.tensor(float(offset)))
        self.scale = scale
        self.tasks = list(tasks or [])
        self.spec = ModelSpec(
            in_channels=channels, out_channels=channels, scale=scale, size_multiple=size_multiple,
            tasks=tuple(self.tasks),
        )

    def forward(self, x: torch.Tensor, task: str | int | None = None) -> torch.Tensor:
        if x.shape[-2] % self.spec.size_multiple or x.shape[-1] % self.spec.size_multiple:
            raise ValueError(f"EvalToyNet: input {tuple(x.shape)} is not padded to {self.spec.size_multiple}")
        y = F.interpolate(x, scale_factor=self.scale, mode="nearest") if self.scale > 1 else x
        factor = 1.0
        if task is not None:
            factor = float((self.tasks.index(task) if isinstance(task, str) else task) + 1)
        return y + self.offset * factor


@pytest.fixture
def toy_arch(registry_sandbox):
    """Registers ``EvalToyNet`` for the duration of one test."""
    from irframe.registry import ARCHS

    ARCHS.register("EvalToyNet", EvalToyNet)
    return EvalToyNet


def write_png(path: Path, img: np.ndarray) -> Path:
    """Write an RGB (HxWx3) or gray (HxW) uint8/uint16 array as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = img[:, :, ::-1] if img.ndim == 3 else img
    assert cv2.imwrite(str(path), np.ascontiguousarray(arr))
    return path


@pytest.fixture
def paired_set(tmp_path: Path) -> Path:
    """``gt/`` and ``lq/`` folders with three 20x24 RGB pairs (smooth GT, noisy LQ)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for i in range(3):
        yy, xx = np.mgrid[0:20, 0:24]
        gt = np.stack([(xx * 10 + i * 20) % 256, (yy * 12) % 256, ((xx + yy) * 5) % 256], -1).astype(np.uint8)
        lq = np.clip(gt + rng.normal(0, 12, gt.shape), 0, 255).astype(np.uint8)
        write_png(root / "gt" / f"im{i}.png", gt)
        write_png(root / "lq" / f"im{i}.png", lq)
    return root


@pytest.fixture
def write_options(tmp_path: Path) -> Callable[..., Path]:
    """Write an option file: ``write_options(name, model, datasets, metrics, **test)``."""

    def make(
        name: str, model: dict, datasets: dict, metrics: list | None = None, filename: str | None = None, **test
    ) -> Path:
        data = {
            "name": name,
            "model": model,
            "test": {
                "datasets": datasets,
                "metrics": metrics if metrics is not None else [{"type": "PSNR"}, {"type": "SSIM"}],
                **test,
            },
        }
        path = tmp_path / (filename or f"{name}.yml")
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return make


@pytest.fixture
def png() -> Callable[[Path, np.ndarray], Path]:
    """The PNG writer, for tests that make their own images."""
    return write_png
