"""Odd data inputs are one clear line naming the option, file or database, or simply work.

* a ``filename_tmpl`` with a second or named field or a lone brace: one ``OptionsError`` naming
  ``filename_tmpl``, not an ``IndexError``/``KeyError``/``ValueError`` from ``str.format``;
* ``create_lmdb`` onto a database holding a key that is not UTF-8: a ``DataError`` naming the
  database and the key, not a ``UnicodeDecodeError``;
* a file name with U+2028 (or another character ``str.splitlines`` splits on but ``\\n`` is not):
  packed, listed in ``meta_info.txt`` and read back as one key;
* an image or ``meta_info.txt`` that exists but cannot be read (``/proc/self/mem``: EIO): a
  ``DataError`` naming the file wherever data code reads it.
"""

from __future__ import annotations

import os
from pathlib import Path

import lmdb
import pytest

from irframe.data.backends import LMDBBackend, read_meta_info
from irframe.data.datasets.paired import PairedImageDataset
from irframe.data.lmdb_pack import create_lmdb, verify_lmdb
from irframe.errors import DataError, OptionsError
from irframe.train.synthetic import write_textured_images


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    images = tmp_path / "imgs"
    write_textured_images(images, 3, 16, seed=8)
    return images


@pytest.mark.parametrize("template", ["{}_{}", "{}{x}", "{}}", "{", "x", "{:>9}", "{!r}"])
def test_bad_filename_tmpl_is_one_line_naming_the_option(folder: Path, template: str) -> None:
    with pytest.raises(OptionsError) as info:
        PairedImageDataset(str(folder), str(folder), filename_tmpl=template)
    message = str(info.value)
    assert message.startswith("PairedImageDataset.filename_tmpl: must contain '{}' exactly once"), message
    assert repr(template) in message and "\n" not in message


@pytest.mark.parametrize("template", ["{}", "{0}", "{}x4", "{{{}}}"])
def test_good_filename_tmpl_still_pairs(tmp_path: Path, template: str) -> None:
    gt, lq = tmp_path / "gt", tmp_path / "lq"
    write_textured_images(gt, 2, 8, seed=1)
    lq.mkdir()
    for path in gt.iterdir():
        (lq / f"{template.format(path.stem)}.png").write_bytes(path.read_bytes())
    assert len(PairedImageDataset(str(gt), str(lq), filename_tmpl=template)) == 2


def test_create_lmdb_onto_a_database_with_a_non_utf8_key_names_it(folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "imgs.lmdb"
    env = lmdb.open(str(db), map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"caf\xe9", b"not ours")
    env.close()
    with pytest.raises(DataError, match=r"imgs\.lmdb: the database holds 1 key\(s\) that are not UTF-8 text "
                                        r"\(e\.g\. b'caf\\xe9'\)"):
        create_lmdb(folder, db, progress=False)


@pytest.mark.parametrize("char", ["\u2028", "\u2029"])
def test_file_name_with_a_line_separator_is_one_key(folder: Path, tmp_path: Path, char: str) -> None:
    odd = f"img{char}odd"
    (folder / "img_0001.png").rename(folder / f"{odd}.png")
    db = tmp_path / "imgs.lmdb"
    create_lmdb(folder, db, progress=False)
    assert list(read_meta_info(db)) == ["img_0000", "img_0002", odd]
    backend = LMDBBackend(db)
    assert backend.keys() == sorted(["img_0000", "img_0002", odd])
    assert backend.read(odd).shape == (16, 16, 3)
    assert verify_lmdb(db, progress=False) == 3


def test_meta_info_lines_end_at_newline_only(folder: Path, tmp_path: Path) -> None:
    """A ``meta_info.txt`` edited on Windows (CRLF) still reads; form feed or U+0085 inside a key
    (which ``str.splitlines`` would split at) do not break lines."""
    db = tmp_path / "imgs.lmdb"
    create_lmdb(folder, db, progress=False)
    meta = db / "meta_info.txt"
    meta.write_bytes(meta.read_bytes().replace(b"\n", b"\r\n"))
    assert list(read_meta_info(db)) == ["img_0000", "img_0001", "img_0002"]
    text = meta.read_text(encoding="utf-8").replace("img_0001", "img\x0c\x85x")
    meta.write_text(text, encoding="utf-8", newline="")
    assert list(read_meta_info(db)) == ["img_0000", "img\x0c\x85x", "img_0002"]


needs_proc_mem = pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux /proc/self/mem")


@needs_proc_mem
def test_unreadable_image_is_a_data_error_naming_it(folder: Path, tmp_path: Path) -> None:
    link = folder / "img_0001.png"
    link.unlink()
    link.symlink_to("/proc/self/mem")  # exists, is a regular file, and every read fails (EIO)
    with pytest.raises(DataError, match=r"img_0001\.png: cannot read image file"):
        create_lmdb(folder, tmp_path / "imgs.lmdb", progress=False)
    with pytest.raises(DataError, match=r"img_0001\.png: cannot read image file"):
        PairedImageDataset(str(folder), str(folder))[1]


@needs_proc_mem
def test_unreadable_meta_info_is_a_data_error_naming_it(folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "imgs.lmdb"
    create_lmdb(folder, db, progress=False)
    (db / "meta_info.txt").unlink()
    (db / "meta_info.txt").symlink_to("/proc/self/mem")
    with pytest.raises(DataError, match=r"meta_info\.txt: cannot read"):
        LMDBBackend(db).keys()
