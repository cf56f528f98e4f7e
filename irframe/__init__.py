"""irframe: a plugin-based framework for image-restoration transformers.

Importing this package touches nothing: no plugin import, no disk, no command-line parsing.
Registries live in :mod:`irframe.registry`; plugins load on the first lookup.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_model"]


def load_model(path: str, **kwargs: Any) -> Any:
    """Load a model from a checkpoint file, detecting its arch (see :mod:`irframe.nn.autoload`)."""
    from irframe.nn.autoload import load_model as _load_model

    return _load_model(path, **kwargs)
