"""Fixtures of the reliability tests: tiny image folders, option files, subprocess launchers.

Tests here run the real tools (``tools/train.py``, ``tools/infer.py``) in subprocesses, the way a
user does, and check what a crash or a bad input leaves behind. ``train_harness.py`` is
``tools/train.py`` plus a tiny arch (``RelNet``) and optional fault hooks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).resolve().parent / "train_harness.py"
TRAIN = ROOT / "tools" / "train.py"
INFER = ROOT / "tools" / "infer.py"
TIMEOUT = 180  # seconds for one tool run (2 shared cores: startup alone takes a few seconds)


def tool_env(**extra: str) -> dict[str, str]:
    """Environment of a tool subprocess: one thread (bit-reproducible, polite on shared cores),
    unbuffered output (lines arrive as they are printed), no fault unless asked."""
    env = {k: v for k, v in os.environ.items() if k != "IRFRAME_RELIABILITY_FAULT"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    return env


def run_tool(script: Path, args: Sequence[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python script args`` to completion (text output captured)."""
    return subprocess.run(
        [sys.executable, str(script), *args], cwd=cwd, env=tool_env(**env),
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )


def start_tool(script: Path, args: Sequence[str], cwd: Path, **env: str) -> subprocess.Popen[str]:
    """Start ``python script args`` (stdout piped, stderr merged into it)."""
    return subprocess.Popen(
        [sys.executable, str(script), *args], cwd=cwd, env=tool_env(**env),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


@pytest.fixture(autouse=True)
def one_torch_thread() -> Any:
    """One intra-op thread in this process: on a few busy shared cores, OpenMP threads waiting for
    each other make small convolutions up to 100x slower than one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def images(tmp_path: Path) -> SimpleNamespace:
    """``train/`` (6 images, 32 px) and ``val/`` (2 images, 24 px) of synthetic textures."""
    from irframe.train.synthetic import write_textured_images

    train, val = tmp_path / "data" / "train", tmp_path / "data" / "val"
    write_textured_images(train, 6, 32, seed=0)
    write_textured_images(val, 2, 24, seed=1)
    return SimpleNamespace(train=train, val=val)


def train_options(images: SimpleNamespace, experiments: Path, name: str, **changes: Any) -> dict[str, Any]:
    """A tiny, deterministic training run on ``RelNet``: a checkpoint every iteration (so a random
    kill often lands in a save), validation every 2 (``best/`` is re-saved often), EMA on."""
    from irframe.options import deep_merge

    base: dict[str, Any] = {
        "name": name,
        "seed": 5,
        "deterministic": True,
        # one thread in every run: the automatic choice follows the machine's load, and a weight
        # gradient summed on 1 or 2 threads differs in the last bit, so a resumed segment that got
        # another thread count than the reference could never be bit-identical to it
        "threads": 1,
        "model": {"type": "RelNet", "width": 8},
        "datasets": {
            "train": {
                "type": "OnlineDegradationDataset",
                "dataroot_gt": str(images.train),
                "degradation": {"type": "GaussianNoise", "sigma": 25},
                "gt_size": 16,
                "use_flip": True,
                "use_rot": True,
                "batch_size": 2,
            },
            "val": {
                "type": "OnlineDegradationDataset",
                "dataroot_gt": str(images.val),
                "degradation": {"type": "GaussianNoise", "sigma": 25},
                "seed": 0,
            },
        },
        "train": {
            "total_iter": 16,
            "optim": {"type": "AdamW", "lr": 2e-3},
            "scheduler": {"type": "CosineAnnealingLR", "T_max": 16},
            "losses": [{"type": "L1Loss"}],
            "ema_decay": 0.9,
        },
        "val": {"freq": 2, "metrics": [{"type": "PSNR"}]},
        "logger": {
            "print_freq": 1,
            "checkpoint_freq": 1,
            "keep_checkpoints": 2,
            "tensorboard": False,
            "progress_bar": False,
        },
        "path": {"experiments_root": str(experiments)},
    }
    return deep_merge(base, changes)


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, Any], Path]:
    """``write_yaml(filename, data_or_text)`` -> path of the written file under ``tmp_path``."""

    def write(filename: str, content: Any) -> Path:
        path = tmp_path / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def relnet(registry_sandbox: Any) -> type:
    """``RelNet`` (the harness's tiny arch) registered for this test only."""
    import importlib.util

    from irframe.registry import ARCHS

    spec = importlib.util.spec_from_file_location("irframe_reliability_harness", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines RelNet; runs nothing (main() is guarded)
    ARCHS.register("RelNet", module.RelNet)
    return module.RelNet


@pytest.fixture
def tools() -> SimpleNamespace:
    """The launchers and paths (test modules cannot import conftest under importlib mode)."""
    return SimpleNamespace(
        run=run_tool, start=start_tool, env=tool_env, train_options=train_options,
        HARNESS=HARNESS, TRAIN=TRAIN, INFER=INFER, ROOT=ROOT, TIMEOUT=TIMEOUT,
    )
