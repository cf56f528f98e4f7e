"""irframe: a plugin-based framework for image-restoration transformers.

Importing this package touches nothing: no plugin import, no disk, no command-line parsing.
Registries live in :mod:`irframe.registry`; plugins load on the first lookup.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["PLUGIN_API_VERSION", "__version__", "load_model"]


def __getattr__(name: str) -> Any:
    """``irframe.PLUGIN_API_VERSION`` (from :mod:`irframe.registry`, which imports no plugin and no torch)."""
    if name == "PLUGIN_API_VERSION":
        from irframe.registry import PLUGIN_API_VERSION

        return PLUGIN_API_VERSION
    raise AttributeError(f"module 'irframe' has no attribute {name!r}")


def load_model(path: str, **kwargs: Any) -> Any:
    """Load a model from a checkpoint file, detecting its arch (see :mod:`irframe.nn.autoload`)."""
    from irframe.nn.autoload import load_model as _load_model

    return _load_model(path, **kwargs)
