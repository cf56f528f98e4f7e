"""What a model declares about itself, read by the inference helper, datasets and tools.

Nobody outside a plugin hard-codes "pad to 8 for Restormer" or "IPT works in [0,255]": each arch
exposes a :class:`ModelSpec` as ``self.spec`` (an attribute or property) and the engine reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn as nn


@dataclass(frozen=True)
class ModelSpec:
    """Facts an arch declares.

    Attributes:
        in_channels: channels of the input the engine feeds (3 RGB, 1 gray, 6 dual-pixel).
        out_channels: channels of the output.
        scale: output size / input size (1 for restoration, 2/3/4 for SR).
        size_multiple: input height and width must be multiples of this (the helper pads).
        value_range: the range the arch computes in internally ([0, value_range]). The engine always
            feeds and receives [0,1]; an arch with ``value_range != 1`` converts inside ``forward``.
        tasks: task names a multi-task model can run (``forward(x, task=...)``); ``()`` if blind.
        fixed_size: if set, the model only accepts inputs of exactly this size (IPT's patch); the
            inference helper then tiles (or the model chops) with ``tile_overlap``.
        tileable: whether tiled inference is meaningful (global attention/pooling makes it approximate).
        tile_overlap: default overlap (input pixels) between tiles.
    """

    in_channels: int = 3
    out_channels: int = 3
    scale: int = 1
    size_multiple: int = 1
    value_range: float = 1.0
    tasks: tuple[str, ...] = field(default_factory=tuple)
    fixed_size: int | None = None
    tileable: bool = True
    tile_overlap: int = 32


def get_spec(model: nn.Module) -> ModelSpec:
    """The model's declared spec (unwrapping DDP / compiled wrappers); a default spec if none."""
    seen = 0
    while seen < 4:
        spec = getattr(model, "spec", None)
        if isinstance(spec, ModelSpec):
            return spec
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            break
        model = inner
        seen += 1
    return ModelSpec()


def resolve_task(model: nn.Module, task: str | int | None) -> str | int | None:
    """The model's own name for ``task``.

    A multi-task model may accept other spellings of its task names through a
    ``resolve_task(task)`` method (IPT: ``sr2`` or ``x2`` for ``sr_x2``), which raises
    ``ValueError`` naming its tasks for one it does not have; other models (and ``task=None``)
    get ``task`` back unchanged.
    """
    resolver = getattr(model, "resolve_task", None)
    if task is None or not callable(resolver):
        return task
    return resolver(task)


def spec_for_task(model: nn.Module, task: str | int | None = None) -> ModelSpec:
    """Select ``task`` on a multi-task model, then return its spec.

    A multi-task model's spec can depend on the task (IPT: ``scale`` 2 for ``sr_x2``, 1 for
    ``denoise30``); such a model offers ``set_task(task)``, which is called first so that
    padding, tiling, cropping and memory planning all use that task's spec. Models without it
    (and ``task=None``) are left as they are.
    """
    setter = getattr(model, "set_task", None)
    if task is not None and callable(setter):
        setter(task)
    return get_spec(model)
