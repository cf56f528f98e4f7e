"""BasicSR's CosineAnnealingRestartLR and MultiStepRestartLR against hand-computed curves."""

from __future__ import annotations

import math

import pytest
import torch

from irframe.errors import OptionsError
from irframe.train.optim import build_optimizer, build_scheduler


def curve(cfg: dict, n: int, lr: float, warmup: int = 0) -> list[float]:
    opt = build_optimizer(torch.nn.Linear(2, 2), {"type": "Adam", "lr": lr})
    sched = build_scheduler(opt, cfg, warmup)
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
