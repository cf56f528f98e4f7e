"""tools/infer.py: safety checks, formats, tasks, unreadable files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from irframe.errors import DataError
from irframe.evaluate.cli import infer_main
from irframe.evaluate.infer import plan_outputs
from irframe.nn.weights import save_weights

ROOT = Path(__file__).resolve().parents[2]
TINY_RESTORMER = {
    "type": "Restormer",
    "dim": 4,
    "num_blocks": [1, 1, 1, 1],
    "heads": [1, 1, 1, 1],
    "num_refinement_blocks": 1,
}


@pytest.fixture
def inputs(tmp_path: Path, png) -> Path:
    """A folder with an 8-bit RGB, a 16-bit gray and an 8-bit RGBA image."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    png(folder / "rgb.png", rng.integers(0, 255, (10, 13, 3), dtype=np.uint8))
    png(folder / "gray16.png", rng.integers(0, 65535, (9, 11), dtype=np.uint16))
    cv2.imwrite(str(folder / "rgba.png"), rng.integers(0, 255, (8, 8, 4), dtype=np.uint8))
    return folder


@pytest.fixture
def toy_ckpt(toy_arch, tmp_path: Path) -> Path:
    path = tmp_path / "toy.safetensors"
    save_weights(
        toy_arch(offset=0.0), path, {"arch": "EvalToyNet", "config": {"type": "EvalToyNet", "size_multiple": 4}}
    )
    return path


def infer(*argv: str) -> int:
    return infer_main([*argv, "--device", "cpu", "--no-progress"])


def test_folder_keeps_bit_depth_and_channels(inputs: Path, toy_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert infer("--checkpoint", str(toy_ckpt), "--input", str(inputs), "--output", str(out)) == 0
    for name in ("rgb.png", "gray16.png", "rgba.png"):
        src = cv2.imread(str(inputs / name), cv2.IMREAD_UNCHANGED)
        dst = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
        assert dst.dtype == src.dtype, name
        if name == "rgba.png":  # alpha composited over white on reading: RGB out
            assert dst.shape == (8, 8, 3)
            continue
        np.testing.assert_array_equal(dst, src)  # identity model, padded to 4 and cropped back


def test_refuses_to_overwrite_inputs(inputs: Path, toy_ckpt: Path, tmp_path: Path, capsys) -> None:
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    # the input folder itself, also through a symlink
    assert infer("--checkpoint", str(toy_ckpt), "--input", str(inputs), "--output", str(inputs)) == 2
    assert "is the input folder" in capsys.readouterr().err
    link = tmp_path / "link"
    link.symlink_to(inputs, target_is_directory=True)
    assert infer("--checkpoint", str(toy_ckpt), "--input", str(inputs), "--output", str(link)) == 2
    # a single file whose output folder is its own folder
    assert infer("--checkpoint", str(toy_ckpt), "--input", str(inputs / "rgb.png"), "--output", str(inputs)) == 2
    # an output folder holding hard links to the inputs
    hard = tmp_path / "hard"
    hard.mkdir()
    os.link(inputs / "rgb.png", hard / "rgb.png")
    with pytest.raises(DataError, match="is an input file"):
        plan_outputs(inputs, hard)
    # an output folder that is a copy of the inputs
    copy = tmp_path / "copy"
    shutil.copytree(inputs, copy)
    assert infer("--checkpoint", str(toy_ckpt), "--input", str(inputs), "--output", str(copy)) == 2
    assert "holds the same files as the input folder" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before


def test_unreadable_image_is_named_and_others_are_written(inputs: Path, toy_ckpt: Path, tmp_path: Path, capsys) -> None:
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "out"
    assert infer("--checkpoint", str(toy_ckpt), "--input", str(inputs), "--output", str(out)) == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "cannot decode" in err
    assert sorted(p.name for p in out.iterdir()) == ["gray16.png", "rgb.png", "rgba.png"]


def test_tasks_are_chosen_by_name(toy_arch, inputs: Path, tmp_path: Path, capsys) -> None:
    ckpt = tmp_path / "multi.safetensors"
    save_weights(
        toy_arch(offset=0.1), ckpt, {"arch": "EvalToyNet", "config": {"type": "EvalToyNet", "tasks": ["a", "b"]}}
    )
    rgb = inputs / "rgb.png"
    assert infer("--checkpoint", str(ckpt), "--input", str(rgb), "--output", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert "multi-task" in err and "--task (a, b)" in err
    assert infer("--checkpoint", str(ckpt), "--input", str(rgb), "--output", str(tmp_path / "o"), "--task", "c") == 2
    assert "unknown task" in capsys.readouterr().err
    assert infer("--checkpoint", str(ckpt), "--input", str(rgb), "--output", str(tmp_path / "a"), "--task", "a") == 0
    assert infer("--checkpoint", str(ckpt), "--input", str(rgb), "--output", str(tmp_path / "b"), "--task", "b") == 0
    src = cv2.imread(str(rgb)).astype(int)
    out_a = cv2.imread(str(tmp_path / "a" / "rgb.png")).astype(int)
    out_b = cv2.imread(str(tmp_path / "b" / "rgb.png")).astype(int)
    assert np.mean(out_a - src) == pytest.approx(0.1 * 255, abs=3)  # clipped at 255 in places
    assert np.mean(out_b - src) > np.mean(out_a - src)


def test_options_file_and_script_with_a_real_tiny_restormer(inputs: Path, tmp_path: Path) -> None:
    from irframe.registry import ARCHS

    ckpt = tmp_path / "restormer.safetensors"
    save_weights(ARCHS.build(TINY_RESTORMER), ckpt, {"arch": "Restormer", "config": json.dumps(TINY_RESTORMER)})
    opt = tmp_path / "r.yml"
    opt.write_text(
        f"name: r\nmodel: {json.dumps(TINY_RESTORMER)}\ntest: {{checkpoint: {ckpt}}}\n"
        "inference: {tile: 8, tile_overlap: 2}\n"
    )
    assert infer("-opt", str(opt), "--input", str(inputs / "rgb.png"), "--output", str(tmp_path / "o1")) == 0
    assert cv2.imread(str(tmp_path / "o1" / "rgb.png")).shape == (10, 13, 3)
    # the script, in a fresh process, with the checkpoint alone (arch from its metadata)
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "infer.py"),
            "--checkpoint",
            str(ckpt),
            "--input",
            str(inputs / "gray16.png"),
            "--output",
            str(tmp_path / "o2"),
            "--device",
            "cpu",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    saved = cv2.imread(str(tmp_path / "o2" / "gray16.png"), cv2.IMREAD_UNCHANGED)
    assert saved.dtype == np.uint16 and saved.shape == (9, 11)
