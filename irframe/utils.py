"""Small shared helpers: the seed policy and random-number-generator state capture.

The seed policy, in one place:

* :func:`seed_everything` seeds python, numpy and torch with the *same* seed on every process, so a
  model built right after it has identical initial weights on every rank (DDP also broadcasts them,
  but an identical start keeps 1-process and N-process runs comparable).
* Data order and per-sample randomness do not depend on the process: the batch samplers of
  :mod:`irframe.data.samplers` derive the order and a seed per drawn sample from the seed and the
  iteration, and hand each rank a slice of the same global batch; DataLoader workers are seeded
  from a dedicated generator (:func:`seed_worker` also seeds numpy and python in them).
* :func:`get_rng_state` / :func:`set_rng_state` save and restore the global generators of one
  process, so a resumed run continues the exact random stream it stopped in.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed python's ``random``, numpy and torch (CPU and every GPU) with ``seed``.

    Args:
        seed: the options' seed; the same on every process (see the module docstring).
        deterministic: also ask torch for deterministic kernels (bit-identical reruns on CPU;
            slower on GPU). Ops without a deterministic version warn instead of failing.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        # cuBLAS needs this workspace setting for deterministic matmuls (read at first use).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and python from the worker's torch seed.

    torch seeds each worker from the loader's generator; numpy is not seeded by torch, so without
    this every worker (and every epoch) would draw the same numpy numbers.
    """
    del worker_id  # the torch seed already differs per worker
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def get_rng_state() -> dict[str, Any]:
    """The global random states of this process (python, numpy, torch CPU and CUDA).

    Only tensors, ints, strings and tuples/lists of them, so ``torch.load(weights_only=True)``
    can read the result back.
    """
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py_version, torch.tensor(py_state, dtype=torch.int64), py_gauss],
        "numpy": [np_name, torch.from_numpy(np.asarray(np_keys, dtype=np.int64)), np_pos, np_has_gauss, np_gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states captured by :func:`get_rng_state`."""
    py_version, py_state, py_gauss = state["python"]
    random.setstate((py_version, tuple(int(v) for v in py_state.tolist()), py_gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_name, np_keys.numpy().astype(np.uint32), int(np_pos), int(np_has_gauss), float(np_gauss)))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def cache_root() -> Path:
    """irframe's cache folder: ``$IRFRAME_CACHE``, else ``~/.cache/irframe`` (ONNX graphs, compiled kernels)."""
    root = os.environ.get("IRFRAME_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "irframe"
