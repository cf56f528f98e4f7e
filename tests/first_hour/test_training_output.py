"""What training prints: validation bars and per-set lines as each set finishes, the 'new best'
wording, and a training rate that leaves validation and start-up out."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import torch

from irframe.options import load_options
from irframe.train import demo
from irframe.train.build import run_training
from irframe.train.validation import Validator, ValResult

OPTIONS = Path(__file__).resolve().parents[2] / "options" / "demo.yml"


class _Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _sets(n: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    return [
        {"lq": torch.rand(3, 8, 8, generator=g), "gt": torch.rand(3, 8, 8, generator=g), "name": f"i{i}"}
        for i in range(n)
    ]


def test_each_set_reports_as_soon_as_it_is_scored_with_its_own_bar():
    from irframe.registry import METRICS

    events: list[tuple] = []

    class Bar:
        def __init__(self, total: int, desc: str) -> None:
            events.append(("bar", desc, total))

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            events.append(("closed",))

        def update(self, n: int = 1) -> None:
            events.append(("step",))

    validator = Validator({"a": _sets(2), "b": _sets(3)}, [METRICS.build({"type": "PSNR"})], lambda m, lq, t: lq)
    result = validator.run(
        _Identity(), 1, progress=Bar, on_dataset=lambda name, r: events.append(("done", name, list(r.scores)))
    )
    assert events == [
        ("bar", "val a", 2), ("step",), ("step",), ("closed",), ("done", "a", ["a"]),
        ("bar", "val b", 3), ("step",), ("step",), ("step",), ("closed",), ("done", "b", ["a", "b"]),
    ]
    assert set(result.scores) == {"a", "b"}


def test_best_text_says_what_the_tracked_number_is():
    one = ValResult(scores={"val": {"PSNR": 29.0}})
    assert one.best_text("PSNR") == "on val"
    two = ValResult(scores={"a": {"PSNR": 28.0}, "b": {"PSNR": 30.5}})
    assert two.mean("PSNR") == pytest.approx(29.25)
    assert two.best_text("PSNR") == "mean over 2 sets: a 28.0000, b 30.5000"


def test_training_rate_excludes_validation_and_start_up_and_best_names_the_sets(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(demo, "TRAIN_IMAGES", 2)
    monkeypatch.setattr(demo, "VAL_IMAGES", 1)
    monkeypatch.setattr(demo, "IMAGE_SIZE", 32)
    train, val = demo.prepare_data(tmp_path / "data")
    slow = Validator.run

    def slow_run(self, model, iteration, **kwargs):  # the first validation takes 2 s
        if iteration == 2:
            time.sleep(2.0)
        return slow(self, model, iteration, **kwargs)

    monkeypatch.setattr(Validator, "run", slow_run)
    from irframe.train.trainer import Trainer

    step = Trainer.train_step

    def slow_first_step(self, batches):  # start-up cost (loader workers, lazy init) lands on step 1
        if self.iteration == 0:
            time.sleep(2.0)
        return step(self, batches)

    monkeypatch.setattr(Trainer, "train_step", slow_first_step)
    second = (
        f"{{type: OnlineDegradationDataset, dataroot_gt: {val}, "
        "degradation: {type: GaussianNoise, sigma: 50}, seed: 1}"
    )
    opts = load_options(OPTIONS, [
        f"datasets.train.dataroot_gt={train}", f"datasets.val.dataroot_gt={val}", f"datasets.val2={second}",
        "train.total_iter=4", "train.warmup_iter=0", "val.freq=2", "logger.print_freq=4", "logger.checkpoint_freq=4",
        "logger.progress_bar=false", "logger.tensorboard=false", "datasets.train.batch_size=1",
        "datasets.train.gt_size=16", "val.save_images=false", f"path.experiments_root={tmp_path / 'exp'}",
        "model.dim=8", "model.heads=[1,1,1,1]",
    ])
    run_training(opts)
    log = (next((tmp_path / "exp").iterdir()) / "train.log").read_text()
    rate = float(re.search(r"iter 4/4 .* \| ([0-9.]+) it/s", log).group(1))
    # iterations 2-4 (3 steps) around a 2 s validation, after a 2 s first step: counting either
    # would give < 1.5 it/s
    assert rate > 1.5, log
    lines = log.splitlines()
    first_val2 = next(i for i, line in enumerate(lines) if "val @ 2: val2" in line)
    first_val = next(i for i, line in enumerate(lines) if "val @ 2: val " in line)
    assert first_val < first_val2
    assert re.search(r"new best PSNR [0-9.]+ \(mean over 2 sets: val [0-9.]+, val2 [0-9.]+\) at iteration 2", log)


def test_python_warnings_go_above_the_training_bar_on_a_terminal(monkeypatch):
    import warnings

    from irframe.train import logger as logger_module

    written: list[str] = []
    monkeypatch.setattr(logger_module, "_stderr_is_terminal", lambda: True)
    monkeypatch.setattr(logger_module.tqdm, "write", staticmethod(lambda text, file=None: written.append(text)))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        log = logger_module.TrainLogger(None, None, 10, 0, is_main=True, progress_bar=True)
        try:
            warnings.warn("values far outside [0, 1]", RuntimeWarning, stacklevel=1)
        finally:
            log.close()
        assert len(written) == 1 and "RuntimeWarning: values far outside [0, 1]" in written[0]
        assert warnings.showwarning is not logger_module._show_warning  # put back by close()
