"""Start training from a pre-trained checkpoint (``train.pretrain``), dropping keys by glob.

Fine-tuning IPT for x2 super-resolution starts from the multi-task pre-trained weights but keeps
only the body: ``drop: ["head.*", "tail.*", "body.query_embed.*"]`` leaves the new model's own
(freshly initialised) heads and tails alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from torch import nn

from irframe.errors import CheckpointError, OptionsError
from irframe.nn.weights import compare_state, read_state_for, resolve_weights_file, unwrap_model
from irframe.options import PretrainOptions

#: A BasicSR wrapper key given for one of our checkpoint folders: whether it means the EMA file.
FOLDER_FILES = {"params_ema": True, "params": False}


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


def load_pretrained(model: nn.Module, opts: PretrainOptions) -> PretrainReport:
    """Load ``opts.path`` into ``model`` except the keys matching ``opts.drop``.

    ``opts.key`` ``params_ema`` / ``params`` on one of irframe's checkpoint folders picks its
    ``ema.safetensors`` / ``model.safetensors`` (BasicSR's ``param_key_g`` names a wrapper of a
    ``.pth``; in a folder the same choice is a file).

    With ``strict`` every model key must be loaded or match a drop pattern, and every file key
    must exist in the model or be dropped; a drop pattern that matches nothing is an error (a
    typo would otherwise silently load everything).
    """
    target = unwrap_model(model)
    own = target.state_dict()
    path: str | os.PathLike[str] = opts.path
    key = opts.key
    if key in FOLDER_FILES and os.path.isdir(path):
        # BasicSR's param_key_g names a wrapper inside a .pth; in one of our checkpoint folders the
        # same choice is a file (a Real-ESRGAN stage started from the previous stage's folder)
        path, key = resolve_weights_file(path, prefer_ema=FOLDER_FILES[key]), "auto"
    state, _ = read_state_for(target, path, key)

    def dropped(key: str) -> bool:
        return any(fnmatchcase(key, pattern) for pattern in opts.drop)

    for i, pattern in enumerate(opts.drop):
        if not any(fnmatchcase(k, pattern) for k in [*state, *own]):
            raise OptionsError(f"train.pretrain.drop.{i}: {pattern!r} matches no key of {opts.path} or of the model")
    removed = sorted(k for k in state if dropped(k))
    state = {k: v for k, v in state.items() if not dropped(k)}
    missing, unexpected, mismatched = compare_state(own, state)
    if mismatched:
        raise CheckpointError(
            f"{opts.path}: {len(mismatched)} shape mismatch(es) with the model: {'; '.join(mismatched[:5])}"
            " (drop them with train.pretrain.drop)"
        )
    if opts.strict:
        undeclared = [k for k in missing if not dropped(k)]
        if undeclared or unexpected:
            parts = []
            if undeclared:
                parts.append(f"model keys not in the file: {', '.join(undeclared[:5])}")
            if unexpected:
                parts.append(f"file keys not in the model: {', '.join(unexpected[:5])}")
            raise CheckpointError(
                f"{opts.path}: "
                + "; ".join(parts)
                + " (train.pretrain.strict is true; list them in train.pretrain.drop)"
            )
    target.load_state_dict(state, strict=False)
    return PretrainReport(opts.path, len(state) - len(unexpected), removed, missing, unexpected)
