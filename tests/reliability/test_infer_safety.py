"""``tools/infer.py`` never overwrites its inputs.

Covered in ``tests/evaluate/test_infer_tool.py``: output folder equal to the input folder (also via a
symlinked folder), a single input's own folder, hard links and byte-identical copies of the inputs.
Here: the real script in a subprocess, other spellings of the same folder, a symlinked file in the
output folder, and two inputs that would be written to the same output file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from irframe.evaluate.cli import infer_main
from irframe.nn.weights import save_weights


def snapshot(folder: Path) -> dict[str, str]:
    """Name -> sha256 of every entry of ``folder`` (symlinks by target)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        assert cv2.imwrite(str(folder / name), rng.integers(0, 256, (9, 7, 3), dtype=np.uint8))
    return folder


@pytest.fixture
def checkpoint(relnet, tmp_path: Path) -> Path:
    path = tmp_path / "relnet.safetensors"
    save_weights(relnet(), path, {"arch": "RelNet", "config": '{"type": "RelNet"}'})
    return path


def test_script_refuses_the_input_folder_as_output(inputs: Path, tmp_path: Path, tools) -> None:
    before = snapshot(inputs)
    ckpt = tmp_path / "ckpt.safetensors"  # never opened: the check comes before loading a model
    proc = tools.run(
        tools.INFER, ["--checkpoint", str(ckpt), "--input", str(inputs), "--output", str(inputs)], tmp_path
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "is the input folder" in lines[0], proc.stderr
    assert snapshot(inputs) == before


def test_other_spellings_symlinks_and_collisions_are_refused(
    inputs: Path, checkpoint: Path, tmp_path: Path, capsys
) -> None:
    before = snapshot(inputs)
    common = ["--checkpoint", str(checkpoint), "--device", "cpu", "--no-progress"]
    # the same folder written differently: trailing '.', '..' detour
    for spelling in (f"{inputs}/.", f"{inputs}/../{inputs.name}"):
        assert infer_main([*common, "--input", str(inputs), "--output", spelling]) == 2
        assert "is the input folder" in capsys.readouterr().err
    # an output folder whose a.png is a symlink to the input a.png
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").symlink_to(inputs / "a.png")
    assert infer_main([*common, "--input", str(inputs), "--output", str(out)]) == 2
    assert "is an input file" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]  # refused before writing anything
    # a.jpg and a.png would both become a.png
    assert cv2.imwrite(str(inputs / "a.jpg"), np.zeros((4, 4, 3), np.uint8))
    assert infer_main([*common, "--input", str(inputs), "--output", str(tmp_path / "fresh")]) == 2
    assert "would both be written" in capsys.readouterr().err
    (inputs / "a.jpg").unlink()
    assert snapshot(inputs) == before
    # and a safe output folder works
    assert infer_main([*common, "--input", str(inputs), "--output", str(tmp_path / "fresh")]) == 0
    assert sorted(p.name for p in (tmp_path / "fresh").iterdir()) == ["a.png", "b.png"]
    assert snapshot(inputs) == before
