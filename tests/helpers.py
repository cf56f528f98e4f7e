"""Helpers shared by the test modules (reference files, golden weight fill)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
# ../shared beside the checkout (CI and developers have it; a plain clone may not).
SHARED = Path(os.environ.get("IRFRAME_SHARED", ROOT.parent / "shared"))


def read_official(name: str) -> tuple[list[tuple[str, tuple[int, ...]]], int]:
    """``(name, shape)`` entries of ``fixtures/official/<name>.txt`` and its declared float-value count."""
    entries, total = [], -1
    for line in (FIXTURES / "official" / f"{name}.txt").read_text().splitlines():
        if line.startswith("#"):
            if "floating-point values" in line:
                total = int(line.split(",")[1].split()[0])
            continue
        if line.strip():
            key, shape = line.split("\t")
            entries.append((key, tuple(int(v) for v in re.findall(r"\d+", shape))))
    return entries, total


def official_state_dict(name: str, device: str = "cpu") -> dict[str, torch.Tensor]:
    """A zero state dict (meta tensors with ``device="meta"``) with an official layout's names and shapes."""
    entries, _ = read_official(name)
    make = torch.empty if device == "meta" else torch.zeros
    return {
        k: make(s, device=device, dtype=torch.int64 if k.endswith("position_ids") else torch.float32)
        for k, s in entries
    }


def golden_fill(model: torch.nn.Module, keep: tuple[str, ...] = ()) -> None:
    """Fill floating state_dict entries with ``0.1*sin(0.7*i + len(name))`` (shared/golden/README.md).

    Integer buffers and entries whose name starts with one of ``keep`` keep their values.
    """
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point() or name.startswith(keep):
                continue
            i = np.arange(t.numel(), dtype=np.float64)
            t.copy_(torch.from_numpy((0.1 * np.sin(0.7 * i + len(name))).astype(np.float32)).view_as(t))


# Tiny configs of the three built-in archs (seconds on a CPU), shared by the inference tests.
TINY_ARCHS: dict[str, dict] = {
    "Restormer": {"dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1, "heads": [1, 2, 4, 8]},
    "PromptIR": {"decoder": True, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1},
    "IPT": {"n_feats": 16, "patch_size": 48, "patch_dim": 3, "num_heads": 2, "num_layers": 1,
            "num_queries": 1, "scale": [2], "rgb_range": 255},
}


def build_tiny_arch(name: str) -> torch.nn.Module:
    """``TINY_ARCHS[name]`` built with seed 0; the test is skipped when its plugin is not installed."""
    import pytest

    from irframe.registry import ARCHS

    if name not in ARCHS:
        pytest.skip(f"arch {name} is not registered (plugin not installed)")
    torch.manual_seed(0)
    return ARCHS.build({"type": name, **TINY_ARCHS[name]}, path=f"test.{name}")


def three_iteration_run(tmp_path: Path, size: int) -> list[str]:
    """Two random ``size`` x ``size`` RGB images each in ``tmp_path/data/{train,val}``, and the
    ``--set`` overrides that train an option file on them for 3 iterations (batch 2, one validation
    and checkpoint at the end, no TensorBoard, no progress bar) into ``tmp_path/exp``."""
    from irframe.data.io import imwrite

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for i in range(2):
            imwrite(tmp_path / "data" / split / f"{i}.png", rng.random((size, size, 3), dtype=np.float32))
    return [
        f"datasets.train.dataroot_gt={tmp_path / 'data' / 'train'}",
        f"datasets.val.dataroot_gt={tmp_path / 'data' / 'val'}",
        "train.total_iter=3",
        "datasets.train.batch_size=2",
        "val.freq=3",
        "logger.checkpoint_freq=3",
        "logger.tensorboard=false",
        "logger.progress_bar=false",
        f"path.experiments_root={tmp_path / 'exp'}",
    ]
