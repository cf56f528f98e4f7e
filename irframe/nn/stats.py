"""Model size and cost: parameter counts and FLOPs/MACs of one forward pass.

FLOPs come from :class:`torch.utils.flop_counter.FlopCounterMode`, which counts matrix products
and convolutions (including attention's ``bmm``/SDPA) as 2 FLOPs per multiply-accumulate and ignores
element-wise work (norms, activations, additions). Papers report either unit; we print both,
labelled: ``GMACs`` (multiply-accumulates) and ``GFLOPs`` (= 2 x GMACs under this convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from irframe.nn.modes import eval_mode
from irframe.nn.spec import get_spec

__all__ = ["FlopCount", "count_flops", "count_params"]


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter values (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one forward pass for ``input_shape``.

    Attributes:
        flops: total floating-point operations counted (2 per multiply-accumulate).
        input_shape: the ``[N,C,H,W]`` shape measured.
        by_operator: FLOPs per aten operator (e.g. ``convolution``, ``mm``, ``bmm``).
    """

    flops: int
    input_shape: tuple[int, ...]
    by_operator: dict[str, int] = field(default_factory=dict)

    @property
    def macs(self) -> int:
        """Multiply-accumulates (``flops / 2``)."""
        return self.flops // 2

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    def __str__(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        return f"{self.gmacs:.4g} GMACs ({self.gflops:.4g} GFLOPs, 1 MAC = 2 FLOPs) for input {shape}"


def count_flops(
    model: nn.Module, input_shape: Sequence[int], *, task: str | int | None = None
) -> FlopCount:
    """Count FLOPs of ``model`` on a zero input of ``input_shape`` (``[C,H,W]`` or ``[N,C,H,W]``).

    The input is made on the model's device and dtype; the model runs in eval mode under
    ``no_grad`` and its mode is restored afterwards. Height and width must be multiples of the
    model's ``spec.size_multiple`` (the count is for the padded size a user would run).
    """
    shape = tuple(int(v) for v in input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(
            f"count_flops: input_shape must be [C,H,W] or [N,C,H,W] of positive sizes, got {tuple(input_shape)}"
        )
    spec = get_spec(model)
    m = spec.size_multiple
    if shape[-2] % m or shape[-1] % m:
        raise ValueError(
            f"count_flops: input size {shape[-2]}x{shape[-1]} is not a multiple of spec.size_multiple={m}"
        )
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = torch.zeros(shape, device=device, dtype=dtype)
    counter = FlopCounterMode(display=False)
    with eval_mode(model), torch.no_grad(), counter:
        model(x) if task is None else model(x, task=task)
    totals = counter.get_flop_counts().get("Global", {})
    by_op = {str(getattr(op, "__name__", op)): int(n) for op, n in totals.items()}
    return FlopCount(int(counter.get_total_flops()), shape, by_op)
