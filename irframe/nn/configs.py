"""How a model's build config differs from another one, for the fixes in error messages.

Three places tell a user that weights do not fit the options' ``model:`` (loading for evaluation,
fine-tuning from ``train.pretrain``, resuming): each names what the file was saved with, channels
first (``a gray (1-channel) checkpoint, the options build 3 channels``), from the same comparison.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Mapping
from typing import Any

__all__ = ["CHANNEL_KEYS", "IN_CHANNEL_KEYS", "NOT_SET", "channels_phrase", "config_differences", "input_channels_note"]

CHANNEL_KEYS = ("inp_channels", "in_channels", "out_channels", "in_chans", "in_nc", "out_nc", "num_in_ch",
                "num_out_ch", "n_colors")
"""Build-config keys that set a model's image channels across the plugins' archs (named first in a fix)."""
IN_CHANNEL_KEYS = tuple(k for k in CHANNEL_KEYS if "out" not in k)
"""Those of :data:`CHANNEL_KEYS` that set the input's channels."""

NOT_SET = object()
"""The options' value in :func:`config_differences` of a key they leave out that has no default."""


def config_differences(recorded: Mapping[str, Any], config: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, saved value, options value)`` of each build-config key where ``config`` (the options)
    differs from ``recorded`` (what a file was saved with); keys the options leave out count at the
    arch's defaults (:data:`NOT_SET` without one); lists and tuples compare by their items; channel keys
    first, then by name."""
    from irframe.errors import RegistryError
    from irframe.registry import ARCHS

    params: Mapping[str, inspect.Parameter] = {}
    with contextlib.suppress(RegistryError, TypeError, ValueError):  # no signature: compare what is written
        params = inspect.signature(ARCHS.get(str(recorded.get("type")))).parameters
    out = []
    for key in sorted(recorded, key=lambda k: (k not in CHANNEL_KEYS, k)):
        param = params.get(key)
        default = param.default if param is not None else inspect.Parameter.empty
        ours = config.get(key, NOT_SET if default is inspect.Parameter.empty else default)
        if key != "type" and _plain(ours) != _plain(recorded[key]):
            out.append((key, recorded[key], ours))
    return out


def channels_phrase(saved: int, built: int) -> str:
    """``a gray (1-channel) checkpoint, the options build 3 channels``."""
    kind = {1: "a gray (1-channel)", 3: "an RGB (3-channel)"}.get(saved, f"a {saved}-channel")
    return f"{kind} checkpoint, the options build {built} channels"


def input_channels_note(differences: list[tuple[str, Any, Any]]) -> str:
    """:func:`channels_phrase` for the first input-channel key among ``differences`` (as
    :func:`config_differences` returns them, keys possibly dotted: ``model.inp_channels``) whose two
    values are channel counts; ``""`` if there is none."""
    for key, saved, built in differences:
        if key.rsplit(".", 1)[-1] in IN_CHANNEL_KEYS and isinstance(saved, int) and isinstance(built, int):
            return channels_phrase(saved, built)
    return ""


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value
