"""A diverging run through ``tools/train.py``: one clear line, the good checkpoints untouched, and a
resume with ``train.nan_policy: skip`` goes on from the last good checkpoint.

The loop-level behaviour (the iteration named, lazy checks before every save, skipped steps,
non-finite weights refused by the checkpointer) is tested in ``tests/train/test_train_loop.py``.
"""

from __future__ import annotations

import re

import torch
from safetensors.torch import load_file

from irframe.train.checkpoint_folders import list_checkpoints, load_state


def test_nan_stops_with_one_line_keeps_good_checkpoints_and_resumes_with_skip(tmp_path, images, write_yaml, tools):
    exp = tmp_path / "experiments"
    # every training forward after the 3rd returns NaN: iteration 4 diverges
    common = {"model": {"nan_after": 3}, "train": {"total_iter": 6}, "logger": {"checkpoint_freq": 2}}
    stop = write_yaml("stop.yml", tools.train_options(images, exp, "nan", **common))
    proc = tools.run(tools.HARNESS, ["-opt", str(stop)], tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(r"error: iteration 4: the loss is not finite", lines[0]), proc.stderr
    assert "the last good checkpoint is" in lines[0] and lines[0].rstrip().endswith("train.nan_policy: skip")
    ckpts = exp / "nan" / "checkpoints"
    assert [i for i, _ in list_checkpoints(ckpts)] == [2]  # nothing written at or after iteration 4
    assert '"iteration": 2' in (ckpts / "best" / "best.json").read_text()
    for folder in (ckpts / "iter_000002", ckpts / "best"):
        for name in ("model.safetensors", "ema.safetensors"):
            assert all(torch.isfinite(t).all() for t in load_file(str(folder / name)).values()), folder / name

    # the same experiment, now skipping non-finite steps (a fresh process: its first 3 forwards are
    # fine, i.e. iterations 3-5; iteration 6 is skipped)
    skipping = {**common, "train": {"total_iter": 6, "nan_policy": "skip"}}
    skip = write_yaml("skip.yml", tools.train_options(images, exp, "nan", **skipping))
    proc = tools.run(tools.HARNESS, ["-opt", str(skip), "--resume", "auto"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "from iter_000002" in proc.stdout and "iteration 6: non-finite loss" in proc.stdout
    state = load_state(ckpts / "iter_000006")
    assert state["skipped_steps"] == 1 and state["iteration"] == 6
    assert all(torch.isfinite(t).all() for t in load_file(str(ckpts / "iter_000006" / "model.safetensors")).values())


def test_non_finite_metric_is_never_a_new_best() -> None:
    """A NaN/inf validation score (a diverged model) never replaces ``best/``."""
    from irframe.train.trainer import BestScore

    for higher in (True, False):
        best = BestScore("PSNR", 30.0, 2, higher_is_better=higher)
        assert not any(best.improved_by(v) for v in (float("nan"), float("inf"), float("-inf")))
        assert best.improved_by(31.0 if higher else 29.0)
