"""Load a model from a checkpoint file alone: detect the arch and its hyper-parameters.

``load_model(path)`` reads ``.pth/.pt/.ckpt/.bin`` (through ``weights_only=True``) and ``.safetensors``
files, unwraps the known wrappers (``params``/``params_ema``/``state_dict``, ``net.``/``module.``
prefixes) and then:

1. our own safetensors files carry ``{"arch", "config"}`` metadata: the config is used as is;
2. otherwise every registered detector (registry ``DETECTORS``, one per arch family, each plugin adds
   its own) looks at the keys and shapes and returns a build config or ``None``. Exactly one must
   match: none or several is an error that lists what was tried.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

from irframe.errors import CheckpointError, IrframeError
from irframe.nn.checkpoint import load_state, read_checkpoint, unwrap_state_dict
from irframe.registry import ARCHS, DETECTORS

# Files looked for, in order, when ``path`` is one of our experiment checkpoint folders.
FOLDER_FILES = ("ema.safetensors", "model.safetensors")


def resolve_weights_file(path: str | os.PathLike[str], prefer_ema: bool = True) -> Path:
    """The weights file for ``path``: the file itself, or the EMA/model file of a checkpoint folder."""
    p = Path(path)
    if p.is_dir():
        names = FOLDER_FILES if prefer_ema else FOLDER_FILES[::-1]
        for name in names:
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"{p}: a folder without {' or '.join(FOLDER_FILES)}")
    if not p.is_file():
        raise CheckpointError(f"checkpoint file not found: {p}")
    return p


def config_from_metadata(metadata: Mapping[str, str], source: str = "checkpoint") -> dict[str, Any] | None:
    """The build config our safetensors files carry (``{"arch", "config"}`` metadata), or None."""
    if "arch" not in metadata or "config" not in metadata:
        return None
    try:
        config = json.loads(metadata["config"], parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{source}: metadata 'config' is not valid JSON: {exc}") from None
    except ValueError as exc:  # NaN / Infinity (refused by _refuse_constant)
        raise CheckpointError(f"{source}: metadata 'config' {exc}") from None
    except RecursionError:
        raise CheckpointError(f"{source}: metadata 'config' is nested too deeply to be a model config") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{source}: metadata 'config' must be a mapping, got {config!r}")
    config.setdefault("type", metadata["arch"])
    return config


def _refuse_constant(name: str) -> Any:
    """``json.loads`` hook for ``NaN``/``Infinity``/``-Infinity``: no model argument is non-finite."""
    raise ValueError(f"holds the non-finite number {name}")


def check_config_against(
    config: Mapping[str, Any], state: Mapping[str, torch.Tensor], *, strict: bool = True, source: str = "checkpoint"
) -> None:
    """Refuse a build config that does not describe the file's tensors, before allocating the model.

    The arch is built on the ``meta`` device (shapes only, no memory), so a tiny file whose recorded
    config asks for billions of parameters (or absurd numbers: ``10**30`` channels) is refused in
    moments instead of filling the memory; then its parameter names and shapes are compared with
    the file's tensors.

    Raises:
        CheckpointError: the config cannot be built, or the shapes (or, when ``strict``, the key
            sets) disagree; the message names ``source``.
    """
    from irframe.nn.checkpoint import compare_state

    arch = config.get("type")
    try:
        with torch.device("meta"):
            skeleton = ARCHS.build(dict(config), path=f"{source} (recorded config)")
    except CheckpointError:
        raise
    except Exception as exc:  # bad options, overflow, negative sizes: whatever the arch raises on absurd values
        reason = str(exc).splitlines()[0] if str(exc) else ""
        what = "" if isinstance(exc, IrframeError) else f"{type(exc).__name__}: "
        raise CheckpointError(f"{source}: its config cannot build {arch}: {what}{reason}") from None
    missing, unexpected, mismatched = compare_state(skeleton.state_dict(), state, label="file")
    problems = [f"{len(mismatched)} shape(s) differ: {', '.join(mismatched[:5])}"] if mismatched else []
    if strict and missing:
        problems.append(f"{len(missing)} tensor(s) the config implies are not in the file: {', '.join(missing[:5])}")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} tensor(s) of the file are not in the config's model: {', '.join(unexpected[:5])}")
    if problems:
        params = sum(t.numel() for t in skeleton.state_dict().values())
        raise CheckpointError(
            f"{source}: its config ({arch}, {params:,} values) does not describe the file's {len(state)} tensors; "
            f"refused before building the model: {'; '.join(problems)}"
        )


def detect_config(
    state_dict: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None, source: str = "checkpoint"
) -> dict[str, Any]:
    """The build config (``{type: Arch, ...}``) of an unwrapped state dict.

    Raises:
        CheckpointError: no detector or several detectors matched (the message lists them all).
    """
    config = config_from_metadata(metadata or {}, source)
    if config is not None:
        return config
    matches: list[tuple[str, dict[str, Any]]] = []
    tried: list[str] = []
    for entry in DETECTORS.entries():
        try:
            config = entry.obj(state_dict)
        except IrframeError as exc:  # a family that recognised its keys but found them inconsistent
            tried.append(f"{entry.name} [{entry.provider}]: recognised but rejected: {exc}")
            continue
        tried.append(f"{entry.name} [{entry.provider}]: {'match' if config else 'no match'}")
        if config:
            matches.append((entry.name, config))
    if len(matches) == 1:
        return matches[0][1]
    keys = list(state_dict)
    shown = ", ".join(keys[:6]) + (f", ... ({len(keys) - 6} more)" if len(keys) > 6 else "")
    if not matches:
        raise CheckpointError(
            f"{source}: no registered arch recognises this checkpoint ({len(keys)} tensors: {shown}). "
            f"Detectors tried: {'; '.join(tried) or '(none registered)'}. "
            "Pass an option file (-opt) naming the model, or install the plugin that provides it."
        )
    raise CheckpointError(
        f"{source}: several archs claim this checkpoint: {', '.join(n for n, _ in matches)}. "
        f"Detectors tried: {'; '.join(tried)}. Pass an option file (-opt) naming the model."
    )


def load_model(
    path: str | os.PathLike[str],
    *,
    key: str = "auto",
    prefer_ema: bool = True,
    strict: bool = True,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """Build the right arch for a checkpoint and load its weights (eval mode).

    Args:
        path: a weights file or one of our experiment checkpoint folders.
        key: wrapper key to read (``"auto"``, ``"params"``, ``"params_ema"``, ...).
        prefer_ema: for a checkpoint folder, take ``ema.safetensors`` when present.
        strict: refuse missing/unexpected keys.
        device: where the model goes.

    The returned module has ``irframe_config`` (the build config) and ``irframe_source`` attributes.
    """
    file = resolve_weights_file(path, prefer_ema)
    raw, metadata = read_checkpoint(file)
    state = unwrap_state_dict(raw, key=key, source=str(file))
    config = detect_config(state, metadata, source=str(file))
    check_config_against(config, state, strict=strict, source=str(file))
    model = ARCHS.build(config, path=f"{file} (detected config)")
    load_state(model, state, strict=strict, source=f"{file} (detected {config.get('type')})")
    model.irframe_config = dict(config)  # type: ignore[assignment]
    model.irframe_source = str(file)  # type: ignore[assignment]
    return model.to(device).eval()
