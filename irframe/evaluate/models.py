"""Build a model for evaluation from options and/or a checkpoint, and load its weights.

One function, :func:`load_for_eval`, used by ``tools/test.py``, ``tools/infer.py`` and
``tools/model_stats.py``:

* options ``model:`` given -> the arch is built from it (through ``ARCHS.build``) and the checkpoint,
  if any, is loaded into it (``strict`` key/shape checks);
* no ``model:`` -> the checkpoint alone decides: our safetensors metadata (``arch`` + ``config``)
  or the registered checkpoint detectors (:func:`irframe.nn.autoload.load_model`).

A checkpoint is a weights file (``.safetensors``, ``.pth``, ...) or one of our experiment
checkpoint folders (``ema.safetensors`` preferred over ``model.safetensors``, as BasicSR validates
the EMA network when there is one).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from irframe.errors import CheckpointError, OptionsError
from irframe.nn.weights import WeightsMismatchError, config_from_metadata

__all__ = ["LoadedModel", "load_for_eval", "slugify"]


@dataclass
class LoadedModel:
    """A model ready for inference and what is known about where it came from.

    Attributes:
        model: the module, in eval mode, on the requested device.
        name: the row name used in leaderboards.
        arch: registered arch name (``config["type"]``).
        config: the build config ``{type: Arch, **kwargs}``.
        checkpoint: the weights file actually read (``None`` for random weights).
        missing, unexpected: keys reported by a non-strict load.
    """

    model: nn.Module
    name: str
    arch: str
    config: dict[str, Any]
    checkpoint: str | None = None
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def default_device(backend: str = "torch") -> str:
    """Where a tool runs when ``--device`` is not given: the CPU for the onnxruntime backend, else
    cuda if torch sees a GPU, else the CPU."""
    if backend == "onnxruntime":
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def backend_model(
    loaded: LoadedModel,
    backend: str,
    *,
    device: str | torch.device,
    task: str | int | None,
    weights_key: str,
    log: Callable[[str], object] | None,
) -> nn.Module:
    """The module that runs for ``backend`` (``inference.backend``, ``--backend``): ``loaded.model``
    itself for torch, or its onnxruntime graph (exported once for ``task``, the model's own task name,
    and cached by checkpoint hash; it says so through ``log``), wrapped with the same spec."""
    if backend != "onnxruntime":
        return loaded.model
    from irframe.nn.ort import onnxruntime_model

    return onnxruntime_model(
        loaded.model, checkpoint=loaded.checkpoint, config=loaded.config, task=task, device=device,
        weights_key=weights_key, log=log,
    )


SLUG_MAX_CHARS = 64
"""A slug (a folder or file name under ``images/`` and ``crops/``) has at most this many characters."""
_HASH_LIKE = re.compile(r"(.*-)?[0-9a-f]{8}")


def slugify(name: str) -> str:
    """A file-system-safe folder or file name for a model, data set or image name (output folders),
    distinct for distinct names.

    A name that is already safe (ASCII letters, digits, ``._+-``, not starting or ending with ``.``,
    ``_`` or ``-``, at most :data:`SLUG_MAX_CHARS` characters) is kept as it is. Any other name
    becomes its safe characters, ``-`` and 8 hex digits of the name's SHA-256, so ``基线`` and ``改进``
    (both ``model`` before) or ``a b`` and ``a_b`` never share a folder. A safe name that ends like
    such a hash is hashed too, so a kept name never equals another name's slug. The leaderboard and
    the report show the real name; the slug is only where the files are.
    """
    readable = re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("._-")
    if name and readable == name and len(name) <= SLUG_MAX_CHARS and not _HASH_LIKE.fullmatch(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    readable = readable[: SLUG_MAX_CHARS - 9].rstrip("._-")
    return f"{readable}-{digest}" if readable else digest


def _metadata_config(file: Path) -> dict[str, Any] | None:
    """The build config stored in one of our safetensors files, or ``None`` (other files)."""
    if file.suffix.lower() != ".safetensors":
        return None
    from irframe.nn.weights import read_safetensors_header

    meta, _shapes = read_safetensors_header(file)
    return config_from_metadata(meta, str(file))


def config_difference(recorded: Mapping[str, Any], options: Mapping[str, Any], limit: int = 3) -> str:
    """The fix for weights that do not fit the options' ``model:``, from how the config the
    checkpoint was saved with differs from it (:func:`irframe.nn.configs.config_differences`; channel
    keys first): one bounded line, the fix first; ``""`` if the configs agree."""
    from irframe.nn.configs import NOT_SET, config_differences, input_channels_note
    from irframe.text import short

    differences = config_differences(recorded, options)
    if not differences:
        return ""
    diffs = [
        f"{key}={short(saved, 40)} (options: {'not set' if ours is NOT_SET else short(ours, 40)})"
        for key, saved, ours in differences
    ]
    more = f" and {len(diffs) - limit} more" if len(diffs) > limit else ""
    note = input_channels_note(differences)
    return (
        (f"{note}; " if note else "")
        + "fix: --set model=null (the checkpoint's own config), or set in 'model:' what it was saved with: "
        + f"{', '.join(diffs[:limit])}{more}"
    )


def _mismatch_message(
    exc: WeightsMismatchError, file: Path, recorded: Mapping[str, Any] | None, config: Mapping[str, Any],
    source: str, model: nn.Module, key: str,
) -> str | None:
    """The message for weights that do not fit the options' model: the fix first (the config the
    file was saved with or is recognised as, or the arch it holds), what differs as counts after it;
    ``None``: no better message than ``exc``'s."""
    if recorded is None:
        from irframe.nn.autoload import other_arch, recognised_config
        from irframe.nn.weights import read_state_for

        state, metadata = read_state_for(model, file, key)
        note = other_arch(model, state, metadata)
        if note is not None:
            return (
                f"{file}: {note} as the model of {source}; fix: --set model=null (the arch the file holds); "
                f"{exc.differences(brief=True)}"
            )
        recorded = recognised_config(state, metadata, filename=str(file))
    hint = config_difference(recorded, config) if recorded is not None else ""
    if not hint:
        return None
    return f"{file}: does not fit the model of {source}: {hint}; {exc.differences(brief=True)}"


# A BasicSR wrapper key given for one of our checkpoint folders: whether it means the EMA file.
FOLDER_KEYS = {"params_ema": True, "params": False}


def load_for_eval(
    model_cfg: Mapping[str, Any] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    strict: bool = True,
    key: str = "auto",
    prefer_ema: bool = True,
    device: str | torch.device = "cpu",
    source: str = "options",
    compile: bool = False,
    log: Callable[[str], object] | None = None,
) -> LoadedModel:
    """Build the model and load its weights.

    Args:
        model_cfg: the options' ``model:`` mapping (``{type: Arch, ...}``), or ``None`` to take the
            arch and its config from the checkpoint.
        checkpoint: weights file or experiment checkpoint folder; ``None`` keeps the built model's
            initial weights (only allowed with ``model_cfg``; useful for smoke tests and stats).
        name: leaderboard row name (default: the arch name, or the checkpoint's stem).
        strict: refuse missing/unexpected keys.
        key: wrapper key for official files (``"auto"``: ``params_ema`` before ``params``;
            ``"params"``, ``"params_ema"``, ...; ``--param-key``).
        prefer_ema: for a checkpoint folder, read ``ema.safetensors`` when present.
        device: where the model goes.
        source: what ``model_cfg`` came from (an option file name), for messages.
        log: told which of ``params`` / ``params_ema`` was used when the file holds both.
        compile: wrap the loaded model in ``torch.compile``
            (:func:`irframe.nn.inference.compile_model`; ``inference.compile`` / ``--compile``).

    Raises:
        OptionsError: neither a model config nor a checkpoint, or an arch that differs from the
            one recorded in the checkpoint.
        CheckpointError: unreadable checkpoint, or weights that do not fit the model.
    """
    from irframe.nn.autoload import load_model
    from irframe.nn.weights import load_weights, resolve_weights_file
    from irframe.registry import ARCHS

    if model_cfg is None and checkpoint is None:
        raise OptionsError("no model to evaluate: give an option file with 'model:' or a checkpoint")
    if checkpoint is not None and key in FOLDER_KEYS and os.path.isdir(checkpoint):
        # BasicSR's param_key_g names a wrapper inside a .pth; in one of our checkpoint folders the
        # same choice is a file: params_ema -> ema.safetensors, params -> model.safetensors.
        prefer_ema, key = FOLDER_KEYS[key], "auto"
    file = resolve_weights_file(checkpoint, prefer_ema) if checkpoint is not None else None
    default_name = (
        file.parent.name if file is not None and file.name in ("model.safetensors", "ema.safetensors") else None
    )
    if file is not None and default_name is None:
        default_name = file.stem
    missing: list[str] = []
    unexpected: list[str] = []
    if model_cfg is None:
        assert file is not None
        model = load_model(file, key=key, strict=strict, device=device, log=log)
        config = dict(getattr(model, "irframe_config", {}) or {"type": type(model).__name__})
    else:
        config = dict(model_cfg)
        recorded = _metadata_config(file) if file is not None else None
        if recorded is not None and recorded.get("type") != config.get("type"):
            raise OptionsError(
                f"{source}: model.type is {config.get('type')!r} but checkpoint {file} was saved from "
                f"{recorded.get('type')!r}; fix model.type or drop 'model:' to use the checkpoint's own config"
            )
        model = ARCHS.build(config, path=f"{source}: model")
        if file is not None:
            try:
                result = load_weights(model, file, strict=strict, key=key, log=log)
            except WeightsMismatchError as exc:
                better = _mismatch_message(exc, file, recorded, config, source, model, key)
                if better is not None:
                    raise CheckpointError(better) from None
                raise
            missing, unexpected = result.missing, result.unexpected
        model = model.to(device).eval()
    arch = str(config.get("type", type(model).__name__))
    if compile:
        from irframe.nn.inference import compile_model

        model = compile_model(model.eval())
    return LoadedModel(
        model=model,
        name=name or default_name or arch,
        arch=arch,
        config=config,
        checkpoint=str(file) if file is not None else None,
        missing=missing,
        unexpected=unexpected,
    )
