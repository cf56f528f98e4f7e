"""Helpers shared by the test modules (reference files, golden weight fill)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
# ../shared beside the checkout (CI and developers have it; a plain clone may not).
SHARED = Path(os.environ.get("IRFRAME_SHARED", ROOT.parent / "shared"))


def _official_lines(name: str) -> tuple[list[list[str]], int]:
    rows, total = [], -1
    for line in (FIXTURES / "official" / f"{name}.txt").read_text().splitlines():
        if line.startswith("#"):
            if "floating-point values" in line:
                total = int(line.split(",")[1].split()[0])
            continue
        if line.strip():
            rows.append(line.split("\t"))
    return rows, total


def read_official(name: str) -> tuple[list[tuple[str, tuple[int, ...]]], int]:
    """``(name, shape)`` entries of ``fixtures/official/<name>.txt`` and its declared float-value count.

    ``name`` may be a path below ``fixtures/official`` (``"breadth/SwinIR_classical_x2"``); the
    breadth files carry a third column (the dtype), which :func:`official_state_dict` reads.
    """
    rows, total = _official_lines(name)
    return [(row[0], tuple(int(v) for v in re.findall(r"\d+", row[1]))) for row in rows], total


def official_state_dict(name: str, device: str = "cpu") -> dict[str, torch.Tensor]:
    """A zero state dict (meta tensors with ``device="meta"``) with an official layout's names, shapes and dtypes."""
    rows, _ = _official_lines(name)
    make = torch.empty if device == "meta" else torch.zeros
    state = {}
    for row in rows:
        key, shape = row[0], tuple(int(v) for v in re.findall(r"\d+", row[1]))
        if len(row) > 2:
            dtype = getattr(torch, row[2].strip().removeprefix("torch."))
        else:
            dtype = torch.int64 if key.endswith("position_ids") else torch.float32
        state[key] = make(shape, device=device, dtype=dtype)
    return state


def official_config(name: str) -> dict[str, Any]:
    """``{"type": ARCH, **arguments}`` from line 1 of an official file that records its configuration
    (the breadth files: ``# NAME: ARCH {json arguments}``); ``name`` as for :func:`read_official`."""
    first = (FIXTURES / "official" / f"{name}.txt").read_text().split("\n", 1)[0]
    head = re.match(r"# \S+: (\w+) (\{.*\})$", first)
    if head is None:
        raise ValueError(f"fixtures/official/{name}.txt: line 1 is not '# NAME: ARCH {{arguments}}': {first!r}")
    return {"type": head.group(1), **json.loads(head.group(2))}


GOLDEN_BREADTH = FIXTURES / "golden" / "breadth"


def _breadth_configs(index_file: Path, types: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    index = json.loads(index_file.read_text())
    return {
        case: {"type": entry["type"], **entry["config"]}
        for case, entry in index.items()
        if not types or entry["type"] in types
    }


def golden_breadth_configs(*types: str) -> dict[str, dict[str, Any]]:
    """``{case: {"type": ARCH, **arguments}}`` of ``fixtures/golden/breadth/index.json`` (a copy of
    ``../shared/golden/breadth/index.json``), for the cases of the arch ``types`` given (all without)."""
    return _breadth_configs(GOLDEN_BREADTH / "index.json", types)


def shared_golden_breadth_configs(*types: str) -> dict[str, dict[str, Any]]:
    """As :func:`golden_breadth_configs`, from ``../shared/golden/breadth/index.json`` itself; the
    calling test is skipped where ``../shared`` is not present."""
    import pytest

    index_file = SHARED / "golden" / "breadth" / "index.json"
    if not index_file.is_file():
        pytest.skip("../shared/golden/breadth/index.json not present")
    return _breadth_configs(index_file, types)


def load_golden_breadth(
    case: str,
) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """``(config, input, output, state_dict)`` of the golden case ``fixtures/golden/breadth/<case>.npz``.

    ``config`` is ``{"type": ARCH, **arguments}`` from its ``index.json``; ``output`` is what the
    official code returned for ``input``; ``state_dict`` holds the official names (``sd/`` removed).
    """
    data = np.load(GOLDEN_BREADTH / f"{case}.npz")
    state = {k.removeprefix("sd/"): torch.from_numpy(data[k]) for k in data.files if k.startswith("sd/")}
    config = golden_breadth_configs()[case]
    return config, torch.from_numpy(data["input"]), torch.from_numpy(data["output"]), state


def golden_breadth_output(
    case: str, build: Callable[[dict[str, Any]], torch.nn.Module]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ours, official)``: the output of ``build(config)`` with the case's official weights loaded
    (``strict=True``, so a name or shape that differs fails first), in eval mode, on the case's input;
    and the output of the official code (shared/golden/README.md: expect a max absolute difference
    below ``1e-5 * max(1, official.abs().max())``)."""
    config, x, expected, state = load_golden_breadth(case)
    model = build(config).eval()
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        return model(x), expected


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
