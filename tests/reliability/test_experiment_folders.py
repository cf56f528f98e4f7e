"""Experiment folders and resuming: what a refused, renamed, concurrent or resumed run leaves.

* a ``train.pretrain`` file that exists but is refused creates no experiment folder;
* ``name`` must be one plain folder name (``../../x``, a newline: refused before anything is written);
* two runs starting at once never share a folder (exclusive creation, the loser takes the next name);
* a resumed run adds ``options_<time>.yml`` only when it resumed and its options changed;
* ``--resume auto`` falls back to the newest *intact* checkpoint when the newest one is corrupt;
* ``trainer_state.pt`` and ``best.json`` are fsynced like the weights, and empty or refused state
  files give one clear message (never torch's advice to pass ``weights_only=False``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from irframe.errors import CheckpointError, OptionsError
from irframe.options import validate_options
from irframe.train import experiment
from irframe.train.build import run_training
from irframe.train.checkpoint_folders import load_state


class Payload:
    """Unpickling this would run ``touch <marker>`` (torch's weights_only loader refuses it)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def options(images, tools, tmp_path: Path, name: str = "run", **changes):
    changes.setdefault("val", None)
    return validate_options(tools.train_options(images, tmp_path / "experiments", name, **changes), source="test.yml")


def short(total: int) -> dict:
    return {"total_iter": total, "scheduler": {"type": "CosineAnnealingLR", "T_max": 16}}


@pytest.mark.parametrize("kind", ["unsafe", "wrong-shapes"])
def test_refused_pretrain_file_creates_no_experiment_folder(relnet, images, tools, tmp_path, kind) -> None:
    bad = tmp_path / "pretrained.pth"
    if kind == "unsafe":
        torch.save({"params": relnet().state_dict(), "extra": Payload(tmp_path / "PWNED")}, bad)
    else:
        torch.save({"params": relnet(width=4).state_dict()}, bad)
    with pytest.raises(CheckpointError, match=r"pretrained\.pth"):
        run_training(options(images, tools, tmp_path, train={"pretrain": {"path": str(bad)}}))
    assert not (tmp_path / "experiments").exists()
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "two\nlines", "..", " padded"])
def test_run_name_must_be_one_plain_folder_name(relnet, images, tools, tmp_path, name) -> None:
    with pytest.raises(OptionsError, match=r"test\.yml: name: .* use one plain folder name"):
        run_training(options(images, tools, tmp_path, name=name))
    assert not (tmp_path / "experiments").exists()
    assert not (tmp_path.parent / "escaped").exists()


def test_two_runs_starting_at_once_never_share_a_folder(tmp_path, monkeypatch) -> None:
    (tmp_path / "run").mkdir()
    real_free_name = experiment._free_name

    def racing_free_name(base: Path, name: str) -> str:
        chosen = real_free_name(base, name)
        if not (base / f"{name}_1").exists():
            (base / chosen).mkdir()  # another run claims the same name between decision and mkdir
        return chosen

    monkeypatch.setattr(experiment, "_free_name", racing_free_name)
    exp = experiment.claim_experiment(tmp_path, "run", None)
    assert exp.name == "run_2" and exp.checkpoints.is_dir()
    assert sorted(p.name for p in (tmp_path / "run_1").iterdir()) == []  # the other run's folder is untouched


def test_resume_adds_an_options_file_only_when_the_options_changed(relnet, images, tools, tmp_path) -> None:
    run_training(options(images, tools, tmp_path, train=short(2)))
    root = tmp_path / "experiments" / "run"
    run_training(options(images, tools, tmp_path, train=short(2)), resume="auto")  # nothing to do, same options
    assert sorted(p.name for p in root.glob("options*.yml")) == ["options.yml"]
    for folder in (root / "checkpoints").glob("iter_*"):
        (folder / "trainer_state.pt").write_bytes(b"")  # no checkpoint can be resumed
    with pytest.raises(CheckpointError, match="cannot resume"):
        run_training(options(images, tools, tmp_path, train=short(3)), resume="auto")
    assert sorted(p.name for p in root.glob("options*.yml")) == ["options.yml"], "a failed resume left an options file"


def test_resume_auto_falls_back_to_the_newest_intact_checkpoint(relnet, images, tools, tmp_path) -> None:
    reference = run_training(options(images, tools, tmp_path, name="whole", train=short(5)))
    run_training(options(images, tools, tmp_path, train=short(4)))
    ckpts = tmp_path / "experiments" / "run" / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("iter_*")) == ["iter_000003", "iter_000004"]
    (ckpts / "iter_000004" / "trainer_state.pt").write_bytes(b"")  # complete-looking, but empty
    result = run_training(options(images, tools, tmp_path, train=short(5)), resume="auto")
    assert result.iteration == 5
    log = (tmp_path / "experiments" / "run" / "train.log").read_text()
    assert "iter_000004/trainer_state.pt: empty file (0 bytes)" in log
    assert "falling back to the older complete checkpoint" in log and "iter_000003" in log
    assert "weights_only=False" not in log
    for name in ("model.safetensors", "ema.safetensors"):
        mine = load_file(str(result.last_checkpoint / name))
        theirs = load_file(str(reference.last_checkpoint / name))
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs), f"{name} differs from an uninterrupted run"
    # Options changed (total_iter 4 -> 5): the successful resume recorded them once.
    assert len(list((tmp_path / "experiments" / "run").glob("options_*.yml"))) == 1


def test_refused_or_empty_trainer_state_is_one_clear_message(tmp_path) -> None:
    folder = tmp_path / "iter_000001"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    state = folder / "trainer_state.pt"
    state.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"trainer_state\.pt: empty file \(0 bytes\)"):
        load_state(folder)
    torch.save({"format": 1, "optimizer": Payload(tmp_path / "PWNED")}, state)
    with pytest.raises(CheckpointError, match=r"trainer_state\.pt: refused as unsafe") as info:
        load_state(folder)
    assert "weights_only=False" not in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "PWNED").exists()


def test_trainer_state_and_best_json_are_fsynced(relnet, tmp_path, monkeypatch) -> None:
    from irframe.train.training_state import Checkpointer

    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name the fsynced files")
    monkeypatch.setattr(os, "fsync", recording_fsync)
    model = relnet()
    ckpt = Checkpointer(tmp_path / "checkpoints", 2, {"type": "RelNet"})
    ckpt.save(1, model, None, {"iteration": 1})
    ckpt.save_best(1, model, None, {"metric": "PSNR", "value": 30.0})
    assert "trainer_state.pt" in synced and "best.json" in synced, synced
