"""BasicSR's CosineAnnealingRestartLR and MultiStepRestartLR against hand-computed curves."""

from __future__ import annotations

import math

import pytest
import torch

from irframe.errors import OptionsError
from irframe.train.optim import build_optimizer, build_scheduler


def curve(cfg: dict | None, n: int, lr: float, warmup: int = 0, warmup_schedule: str = "after") -> list[float]:
    opt = build_optimizer(torch.nn.Linear(2, 2), {"type": "Adam", "lr": lr})
    sched = build_scheduler(opt, cfg, warmup, warmup_schedule)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_cosine_annealing_restart_curve():
    cfg = {"type": "CosineAnnealingRestartLR", "periods": [10, 20], "restart_weights": [1, 0.5], "eta_min": 1e-7}
    lrs = curve(cfg, 32, 1e-3)
    # by hand: eta + w * (base - eta) * (1 + cos(pi * t / period)) / 2
    assert lrs[0] == pytest.approx(1e-3)
    assert lrs[5] == pytest.approx(1e-7 + 0.0009999 * 0.5)  # half-way down the first cosine
    assert lrs[10] == pytest.approx(1e-7)  # end of period 1 (BasicSR: iteration 10 still belongs to it)
    assert lrs[11] == pytest.approx(1e-7 + 0.5 * 0.0009999 * (1 + math.cos(math.pi / 20)) / 2)  # restart at half weight
    assert lrs[20] == pytest.approx(1e-7 + 0.5 * 0.0009999 * 0.5)
    assert lrs[30] == pytest.approx(1e-7) and lrs[31] == pytest.approx(1e-7)  # past the end: stays at the floor


def basicsr_multistep_restart(it: int, base: float, milestones: list[int], gamma: float,
                              restarts: list[int], weights: list[float]) -> float:
    """BasicSR's recurrence, stepped one iteration at a time: reset at a restart, decay at a milestone."""
    lr = base
    for e in range(it + 1):
        if e in restarts:
            lr = base * weights[restarts.index(e)]
        elif e in milestones:
            lr *= gamma ** milestones.count(e)
    return lr


def test_multistep_restart_curve():
    kw = {"milestones": [3, 6, 6, 12], "gamma": 0.5, "restarts": [0, 8], "restart_weights": [1, 0.5]}
    lrs = curve({"type": "MultiStepRestartLR", **kw}, 15, 1.0)
    by_hand = [1, 1, 1, 0.5, 0.5, 0.5, 0.125, 0.125, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    assert lrs == pytest.approx(by_hand)
    assert lrs == pytest.approx(
        [
            basicsr_multistep_restart(i, 1.0, kw["milestones"], 0.5, kw["restarts"], kw["restart_weights"])
            for i in range(15)
        ]
    )
    # without restarts it is MultiStepLR
    plain = curve({"type": "MultiStepRestartLR", "milestones": [2, 4], "gamma": 0.1}, 6, 1.0)
    assert plain == pytest.approx(curve({"type": "MultiStepLR", "milestones": [2, 4], "gamma": 0.1}, 6, 1.0))


def test_warmup_and_resume_of_the_restart_schedulers():
    cfg = {"type": "CosineAnnealingRestartLR", "periods": [4, 4], "restart_weights": [1, 1]}
    lrs = curve(cfg, 6, 1.0, warmup=2)
    assert lrs[:3] == pytest.approx([0.5, 1.0, 1.0])  # ramp, then the schedule from its iteration 0
    opt = build_optimizer(torch.nn.Linear(2, 2), {"type": "Adam", "lr": 1.0})
    sched = build_scheduler(opt, cfg, 2)
    for _ in range(4):
        opt.step()
        sched.step()
    opt2 = build_optimizer(torch.nn.Linear(2, 2), {"type": "Adam", "lr": 1.0})
    sched2 = build_scheduler(opt2, cfg, 2)
    sched2.load_state_dict(sched.state_dict())
    assert sched2.get_last_lr() == pytest.approx([lrs[4]])


def test_bad_arguments_name_the_key():
    with pytest.raises(OptionsError, match="restart_weights"):
        curve({"type": "MultiStepRestartLR", "milestones": [2], "restarts": [0, 5], "restart_weights": [1]}, 1, 1.0)
    with pytest.raises(OptionsError, match="restarts must be increasing"):
        curve({"type": "MultiStepRestartLR", "milestones": [2], "restarts": [5, 0], "restart_weights": [1, 1]}, 1, 1.0)
    with pytest.raises(OptionsError, match="restart_weights"):
        curve({"type": "CosineAnnealingRestartLR", "periods": [5, 5], "restart_weights": [1]}, 1, 1.0)


def basicsr_warmup_curve(schedule, n: int, init_lr: float, warmup: int) -> list[float]:
    """BasicSR's update_learning_rate, iteration by iteration (1-based k): the schedulers are stepped
    k - 1 times, then a warm-up overrides the rate with init_lr * k / warmup while k < warmup."""
    return [init_lr * k / warmup if k < warmup else schedule(k - 1) for k in range(1, n + 1)]


def test_warmup_under_the_schedule_follows_basicsr():
    cfg = {"type": "CosineAnnealingRestartLR", "periods": [10, 10], "restart_weights": [1, 0.5], "eta_min": 0.0}
    closed_form = curve(cfg, 24, 1.0)  # no warm-up: the schedule alone, step by step
    under = curve(cfg, 24, 1.0, warmup=4, warmup_schedule="under")
    assert under == pytest.approx(basicsr_warmup_curve(lambda e: closed_form[e], 24, 1.0, 4))
    assert under[:4] == pytest.approx([0.25, 0.5, 0.75, closed_form[3]])  # not shifted: it joins at step 3
    after = curve(cfg, 24, 1.0, warmup=4)  # irframe's default: the schedule starts after the warm-up
    assert after[:5] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0]) and after[4:] == pytest.approx(closed_form[:20])
    # no scheduler at all: a constant rate after the ramp
    assert curve(None, 6, 2.0, warmup=4, warmup_schedule="under") == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0])


def test_warmup_under_resumes_exactly_and_needs_an_iter_scheduler(registry_sandbox):
    cfg = {"type": "MultiStepRestartLR", "milestones": [5], "gamma": 0.5}
    opt = build_optimizer(torch.nn.Linear(2, 2), {"type": "Adam", "lr": 1.0})
    sched = build_scheduler(opt, cfg, 4, "under")
    for _ in range(3):
        opt.step()
        sched.step()
    opt2 = build_optimizer(torch.nn.Linear(2, 2), {"type": "Adam", "lr": 1.0})
    sched2 = build_scheduler(opt2, cfg, 4, "under")
    sched2.load_state_dict(sched.state_dict())
    for _ in range(4):
        for o, sc in ((opt, sched), (opt2, sched2)):
            o.step()
            sc.step()
        assert sched2.get_last_lr() == pytest.approx(sched.get_last_lr())
    assert sched.get_last_lr() == pytest.approx([0.5])  # step 7: past the milestone at 5, no shift

    from irframe.registry import SCHEDULERS

    @SCHEDULERS.register("PlainStepLR")
    class PlainStepLR(torch.optim.lr_scheduler.StepLR):
        def __init__(self, optimizer: torch.optim.Optimizer, step_size: int = 2, warmup_iter: int = 0) -> None:
            super().__init__(optimizer, step_size)

    with pytest.raises(OptionsError, match="train.warmup_schedule: 'under' needs a scheduler built on irframe's"):
        build_scheduler(opt, {"type": "PlainStepLR"}, 4, "under")
    build_scheduler(opt, {"type": "PlainStepLR"}, 0, "under")  # no warm-up: nothing to run under
