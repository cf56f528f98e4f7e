"""Two-process runs (``torchrun``, gloo on the CPU) when one process hangs or dies.

* a stopped peer (SIGSTOP) ends the run with one ``error:`` line naming ``dist.timeout_s`` within
  that time, instead of torch's 30-minute default;
* ``torchrun --max-restarts 1``: a worker killed mid-run is restarted by the elastic agent, the new
  workers continue the last checkpoint by themselves (``--resume auto`` is the default under an
  elastic launch), and the run ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

TORCHRUN = Path(sys.executable).with_name("torchrun")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not installed next to python"),
]


def torchrun(tools, script_args: list[str], *extra: str) -> list[str]:
    return [str(TORCHRUN), "--standalone", *extra, "--nproc_per_node", "2", str(tools.HARNESS), *script_args]


def test_stalled_peer_ends_the_run_with_a_clear_error_within_dist_timeout(images, tools, tmp_path, write_yaml) -> None:
    timeout_s = 15
    opts = tools.train_options(images, tmp_path / "experiments", "stall", val=None, dist={"timeout_s": timeout_s})
    cmd = torchrun(tools, ["-opt", str(write_yaml("stall.yml", opts))])
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=tools.env(IRFRAME_RELIABILITY_FAULT="stall_rank1:3"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    stalled_pid, stalled_at, error, error_at, seen = None, 0.0, None, 0.0, []
    try:
        deadline = time.monotonic() + 150
        while error is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=5)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line)
            if line.startswith("stalling pid"):
                stalled_pid, stalled_at = int(line.split()[-1]), time.monotonic()
            elif line.startswith("error:"):
                error, error_at = line.strip(), time.monotonic()
    finally:
        if stalled_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stalled_pid, signal.SIGKILL)  # the stopped worker this test made stall
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # torchrun and its workers: started by this test
            proc.wait()
    out = "".join(seen)
    assert stalled_pid is not None, out[-3000:]
    assert error is not None, out[-3000:]
    assert f"dist.timeout_s={timeout_s}" in error and "did not answer" in error, error
    waited = error_at - stalled_at
    assert timeout_s - 1 <= waited <= timeout_s + 30, f"the error came {waited:.1f} s after the stall"
    assert proc.returncode != 0


def test_elastic_restart_resumes_from_the_last_checkpoint_and_matches_an_uninterrupted_run(
    images, tools, tmp_path, write_yaml
) -> None:
    def options(name: str) -> Path:
        opts = tools.train_options(
            images, tmp_path / "experiments", name, val=None, train={"total_iter": 8},
            logger={"checkpoint_freq": 2, "keep_checkpoints": 2},
        )
        return write_yaml(f"{name}.yml", opts)

    env = tools.env()
    whole = subprocess.run(torchrun(tools, ["-opt", str(options("whole"))]), cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300, check=False)
    assert whole.returncode == 0, whole.stdout[-3000:] + whole.stderr[-3000:]
    elastic = subprocess.run(
        torchrun(tools, ["-opt", str(options("elastic"))], "--max-restarts", "1"),
        cwd=tmp_path,
        env=tools.env(IRFRAME_RELIABILITY_FAULT="die_rank1:4"),
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    log = elastic.stdout + elastic.stderr
    assert elastic.returncode == 0, log[-4000:]
    assert "resuming" in log and "iter_000002" in log, log[-4000:]
    assert sorted(p.name for p in (tmp_path / "experiments").iterdir()) == ["elastic", "whole"]  # no elastic_1
    a = tmp_path / "experiments" / "elastic" / "checkpoints" / "iter_000008"
    b = tmp_path / "experiments" / "whole" / "checkpoints" / "iter_000008"
    for name in ("model.safetensors", "ema.safetensors"):
        wa, wb = load_file(str(a / name)), load_file(str(b / name))
        assert wa.keys() == wb.keys()
        for key in wa:
            assert torch.equal(wa[key], wb[key]), f"{name}:{key} differs from the uninterrupted run"
