"""Registered optimizers (``Adam``, ``AdamW``, ``SGD``) and the builders the trainer uses.

Each optimizer is torch's own class with a typed signature, so option files are checked before
training starts (``train.optim.lr: "abc"`` fails with the key named). Importing this module also
registers the learning-rate schedulers of :mod:`irframe.train.schedulers`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from irframe.errors import OptionsError
from irframe.registry import OPTIMIZERS, SCHEDULERS
from irframe.train import schedulers as _schedulers  # noqa: F401  (registers the schedulers)
from irframe.train.schedulers import FixedLR, IterScheduler

Params = Iterable[torch.Tensor] | Iterable[dict[str, Any]]


def _pair(betas: tuple[float, float]) -> tuple[float, float]:
    """``betas`` as a 2-tuple (an option file gives a list)."""
    values = tuple(betas)
    if len(values) != 2:
        raise OptionsError(f"train.optim.betas: expected two numbers, got {betas!r}")
    return (values[0], values[1])


@OPTIMIZERS.register("Adam")
class Adam(torch.optim.Adam):
    """torch's Adam (Kingma & Ba); IPT uses it with lr 5e-5, betas (0.9, 0.999)."""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, betas=_pair(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


@OPTIMIZERS.register("AdamW")
class AdamW(torch.optim.AdamW):
    """torch's AdamW (decoupled weight decay); Restormer: lr 3e-4, wd 1e-4; PromptIR: lr 2e-4."""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, betas=_pair(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


@OPTIMIZERS.register("SGD")
class SGD(torch.optim.SGD):
    """torch's SGD with optional (Nesterov) momentum."""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(
            params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov
        )


def build_optimizer(model: nn.Module, cfg: Mapping[str, Any], path: str = "train.optim") -> torch.optim.Optimizer:
    """Build ``cfg`` (the option key ``path``: ``train.optim``) over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise OptionsError(f"{path}: the model has no trainable parameters")
    return OPTIMIZERS.build(cfg, path=path, params=params)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    cfg: Mapping[str, Any] | None,
    warmup_iter: int = 0,
    warmup_schedule: str = "after",
) -> torch.optim.lr_scheduler.LRScheduler:
    """Build ``train.scheduler`` (a constant rate when absent) with ``train.warmup_iter`` applied,
    the schedule starting after the warm-up or, with ``warmup_schedule="under"``, underneath it."""
    if cfg is None:
        scheduler: torch.optim.lr_scheduler.LRScheduler = FixedLR(optimizer, warmup_iter=warmup_iter)
    elif "warmup_iter" in cfg:
        raise OptionsError(
            "train.scheduler.warmup_iter: set the warm-up with train.warmup_iter (it applies to every scheduler)"
        )
    else:
        scheduler = SCHEDULERS.build(cfg, path="train.scheduler", optimizer=optimizer, warmup_iter=warmup_iter)
    if warmup_schedule == "under" and warmup_iter > 0:
        if not isinstance(scheduler, IterScheduler):
            raise OptionsError(
                f"train.warmup_schedule: 'under' needs a scheduler built on irframe's IterScheduler; "
                f"{type(scheduler).__name__} is not (use 'after', or derive it from IterScheduler)"
            )
        scheduler.run_under_warmup()
    elif warmup_schedule not in ("after", "under"):
        raise OptionsError(f"train.warmup_schedule: expected 'after' or 'under', got {warmup_schedule!r}")
    return scheduler
