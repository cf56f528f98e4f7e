"""The CPU thread policy (irframe.threads): cores, launch processes, loader workers, load, overrides."""

from __future__ import annotations

import argparse

import pytest
import torch

from irframe import threads
from irframe.threads import available_cores, choose_threads, configure_threads, threads_arg

QUIET = {"machine_cores": 8, "load": 0.0}


def test_auto_uses_every_available_core_on_a_quiet_machine():
    choice = choose_threads("auto", env={}, cores=8, **QUIET)
    assert choice.threads == 8 and not choice.oversubscribed
    assert "8 cores available" in choice.reason


def test_cores_are_shared_by_local_processes_and_loader_workers():
    choice = choose_threads(None, workers=1, env={"LOCAL_WORLD_SIZE": "2"}, cores=8, **QUIET)
    assert choice.threads == 3  # 8 / 2 processes - 1 worker
    assert "/ 2 local processes" in choice.reason and "- 1 loader worker" in choice.reason
    assert choose_threads(None, workers=9, env={}, cores=4, **QUIET).threads == 1  # never below one


def test_busy_machine_gets_fewer_threads_and_a_warning():
    # 2 cores, 2 other processes running: the policy takes one thread instead of competing with 2
    choice = choose_threads(None, env={}, cores=2, machine_cores=2, load=2.4)
    assert choice.threads == 1 and choice.oversubscribed
    assert "busy machine: load 2.4 on 2 cores" in choice.reason
    assert "oversubscribed" in choice.line()
    # partly busy: the free cores are what is left
    assert choose_threads(None, env={}, cores=8, machine_cores=8, load=5.2).threads == 2


def test_load_is_measured_against_the_whole_machine_not_a_cgroup_share():
    # a container allowed 4 of a 64-core host whose load is 30 still has its 4 cores
    choice = choose_threads(None, env={}, cores=4, machine_cores=64, load=30.0)
    assert choice.threads == 4 and choice.oversubscribed  # the load exceeds our 4 cores: said, not obeyed


def test_explicit_choices_win_in_order():
    env = {"OMP_NUM_THREADS": "3"}
    assert choose_threads(5, env=env, cores=2, machine_cores=2, load=9.0).threads == 5  # --threads / option
    user = choose_threads("auto", env=env, cores=8, **QUIET)
    assert user.threads == 3 and "OMP_NUM_THREADS=3 from the environment" in user.reason


def test_a_launchers_thread_setting_is_replaced():
    # accelerate launch / torchrun export OMP_NUM_THREADS (1, or cores / processes for accelerate --cpu)
    for marker, omp in (
        ("ACCELERATE_MIXED_PRECISION", "1"),
        ("TORCHELASTIC_RUN_ID", "1"),
        ("ACCELERATE_MIXED_PRECISION", "4"),
    ):
        choice = choose_threads(None, env={"OMP_NUM_THREADS": omp, marker: "x"}, cores=8, **QUIET)
        assert choice.threads == 8 and f"launcher's OMP_NUM_THREADS={omp} replaced" in choice.reason
    # outside a launcher, OMP_NUM_THREADS=1 is the user's and is kept
    assert choose_threads(None, env={"OMP_NUM_THREADS": "1"}, cores=8, **QUIET).threads == 1
    # under a launcher, --threads 1 keeps one thread
    assert (
        choose_threads(1, env={"OMP_NUM_THREADS": "1", "ACCELERATE_MIXED_PRECISION": "no"}, cores=8, **QUIET).threads
        == 1
    )


def test_invalid_omp_value_is_ignored_and_said():
    choice = choose_threads(None, env={"OMP_NUM_THREADS": "lots"}, cores=2, machine_cores=2, load=0.0)
    assert choice.threads == 2 and "OMP_NUM_THREADS='lots' ignored" in choice.reason


def test_threads_argument_parsing():
    assert threads_arg("auto") == "auto" and threads_arg("AUTO") == "auto" and threads_arg("4") == 4
    for bad in ("0", "-2", "many"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive number of threads"):
            threads_arg(bad)


def test_available_cores_reads_affinity_and_cgroup_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    quota = tmp_path / "cpu.max"
    quota.write_text("250000 100000\n")  # 2.5 CPUs -> 3 cores
    assert available_cores(quota) == 3
    quota.write_text("max 100000\n")
    assert available_cores(quota) == 6
    assert available_cores(tmp_path / "missing") == 6


def test_configure_applies_and_prints_one_line(monkeypatch):
    lines: list[str] = []
    before = torch.get_num_threads()
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # monkeypatch restores both variables afterwards
    monkeypatch.setenv(threads.CHOSEN_ENV, "")
    try:
        choice = configure_threads(2, log=lines.append)
        assert torch.get_num_threads() == 2 and choice.threads == 2
        assert lines == ["threads: 2 (set by --threads or the option file's threads)"]
        # exported, so accelerate keeps it; and known as ours, not as the user's OMP_NUM_THREADS
        import os

        assert os.environ["OMP_NUM_THREADS"] == "2" == os.environ[threads.CHOSEN_ENV]
        again = choose_threads(None, env=dict(os.environ), cores=4, machine_cores=4, load=0.0)
        assert again.threads == 4 and "from the environment" not in again.reason
        # the user's OMP_NUM_THREADS decides and stays as it is
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert configure_threads(None, log=None).from_env and os.environ[threads.CHOSEN_ENV] == "2"
        monkeypatch.setenv("RANK", "1")  # other ranks stay silent
        configure_threads(1, log=lines.append)
        assert len(lines) == 1
    finally:
        torch.set_num_threads(before)


def test_machine_load_is_the_runnable_count_not_the_lagging_average(monkeypatch):
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (9.0, 9.0, 9.0))  # a job that just ended
    monkeypatch.setattr(threads, "_runnable_now", lambda: 0.0)
    assert threads.machine_load() == 0.0
    monkeypatch.setattr(threads, "_runnable_now", lambda: None)  # no /proc: the average
    assert threads.machine_load() == 9.0
    monkeypatch.undo()
    now = threads._runnable_now(samples=3, interval=0.0)  # this machine's /proc/loadavg (None without one)
    assert now is None or now >= 0.0


def test_train_tool_applies_threads_and_says_so(tmp_path, monkeypatch, capsys):
    """tools/train.py --threads 2: the line comes first, the run trains with 2 threads."""
    from pathlib import Path

    from irframe.train import demo
    from irframe.train.build import TrainResult
    from irframe.train.cli import main as train_main

    monkeypatch.setattr(demo, "TRAIN_IMAGES", 2)
    monkeypatch.setattr(demo, "VAL_IMAGES", 1)
    monkeypatch.setattr(demo, "IMAGE_SIZE", 32)
    train, val = demo.prepare_data(tmp_path / "data")
    capsys.readouterr()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv(threads.CHOSEN_ENV, "")
    seen: list[int] = []
    kept: list[str] = []

    def fake_run(opts, resume=None):  # the thread count training would run with
        seen.append(torch.get_num_threads())
        return TrainResult(tmp_path / "exp", 0, None, None)

    monkeypatch.setattr("irframe.train.build.run_training", fake_run)
    # the tool keeps freed memory for the steps to reuse (irframe.heap), once, before training
    monkeypatch.setattr("irframe.train.cli.keep_freed_memory",
                        lambda: kept.append(f"before {len(seen)} runs") or "kept")
    before = torch.get_num_threads()
    options = Path(__file__).resolve().parents[2] / "options" / "demo.yml"
    try:
        status = train_main(["-opt", str(options), "--threads", "2", "--set", f"datasets.train.dataroot_gt={train}",
                             f"datasets.val.dataroot_gt={val}", f"path.experiments_root={tmp_path / 'exp'}"])
    finally:
        torch.set_num_threads(before)
    assert status == 0 and seen == [2]
    assert kept == ["before 0 runs"]
    assert capsys.readouterr().out.splitlines()[0] == "threads: 2 (set by --threads or the option file's threads)"

