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


# -- how the command-line tools report them ----------------------------------------------------------
CLI_ERROR_STATUS = 2
"""Exit status of a tool stopped by an :class:`IrframeError` (bad options, data or checkpoint)."""


def error_message(exc: BaseException) -> str:
    """The message of ``exc`` as the command-line tools print it (after ``error: ``).

    A DataLoader worker re-raises a dataset's error with the worker's whole traceback as its
    message; what the user needs (the file or record at fault) is the original message, which the
    traceback ends with after ``module.ErrorClass: ``.
    """
    text = str(exc)
    if not (text.startswith("Caught ") and "\nOriginal Traceback" in text):
        return text
    marker = f"{type(exc).__module__}.{type(exc).__qualname__}: "
    at = text.rfind(marker)
    return text[at + len(marker) :].rstrip("\n") if at >= 0 else text


def report_error(exc: BaseException, status: int = CLI_ERROR_STATUS) -> int:
    """The one way a tool ends on an error: one ``error: ...`` line on stderr; returns ``status``.

    Under ``accelerate launch``'s one-process launcher the line goes to stdout: that launcher
    repeats the child's stderr in its own traceback, which would show the line twice
    (:func:`irframe.launch.error_stream`).
    """
    from irframe.launch import error_stream

    print(f"error: {error_message(exc)}", file=error_stream())
    return status
