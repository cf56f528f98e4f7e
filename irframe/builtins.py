"""Registers the core's own components (loaded by the registry like a plugin, never at import)."""

from __future__ import annotations

import importlib

# Modules whose decorators register core components. Keep this list in sync with new modules.
CORE_MODULES = (
    "irframe.losses",
    "irframe.metrics",
    "irframe.data.degradations",
    "irframe.data.datasets",
    "irframe.train.optim",
    "irframe.train.step",
    "irframe.train.adversarial",
    "irframe.evaluate.classical",
)


def register() -> None:
    """Import every core module that registers components."""
    for name in CORE_MODULES:
        importlib.import_module(name)
