"""Bad data: hostile image headers, LMDB records gone bad, dataset errors inside DataLoader workers.

Covered elsewhere (not repeated here): truncated / zero-byte / non-image files in
``tests/data/test_data_io.py``; unmatched GT/LQ names and sizes and ``skip_bad`` on folders in
``tests/data/test_data_datasets.py``; LMDB backend errors and ``create_lmdb`` interrupted (also by a
hard kill) then resumed in ``tests/data/test_data_lmdb.py``.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import lmdb
import pytest

from irframe.data.datasets.paired import PairedImageDataset
from irframe.data.io import imread
from irframe.data.lmdb_pack import create_lmdb
from irframe.errors import DataError
from irframe.evaluate.images import probe_image
from irframe.train.synthetic import write_textured_images


def png_claiming(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header claims ``width x height`` pixels (a decompression bomb
    or a lying header: OpenCV refuses it with an exception instead of returning nothing)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    )


def test_lying_png_header_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    gt = tmp_path / "gt"
    write_textured_images(gt, 3, 16, seed=0)
    bomb = gt / "img_0001.png"
    bomb.write_bytes(png_claiming(100_000, 100_000))
    for read in (imread, probe_image):
        with pytest.raises(DataError, match="cannot decode image|above the budget") as info:
            read(bomb)
        assert str(bomb) in str(info.value)
    with pytest.raises(DataError, match="img_0001.png"):
        create_lmdb(gt, tmp_path / "gt.lmdb", progress=False)
    lenient = PairedImageDataset(str(gt), str(gt), skip_bad=True)
    with pytest.warns(RuntimeWarning, match=r"skipping sample 1: .*img_0001\.png"):
        assert lenient[1]["name"] == "img_0002"


@pytest.fixture
def broken_lmdb(tmp_path: Path) -> Path:
    """An LMDB of 4 images (BasicSR layout) where ``img_0001`` holds garbage and ``img_0002`` is
    listed in meta_info.txt but its record is gone."""
    folder = tmp_path / "imgs"
    write_textured_images(folder, 4, 16, seed=2)
    db = tmp_path / "imgs.lmdb"
    create_lmdb(folder, db, progress=False)
    env = lmdb.open(str(db), map_size=64 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"img_0001", b"\x89PNG\r\n\x1a\n not an image any more")
        assert txn.delete(b"img_0002")
    env.close()
    return db


def test_lmdb_corrupt_and_missing_records_are_named_or_skipped(broken_lmdb: Path) -> None:
    def dataset(skip_bad: bool) -> PairedImageDataset:
        db = str(broken_lmdb)
        return PairedImageDataset(db, db, io_backend={"type": "lmdb"}, skip_bad=skip_bad)

    strict = dataset(False)
    assert strict[0]["name"] == "img_0000"
    with pytest.raises(DataError, match=r"imgs\.lmdb:img_0001: cannot decode"):
        strict[1]
    with pytest.raises(DataError, match=r"imgs\.lmdb: LMDB has no record with key 'img_0002'"):
        strict[2]
    lenient = dataset(True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert lenient[1]["name"] == "img_0003"  # 1 is corrupt, 2 is missing: both skipped
    shown = " | ".join(str(w.message) for w in caught)
    assert "skipping sample 1" in shown and "img_0001" in shown
    assert "skipping sample 2" in shown and "img_0002" in shown


def test_bad_file_in_a_dataloader_worker_is_one_clear_line(tmp_path, images, write_yaml, tools) -> None:
    """With ``num_workers > 0`` torch re-raises a worker's error with the whole worker traceback as
    its message; the tool still prints one ``error:`` line naming the file (and no traceback), and
    with ``skip_bad`` the run warns and finishes."""
    bad = images.train / "img_0003.png"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated
    exp = tmp_path / "experiments"
    loader = {"num_workers": 1, "gt_size": 16}
    strict = write_yaml("strict.yml", tools.train_options(
        images, exp, "strict", datasets={"train": loader}, train={"total_iter": 4}, val=None))
    lenient = write_yaml("lenient.yml", tools.train_options(
        images, exp, "lenient", datasets={"train": {**loader, "skip_bad": True}}, train={"total_iter": 4}, val=None))
    runs = [tools.start(tools.HARNESS, ["-opt", str(path)], tmp_path) for path in (strict, lenient)]
    (strict_out, _), (lenient_out, _) = (proc.communicate(timeout=tools.TIMEOUT) for proc in runs)

    assert runs[0].returncode == 2, strict_out
    errors = [line for line in strict_out.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {bad}: cannot decode image (200 bytes): truncated, corrupt or not an image; fix: replace or remove "
        "the file, or set datasets.train.skip_bad: true to skip unreadable files (warned)"
    ], strict_out
    assert "Traceback" not in strict_out
    assert runs[1].returncode == 0, lenient_out
    assert f"skipping sample 3: {bad}" in lenient_out and "finished at iteration 4" in lenient_out
