"""Learning-rate schedulers: Restormer's cyclic cosine, cosine, multi-step, warm-up, resume."""

from __future__ import annotations

import math

import pytest
import torch

from irframe.errors import OptionsError
from irframe.registry import SCHEDULERS
from irframe.train.optim import build_optimizer, build_scheduler


def lrs(sched_cfg, n, lr=3e-4, warmup=0):
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, {"type": "AdamW", "lr": lr})
    sched = build_scheduler(opt, sched_cfg, warmup)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out, opt, sched


def restormer_cyclic(it, base=3e-4):
    # Restormer's formula, written out: period 1 (it <= 92000) fixed at 3e-4, then cosine to 1e-6.
    if it <= 92000:
        return 3e-4 + (base - 3e-4) * 0.5 * (1 + math.cos(math.pi * it / 92000))
    return 1e-6 + (base - 1e-6) * 0.5 * (1 + math.cos(math.pi * (it - 92000) / 208000))


def test_restormer_cyclic_schedule_values():
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, {"type": "AdamW", "lr": 3e-4})
    cfg = {"type": "CosineAnnealingRestartCyclicLR", "periods": [92000, 208000], "restart_weights": [1, 1],
           "eta_mins": [3e-4, 1e-6]}
    sched = build_scheduler(opt, cfg)
    for it in (0, 1, 50000, 92000, 92001, 150000, 250000, 299999, 300000):
        sched.last_epoch = it
        assert sched.get_lr()[0] == pytest.approx(restormer_cyclic(it), rel=1e-12, abs=1e-15), it
    sched.last_epoch = 400000  # past the end: stays at the last value
    assert sched.get_lr()[0] == pytest.approx(1e-6)


def test_cosine_multistep_fixed_and_warmup():
    out, _, _ = lrs({"type": "CosineAnnealingLR", "T_max": 4, "eta_min": 0.0}, 6, lr=1.0)
    assert out == pytest.approx([1.0, 0.8535533, 0.5, 0.1464466, 0.0, 0.0])
    out, _, _ = lrs({"type": "MultiStepLR", "milestones": [2, 4], "gamma": 0.4}, 6, lr=5e-5)
    assert out == pytest.approx([5e-5, 5e-5, 2e-5, 2e-5, 8e-6, 8e-6])
    # warm-up ramps to the schedule's initial rate, then the schedule starts at its own iteration 0
    out, _, _ = lrs({"type": "CosineAnnealingLR", "T_max": 2}, 6, lr=1.0, warmup=4)
    assert out == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 0.5])
    out, _, _ = lrs(None, 4, lr=0.1, warmup=2)  # no scheduler: constant after the warm-up
    assert out == pytest.approx([0.05, 0.1, 0.1, 0.1])


def test_scheduler_state_round_trip():
    cfg = {
        "type": "CosineAnnealingRestartCyclicLR",
        "periods": [3, 5],
        "eta_mins": [0.1, 0.0],
        "restart_weights": [1, 0.5],
    }
    full, _, _ = lrs(cfg, 8, lr=1.0)
    _, opt, sched = lrs(cfg, 3, lr=1.0)
    state = sched.state_dict()
    model = torch.nn.Linear(2, 2)
    opt2 = build_optimizer(model, {"type": "AdamW", "lr": 1.0})
    sched2 = build_scheduler(opt2, cfg)  # the trainer's order: build both, then load both
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(state)
    rest = []
    for _ in range(5):
        rest.append(opt2.param_groups[0]["lr"])
        opt2.step()
        sched2.step()
    assert rest == pytest.approx(full[3:])


def test_scheduler_option_errors():
    opt = build_optimizer(torch.nn.Linear(2, 2), {"type": "Adam"})
    with pytest.raises(OptionsError, match="eta_mins needs one entry per period"):
        build_scheduler(
            opt,
            {"type": "CosineAnnealingRestartCyclicLR", "periods": [1, 2], "restart_weights": [1, 1], "eta_mins": [0.0]},
        )
    with pytest.raises(OptionsError, match="train.scheduler.T_max"):
        build_scheduler(opt, {"type": "CosineAnnealingLR", "T_max": "many"})
    with pytest.raises(OptionsError, match="train.warmup_iter"):
        build_scheduler(opt, {"type": "CosineAnnealingLR", "T_max": 3, "warmup_iter": 2})
    with pytest.raises(OptionsError, match="did you mean 'MultiStepLR'"):
        build_scheduler(opt, {"type": "MultistepLR", "milestones": [1]})
    assert {"CosineAnnealingLR", "CosineAnnealingRestartCyclicLR", "MultiStepLR", "FixedLR"} <= set(SCHEDULERS.names())


def test_optimizers_are_registered_and_typed():
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, {"type": "AdamW", "lr": "3e-4", "betas": [0.9, 0.999], "weight_decay": 1e-4})
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["lr"] == 3e-4 and opt.defaults["betas"] == (0.9, 0.999)
    assert isinstance(build_optimizer(model, {"type": "Adam"}), torch.optim.Adam)
    assert isinstance(build_optimizer(model, {"type": "SGD", "momentum": 0.9}), torch.optim.SGD)
    with pytest.raises(OptionsError, match=r"train.optim.beta: unknown key.*did you mean 'betas'"):
        build_optimizer(model, {"type": "Adam", "beta": [0.9, 0.99]})
    with pytest.raises(OptionsError, match="train.optim.lr"):
        build_optimizer(model, {"type": "Adam", "lr": "fast"})
