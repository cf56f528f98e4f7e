"""A truncated or bit-flipped ``data.mdb`` is one ``DataError`` naming the database, never a crash.

LMDB reads through a memory map: a page past the end of a truncated file kills the process with
SIGBUS (``Bus error``, exit status 135 in a shell, nothing printed), and a flipped bit can send it
past the map the same way or raise a bare ``lmdb.PageNotFoundError``. Each damaged copy is read in
a subprocess (a crash fails the test instead of killing pytest) the three ways the tools read: the
datasets' ``LMDBBackend`` (training, ``tools/test.py``), ``verify_lmdb`` (``create_lmdb.py --verify``) and
``create_lmdb`` onto the existing database.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from irframe.data.lmdb_pack import create_lmdb
from irframe.train.synthetic import write_textured_images

READ_THREE_WAYS = textwrap.dedent(
    """
    import sys
    from irframe.data.backends import LMDBBackend
    from irframe.data.lmdb_pack import create_lmdb, verify_lmdb
    from irframe.errors import DataError

    folder, db = sys.argv[1], sys.argv[2]
    backend = LMDBBackend(db)  # what the datasets read through (torch is not needed to show it)
    steps = {
        "dataset": lambda: [backend.read(key) for key in backend.keys()],
        "verify": lambda: verify_lmdb(db, progress=False),
        "create": lambda: create_lmdb(folder, db, progress=False),
    }
    for name, step in steps.items():
        try:
            step()
        except DataError as exc:
            print(f"{name}: error: {exc}")
        else:
            print(f"{name}: ok")
    """
)


@pytest.fixture
def packed(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "imgs"
    write_textured_images(folder, 4, 16, seed=6)
    db = tmp_path / "imgs.lmdb"
    create_lmdb(folder, db, progress=False)
    return folder, db


def damaged_copy(db: Path, name: str) -> Path:
    copy = db.with_name(name)
    shutil.copytree(db, copy)
    return copy


def read_three_ways(folder: Path, db: Path) -> list[str]:
    """The three readings of ``db`` in a subprocess; its output lines (a crash fails here)."""
    proc = subprocess.run(
        [sys.executable, "-c", READ_THREE_WAYS, str(folder), str(db)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, f"the reader died (status {proc.returncode}): {proc.stdout}{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout.splitlines()


def committed_meta(data: bytes | bytearray) -> int:
    """File offset of the meta page LMDB uses (the higher transaction id; 64-bit LMDB 0.9 layout)."""
    psize = struct.unpack_from("<I", data, 40)[0]
    txnids = [struct.unpack_from("<Q", data, base + 144)[0] for base in (0, psize)]
    return psize if txnids[1] > txnids[0] else 0


def test_truncated_data_mdb_is_one_error_naming_the_database(packed: tuple[Path, Path]) -> None:
    folder, db = packed
    bad = damaged_copy(db, "truncated.lmdb")
    mdb = bad / "data.mdb"
    size = mdb.stat().st_size
    mdb.write_bytes(mdb.read_bytes()[: size // 2 + 100])  # meta pages intact, tree pages cut off
    lines = read_three_ways(folder, bad)
    assert [line.split(":")[0] for line in lines] == ["dataset", "verify", "create"], lines
    for line in lines:
        assert ": error: " in line and f"{bad}: LMDB data.mdb is damaged" in line, lines
        assert "truncated" in line, lines


@pytest.mark.parametrize(
    ("what", "where"),
    [
        # the leaf page's first node offset +32768: LMDB read the node past the end of the file (SIGBUS)
        ("node offset", lambda data, psize, root: root * psize + 16 + 1),
        # the committed meta's main-tree root page +16, past the last page: a bare lmdb.PageNotFoundError
        ("root page", lambda data, psize, root: committed_meta(data) + 128),
    ],
)
def test_bit_flipped_data_mdb_is_one_error_naming_the_database(packed: tuple[Path, Path], what, where) -> None:
    folder, db = packed
    bad = damaged_copy(db, "flipped.lmdb")
    mdb = bad / "data.mdb"
    data = bytearray(mdb.read_bytes())
    psize = struct.unpack_from("<I", data, 40)[0]
    root = struct.unpack_from("<Q", data, committed_meta(data) + 128)[0]
    offset = where(data, psize, root)
    data[offset] ^= 0x80 if what == "node offset" else 0x10
    mdb.write_bytes(bytes(data))
    lines = read_three_ways(folder, bad)
    assert [line.split(":")[0] for line in lines] == ["dataset", "verify", "create"], lines
    for line in lines:
        assert ": error: " in line and f"{bad}: LMDB data.mdb is damaged" in line, lines


def test_a_sound_database_still_reads(packed: tuple[Path, Path]) -> None:
    folder, db = packed
    assert read_three_ways(folder, db) == ["dataset: ok", "verify: ok", "create: ok"]
