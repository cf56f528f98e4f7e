"""``accelerate launch`` on a CPU: a lost process is an error naming the torchrun command, and an
error line is printed once (accelerate's one-process launcher repeats the child's stderr)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from irframe import launch, threads
from irframe.errors import DistributedError, report_error

ROOT = Path(__file__).resolve().parents[2]
# what accelerate 1.x exports through its one-process ("simple") launcher, for --num_processes 2
SIMPLE = {"ACCELERATE_USE_CPU": "True", "ACCELERATE_MIXED_PRECISION": "no", "ACCELERATE_DYNAMO_BACKEND": "NO",
          "OMP_NUM_THREADS": "1"}
ASKED_TWO = {**SIMPLE, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
LAUNCHER = ["python", "accelerate", "launch", "--cpu", "--num_processes", "2", "tools/train.py", "-opt", "d.yml"]
ARGV = ["tools/train.py", "-opt", "options/demo.yml"]


def test_a_lost_process_names_the_torchrun_command_that_runs_them():
    text = launch.lost_processes(ASKED_TWO, LAUNCHER, ARGV)
    assert text is not None and text.startswith("accelerate launch started 1 process, not the 2 asked for")
    assert text.endswith("run: torchrun --nproc_per_node 2 tools/train.py -opt options/demo.yml")
    assert "torchrun --nproc_per_node 3 " in launch.lost_processes(ASKED_TWO, ["accelerate", "--num-processes=3"], ARGV)
    # the launcher's command line unreadable: still refused, the count left for the user
    assert "torchrun --nproc_per_node N tools/train.py" in launch.lost_processes(ASKED_TWO, [], ARGV)


@pytest.mark.parametrize("env, launcher", [
    (SIMPLE, ["accelerate", "launch", "--cpu", "t.py"]),  # one process asked for: no MASTER_PORT
    ({**ASKED_TWO, "RANK": "0", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "x"}, LAUNCHER),  # torchrun / multi-GPU
    ({"MASTER_PORT": "29500"}, []),  # plain python with a port the user exported
    ({**ASKED_TWO}, ["accelerate", "launch", "--num_processes", "1", "t.py"]),
])
def test_launches_that_run_what_was_asked_for_pass(env, launcher):
    assert launch.lost_processes(env, launcher, ARGV) is None


def test_the_tools_thread_set_up_refuses_the_lost_process(monkeypatch):
    for key, value in ASKED_TWO.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(launch, "parent_command_line", lambda pid=None: LAUNCHER)
    with pytest.raises(DistributedError, match="not the 2 asked for.*torchrun --nproc_per_node 2"):
        threads.configure_threads(1, log=None)


def test_an_error_is_printed_once_under_the_one_process_launcher(monkeypatch, capsys):
    for key, value in SIMPLE.items():
        monkeypatch.setenv(key, value)
    assert report_error(DistributedError("x.yml: bad")) == 2
    out, err = capsys.readouterr()
    assert out == "error: x.yml: bad\n" and err == ""  # accelerate repeats the child's stderr, not its stdout
    monkeypatch.setenv("RANK", "0")  # torchrun-style launchers: stderr as everywhere
    report_error(DistributedError("x.yml: bad"))
    assert capsys.readouterr().err == "error: x.yml: bad\n"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None,
                    reason="accelerate's command is not installed beside this Python")
def test_real_accelerate_launch(tmp_path):
    """What accelerate itself does (its environment may change between versions): ~10 s."""
    accelerate = str(Path(sys.executable).parent / "accelerate")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE", "MASTER_", "RANK", "WORLD"))}
    probe = tmp_path / "probe.py"
    probe.write_text("from irframe.launch import lost_processes\nprint(lost_processes())\n")
    run = subprocess.run([accelerate, "launch", "--cpu", "--num_processes", "2", str(probe)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "accelerate launch started 1 process, not the 2 asked for" in run.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\nmodel: {type: Restormer, dimm: 8}\n")
    run = subprocess.run([accelerate, "launch", "--cpu", str(ROOT / "tools" / "test.py"), "-opt", str(bad)],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert (run.stdout + run.stderr).count("model.dimm: unknown key") == 1
