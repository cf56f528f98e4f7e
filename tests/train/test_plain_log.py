"""Training whose output goes to a file or a pipe (every cluster job) prints plain log lines, one
per entry, with no progress bar: tqdm's carriage-return updates would share lines with them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from irframe.train import logger as logger_module
from tests.helpers import ROOT, three_iteration_run


def test_a_run_whose_output_is_a_pipe_prints_one_plain_line_per_entry(tmp_path: Path) -> None:
    sets = [
        *three_iteration_run(tmp_path, 32),
        "logger.progress_bar=true",  # asked for, but the output is not a terminal
        "logger.print_freq=1", "model.dim=8", "model.heads=[1,1,1,1]", "datasets.train.gt_size=16",
        "train.warmup_iter=0", "train.scheduler.T_max=3", "val.save_images=false",
    ]
    run = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "train.py"), "-opt", str(ROOT / "options" / "demo.yml"),
         "--threads", "1", "--set", *sets],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path, timeout=600,
    )
    out = run.stdout.decode()
    assert run.returncode == 0, out
    assert "\r" not in out, out  # no bar updates
    lines = out.splitlines()
    iters = [line for line in lines if "iter " in line and " | lr " in line]
    assert [line.split(" | ")[0] for line in iters] == ["iter 1/3", "iter 2/3", "iter 3/3"], out
    # the ETA is in the log line itself (after the first iteration, which is left out of the rate)
    assert re.search(r" it/s \| eta 0:00:\d\d$", iters[1]), iters[1]
    assert sum(line.startswith("val @ 3: val [2 images]: PSNR") for line in lines) == 1, out
    assert not any("train:" in line or "it/s]" in line for line in lines), out  # no tqdm bar text


def test_the_bar_is_for_terminals_only(monkeypatch, capsys) -> None:
    monkeypatch.setattr(logger_module, "_stderr_is_terminal", lambda: False)
    log = logger_module.TrainLogger(None, None, 10, 0, is_main=True, progress_bar=True)
    try:
        assert log._bar is None
        log.info("iter 1/10 | lr 1e-3")
        assert log.progress(3, "val x").disable  # validation bars too
    finally:
        log.close()
    captured = capsys.readouterr()
    assert captured.out == "iter 1/10 | lr 1e-3\n" and captured.err == ""
    monkeypatch.setattr(logger_module, "_stderr_is_terminal", lambda: True)
    log = logger_module.TrainLogger(None, None, 10, 0, is_main=True, progress_bar=True)
    try:
        assert log._bar is not None
    finally:
        log.close()
