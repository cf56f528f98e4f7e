"""Fixtures of the CUDA tests: the training tests' toys and toy options, shared (not copied)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "irframe_gpu_test_train_conftest", Path(__file__).resolve().parents[1] / "train" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train)

toys = _train.toys
make_options = _train.make_options
load_toys = _train.load_toys
