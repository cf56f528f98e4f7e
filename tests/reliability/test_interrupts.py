"""Ctrl-C while training: one line saying when and which checkpoint continues the run, no traceback.

Ctrl-C during validation printed ~40 lines of traceback (the validation loop, the DataLoader, the
progress bar). Now the run ends with exit status 130 and one ``interrupted:`` line naming the
iteration, that it was validating, and the checkpoint ``--resume auto`` continues from; every
checkpoint on disk is complete, and the resumed run ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from irframe.train.checkpoint_folders import is_complete


def test_ctrl_c_during_validation_is_one_line_and_the_checkpoints_stay_complete(
    images, tools, tmp_path, write_yaml
) -> None:
    opts = tools.train_options(images, tmp_path / "experiments", "run")
    opts["train"]["total_iter"] = 6
    cfg = write_yaml("run.yml", opts)
    proc = tools.run(tools.HARNESS, ["-opt", str(cfg)], tmp_path, IRFRAME_RELIABILITY_FAULT="sigint_in_validation:4")
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted: "), proc.stderr
    for words in ("at iteration 4 during validation", "are intact", "--resume auto continues from iter_000003"):
        assert words in lines[0], lines[0]
    ckpts = tmp_path / "experiments" / "run" / "checkpoints"
    assert all(is_complete(p) for p in ckpts.glob("iter_*")) and not list(ckpts.glob(".tmp_*"))

    resumed = tools.run(tools.HARNESS, ["-opt", str(cfg), "--resume", "auto"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    reference = tools.run(tools.HARNESS, ["-opt", str(write_yaml("whole.yml", {**opts, "name": "whole"}))], tmp_path)
    assert reference.returncode == 0, reference.stderr[-3000:]
    mine = load_file(str(ckpts / "iter_000006" / "model.safetensors"))
    theirs = load_file(str(tmp_path / "experiments" / "whole" / "checkpoints" / "iter_000006" / "model.safetensors"))
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
