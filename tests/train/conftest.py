"""Fixtures of the training tests: toy components (registered in a sandbox) and toy options."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
TOYS_MODULE = "irframe_train_test_toys"


def load_toys() -> Any:
    """Import ``toys.py`` of this folder once (the tests use --import-mode=importlib)."""
    if TOYS_MODULE not in sys.modules:
        spec = importlib.util.spec_from_file_location(TOYS_MODULE, HERE / "toys.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[TOYS_MODULE] = module
        spec.loader.exec_module(module)
    return sys.modules[TOYS_MODULE]


@pytest.fixture
def toys(registry_sandbox: Any) -> Any:
    """The toy module, its components registered for this test only."""
    module = load_toys()
    module.register_toys()
    return module


@pytest.fixture
def make_options(tmp_path: Path) -> Callable[..., Any]:
    """``make_options(**sections)`` -> validated :class:`irframe.options.Options` on the toys."""
    from irframe.options import validate_options

    def make(**sections: Any) -> Any:
        return validate_options(load_toys().toy_options(tmp_path / "experiments", **sections), source="toy-options")

    return make
