"""A checkpoint saved with EMA weights whose ``ema.safetensors`` is gone is never resumed as if the
raw weights were the average.

* ``--resume auto``: the run falls back to the newest earlier checkpoint that is complete (with its
  EMA weights), says which in one line, and ends with the weights of an uninterrupted run;
* ``--resume <that checkpoint>``: refused with one line naming the file.
(A run that turns EMA on while resuming a checkpoint saved without it starts the average from its
weights, and says so.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from irframe.errors import CheckpointError
from irframe.options import validate_options
from irframe.train.build import run_training


def options(images, tools, tmp_path: Path, name: str = "run", total: int = 4, **changes):
    changes.setdefault("val", None)
    opts = tools.train_options(images, tmp_path / "experiments", name, **changes)
    opts["train"].update(total_iter=total, scheduler={"type": "CosineAnnealingLR", "T_max": 16})
    opts["logger"].update(keep_checkpoints=3)
    return validate_options(opts, source="test.yml")


def test_missing_ema_file_falls_back_or_is_refused_never_replaced_by_raw_weights(
    relnet, images, tools, tmp_path
) -> None:
    reference = run_training(options(images, tools, tmp_path, name="whole", total=5))
    run_training(options(images, tools, tmp_path))
    ckpts = tmp_path / "experiments" / "run" / "checkpoints"
    (ckpts / "iter_000004" / "ema.safetensors").unlink()

    with pytest.raises(CheckpointError, match=r"iter_000004: ema\.safetensors is missing") as info:
        run_training(options(images, tools, tmp_path, total=5), resume=str(ckpts / "iter_000004"))
    assert "\n" not in str(info.value) and "cannot resume" in str(info.value)

    result = run_training(options(images, tools, tmp_path, total=5), resume="auto")
    log = (tmp_path / "experiments" / "run" / "train.log").read_text()
    line = next(line for line in log.splitlines() if "ema.safetensors is missing" in line)
    assert "falling back to the older complete checkpoint" in line and "iter_000003" in line
    for name in ("model.safetensors", "ema.safetensors"):
        mine, theirs = load_file(str(result.last_checkpoint / name)), load_file(str(reference.last_checkpoint / name))
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs), f"{name} differs from an uninterrupted run"


def test_turning_ema_on_while_resuming_says_where_the_average_starts(relnet, images, tools, tmp_path) -> None:
    run_training(options(images, tools, tmp_path, total=2, train={"ema_decay": 0.0}))
    run_training(options(images, tools, tmp_path, total=3, train={"ema_decay": 0.9}), resume="auto")
    log = (tmp_path / "experiments" / "run" / "train.log").read_text()
    assert "has no EMA weights (saved without EMA); the average starts from its weights" in log
