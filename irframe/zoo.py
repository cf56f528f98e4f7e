"""The model zoo: small trained models shipped in the repository's ``zoo/`` folder.

A zoo model is one of our safetensors files (``arch`` + ``config`` metadata, so
:func:`irframe.load_model` needs nothing else) plus a ``zoo`` metadata entry, a JSON card naming
the task, the option file that trained it and the experiment checkpoint it came from. Anywhere a
checkpoint is accepted (``irframe.load_model``, ``tools/infer.py --checkpoint``, ``tools/test.py
--checkpoint``), ``zoo:NAME`` names ``zoo/NAME.safetensors``::

    python tools/infer.py --checkpoint zoo:restormer_color_denoise_s25 --input IMG --output OUT
    irframe zoo                                   # list the zoo models
    irframe zoo publish CKPT NAME --option FILE --task "..."   # add a trained checkpoint

The zoo folder is ``zoo/`` at the repository root, or ``$IRFRAME_ZOO`` when set. This module is
the catalog (listing, publishing) beside its command (``irframe zoo``, :mod:`irframe.cli`); what
``zoo:NAME`` resolves to is part of finding a weights file (:mod:`irframe.nn.weights`), so
loading a model needs nothing from here.
"""

from __future__ import annotations

import json
import math
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from irframe.errors import CheckpointError
from irframe.nn.weights import (
    ZOO_ENV,
    ZOO_PREFIX,
    ZOO_SUFFIX,
    config_from_metadata,
    is_zoo_name,
    read_checkpoint,
    read_safetensors_header,
    resolve_weights_file,
    resolve_zoo,
    save_weights,
    zoo_dir,
    zoo_names,
)

# ZOO_ENV, ZOO_PREFIX, is_zoo_name, resolve_zoo, zoo_dir: defined in irframe.nn.weights (kept importable here)
__all__ = [
    "ZOO_ENV", "ZOO_PREFIX", "ZooEntry", "check_zoo_name", "is_zoo_name", "list_zoo", "publish", "resolve_zoo",
    "zoo_dir",
]

SUFFIX = ZOO_SUFFIX


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model as ``irframe zoo`` lists it.

    Attributes:
        name: the ``zoo:NAME`` name.
        file: its safetensors file.
        arch: the recorded arch (``metadata["arch"]``).
        config: the recorded build config.
        card: the ``zoo`` metadata card (task, option file, source...), ``{}`` when absent.
        params: number of parameters.
        size_bytes: file size.
    """

    name: str
    file: Path
    arch: str
    config: dict[str, Any]
    card: dict[str, Any]
    params: int
    size_bytes: int


def _read_entry(file: Path) -> ZooEntry:
    meta, shapes = read_safetensors_header(file)
    params = sum(math.prod(shape) for shape in shapes.values())
    config = config_from_metadata(meta, str(file))
    if config is None:
        raise CheckpointError(
            f"{file}: a zoo file must carry 'arch' and 'config' metadata (write it with `irframe zoo publish`)"
        )
    card: dict[str, Any] = {}
    if "zoo" in meta:
        try:
            card = json.loads(meta["zoo"])
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{file}: metadata 'zoo' is not valid JSON: {exc}") from None
        if not isinstance(card, dict):
            raise CheckpointError(f"{file}: metadata 'zoo' must be a mapping, got {card!r}")
    return ZooEntry(
        name=file.name[: -len(SUFFIX)],
        file=file,
        arch=str(config.get("type")),
        config=config,
        card=card,
        params=params,
        size_bytes=file.stat().st_size,
    )


def list_zoo(folder: str | os.PathLike[str] | None = None) -> list[ZooEntry]:
    """Every model of the zoo folder, by name (an unreadable file is a :class:`CheckpointError`)."""
    base = Path(folder) if folder is not None else zoo_dir()
    return [_read_entry(base / f"{n}{SUFFIX}") for n in zoo_names(base)]


_REFUSED_CATEGORIES = {"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"}


def check_zoo_name(name: str) -> None:
    """Refuse a zoo name that is not one plain file name, loadable back as ``zoo:NAME``.

    Raises:
        CheckpointError: an empty name, ``.``/``..``, ``/``, ``\\`` or ``:``, a name ending in
            ``.safetensors``, surrounding spaces, or a control or line-separator character (a newline
            in a name broke ``irframe zoo``'s listing and the ``zoo:NAME`` reference).
    """
    why = None
    if not name or name in (".", ".."):
        why = "is empty or a relative path"
    elif any(c in name for c in "/\\:") or name.endswith(SUFFIX):
        why = f"contains '/', '\\' or ':', or ends in {SUFFIX!r}"
    elif name.strip() != name:
        why = "starts or ends with spaces"
    else:
        # control, invisible (format), private, unassigned, surrogate; the line/paragraph separators
        bad = next((c for c in name if unicodedata.category(c) in _REFUSED_CATEGORIES), None)
        if bad is not None:
            why = f"contains the control or invisible character {bad!r} (U+{ord(bad):04X})"
    if why:
        raise CheckpointError(f"zoo name {name!r} {why}; use a plain name (letters, digits, '_', '-', '.')")


def _to_float16(state: Mapping[str, torch.Tensor], src: Path) -> dict[str, torch.Tensor]:
    """float32 tensors of ``state`` as float16; refuses a value float16 would turn into inf."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if value.dtype == torch.float32:
            peak = float(value.abs().max()) if value.numel() else 0.0
            if peak > float(torch.finfo(torch.float16).max):
                raise CheckpointError(f"{src}: {key} holds {peak:.3g}, beyond float16's range; publish without --half")
            value = value.to(torch.float16)
        out[key] = value
    return out


def publish(
    checkpoint: str | os.PathLike[str],
    name: str,
    card: Mapping[str, Any],
    folder: str | os.PathLike[str] | None = None,
    prefer_ema: bool = True,
    force: bool = False,
    half: bool = False,
) -> Path:
    """Write ``checkpoint`` (one of our weights files or checkpoint folders) as zoo model ``name``.

    The weights and the ``arch``/``config`` metadata are copied as they are; ``card`` (task, option
    file, ...) is stored as the ``zoo`` metadata entry, with the source file added. ``half`` stores
    float32 tensors as float16 (half the file; loading casts them back into the model's float32
    parameters, so only the rounding of the stored weights changes: re-score the published file).

    Raises:
        CheckpointError: a bad name, an existing model without ``force``, a checkpoint without
            our ``arch``/``config`` metadata, or (``half``) a weight float16 cannot hold.
    """
    check_zoo_name(name)
    src = resolve_weights_file(checkpoint, prefer_ema)
    raw, meta = read_checkpoint(src)
    if config_from_metadata(meta, str(src)) is None:
        raise CheckpointError(
            f"{src}: no 'arch'/'config' metadata; only checkpoints written by tools/train.py can be published"
        )
    dest = Path(folder) if folder is not None else zoo_dir()
    out = dest / f"{name}{SUFFIX}"
    if out.exists() and not force:
        raise CheckpointError(f"{out} exists; pass force=True (--force) to replace it")
    full_card = {**dict(card), "source": str(src)}
    if half:
        raw = _to_float16(raw, src)
        full_card["stored"] = "float16"
    metadata = {"arch": meta["arch"], "config": meta["config"], "zoo": json.dumps(full_card, sort_keys=True)}
    return save_weights(dict(raw), out, metadata)
