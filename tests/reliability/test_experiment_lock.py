"""Two runs never write one experiment folder: the run holds an exclusive lock on it.

* a second ``--resume auto`` on a folder in use is refused with one line naming the folder and
  the pid of the run holding it, before it reads or writes anything there;
* the lock of a run that was killed (SIGKILL) is gone with it: the next ``--resume auto`` continues;
* a second run in the same process is refused too (record locks cannot see their own process);
* under ``torchrun`` only the main process holds the lock, and when the folder is in use every
  process stops with the error instead of waiting for the others.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from irframe.train.experiment import claim_experiment, release
from irframe.train.lock import LOCK_FILE, ExperimentInUse

TORCHRUN = Path(sys.executable).with_name("torchrun")

HOLDER = """
import sys, time
from pathlib import Path
from irframe.train.lock import ExperimentLock
ExperimentLock.acquire(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(300)
"""


def long_run(images, tools, experiments: Path, **changes):
    opts = tools.train_options(images, experiments, "run", val=None, **changes)
    opts["train"]["total_iter"] = 100000
    opts["train"]["scheduler"]["T_max"] = 100000
    opts["logger"].update(print_freq=1, checkpoint_freq=5)
    return opts


def wait_for(proc: subprocess.Popen[str], prefix: str, timeout: float = 120) -> list[str]:
    """Lines of ``proc`` up to the first one starting with ``prefix``."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith(prefix):
            return seen
    raise AssertionError(f"no line starting with {prefix!r}:\n{''.join(seen)[-3000:]}")


def test_second_writer_is_refused_and_a_killed_runs_lock_is_not_stale(images, tools, tmp_path, write_yaml) -> None:
    experiments = tmp_path / "experiments"
    cfg = write_yaml("run.yml", long_run(images, tools, experiments))
    root = experiments / "run"
    first = tools.start(tools.HARNESS, ["-opt", str(cfg), "--resume", "auto"], tmp_path)
    try:
        wait_for(first, "iter 6/")  # training, with a checkpoint written
        second = tools.run(tools.HARNESS, ["-opt", str(cfg), "--resume", "auto"], tmp_path)
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 2, second.stderr[-2000:]
        assert len(lines) == 1 and lines[0].startswith("error: "), second.stderr
        assert str(root) in lines[0] and f"pid {first.pid}" in lines[0] and "in use by another run" in lines[0]
        assert "resuming" not in second.stdout  # it decided nothing and wrote nothing
        log = (root / "train.log").read_text()
        assert log.count("global batch") == 1, "the second run wrote to the log"
    finally:
        first.kill()  # SIGKILL: no cleanup at all
        first.wait()
    assert (root / LOCK_FILE).is_file()  # the file stays; the lock died with the process
    third = tools.run(tools.HARNESS, ["-opt", str(cfg), "--resume", "auto", "--set", "train.total_iter=6"], tmp_path)
    assert third.returncode == 0, third.stderr[-2000:]
    assert "resuming" in third.stdout and "in use" not in third.stderr


def test_a_second_run_in_the_same_process_is_refused(tmp_path) -> None:
    exp = claim_experiment(tmp_path, "run", "auto")
    try:
        with pytest.raises(ExperimentInUse, match=rf"{tmp_path / 'run'} is in use by another run in this process"):
            claim_experiment(tmp_path, "run", "auto")
    finally:
        release(exp)
    again = claim_experiment(tmp_path, "run", "auto")  # released: free again
    release(again)


@pytest.mark.slow
@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not installed next to python")
def test_torchrun_on_a_folder_in_use_stops_every_process_with_the_error(images, tools, tmp_path, write_yaml) -> None:
    experiments = tmp_path / "experiments"
    (experiments / "run").mkdir(parents=True)
    cfg = write_yaml("run.yml", tools.train_options(images, experiments, "run", val=None))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(experiments / "run")], stdout=subprocess.PIPE, text=True,
        env=tools.env(),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        proc = subprocess.run(
            [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", str(tools.HARNESS), "-opt", str(cfg),
             "--resume", "auto"],
            cwd=tmp_path, env=tools.env(), capture_output=True, text=True, timeout=240, check=False,
        )
        took = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait()
    out = proc.stdout + proc.stderr
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert proc.returncode != 0
    # Each rank raises the error; torchrun then stops the other worker, which may be killed before it prints
    # its own copy, so one or two lines come back, never zero and never another message.
    assert 1 <= len(errors) <= 2, out
    assert all(f"pid {holder.pid}" in e and "in use by another run" in e for e in errors), out
    assert took < 200, f"the processes waited for each other ({took:.0f} s)"
    assert not list((experiments / "run").glob("checkpoints/iter_*"))
