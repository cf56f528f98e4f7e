"""A 2-process DDP run on CPU (torchrun, gloo) ends with the weights of a 1-process run with the
same global batch: the batch sampler hands each rank a slice of the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from irframe.train.checkpoint_folders import load_state

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def write_options(toys, tmp_path: Path, name: str, batch_size: int) -> Path:
    opts = toys.toy_options(  # the same toy options as the in-process tests
        tmp_path / "experiments",
        name=name,
        datasets={"train": {"type": "ToyPairs", "batch_size": batch_size}},
        train={"total_iter": 6, "grad_clip": 0.5},
        val={"freq": 3},
        logger={"checkpoint_freq": 3},
    )
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(opts))
    return path


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(toys, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    script = str(HERE / "toy_train.py")
    ddp = run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node",
            "2",
            script,
            "-opt",
            str(write_options(toys, tmp_path, "ddp", 2)),
        ]
    )
    single = run([sys.executable, script, "-opt", str(write_options(toys, tmp_path, "single", 4))])
    assert "global batch (per process x processes x accumulation): 4 = 2 x 2 x 1" in ddp.stdout
    assert ddp.stdout.count("finished at iteration 6") == 1  # only the main process reports

    experiments = tmp_path / "experiments"
    assert sorted(p.name for p in experiments.iterdir()) == ["ddp", "single"]  # one folder per run
    a = experiments / "ddp" / "checkpoints" / "iter_000006"
    b = experiments / "single" / "checkpoints" / "iter_000006"
    for name in ("model.safetensors", "ema.safetensors"):
        wa, wb = load_file(str(a / name)), load_file(str(b / name))
        for k in wa:
            torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)
    state = load_state(a)
    assert state["world_size"] == 2 and len(state["rng"]) == 2  # every rank's RNG state is kept
    # validation was gathered across ranks: 3 images on 2 processes, same scores as 1 process
    val_lines = lambda out: [line for line in out.splitlines() if line.startswith("val @ 6")]
    assert val_lines(ddp.stdout) == val_lines(single.stdout) and "[3 images]" in val_lines(ddp.stdout)[0]


@pytest.mark.slow
def test_two_process_multitask_with_idle_heads(toys, tmp_path):
    # One task per batch: the other task's head and tail get no gradient. The model declares
    # several spec.tasks, so DDP is set up with find_unused_parameters and does not fail.
    opts = toys.toy_options(
        tmp_path / "experiments",
        name="multi",
        model={"type": "ToyMultiTaskNet", "tasks": ["a", "b"]},
        datasets={"train": {"type": "ToyPairs", "batch_size": 2, "tasks": ["a", "b"]}, "val": {"tasks": ["a", "b"]}},
        train={"total_iter": 4},
    )
    path = tmp_path / "multi.yml"
    path.write_text(yaml.safe_dump(opts))
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(HERE / "toy_train.py"), "-opt", str(path)])
    assert "DDP find_unused_parameters True" in proc.stdout and "finished at iteration 4" in proc.stdout


@pytest.mark.slow
def test_two_process_adversarial_step_matches_one_process(toys, tmp_path):
    # Two networks, two optimizers under DDP: the discriminator is frozen (requires_grad off) and
    # called outside DDP in the generator's step, so no parameter is left without a gradient in a
    # DDP backward; the result equals a 1-process run of the same global batch.
    def options(name: str, batch_size: int) -> Path:
        opts = toys.toy_options(
            tmp_path / "experiments",
            name=name,
            datasets={"train": {"type": "ToyPairs", "batch_size": batch_size}},
            train={"total_iter": 4, "grad_clip": 0.5, "step": {
                "type": "AdversarialStep",
                "network_d": {"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4},
                "optim_d": {"type": "Adam", "lr": 1e-3},
                "gan": {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1},
                "net_d_init_iters": 1,
                "grad_clip_d": 1.0,
            }},
            val={"freq": 4},
            logger={"checkpoint_freq": 4, "print_freq": 1},
        )
        path = tmp_path / f"{name}.yml"
        path.write_text(yaml.safe_dump(opts))
        return path

    torchrun = Path(sys.executable).with_name("torchrun")
    script = str(HERE / "toy_train.py")
    ddp = run([str(torchrun), "--standalone", "--nproc_per_node", "2", script, "-opt", str(options("ddp", 2))])
    run([sys.executable, script, "-opt", str(options("single", 4))])
    assert "DDP find_unused_parameters False" in ddp.stdout and "finished at iteration 4" in ddp.stdout
    assert "l_d_real" in ddp.stdout and "l_g_gan" in ddp.stdout
    a = tmp_path / "experiments" / "ddp" / "checkpoints" / "iter_000004"
    b = tmp_path / "experiments" / "single" / "checkpoints" / "iter_000004"
    for name in ("model.safetensors", "ema.safetensors", "net_d.safetensors"):
        wa, wb = load_file(str(a / name)), load_file(str(b / name))
        for k in wa:
            torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5, msg=f"{name} {k}")
    state = load_state(a)
    assert state["world_size"] == 2 and "optimizer_d" in state
