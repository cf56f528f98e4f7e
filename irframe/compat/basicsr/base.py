"""What every section of the BasicSR translator shares: the bookkeeping of mapped keys, notes and
problems, and the small value readers of the dialect.

Each section (:mod:`.network`, :mod:`.datasets`, :mod:`.train`, :mod:`.val`) is a class deriving
from :class:`TranslatorBase`; :class:`~irframe.compat.basicsr.translator.Translator` combines them.
A section method takes the BasicSR mapping it reads, writes native keys into ``native`` and calls
:meth:`~TranslatorBase.map` for each key it maps, :meth:`~TranslatorBase.note` for each key it drops
or changes on purpose, :meth:`~TranslatorBase.problem` for what has no translation, and
:meth:`~TranslatorBase.unknown` for whatever is left.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from irframe.options_schema import Options


@dataclass
class Translation:
    """What :func:`translate` produced: the native options, the notes and the key mapping."""

    native: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # "<basicsr key>: why it was dropped / how it maps"
    mapped: list[tuple[str, str]] = field(default_factory=list)  # (basicsr key, native key)


def as_int(value: Any) -> Any:
    """``4e3`` (BasicSR writes frequencies as ``!!float 4e3``) -> ``4000``; other values unchanged."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def is_off(value: Any) -> bool:
    """BasicSR's "not set": ``~``/null, or the string ``none`` Restormer writes for ``dataroot_lq``."""
    return value is None or (isinstance(value, str) and value.strip().lower() in ("none", "~", ""))


class TranslatorBase:
    """The translation state of one file: what was mapped, noted and refused so far."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.notes: list[str] = []
        self.problems: list[str] = []
        self.mapped: list[tuple[str, str]] = []
        self.is_train = False
        self.scale = 1
        self.dst = ""  # the native path of the dataset being translated

    # -- bookkeeping ------------------------------------------------------------------------------
    def map(self, src: str, dst: str) -> None:
        self.mapped.append((src, dst))

    def note(self, src: str, text: str) -> None:
        self.notes.append(f"{src}: {text}")

    def problem(self, src: str, text: str) -> None:
        self.problems.append(f"{src}: {text}")

    def unknown(self, prefix: str, keys: Any) -> None:
        for key in keys:
            if not prefix and key in Options.model_fields:
                self.problem(key, "a native irframe key in a BasicSR-style file: write the file in one layout")
            else:
                self.problem(f"{prefix}{key}", "unknown BasicSR key (no irframe equivalent is known for it)")

    def section(self, raw: Mapping[str, Any], key: str) -> dict[str, Any] | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.problem(key, f"expected a mapping, got {value!r}")
            return None
        return dict(value)
