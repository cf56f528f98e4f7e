"""SIGKILL at any moment of training, including inside a checkpoint save, then ``--resume auto``.

One experiment is killed again and again (three times at chosen moments of a save through the
harness's fault hooks, then at random moments) and resumed each time; afterwards its final
weights, EMA weights and best checkpoint must equal those of an uninterrupted run with the same
seed (deterministic mode, CPU), and no debris of the killed saves may be left behind.
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from irframe.train.checkpoint_folders import latest_checkpoint, load_state

CHECKPOINT_FILES = {"model.safetensors", "ema.safetensors", "trainer_state.pt"}
TOTAL_ITER = 16


def check_resumable(ckpts: Path, context: str) -> Path:
    """What ``--resume auto`` relies on after a crash: the newest complete checkpoint loads, holds
    finite weights, and no ``iter_*`` folder is a half-written or half-deleted checkpoint."""
    latest = latest_checkpoint(ckpts)
    assert latest is not None, f"{context}: no complete checkpoint"
    state = load_state(latest)
    assert state["iteration"] == int(latest.name.split("_")[1]), context
    for folder in ckpts.iterdir():
        if re.fullmatch(r"iter_\d+", folder.name):
            assert {p.name for p in folder.iterdir()} == CHECKPOINT_FILES, f"{context}: {folder} is incomplete"
            for name in ("model.safetensors", "ema.safetensors"):
                tensors = load_file(str(folder / name))
                assert all(torch.isfinite(t).all() for t in tensors.values()), f"{context}: {folder / name}"
    return latest


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a)), load_file(str(b))
    assert wa.keys() == wb.keys(), (a, b)
    for key in wa:
        assert torch.equal(wa[key], wb[key]), f"{a} and {b} differ in {key}"


def kill_at_random(tools, args: list[str], cwd: Path, rng: random.Random, seed: int) -> bool:
    """Start a run and SIGKILL it at a random moment of its training: after a random number of its
    checkpoints plus a random fraction of an iteration. Returns whether it was killed (``False``:
    it finished first)."""
    proc = tools.start(tools.HARNESS, args, cwd)
    assert proc.stdout is not None
    seen: list[str] = []
    saves = 0
    target = rng.randint(1, 4)
    for line in proc.stdout:
        seen.append(line)
        saves += "checkpoint saved" in line
        if saves >= target:
            break
    time.sleep(rng.uniform(0.0, 0.05))
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=tools.TIMEOUT)
    if proc.returncode == 0:
        return False
    assert proc.returncode == -signal.SIGKILL, f"seed {seed}: the run failed by itself:\n{''.join(seen)}{rest}"
    return True


def _log(experiment: Path) -> str:
    """The end of the run's train.log (which iterations each attempt resumed from)."""
    log = experiment / "train.log"
    return log.read_text(encoding="utf-8")[-3000:] if log.is_file() else "(no train.log)"


def test_sigkill_anywhere_then_resume_auto_equals_uninterrupted_run(tmp_path, images, write_yaml, tools):
    exp = tmp_path / "experiments"
    ref_opt = write_yaml("ref.yml", tools.train_options(images, exp, "ref"))
    run_opt = write_yaml("run.yml", tools.train_options(images, exp, "run"))
    args = ["-opt", str(run_opt), "--resume", "auto"]
    reference = tools.start(tools.HARNESS, ["-opt", str(ref_opt)], tmp_path)  # runs meanwhile
    ckpts = exp / "run" / "checkpoints"

    # 1) killed inside a save of iter_3: weights written to the temporary folder, state not yet
    proc = tools.run(tools.HARNESS, args, tmp_path, IRFRAME_RELIABILITY_FAULT="save_state:3")
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    debris = list(ckpts.glob(".tmp_iter_000003_*"))
    assert len(debris) == 1 and (debris[0] / "model.safetensors").is_file()  # the kill hit mid-save
    assert check_resumable(ckpts, "kill in save").name == "iter_000002"

    # 2) killed while re-saving best/, between its two renames (old best moved away, new not in place)
    proc = tools.run(tools.HARNESS, args, tmp_path, IRFRAME_RELIABILITY_FAULT="best_swap")
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    assert "resuming" in proc.stdout and "from iter_000002" in proc.stdout
    assert list(ckpts.glob(".old_best_*"))
    check_resumable(ckpts, "kill in best swap")

    # 3) killed while pruning an old checkpoint, after its first file was deleted
    proc = tools.run(tools.HARNESS, args, tmp_path, IRFRAME_RELIABILITY_FAULT="prune")
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    assert list(ckpts.glob(".old_iter_*"))  # the kill hit mid-deletion
    check_resumable(ckpts, "kill in prune")

    # 4) killed at random moments while training
    seed = random.SystemRandom().randrange(1 << 30)
    rng = random.Random(seed)
    kills = 0
    for attempt in range(3):
        if not kill_at_random(tools, args, tmp_path, rng, seed):
            break
        kills += 1
        check_resumable(ckpts, f"random kill {attempt} (seed {seed})")
    assert kills >= 1, f"seed {seed}: every run finished before its random kill"

    # 5) the last resume runs to the end
    proc = tools.run(tools.HARNESS, args, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"finished at iteration {TOTAL_ITER}" in proc.stdout
    reference.communicate(timeout=tools.TIMEOUT)
    assert reference.returncode == 0

    ref_ckpts = exp / "ref" / "checkpoints"
    last = f"iter_{TOTAL_ITER:06d}"
    for name in ("model.safetensors", "ema.safetensors"):
        for folder in (last, "best"):
            try:
                assert_same_weights(ref_ckpts / folder / name, ckpts / folder / name)
            except AssertionError as exc:  # say which random kills led here (reproduce with that seed)
                raise AssertionError(f"seed {seed}, {kills} random kill(s): {exc}\n{_log(exp / 'run')}") from None
    assert (ref_ckpts / "best" / "best.json").read_text() == (ckpts / "best" / "best.json").read_text()
    # the debris of every killed save is gone: only the kept checkpoints and best/ remain
    assert sorted(p.name for p in ckpts.iterdir()) == ["best", f"iter_{TOTAL_ITER - 1:06d}", last], f"seed {seed}"


GAN_FILES = {*CHECKPOINT_FILES, "net_d.safetensors"}


def test_sigkill_in_an_adversarial_save_then_resume_auto_equals_uninterrupted_run(tmp_path, images, write_yaml, tools):
    """The adversarial step's checkpoints hold both networks, both optimizers and both schedules: a run
    killed inside a save resumes to the weights of an uninterrupted run (random kills: the test above)."""
    step = {
        "type": "AdversarialStep",
        "network_d": {"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4},
        "optim_d": {"type": "Adam", "lr": 1e-3},
        "gan": {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1},
        "net_d_init_iters": 2,
    }
    exp = tmp_path / "experiments"
    changes = {"train": {"total_iter": 8, "step": step}}
    ref_opt = write_yaml("ref.yml", tools.train_options(images, exp, "ref", **changes))
    run_opt = write_yaml("run.yml", tools.train_options(images, exp, "run", **changes))
    args = ["-opt", str(run_opt), "--resume", "auto"]
    reference = tools.start(tools.HARNESS, ["-opt", str(ref_opt)], tmp_path)
    ckpts = exp / "run" / "checkpoints"

    proc = tools.run(tools.HARNESS, args, tmp_path, IRFRAME_RELIABILITY_FAULT="save_state:3")
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    assert {p.name for p in next(ckpts.glob(".tmp_iter_000003_*")).iterdir()} == GAN_FILES - {"trainer_state.pt"}
    latest = latest_checkpoint(ckpts)
    assert latest is not None and latest.name == "iter_000002"
    assert {p.name for p in latest.iterdir()} == GAN_FILES

    proc = tools.run(tools.HARNESS, args, tmp_path)
    assert proc.returncode == 0 and "finished at iteration 8" in proc.stdout, proc.stdout + proc.stderr
    reference.communicate(timeout=tools.TIMEOUT)
    assert reference.returncode == 0
    last = "iter_000008"
    for name in ("model.safetensors", "ema.safetensors", "net_d.safetensors"):
        assert_same_weights(exp / "ref" / "checkpoints" / last / name, ckpts / last / name)
    a, b = load_state(exp / "ref" / "checkpoints" / last), load_state(ckpts / last)
    for key in ("optimizer", "optimizer_d"):
        for sa, sb in zip(a[key]["state"].values(), b[key]["state"].values(), strict=True):
            assert torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"]), key
    assert a["scheduler_d"] == b["scheduler_d"]
