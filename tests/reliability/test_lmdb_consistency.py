"""LMDB databases stay true to their sources and to ``meta_info.txt``.

* a rerun of ``create_lmdb`` re-encodes a record whose source image changed (size/mtime) instead
  of keeping it stale;
* a file name ``meta_info.txt`` cannot hold (a newline) is refused by name before writing;
* loading cross-checks ``meta_info.txt`` with the database: a deleted line, a duplicated line and a
  non-UTF-8 file are each one clear ``DataError`` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from irframe.data.backends import LMDBBackend, read_meta_info
from irframe.data.io import decode_image, imread, imwrite
from irframe.data.lmdb_pack import create_lmdb
from irframe.errors import DataError
from irframe.train.synthetic import write_textured_images


@pytest.fixture
def packed(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "imgs"
    write_textured_images(folder, 3, 16, seed=4)
    db = tmp_path / "imgs.lmdb"
    create_lmdb(folder, db, progress=False)
    return folder, db


def test_rerun_rewrites_a_record_whose_source_changed(packed: tuple[Path, Path]) -> None:
    folder, db = packed
    src = folder / "img_0001.png"
    new = 1.0 - imread(src)
    imwrite(src, new)
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))  # surely a new mtime
    report = create_lmdb(folder, db, progress=False)
    assert report.rewritten == 1 and report.written == 1 and report.skipped == 2
    record = decode_image(LMDBBackend(db).get("img_0001"), "record")
    np.testing.assert_array_equal(record, imread(src))
    again = create_lmdb(folder, db, progress=False)  # nothing changed since: nothing written
    assert again.written == 0 and again.rewritten == 0


def test_file_name_with_a_newline_is_refused_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    write_textured_images(folder, 2, 16, seed=1)
    (folder / "img_0001.png").rename(folder / "bad\nname.png")
    with pytest.raises(DataError, match=r"bad\\nname\.png.*newline"):
        create_lmdb(folder, tmp_path / "out.lmdb", progress=False)
    assert not (tmp_path / "out.lmdb" / "data.mdb").exists()


def test_deleted_meta_info_line_is_an_error_not_a_silently_dropped_record(packed: tuple[Path, Path]) -> None:
    _, db = packed
    meta = db / "meta_info.txt"
    lines = meta.read_text().splitlines(keepends=True)
    meta.write_text("".join(lines[:1] + lines[2:]))
    with pytest.raises(
        DataError,
        match=r"imgs\.lmdb: the database holds 1 record\(s\) that meta_info\.txt does not list \(e\.g\. img_0001",
    ):
        LMDBBackend(db).keys()


def test_duplicated_meta_info_line_is_an_error(packed: tuple[Path, Path]) -> None:
    _, db = packed
    meta = db / "meta_info.txt"
    lines = meta.read_text().splitlines(keepends=True)
    meta.write_text("".join(lines + lines[1:2]))
    with pytest.raises(DataError, match=r"meta_info\.txt:4: key 'img_0001' is listed twice"):
        LMDBBackend(db).keys()


def test_non_utf8_meta_info_is_a_data_error(packed: tuple[Path, Path]) -> None:
    _, db = packed
    meta = db / "meta_info.txt"
    meta.write_bytes(meta.read_bytes() + b"caf\xe9.png (16,16,3) 0\n")
    with pytest.raises(DataError, match=r"meta_info\.txt:4: not UTF-8 text \(byte 0xe9\)"):
        read_meta_info(db)
