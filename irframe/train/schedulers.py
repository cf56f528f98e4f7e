"""Iteration-based learning-rate schedulers with a shared linear warm-up.

Every scheduler here computes the rate in closed form from the iteration (``last_epoch`` counts
optimizer steps), so resuming only needs ``last_epoch`` and no rounding drifts over 300k steps.
A linear warm-up (``train.warmup_iter``, passed by the trainer) ramps from ``lr0 / warmup_iter``
to ``lr0`` over the first ``warmup_iter`` steps, where ``lr0`` is the schedule's rate at its own
iteration 0; the schedule then starts at its iteration 0 (it is shifted by the warm-up, as in
PromptIR's linear-warm-up cosine schedule). With ``train.warmup_schedule: under`` (BasicSR's way,
:meth:`IterScheduler.run_under_warmup`) the schedule runs from iteration 0 instead: step ``i``
(0-based) has the rate ``base * (i + 1) / warmup_iter`` while ``i + 1 < warmup_iter``, then the
schedule's own rate at ``i``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import torch

from irframe.errors import OptionsError
from irframe.registry import SCHEDULERS


class IterScheduler(torch.optim.lr_scheduler.LRScheduler):
    """Base: subclasses implement :meth:`lr_at` (the rate at a post-warm-up iteration)."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_iter: int = 0, last_epoch: int = -1) -> None:
        if warmup_iter < 0:
            raise OptionsError(f"train.warmup_iter must be >= 0, got {warmup_iter}")
        self.warmup_iter = int(warmup_iter)
        self.warmup_under = False  # see run_under_warmup
        super().__init__(optimizer, last_epoch)

    def run_under_warmup(self) -> None:
        """Run the schedule underneath the warm-up, as BasicSR does (``train.warmup_schedule: under``):
        the warm-up ramps the initial rate and the schedule is not shifted. Call it right after
        construction; it re-applies the current step's rate."""
        self.warmup_under = True
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def lr_at(self, base_lr: float, it: int) -> float:
        """The rate at schedule iteration ``it`` (``it`` steps after the warm-up, or from the start with
        :meth:`run_under_warmup`), for a group whose initial rate is ``base_lr``."""
        raise NotImplementedError

    def get_lr(self) -> list[float]:  # type: ignore[override]
        it = self.last_epoch
        if self.warmup_under:  # BasicSR: base * k / warmup at (1-based) iteration k < warmup
            if it + 1 < self.warmup_iter:
                return [float(base) * (it + 1) / self.warmup_iter for base in self.base_lrs]
            return [self.lr_at(float(base), it) for base in self.base_lrs]
        if it < self.warmup_iter:
            ramp = (it + 1) / self.warmup_iter
            return [self.lr_at(float(base), 0) * ramp for base in self.base_lrs]
        return [self.lr_at(float(base), it - self.warmup_iter) for base in self.base_lrs]

    _get_closed_form_lr = get_lr


@SCHEDULERS.register("FixedLR")
class FixedLR(IterScheduler):
    """A constant rate (after the optional warm-up); used when ``train.scheduler`` is absent."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_iter: int = 0) -> None:
        super().__init__(optimizer, warmup_iter)

    def lr_at(self, base_lr: float, it: int) -> float:
        return base_lr


@SCHEDULERS.register("MultiStepLR")
class MultiStepLR(IterScheduler):
    """Multiply the rate by ``gamma`` at each milestone (IPT: 5e-5 -> 2e-5 is ``gamma`` 0.4)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        milestones: Sequence[int],
        gamma: float = 0.1,
        warmup_iter: int = 0,
    ) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        if any(m < 0 for m in self.milestones):
            raise OptionsError(f"train.scheduler.milestones must be >= 0, got {list(milestones)}")
        self.gamma = float(gamma)
        super().__init__(optimizer, warmup_iter)

    def lr_at(self, base_lr: float, it: int) -> float:
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, it)


@SCHEDULERS.register("CosineAnnealingLR")
class CosineAnnealingLR(IterScheduler):
    """Half a cosine from the initial rate to ``eta_min`` over ``T_max`` steps, then ``eta_min``.

    Unlike torch's chainable version the rate stays at ``eta_min`` after ``T_max`` instead of
    climbing back up.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        T_max: int,
        eta_min: float = 0.0,
        warmup_iter: int = 0,
    ) -> None:
        if T_max < 1:
            raise OptionsError(f"train.scheduler.T_max must be >= 1, got {T_max}")
        self.T_max = int(T_max)
        self.eta_min = float(eta_min)
        super().__init__(optimizer, warmup_iter)

    def lr_at(self, base_lr: float, it: int) -> float:
        progress = min(it, self.T_max) / self.T_max
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * progress)) / 2


@SCHEDULERS.register("CosineAnnealingRestartCyclicLR")
class CosineAnnealingRestartCyclicLR(IterScheduler):
    """Restormer's cyclic cosine: one cosine per period, each with its own floor and restart weight.

    In period ``i`` (iterations ``(c_{i-1}, c_i]`` of the cumulative periods ``c``; the first
    period includes iteration 0) the rate is
    ``eta_mins[i] + restart_weights[i] * (base - eta_mins[i]) * (1 + cos(pi * (it - c_{i-1}) / periods[i])) / 2``.
    Restormer's 300k schedule is ``periods [92000, 208000]``, ``eta_mins [3e-4, 1e-6]``: a fixed
    3e-4 for 92k iterations, then a cosine down to 1e-6. Past the last period the rate stays at
    the end of the last cosine.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        periods: Sequence[int],
        restart_weights: Sequence[float] = (1.0,),
        eta_mins: Sequence[float] = (0.0,),
        warmup_iter: int = 0,
    ) -> None:
        self.periods = [int(p) for p in periods]
        self.restart_weights = [float(w) for w in restart_weights]
        self.eta_mins = [float(e) for e in eta_mins]
        if not self.periods or any(p < 1 for p in self.periods):
            raise OptionsError(f"train.scheduler.periods must be positive integers, got {list(periods)}")
        for key, values in (("restart_weights", self.restart_weights), ("eta_mins", self.eta_mins)):
            if len(values) != len(self.periods):
                raise OptionsError(
                    f"train.scheduler.{key} needs one entry per period ({len(self.periods)}), got {values}"
                )
        self.cumulative_period = [sum(self.periods[: i + 1]) for i in range(len(self.periods))]
        super().__init__(optimizer, warmup_iter)

    def lr_at(self, base_lr: float, it: int) -> float:
        it = min(it, self.cumulative_period[-1])
        idx = bisect.bisect_left(self.cumulative_period, it)  # first period whose end is >= it
        start = self.cumulative_period[idx - 1] if idx > 0 else 0
        eta_min = self.eta_mins[idx]
        cosine = (1 + math.cos(math.pi * (it - start) / self.periods[idx])) / 2
        return eta_min + self.restart_weights[idx] * (base_lr - eta_min) * cosine


@SCHEDULERS.register("CosineAnnealingRestartLR")
class CosineAnnealingRestartLR(CosineAnnealingRestartCyclicLR):
    """BasicSR's cosine with restarts: :class:`CosineAnnealingRestartCyclicLR` with one floor for every period.

    In period ``i`` the rate is
    ``eta_min + restart_weights[i] * (base - eta_min) * (1 + cos(pi * (it - c_{i-1}) / periods[i])) / 2``
    (``c`` the cumulative periods), e.g. ``periods [250000, 250000]``, ``restart_weights [1, 0.5]``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        periods: Sequence[int],
        restart_weights: Sequence[float] = (1.0,),
        eta_min: float = 0.0,
        warmup_iter: int = 0,
    ) -> None:
        super().__init__(optimizer, periods, restart_weights, [float(eta_min)] * len(periods), warmup_iter)


@SCHEDULERS.register("MultiStepRestartLR")
class MultiStepRestartLR(IterScheduler):
    """BasicSR's multi-step decay with restarts.

    At a restart ``r`` the rate returns to ``restart_weights[k] * base``; after it, each milestone
    ``m`` with ``r < m <= it`` multiplies it by ``gamma`` (a milestone listed twice counts twice, as
    in BasicSR). Without restarts this is :class:`MultiStepLR`.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        milestones: Sequence[int],
        gamma: float = 0.1,
        restarts: Sequence[int] = (0,),
        restart_weights: Sequence[float] = (1.0,),
        warmup_iter: int = 0,
    ) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.restarts = [int(r) for r in restarts]
        self.restart_weights = [float(w) for w in restart_weights]
        if any(m < 0 for m in self.milestones) or any(r < 0 for r in self.restarts):
            raise OptionsError(
                f"train.scheduler: milestones and restarts must be >= 0, got {list(milestones)} and {list(restarts)}"
            )
        if self.restarts != sorted(self.restarts):
            raise OptionsError(f"train.scheduler.restarts must be increasing, got {list(restarts)}")
        if len(self.restart_weights) != len(self.restarts):
            raise OptionsError(
                f"train.scheduler.restart_weights needs one entry per restart ({len(self.restarts)}), "
                f"got {self.restart_weights}"
            )
        self.gamma = float(gamma)
        super().__init__(optimizer, warmup_iter)

    def lr_at(self, base_lr: float, it: int) -> float:
        k = bisect.bisect_right(self.restarts, it) - 1  # the latest restart at or before it
        start, weight = (self.restarts[k], self.restart_weights[k]) if k >= 0 else (-1, 1.0)
        decays = bisect.bisect_right(self.milestones, it) - bisect.bisect_right(self.milestones, start)
        return base_lr * weight * self.gamma**decays
