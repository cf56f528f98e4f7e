"""What the small tools read and write: a bad path is one line naming it, and nothing is left behind.

* ``make_submission --sample`` a folder, a missing file, a binary file, a broken ``.csv.gz``;
* ``export_onnx --out`` where no file can be written (checked before the model is loaded);
* ``irframe convert-options IN <folder> --force`` (it left ``<folder>.tmp`` and a traceback);
* ``irframe new-plugin --dir <a file>``;
* ``irframe zoo publish CKPT <a name with a newline>`` (it wrote ``a\\nb.safetensors``).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from irframe.cli import main as cli_main
from irframe.evaluate.cli import export_main, submission_main

ROOT = Path(__file__).resolve().parents[2]
TINY_CHECKPOINT = ROOT / "zoo" / "restormer_dirty_documents_tiny.safetensors"
BASICSR_FILE = ROOT / "tests" / "fixtures" / "basicsr_options" / "GaussianColorDenoising_Restormer.yml"


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def pages(tmp_path: Path) -> tuple[Path, Path]:
    pred, inp = tmp_path / "pred", tmp_path / "input"
    rng = np.random.default_rng(0)
    for folder in (pred, inp):
        folder.mkdir()
    for i in (1, 2):
        page = rng.integers(0, 256, (4, 5), dtype=np.uint8)
        cv2.imwrite(str(pred / f"{i}.png"), page)
        cv2.imwrite(str(inp / f"{i}.png"), page)
    return pred, inp


def test_make_submission_sample_that_is_no_sample_file_is_one_line(
    tmp_path: Path, pages: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pred, inp = pages
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    broken_gz = tmp_path / "sample.csv.gz"
    broken_gz.write_bytes(b"\x1f\x8b\x08\x00not gzip data")
    cases = {
        tmp_path: "is a folder; --sample names the sample submission file",
        tmp_path / "missing.csv": "sample submission not found",
        binary: "not a sample submission: not UTF-8 text (byte 0x80)",
        pred / "1.png": "not a sample submission: not UTF-8 text (byte 0x89)",
        broken_gz: "cannot read the sample submission",
    }
    out = tmp_path / "out" / "submission.csv"
    for sample, expected in cases.items():
        before = _listing(tmp_path)
        argv = ["--pred", str(pred), "--input", str(inp), "--out", str(out), "--sample", str(sample)]
        assert submission_main(argv) == 2
        line = _one_error_line(capsys)
        assert line.startswith(f"error: {sample}: {expected}"), line
        assert _listing(tmp_path) <= before | {"out"} and not out.exists()  # no submission, no temp file


def test_make_submission_unreadable_sample_is_one_line(
    tmp_path: Path, pages: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    if not Path("/proc/self/mem").is_file():
        pytest.skip("needs Linux /proc/self/mem")
    pred, inp = pages
    argv = ["--pred", str(pred), "--input", str(inp), "--out", str(tmp_path / "s.csv"), "--sample", "/proc/self/mem"]
    assert submission_main(argv) == 2
    assert _one_error_line(capsys) == "error: /proc/self/mem: cannot read the sample submission (Input/output error)"


def test_export_onnx_to_a_place_that_cannot_be_written_is_one_line_before_exporting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    cases = {
        a_file / "model.onnx": f"error: {a_file / 'model.onnx'}: cannot write the ONNX file: {a_file} is not a folder",
        a_file / "sub" / "model.onnx": "is not a folder",
        tmp_path: f"error: {tmp_path}: is a folder; --out names the ONNX file to write",
    }
    if Path("/proc/self").is_dir():
        cases[Path("/proc/irframe_test.onnx")] = "error: /proc/irframe_test.onnx: cannot write the ONNX file in /proc"
    if os.geteuid() != 0:
        read_only = tmp_path / "ro"
        read_only.mkdir(mode=0o555)
        cases[read_only / "m.onnx"] = f"error: {read_only / 'm.onnx'}: cannot write the ONNX file in {read_only}"
    for out, expected in cases.items():
        before = _listing(tmp_path)
        assert export_main(["--checkpoint", str(TINY_CHECKPOINT), "--out", str(out)]) == 2
        line = _one_error_line(capsys)
        assert line.startswith(expected) or expected in line, line
        assert _listing(tmp_path) == before


def test_convert_options_refuses_a_folder_as_output_and_leaves_no_temp_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    before = _listing(tmp_path)
    assert cli_main(["convert-options", str(BASICSR_FILE), str(folder), "--force"]) == 1
    assert _one_error_line(capsys) == (
        f"irframe convert-options: error: {folder}: is a folder; OUT names the option file to write "
        f"(e.g. {folder / 'native.yml'})"
    )
    assert _listing(tmp_path) == before  # no <folder>.tmp, the folder untouched

    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    before = _listing(tmp_path)
    assert cli_main(["convert-options", str(BASICSR_FILE), str(a_file / "native.yml")]) == 1
    assert "cannot write the option file" in _one_error_line(capsys)
    assert _listing(tmp_path) == before

    out = tmp_path / "native.yml"  # a conversion that succeeds leaves its file only, with the usual mode
    assert cli_main(["convert-options", str(BASICSR_FILE), str(out)]) == 0
    assert _listing(tmp_path) == before | {"native.yml"}
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_new_plugin_dir_that_is_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    for where, expected in (
        (a_file, f"{a_file}: --dir is a file, not a folder"),
        (a_file / "sub", f"{a_file / 'sub'}: --dir lies under a file, not a folder"),
    ):
        assert cli_main(["new-plugin", "mynet", "--dir", str(where)]) == 1
        assert _one_error_line(capsys) == f"irframe new-plugin: error: {expected} (nothing was written)"
    assert _listing(tmp_path) == {"notes.txt"}


@pytest.mark.parametrize("name", ["two\nlines", "bell\x07", "line\u2028sep", " padded", ".."])
def test_zoo_publish_refuses_control_characters_in_the_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    argv = ["zoo", "--dir", str(tmp_path), "publish", str(TINY_CHECKPOINT), name, "--option", "x.yml", "--task", "t"]
    assert cli_main(argv) == 1
    line = _one_error_line(capsys)
    assert line.startswith(f"irframe zoo: error: zoo name {name!r} ") and "use a plain name" in line
    assert list(tmp_path.iterdir()) == []
