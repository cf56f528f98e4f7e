"""Start training from a pre-trained checkpoint (``train.pretrain``), dropping keys by glob.

Fine-tuning IPT for x2 super-resolution starts from the multi-task pre-trained weights but keeps
only the body: ``drop: ["head.*", "tail.*", "body.query_embed.*"]`` leaves the new model's own
(freshly initialised) heads and tails alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from torch import nn

from irframe.errors import CheckpointError, OptionsError
from irframe.nn.weights import (
    a_or_an,
    compare_state,
    mismatch_summary,
    read_state_for,
    resolve_weights_file,
    unwrap_model,
)
from irframe.options import PretrainOptions
from irframe.text import short

#: A BasicSR wrapper key given for one of our checkpoint folders: whether it means the EMA file.
FOLDER_FILES = {"params_ema": True, "params": False}

_SHOWN = 2  # config keys named in a fix (channel keys first); a count says the rest


@dataclass
class PretrainReport:
    """What :func:`load_pretrained` did."""

    path: str
    loaded: int
    dropped: list[str] = field(default_factory=list)
    kept_initial: list[str] = field(default_factory=list)  # model keys left at their initial values
    ignored: list[str] = field(default_factory=list)  # file keys the model does not have (strict=False)

    def summary(self) -> str:
        text = f"pre-trained weights {self.path}: {self.loaded} tensors loaded"
        if self.dropped:
            text += f", {len(self.dropped)} dropped by train.pretrain.drop"
        if self.kept_initial:
            text += f", {len(self.kept_initial)} model tensors keep their initial values"
        if self.ignored:
            text += f", {len(self.ignored)} file tensors ignored (not in the model)"
        return text


def load_pretrained(
    model: nn.Module,
    opts: PretrainOptions,
    *,
    config: Mapping[str, Any] | None = None,
    where: str = "train.pretrain",
    model_key: str = "model",
) -> PretrainReport:
    """Load ``opts.path`` into ``model`` except the keys matching ``opts.drop``.

    ``opts.path`` is a weights file, one of irframe's checkpoint folders or ``zoo:NAME``.
    ``opts.key`` ``params_ema`` / ``params`` on one of irframe's checkpoint folders picks its
    ``ema.safetensors`` / ``model.safetensors`` (BasicSR's ``param_key_g`` names a wrapper of a
    ``.pth``; in a folder the same choice is a file).

    With ``strict`` every model key must be loaded or match a drop pattern, and every file key
    must exist in the model or be dropped; a drop pattern that matches nothing is an error (a
    typo would otherwise silently load everything).

    A file that does not fit is refused with one line, the fix first: a file of another arch is
    named as such; weights saved with another config (a gray checkpoint for RGB options) say what
    to set in ``model_key`` (``config``: the options' build config of ``model``, e.g.
    ``{type: Restormer, ...}``), the differing tensors as a count. ``where``: the option key of
    ``opts`` in messages (``train.step.pretrain_d`` for a discriminator).
    """
    target = unwrap_model(model)
    own = target.state_dict()
    path: str | os.PathLike[str] = opts.path
    key = opts.key
    if key in FOLDER_FILES and os.path.isdir(path):
        # BasicSR's param_key_g names a wrapper inside a .pth; in one of our checkpoint folders the
        # same choice is a file (a Real-ESRGAN stage started from the previous stage's folder)
        path, key = resolve_weights_file(path, prefer_ema=FOLDER_FILES[key]), "auto"
    full, metadata = read_state_for(target, path, key)

    def dropped(key: str) -> bool:
        return any(fnmatchcase(key, pattern) for pattern in opts.drop)

    for i, pattern in enumerate(opts.drop):
        if not any(fnmatchcase(k, pattern) for k in [*full, *own]):
            raise OptionsError(f"{where}.drop.{i}: {pattern!r} matches no key of {opts.path} or of the model")
    removed = sorted(k for k in full if dropped(k))
    state = {k: v for k, v in full.items() if not dropped(k)}
    missing, unexpected, mismatched = compare_state(own, state)
    undeclared = [k for k in missing if not dropped(k)]
    if mismatched or (opts.strict and (undeclared or unexpected)):
        from irframe.nn.autoload import checkpoint_arch

        name = type(target).__name__
        holds = checkpoint_arch(full, metadata, filename=str(path))
        if holds is not None and holds != name:  # not keys to drop: the file is of another arch altogether
            raise CheckpointError(
                f"{opts.path}: holds {a_or_an(holds)} checkpoint, not {a_or_an(name)}: fix: give {a_or_an(name)} "
                f"checkpoint as {where}.path, or set {model_key}.type: {holds} (and its config) to fine-tune it; "
                + mismatch_summary(missing, unexpected, mismatched, name, brief=True)
            )
    if mismatched:
        raise CheckpointError(
            f"{opts.path}: {_shape_fix(full, metadata, config, opts.path, where, model_key)}; "
            f"{mismatch_summary([], [], mismatched, type(target).__name__, brief=True)}"
        )
    if opts.strict and (undeclared or unexpected):
        parts = []
        if undeclared:
            parts.append(f"model keys not in the file: {', '.join(undeclared[:5])}")
        if unexpected:
            parts.append(f"file keys not in the model: {', '.join(unexpected[:5])}")
        raise CheckpointError(f"{opts.path}: {'; '.join(parts)} ({where}.strict is true; list them in {where}.drop)")
    target.load_state_dict(state, strict=False)
    return PretrainReport(opts.path, len(state) - len(unexpected), removed, missing, unexpected)


def _shape_fix(
    state: Mapping[str, Any], metadata: Mapping[str, Any], config: Mapping[str, Any] | None, path: str, where: str,
    model_key: str,
) -> str:
    """The fix for weights of the model's arch whose tensor shapes differ: build the model as the
    file was saved with (its recorded or recognised config against ``config``; channels first, as
    ``a gray (1-channel) checkpoint, the options build 3 channels``), or drop the tensors."""
    from irframe.nn.autoload import recognised_config
    from irframe.nn.configs import config_differences, input_channels_note

    drop = f"or list the tensors in {where}.drop"
    recorded = recognised_config(state, metadata, filename=str(path))
    diffs = config_differences(recorded, config) if recorded is not None and config is not None else []
    if not diffs:
        return f"weights of another config of the arch; fix: set {model_key} as the file was saved, {drop}"
    note = input_channels_note(diffs)
    note = f"{note}; " if note else ""
    shown = ", ".join(f"{model_key}.{k}: {short(old, 30)}" for k, old, _ in diffs[:_SHOWN])
    more = f" and {len(diffs) - _SHOWN} more" if len(diffs) > _SHOWN else ""
    return f"{note}fix: set {shown}{more} (as saved), {drop}"


