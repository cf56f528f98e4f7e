"""Exponential moving average of a model's weights (BasicSR's ``net_g_ema``)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class ModelEMA:
    """Keeps ``ema = decay * ema + (1 - decay) * weights`` after every optimizer step.

    Floating-point parameters are averaged; buffers (and integer tensors) are copied. The EMA
    model is a frozen deep copy of the unwrapped model in eval mode on the same device.

    Args:
        model: the unwrapped model (not the DDP wrapper).
        decay: the averaging factor in (0, 1); Restormer uses 0.999.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema_decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.model = copy.deepcopy(model).eval()
        self.model.requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` (same architecture, unwrapped) into the average."""
        current = model.state_dict()
        ema_float, cur_float = [], []
        for name, ema_value in self.model.state_dict().items():
            value = current[name].detach()
            if ema_value.is_floating_point() and value.dtype == ema_value.dtype:
                ema_float.append(ema_value)
                cur_float.append(value)
            else:  # integer buffers (counters, position ids) are copied
                ema_value.copy_(value)
        if ema_float:
            torch._foreach_lerp_(ema_float, cur_float, 1.0 - self.decay)  # fused, not one kernel per tensor
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        """The counters (the weights themselves are saved as ``ema.safetensors``)."""
        return {"decay": self.decay, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counters saved by :meth:`state_dict`."""
        self.updates = int(state["updates"])
