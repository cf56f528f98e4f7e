"""A resumed run whose options changed: each change is applied (and printed) or refused by name.

* a new ``train.optim.lr`` is used from the resumed iteration on, and the log says so;
* an extended schedule (``T_max`` 4 -> 100 with ``total_iter`` 4 -> 8) is rebuilt at iteration 4:
  iterations 5-8 train at a non-zero rate (they ran at 0 when the restored scheduler was kept);
* a change a resume may not make (the architecture, the training data, the seed, the losses, the
  optimizer type, the metric ``best/`` is chosen by) is one ``OptionsError`` line naming each key,
  before anything is loaded or written.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from irframe.errors import OptionsError
from irframe.options import validate_options
from irframe.train.build import run_training
from irframe.train.lock import LOCK_FILE


def options(images, tools, tmp_path: Path, total: int = 4, t_max: int = 4, lr: float = 2e-3, **changes):
    changes.setdefault("val", None)
    train = {"total_iter": total, "scheduler": {"type": "CosineAnnealingLR", "T_max": t_max},
             "optim": {"type": "AdamW", "lr": lr}, **changes.pop("train", {})}
    return validate_options(
        tools.train_options(images, tmp_path / "experiments", "run", train=train, **changes), source="test.yml"
    )


def rates(log: str) -> dict[int, float]:
    """``{iteration: lr}`` from the log's iteration lines (the rate each step used)."""
    return {int(m[1]): float(m[2]) for m in re.finditer(r"iter (\d+)/\d+ \| lr ([0-9.e+-]+)", log)}


def test_extended_schedule_and_new_lr_are_applied_and_said(relnet, images, tools, tmp_path) -> None:
    run_training(options(images, tools, tmp_path))
    log_file = tmp_path / "experiments" / "run" / "train.log"
    assert rates(log_file.read_text())[4] > 0
    run_training(options(images, tools, tmp_path, total=8, t_max=100, lr=1e-3), resume="auto")
    log = log_file.read_text()
    changed = next(line for line in log.splitlines() if "resumed with changed options" in line)
    for words in ("train.optim.lr 0.002 -> 0.001", "train.scheduler.T_max 4 -> 100", "train.total_iter 4 -> 8",
                  "from iteration 4"):
        assert words in changed, changed
    lr = rates(log)
    assert all(lr[i] > 0 for i in (5, 6, 7, 8)), lr  # the old schedule had ended at 0 after iteration 4
    # the new base rate (1e-3) on the new cosine at iterations 4-7 of 100, not the old 2e-3
    assert all(9.5e-4 < lr[i] <= 1e-3 for i in (5, 6, 7, 8)), lr


def test_a_new_lr_alone_is_used_from_the_resumed_iteration(relnet, images, tools, tmp_path) -> None:
    run_training(options(images, tools, tmp_path, total=3, t_max=100))
    run_training(options(images, tools, tmp_path, total=5, t_max=100, lr=5e-4), resume="auto")
    lr = rates((tmp_path / "experiments" / "run" / "train.log").read_text())
    assert lr[3] > 1.9e-3 and 4.9e-4 < lr[4] <= 5e-4 and 4.9e-4 < lr[5] <= 5e-4, lr


@pytest.mark.parametrize(
    ("changes", "keys"),
    [
        ({"model": {"type": "RelNet", "width": 4}}, ["model.width 8 -> 4", "architecture"]),
        ({"seed": 7}, ["seed 5 -> 7"]),
        ({"datasets": {"train": {"gt_size": 8}}}, ["datasets.train.gt_size 16 -> 8", "training data"]),
        ({"train": {"losses": [{"type": "MSELoss"}]}}, ["train.losses"]),
        ({"train": {"optim": {"type": "Adam", "lr": 2e-3}}}, ["train.optim.type 'AdamW' -> 'Adam'"]),
    ],
    ids=["arch", "seed", "train-data", "losses", "optimizer-type"],
)
def test_a_change_a_resume_may_not_make_is_refused_by_name(relnet, images, tools, tmp_path, changes, keys) -> None:
    run_training(options(images, tools, tmp_path, total=2))
    root = tmp_path / "experiments" / "run"
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and p.name != LOCK_FILE}
    with pytest.raises(OptionsError) as info:
        run_training(options(images, tools, tmp_path, total=4, **changes), resume="auto")
    message = str(info.value)
    assert "\n" not in message and message.startswith("test.yml: cannot resume") and "train.pretrain.path" in message
    for words in keys:
        assert words in message, message
    after = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and p.name != LOCK_FILE}
    assert after == before, "a refused resume changed the experiment folder"


def test_the_metric_best_is_chosen_by_cannot_change(relnet, images, tools, tmp_path) -> None:
    val = {"freq": 2, "metrics": [{"type": "PSNR"}, {"type": "SSIM"}]}
    run_training(options(images, tools, tmp_path, total=2, val=val))
    with pytest.raises(OptionsError, match=r"val\.best_metric: the resumed run chose its best checkpoint by 'PSNR'"):
        run_training(options(images, tools, tmp_path, total=4, val={**val, "best_metric": "SSIM"}), resume="auto")
