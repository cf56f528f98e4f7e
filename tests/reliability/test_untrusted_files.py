"""Untrusted files never run code: pickles in checkpoints are refused (``weights_only`` loading or
safetensors), YAML tags that build Python objects are refused, and checkpoint metadata can only
name registered archs.

Each payload would create a marker file if it were ever executed. Covered elsewhere:
``read_checkpoint``/``load_weights`` on malicious ``.pth`` files (``tests/nn/test_checkpoint.py``)
and ``load_yaml`` on a ``!!python`` tag (``tests/core/test_options.py``); here the same attacks
arrive through the places a user hands files to: ``--resume``, ``train.pretrain``, ``tools/infer.py``
and ``--set``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from irframe.errors import CheckpointError
from irframe.evaluate.cli import infer_main
from irframe.nn.weights import save_weights
from irframe.options import validate_options
from irframe.train.build import run_training
from irframe.train.cli import main as train_main


class Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "an untrusted file executed code"


def options(images, tools, tmp_path: Path, **changes):
    return validate_options(
        tools.train_options(images, tmp_path / "experiments", "untrusted", **changes), source="test"
    )


def test_malicious_trainer_state_is_refused_on_resume(relnet, images, tools, tmp_path, marker) -> None:
    ckpt = tmp_path / "experiments" / "untrusted" / "checkpoints" / "iter_000002"
    ckpt.mkdir(parents=True)
    save_weights(relnet(), ckpt / "model.safetensors", {"arch": "RelNet", "config": '{"type": "RelNet"}'})
    torch.save({"format": 1, "iteration": 2, "optimizer": Payload(marker)}, ckpt / "trainer_state.pt")
    with pytest.raises(CheckpointError, match=r"iter_000002/trainer_state\.pt: refused as unsafe"):
        run_training(options(images, tools, tmp_path, val=None), resume="auto")


def test_malicious_pretrained_weights_are_refused(relnet, images, tools, tmp_path, marker) -> None:
    evil = tmp_path / "pretrained.pth"
    torch.save({"params": relnet().state_dict(), "extra": Payload(marker)}, evil)
    with pytest.raises(CheckpointError, match=r"pretrained\.pth.*refused as unsafe"):
        run_training(options(images, tools, tmp_path, val=None, train={"pretrain": {"path": str(evil)}}))


def test_infer_refuses_pickles_and_unknown_archs_in_metadata(relnet, images, tmp_path, marker, capsys) -> None:
    out = tmp_path / "out"
    evil = tmp_path / "weights.pth"
    torch.save({"params": relnet().state_dict(), "extra": Payload(marker)}, evil)
    opt = tmp_path / "model.yml"
    opt.write_text("name: m\nmodel: {type: RelNet}\n")
    args = ["--input", str(images.val), "--output", str(out), "--device", "cpu", "--no-progress"]
    assert infer_main(["-opt", str(opt), "--checkpoint", str(evil), *args]) == 2
    assert "refused as unsafe" in capsys.readouterr().err
    # safetensors holds no code, and its metadata can only name a registered arch
    sneaky = tmp_path / "sneaky.safetensors"
    save_weights(relnet(), sneaky, {"arch": "os.system", "config": '{"type": "os.system", "command": "touch x"}'})
    assert infer_main(["--checkpoint", str(sneaky), *args]) == 2
    err = capsys.readouterr().err
    assert "os.system" in err and "unknown" in err.lower(), err
    assert not out.exists()


def test_python_yaml_tags_are_refused_in_files_and_overrides(images, tools, tmp_path, marker, capsys) -> None:
    evil = tmp_path / "evil.yml"
    evil.write_text(f'name: !!python/object/apply:os.system ["touch {marker}"]\nmodel: {{type: RelNet}}\n')
    assert train_main(["-opt", str(evil)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "evil.yml:1:7: invalid YAML" in err[0] and "refused" in err[0]
    good = tmp_path / "good.yml"
    good.write_text("name: fine\nmodel: {type: RelNet}\n")
    assert train_main(["-opt", str(good), "--set", f'name=!!python/object/apply:os.system ["touch {marker}"]']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--set" in err[0] and "refused" in err[0]
    assert not (tmp_path / "experiments").exists()
