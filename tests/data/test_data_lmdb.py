"""LMDB packing and reading: BasicSR layout, byte equality, resume after interruption, bad records."""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest

from irframe.data import lmdb_pack
from irframe.data.backends import DiskBackend, LMDBBackend, build_backend, read_meta_info
from irframe.data.io import imread
from irframe.data.lmdb_pack import create_lmdb, verify_lmdb
from irframe.errors import DataError, OptionsError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def mixed_folder(tmp_path: Path, helpers) -> Path:
    """RGB 8-bit, gray 8-bit and RGB 16-bit PNGs plus a JPEG and a non-image file."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    for i in range(5):
        helpers.write_png(folder / f"rgb{i}.png", helpers.random_uint8(rng, 12 + i, 20))
    helpers.write_png(folder / "gray.png", helpers.random_uint8(rng, 9, 11, c=1))
    helpers.write_png(folder / "deep.png", rng.integers(0, 65536, (7, 8, 3), dtype=np.uint16))
    cv2.imwrite(str(folder / "photo.jpg"), helpers.random_uint8(rng, 16, 16))
    (folder / "notes.txt").write_text("not an image")
    return folder


def expected_record(path: Path, level: int) -> bytes:
    """What BasicSR stores: the image read unchanged and re-encoded as PNG at ``level``."""
    ok, buf = cv2.imencode(".png", cv2.imread(str(path), cv2.IMREAD_UNCHANGED), [cv2.IMWRITE_PNG_COMPRESSION, level])
    assert ok
    return buf.tobytes()


def test_roundtrip_byte_equality_and_meta_info(mixed_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "db.lmdb"
    report = create_lmdb(mixed_folder, out, compress_level=3, verify=True, progress=False)
    assert (report.total, report.written, report.skipped, report.verified) == (8, 8, 0, True)
    disk = DiskBackend(mixed_folder)
    db = LMDBBackend(out)
    assert db.keys() == disk.keys() == sorted(["rgb0", "rgb1", "rgb2", "rgb3", "rgb4", "gray", "deep", "photo"])
    for key in db.keys():  # noqa: SIM118 (a backend, not a dict)
        assert db.get(key) == expected_record(disk.path(key), 3)  # record bytes
        np.testing.assert_array_equal(db.read(key, None), imread(disk.path(key), None))  # pixels
    meta = (out / "meta_info.txt").read_text().splitlines()
    assert "gray.png (9,11,1) 3" in meta and "deep.png (7,8,3) 3" in meta and "rgb4.png (16,20,3) 3" in meta
    assert read_meta_info(out)["photo"] == ((16, 16, 3), 3)


def test_reads_a_database_made_like_basicsr(tmp_path: Path, helpers) -> None:
    """BasicSR's make_lmdb_from_imgs: ascii stem keys, PNG bytes, meta_info '<key>.png (h,w,c) level'."""
    rng = np.random.default_rng(1)
    db_path = tmp_path / "DIV2K_sub.lmdb"
    images = {f"0001_s{i:03d}": helpers.random_uint8(rng, 10, 14) for i in range(1, 4)}
    env = lmdb.open(str(db_path), map_size=10 << 20)
    lines = []
    with env.begin(write=True) as txn:
        for key, bgr in images.items():
            _, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
            txn.put(key.encode("ascii"), buf.tobytes())
            lines.append(f"{key}.png ({bgr.shape[0]},{bgr.shape[1]},{bgr.shape[2]}) 1\n")
    env.close()
    (db_path / "meta_info.txt").write_text("".join(lines))
    backend = build_backend({"type": "lmdb"}, str(db_path), where="test.io_backend")
    assert backend.keys() == sorted(images)
    for key, bgr in images.items():
        np.testing.assert_array_equal(backend.read(key), bgr[:, :, ::-1] / np.float32(255.0))
    assert verify_lmdb(db_path, progress=False) == 3


def test_missing_key_corrupt_record_and_unfinished_db(mixed_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "db.lmdb"
    create_lmdb(mixed_folder, out, progress=False)
    db = LMDBBackend(out)
    with pytest.raises(DataError, match=r"db\.lmdb.*'nope'"):
        db.get("nope")
    db.close()  # py-lmdb allows one environment per database and process: close the reader first
    env = lmdb.open(str(out), map_size=64 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"rgb2", b"\x89PNG\r\n\x1a\n broken")
    env.close()
    with pytest.raises(DataError, match=r"db\.lmdb:rgb2"):
        LMDBBackend(out).read("rgb2")
    with pytest.raises(DataError, match="rgb2"):
        verify_lmdb(out, progress=False)
    (out / "meta_info.txt").unlink()
    with pytest.raises(DataError, match="unfinished"):
        LMDBBackend(out)
    with pytest.raises(DataError, match="not found"):
        LMDBBackend(tmp_path / "absent.lmdb")
    with pytest.raises(OptionsError, match="io_backend.type"):
        build_backend({"type": "redis"}, str(out), where="ds.io_backend")
    with pytest.raises(OptionsError, match="db_paths"):
        build_backend({"type": "lmdb", "db_paths": "x"}, str(out), where="ds.io_backend")


def test_backend_is_picklable_and_reopens_lazily(mixed_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "db.lmdb"
    create_lmdb(mixed_folder, out, progress=False)
    db = LMDBBackend(out)
    first = db.get("rgb0")  # opens the environment in this process
    clone = pickle.loads(pickle.dumps(db))  # what a spawned DataLoader worker receives
    assert clone.get("rgb0") == first
    assert LMDBBackend(out).get("rgb1") == db.get("rgb1")  # two backends, one database: shared handle
    db.close()
    assert db.get("rgb0") == first  # reopens after close


def test_resume_after_interruption_no_duplicates_no_losses(mixed_folder: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "db.lmdb"
    monkeypatch.setattr(lmdb_pack, "_BATCH_RECORDS", 3)
    real_encode = lmdb_pack.encode_png
    calls = {"n": 0}

    def failing_encode(path: Path, level: int) -> bytes:
        calls["n"] += 1
        if calls["n"] > 4 + 5:  # 4 for the map-size estimate, then fail at the 6th record
            raise KeyboardInterrupt
        return real_encode(path, level)

    monkeypatch.setattr(lmdb_pack, "encode_png", failing_encode)
    with pytest.raises(KeyboardInterrupt):
        create_lmdb(mixed_folder, out, progress=False)
    assert not (out / "meta_info.txt").exists()  # unfinished: readers refuse it
    env = lmdb.open(str(out), readonly=True, lock=False)
    assert env.stat()["entries"] == 3  # one committed batch; the half batch was rolled back
    env.close()

    monkeypatch.setattr(lmdb_pack, "encode_png", real_encode)
    report = create_lmdb(mixed_folder, out, progress=False, verify=True)
    assert (report.written, report.skipped, report.total) == (5, 3, 8)
    db = LMDBBackend(out)
    disk = DiskBackend(mixed_folder)
    assert db.keys() == disk.keys()
    for key in db.keys():  # noqa: SIM118 (a backend, not a dict)
        assert db.get(key) == expected_record(disk.path(key), 1)


def test_hard_kill_then_finish_with_the_cli(mixed_folder: Path, tmp_path: Path, capsys) -> None:
    """A process killed mid-batch (no cleanup at all) leaves committed batches; the CLI finishes."""
    out = tmp_path / "db.lmdb"
    script = textwrap.dedent(
        f"""
        import os
        from irframe.data import lmdb_pack
        lmdb_pack._BATCH_RECORDS = 2
        real, n = lmdb_pack.encode_png, [0]
        def encode(path, level):
            n[0] += 1
            if n[0] > 4 + 5:
                os._exit(3)
            return real(path, level)
        lmdb_pack.encode_png = encode
        lmdb_pack.create_lmdb({str(mixed_folder)!r}, {str(out)!r}, progress=False)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    env = lmdb.open(str(out), readonly=True, lock=False)
    assert env.stat()["entries"] == 4
    env.close()

    spec = importlib.util.spec_from_file_location("create_lmdb_tool", ROOT / "tools" / "create_lmdb.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([str(mixed_folder), str(out), "--verify", "--no-progress", "--compress-level", "1"]) == 0
    assert "8 images (4 written, 4 already there), all records verified" in capsys.readouterr().out
    assert LMDBBackend(out).keys() == DiskBackend(mixed_folder).keys()
    # bad input: the CLI reports the error and exits 1
    assert tool.main([str(mixed_folder), str(tmp_path / "wrong_suffix"), "--no-progress"]) == 1
    assert ".lmdb" in capsys.readouterr().err


def test_refuses_to_mix_folders_and_reports_bad_inputs(mixed_folder: Path, tmp_path: Path, image_folder) -> None:
    out = tmp_path / "db.lmdb"
    create_lmdb(mixed_folder, out, progress=False)
    other = image_folder("other", n=2)
    with pytest.raises(DataError, match="another folder"):
        create_lmdb(other, out, progress=False)
    (other / "001.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"001\.png.*empty"):
        create_lmdb(other, tmp_path / "other.lmdb", progress=False)
