"""Checkpoint folders (atomic, pruned), experiment naming, fine-tuning loads, seed policy."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from irframe.errors import CheckpointError, OptionsError
from irframe.options import PretrainOptions
from irframe.train.checkpoint_folders import (
    latest_checkpoint,
    list_checkpoints,
    prune,
    write_folder,
)
from irframe.train.experiment import resolve_experiment
from irframe.train.finetune import load_pretrained
from irframe.utils import get_rng_state, seed_everything, set_rng_state


def fake_checkpoint(root: Path, it: int) -> Path:
    def write(tmp: Path) -> None:
        (tmp / "model.safetensors").write_bytes(b"w")
        (tmp / "trainer_state.pt").write_bytes(b"s")

    return write_folder(root / f"iter_{it:06d}", write)


def test_crash_during_save_keeps_previous_checkpoint(tmp_path):
    good = fake_checkpoint(tmp_path, 10)

    def crash(tmp: Path) -> None:
        (tmp / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt  # killed half-way

    with pytest.raises(KeyboardInterrupt):
        write_folder(tmp_path / "iter_000020", crash)
    assert latest_checkpoint(tmp_path) == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter_000010"]  # no temporary folder left
    # a folder missing its state file (e.g. copied by hand, half-way) is never picked
    (tmp_path / "iter_000030").mkdir()
    (tmp_path / "iter_000030" / "model.safetensors").write_bytes(b"w")
    assert latest_checkpoint(tmp_path) == good
    # re-saving the same iteration replaces it only once the new folder is complete
    again = fake_checkpoint(tmp_path, 10)
    assert again == good and (good / "trainer_state.pt").read_bytes() == b"s"


def test_prune_keeps_newest(tmp_path):
    for it in (1, 2, 3, 4):
        fake_checkpoint(tmp_path, it)
    prune(tmp_path, 2)
    assert [i for i, _ in list_checkpoints(tmp_path)] == [3, 4]


def test_experiment_names(tmp_path):
    exp = resolve_experiment(tmp_path, "run", None)
    assert exp.root == tmp_path / "run" and exp.resume_from is None
    (tmp_path / "run").mkdir()
    (tmp_path / "run_1").mkdir()
    exp = resolve_experiment(tmp_path, "run", None)
    assert exp.name == "run_2" and "run_2" in exp.message and "--resume auto" in exp.message
    auto = resolve_experiment(tmp_path, "run", "auto")
    assert auto.root == tmp_path / "run" and auto.resume_from is None  # no checkpoint yet
    ckpt = fake_checkpoint(tmp_path / "run" / "checkpoints", 5)
    assert resolve_experiment(tmp_path, "run", "auto").resume_from == ckpt
    explicit = resolve_experiment(tmp_path, "other", str(ckpt))
    assert explicit.root == tmp_path / "run" and explicit.resume_from == ckpt
    with pytest.raises(OptionsError, match="no such checkpoint"):
        resolve_experiment(tmp_path, "run", str(tmp_path / "missing"))
    with pytest.raises(CheckpointError, match="neither a complete checkpoint"):
        resolve_experiment(tmp_path, "run", str(tmp_path / "run_1"))


class Net(torch.nn.Module):
    def __init__(self, heads: int = 2) -> None:
        super().__init__()
        self.head = torch.nn.ModuleList(torch.nn.Conv2d(3, 4, 3) for _ in range(heads))
        self.body = torch.nn.Conv2d(4, 4, 1)


def test_pretrain_loads_body_and_drops_heads(tmp_path):
    pre = Net(heads=6)
    torch.save({"params": pre.state_dict()}, tmp_path / "pre.pth")
    model = Net(heads=1)
    head_before = model.head[0].weight.clone()
    opts = PretrainOptions(path=str(tmp_path / "pre.pth"), drop=["head.*"])
    report = load_pretrained(model, opts)
    assert torch.equal(model.body.weight, pre.body.weight)
    assert torch.equal(model.head[0].weight, head_before)  # dropped: keeps its initial value
    assert len(report.dropped) == 12 and report.kept_initial == ["head.0.weight", "head.0.bias"]
    with pytest.raises(CheckpointError, match=r"file keys not in the model: head.1.weight"):
        load_pretrained(Net(heads=1), PretrainOptions(path=str(tmp_path / "pre.pth"), strict=True))
    loose = load_pretrained(Net(heads=1), PretrainOptions(path=str(tmp_path / "pre.pth"), strict=False))
    assert len(loose.ignored) == 10 and loose.kept_initial == []
    with pytest.raises(OptionsError, match="matches no key"):
        load_pretrained(Net(heads=1), PretrainOptions(path=str(tmp_path / "pre.pth"), drop=["heads.*"]))


def test_seed_policy_and_rng_state():
    seed_everything(5)
    a = torch.nn.Conv2d(3, 3, 3).weight.clone()
    seed_everything(5)
    assert torch.equal(a, torch.nn.Conv2d(3, 3, 3).weight)  # same init on every process
    state = get_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    saved = torch.load(_roundtrip(state), weights_only=True)  # checkpoints hold it
    set_rng_state(saved)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def _roundtrip(obj):
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf
