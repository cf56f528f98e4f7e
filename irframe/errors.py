"""Exception types. Every message names the file, key or value at fault."""

from __future__ import annotations


class IrframeError(Exception):
    """Base class of irframe's own errors."""


class RegistryError(IrframeError, KeyError):
    """Unknown or doubly registered component."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class PluginError(IrframeError):
    """A plugin failed to load."""


class OptionsError(IrframeError, ValueError):
    """A bad option file, key or value."""


class DataError(IrframeError, ValueError):
    """A missing, unreadable or inconsistent data file / record."""


class CheckpointError(IrframeError, ValueError):
    """A checkpoint that cannot be read, is unsafe, or does not match the model."""


class DistributedError(IrframeError, RuntimeError):
    """A multi-process run that cannot go on: another process stalled, stopped or died."""
