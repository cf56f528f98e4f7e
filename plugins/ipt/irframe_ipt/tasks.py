"""IPT task names: the canonical ones, and the spellings users type for them.

Canonical names (what :attr:`IPT.tasks` holds by default, see ``default_task_names``):
``sr_x<N>`` (super-resolution by ``N``), ``denoise<S>`` (Gaussian noise of sigma ``S``), ``derain``.

==============  ===========================================================================
canonical       also accepted (any case; ``-`` and spaces count as ``_``)
==============  ===========================================================================
``sr_x2``       ``sr2``, ``srx2``, ``sr_2``, ``x2``, ``SRx2``, ``sr-x2``
``denoise30``   ``dn30``, ``noise30``, ``denoise_30``, ``denoising30``, ``sigma30``, ``n30``
``derain``      ``deraining``, ``de_rain``, ``rain``
==============  ===========================================================================

Any other name is kept as it is (tasks a user named in ``tasks:``, e.g. ``restore3``). A bare
number is not a task name (``--task 0`` is an index).
"""

from __future__ import annotations

import re

__all__ = ["normalize_task", "task_scale"]

_SR = re.compile(r"(?:sr_?x?|x|super_?resolution_?x?)(\d+)")
_DENOISE = re.compile(r"(?:denoise|denoising|dn|noise|sigma|n|gaussian_?denoise)_?(\d+)")
_DERAIN = re.compile(r"de_?rain|deraining|rain")
_CANONICAL_SR = re.compile(r"sr_x(\d+)")
_CANONICAL_DENOISE = re.compile(r"denoise(\d+)")


def normalize_task(name: str) -> str:
    """The canonical IPT name of a task as a user may type it (see the module table).

    ``"sr2"`` -> ``"sr_x2"``, ``"DN30"`` -> ``"denoise30"``, ``"rain"`` -> ``"derain"``; a name
    that is no spelling of these is returned unchanged.
    """
    key = re.sub(r"[\s-]+", "_", name.strip().lower())
    if m := _SR.fullmatch(key):
        return f"sr_x{int(m.group(1))}"
    if m := _DENOISE.fullmatch(key):
        return f"denoise{int(m.group(1))}"
    if _DERAIN.fullmatch(key):
        return "derain"
    return name


def task_scale(name: str) -> int | None:
    """The upscaling factor a canonical task implies (``sr_x3`` -> 3, ``denoise50``/``derain`` -> 1),
    or ``None`` for a name that says nothing about it."""
    if m := _CANONICAL_SR.fullmatch(name):
        return int(m.group(1))
    if name == "derain" or _CANONICAL_DENOISE.fullmatch(name):
        return 1
    return None
