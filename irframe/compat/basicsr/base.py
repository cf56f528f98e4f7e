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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from irframe.options_schema import Options
from irframe.text import suggest

#: BasicSR / Real-ESRGAN ``model_type`` values that train a discriminator beside ``network_g``.
GAN_MODEL_TYPES = ("SRGANModel", "ESRGANModel", "RealESRGANModel")

#: irframe's loader keys -> BasicSR's names (for a native key written into a BasicSR-style file).
NATIVE_LOADER_KEYS: dict[str, str] = {
    "batch_size": "batch_size_per_gpu",
    "num_workers": "num_worker_per_gpu",
    "shuffle": "use_shuffle",
    "enlarge_ratio": "dataset_enlarge_ratio",
}


@dataclass
class Translation:
    """What :func:`translate` produced: the native options, the notes and the key mapping.

    ``problems`` are the keys without a translation (``translate`` raises them; the collecting form
    used by :func:`irframe.options.load_options` returns them, so they are reported together with
    the native checks of what did translate). ``omitted`` are the native keys left out because of a
    problem (their "missing" errors would only repeat it); ``renames`` lead a native key back to
    the BasicSR key it came from (:meth:`user_path`).
    """

    native: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # "<basicsr key>: why it was dropped / how it maps"
    mapped: list[tuple[str, str]] = field(default_factory=list)  # (basicsr key, native key)
    problems: list[str] = field(default_factory=list)  # "<basicsr key>: what is wrong"
    renames: list[tuple[str, str]] = field(default_factory=list)  # (native prefix, basicsr prefix)
    omitted: list[str] = field(default_factory=list)  # native keys not written because of a problem
    suggested: list[str] = field(default_factory=list)  # BasicSR keys offered for a misspelled one

    def user_path(self, native_path: str) -> str:
        """The key as the BasicSR file spells it: ``train.optim.lrr`` -> ``train.optim_g.lrr``,
        ``model.num_feat`` -> ``network_g.num_feat``, ``datasets.Set5.x`` -> ``datasets.val.x``.

        The longest native prefix (whole dotted parts) that a BasicSR key was translated into is
        replaced by that key; a path no BasicSR key produced is returned unchanged.
        """
        best: tuple[str, str] | None = None
        for dst, src in [*self.renames, *((d, s) for s, d in self.mapped)]:
            under = native_path == dst or native_path.startswith(dst + ".")
            if _is_path(dst) and under and (best is None or len(dst) > len(best[0])):
                best = (dst, src)
        if best is None:
            return native_path
        return best[1] + native_path[len(best[0]) :]

    def is_omitted(self, native_path: str) -> bool:
        """Whether ``native_path`` lies in a part left out because of a translation problem (a
        refused section, or a misspelled key for which the problem offers this one)."""
        if any(native_path == o or native_path.startswith(o + ".") for o in self.omitted):
            return True
        return self.user_path(native_path) in self.suggested


def _is_path(dst: str) -> bool:
    """A mapped native key that is one dotted path (not ``datasets.*.scale`` or ``a + b``)."""
    return bool(dst) and "*" not in dst and " " not in dst


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
        self.renames: list[tuple[str, str]] = []
        self.omitted: list[str] = []
        self.suggested: list[str] = []
        self.is_train = False
        self.scale = 1
        self.model_type: str | None = None
        self.dst = ""  # the native path of the dataset being translated
        self.network_d: dict[str, Any] | None = None  # BasicSR's network_d (train.step.network_d)
        self.realesrgan: dict[str, Any] = {}  # Real-ESRGAN's top-level keys (degradation, USM targets, ...)
        self.realesrgan_synthesis = False  # a RealESRGANModel/RealESRNetModel file degrading batches on the device

    @property
    def adversarial(self) -> bool:
        """Whether the file's ``model_type`` trains a discriminator (``train.step: AdversarialStep``)."""
        return self.model_type in GAN_MODEL_TYPES

    # -- bookkeeping ------------------------------------------------------------------------------
    def map(self, src: str, dst: str) -> None:
        self.mapped.append((src, dst))

    def note(self, src: str, text: str) -> None:
        self.notes.append(f"{src}: {text}")

    def problem(self, src: str, text: str, omits: str | None = None) -> None:
        """Record a key without a translation; ``omits``: the native key left out because of it."""
        self.problems.append(f"{src}: {text}")
        if omits is not None:
            self.omitted.append(omits)

    def rename(self, dst: str, src: str) -> None:
        """Say that native ``dst`` (and what is under it) is spelled ``src`` in the BasicSR file
        (for messages; not a mapped key)."""
        self.renames.append((dst, src))

    def unknown(self, prefix: str, keys: Iterable[Any], known: Iterable[str] = ()) -> None:
        """Report each of ``keys`` (left under ``prefix`` after a section took what it knows) as a
        problem, with the closest of the section's ``known`` BasicSR keys as "did you mean"."""
        choices = list(known)
        for key in keys:
            if not prefix and key in Options.model_fields:
                self.problem(key, "a native irframe key in a BasicSR-style file: write the file in one layout")
                continue
            hint = suggest(key, choices) if choices else None
            native = NATIVE_LOADER_KEYS.get(str(key)) if prefix.startswith("datasets.") else None
            if native is not None and native in choices:
                text = f"irframe's loader key in a BasicSR-style file; BasicSR's name is {native!r}"
            elif hint is not None:
                text = f"unknown BasicSR key; did you mean {hint!r}?"
                self.suggested.append(f"{prefix}{hint}")
            else:
                text = "unknown BasicSR key (no irframe equivalent is known for it)"
            self.problem(f"{prefix}{key}", text)

    def section(self, raw: Mapping[str, Any], key: str) -> dict[str, Any] | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.problem(key, f"expected a mapping, got {value!r}")
            return None
        return dict(value)
