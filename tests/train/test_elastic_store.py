"""The process group of a torchrun attempt lives in its own namespace of the agent's store.

torchrun (torch >= 2.5) keeps one store across ``--max-restarts`` attempts and
``init_process_group(env://)`` uses the same keys in each, so a restarted worker that reaches the
rendezvous first reads its peer's address from the attempt before and fails ("Gloo
connectFullMesh failed ... Connection refused"). ``init_elastic_process_group`` prefixes the keys
with the attempt. The subprocess test replays that: one store (the agent's), attempt 0 of two
processes, then attempt 1 where rank 1 arrives first.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch.distributed as dist

from irframe.train.build import elastic_store_prefix

ROOT = Path(__file__).resolve().parents[2]

AGENT_ENV = {"TORCHELASTIC_USE_AGENT_STORE": "True", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "run7"}


def test_prefix_is_per_attempt_under_the_agent_store_only() -> None:
    first = elastic_store_prefix({**AGENT_ENV, "TORCHELASTIC_RESTART_COUNT": "0"})
    second = elastic_store_prefix({**AGENT_ENV, "TORCHELASTIC_RESTART_COUNT": "1"})
    assert first is not None and second is not None and first != second
    assert "run7" in first and first.endswith("attempt_0") and second.endswith("attempt_1")
    # no agent store (plain python, accelerate launch, TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1) or one process
    assert elastic_store_prefix({**AGENT_ENV, "TORCHELASTIC_USE_AGENT_STORE": "False"}) is None
    assert elastic_store_prefix({k: v for k, v in AGENT_ENV.items() if k != "TORCHELASTIC_USE_AGENT_STORE"}) is None
    assert elastic_store_prefix({**AGENT_ENV, "WORLD_SIZE": "1"}) is None


WORKER = textwrap.dedent(
    """
    import datetime, sys, time
    import torch, torch.distributed as dist
    from irframe.train.build import init_elastic_process_group
    time.sleep(float(sys.argv[1]))  # the late rank of the attempt
    assert init_elastic_process_group(datetime.timedelta(seconds=20))
    t = torch.ones(1)
    dist.all_reduce(t)
    print("sum", int(t.item()), flush=True)
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_a_restarted_attempt_does_not_read_the_previous_attempts_addresses() -> None:
    if not dist.is_available():
        pytest.skip("torch.distributed not available")
    agent = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False,
                          timeout=datetime.timedelta(seconds=30))  # the elastic agent's store, kept across attempts
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TORCHELASTIC_", "MASTER_"))}
    base.update(AGENT_ENV, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(agent.port), OMP_NUM_THREADS="1",
                CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT) + os.pathsep + base.get("PYTHONPATH", ""))
    for attempt, delays in (("0", ("0", "0")), ("1", ("3", "0"))):  # attempt 1: rank 0 arrives 3 s late
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, delays[rank]], cwd=ROOT, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env={**base, "RANK": str(rank), "LOCAL_RANK": str(rank), "TORCHELASTIC_RESTART_COUNT": attempt},
            )
            for rank in (0, 1)
        ]
        outs = []
        for proc in procs:
            try:
                outs.append(proc.communicate(timeout=120)[0])
            finally:
                if proc.poll() is None:
                    proc.kill()
        for proc, out in zip(procs, outs):
            assert proc.returncode == 0 and "sum 2" in out, f"attempt {attempt}:\n{out[-2000:]}"
