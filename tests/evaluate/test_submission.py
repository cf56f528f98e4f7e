"""Kaggle pixel submissions: format, order, sample-file order, size checks."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from irframe.errors import DataError
from irframe.evaluate.cli import submission_main
from irframe.evaluate.submission import write_submission


@pytest.fixture
def pages(tmp_path: Path, png) -> tuple[Path, Path]:
    """Predictions and inputs for pages 10 (3x2) and 2 (2x2): numeric order is 2, 10."""
    pred, inp = tmp_path / "pred", tmp_path / "test"
    png(pred / "10.png", np.array([[0, 255], [51, 102], [153, 204]], np.uint8))
    png(pred / "2.png", np.array([[255, 0], [0, 255]], np.uint8))
    png(inp / "10.png", np.zeros((3, 2), np.uint8))
    png(inp / "2.png", np.zeros((2, 2), np.uint8))
    return pred, inp


def rows(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_column_major_rows_one_based_ids_numeric_image_order(pages, tmp_path: Path) -> None:
    pred, inp = pages
    info = write_submission(pred, inp, tmp_path / "sub.csv")
    lines = rows(info.path)
    assert lines[0] == "id,value"
    # image 2 first (numeric, not lexicographic); within an image the row index varies fastest
    assert lines[1:5] == ["2_1_1,1", "2_2_1,0", "2_1_2,0", "2_2_2,1"]
    assert lines[5:] == ["10_1_1,0", "10_2_1,0.2", "10_3_1,0.6", "10_1_2,1", "10_2_2,0.4", "10_3_2,0.8"]
    assert info.rows == 10 and info.images == 2
    values = [float(line.split(",")[1]) for line in lines[1:]]
    assert all(0.0 <= v <= 1.0 for v in values)
    umask = os.umask(0)
    os.umask(umask)
    assert info.path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable by others, like any written file


def test_row_major_and_gzip(pages, tmp_path: Path) -> None:
    pred, inp = pages
    info = write_submission(pred, inp, tmp_path / "sub.csv.gz", order="row")
    with gzip.open(info.path, "rt") as fh:
        lines = fh.read().splitlines()
    assert lines[1:5] == ["2_1_1,1", "2_1_2,0", "2_2_1,0", "2_2_2,1"]


def test_order_from_a_sample_file(pages, tmp_path: Path) -> None:
    pred, inp = pages
    sample = tmp_path / "sample.csv"
    ids = ["10_3_2", "2_1_1", "10_1_1", "2_2_2", "10_2_1", "2_1_2", "10_1_2", "2_2_1", "10_2_2", "10_3_1"]
    sample.write_text("id,value\n" + "".join(f"{i},1\n" for i in ids))
    info = write_submission(pred, inp, tmp_path / "sub.csv", sample=sample)
    lines = rows(info.path)
    assert [line.split(",")[0] for line in lines[1:]] == ids
    assert lines[1] == "10_3_2,0.8" and lines[2] == "2_1_1,1"
    # a sample that misses pixels, or names an unknown image, is refused
    sample.write_text("id,value\n2_1_1,1\n")
    with pytest.raises(DataError, match="lists 1 pixels of image 2"):
        write_submission(pred, inp, tmp_path / "bad.csv", sample=sample)
    sample.write_text("id,value\n7_1_1,1\n")
    with pytest.raises(DataError, match="image 7 has no prediction"):
        write_submission(pred, inp, tmp_path / "bad.csv", sample=sample)
    assert not (tmp_path / "bad.csv").exists()


def test_size_mismatch_is_refused_naming_the_image(pages, tmp_path: Path, png, capsys) -> None:
    pred, inp = pages
    png(pred / "10.png", np.zeros((4, 2), np.uint8))  # a resized output
    out = tmp_path / "sub.csv"
    assert submission_main(["--pred", str(pred), "--input", str(inp), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "image 10" in err and "10.png" in err and "differs from its input" in err
    assert not out.exists() and not list(tmp_path.glob(".sub.csv*"))  # nothing half-written


def test_missing_and_badly_named_pages(pages, tmp_path: Path, png) -> None:
    pred, inp = pages
    png(inp / "11.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match="no prediction for input image"):
        write_submission(pred, inp, tmp_path / "s.csv")
    (inp / "11.png").unlink()
    png(pred / "page.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match="numeric ids"):
        write_submission(pred, inp, tmp_path / "s.csv")


def test_real_dirty_documents_pages(shared_dir: Path, tmp_path: Path) -> None:
    test_pages = shared_dir / "data" / "DirtyDocuments" / "test_noisy_only"
    if not test_pages.is_dir():
        pytest.skip(f"{test_pages} not present")
    # the identity "model": the noisy pages as predictions
    info = write_submission(test_pages, test_pages, tmp_path / "sub.csv")
    sizes = {int(p.stem): cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).shape for p in test_pages.glob("*.png")}
    assert info.rows == sum(h * w for h, w in sizes.values())
    with open(info.path) as fh:
        assert fh.readline() == "id,value\n"
        first = fh.readline().strip()
    first_id = min(sizes)
    img = cv2.imread(str(test_pages / f"{first_id}.png"), cv2.IMREAD_GRAYSCALE)
    assert first == f"{first_id}_1_1,{img[0, 0] / 255:.6g}"
