"""Check that an LMDB ``data.mdb`` can be read without crashing, before LMDB maps it.

LMDB reads through a memory map and trusts the file: a page past the end of a truncated file kills
the process with ``SIGBUS`` (``Bus error``, nothing printed), and a flipped bit in a page's node
offsets, a key size or a record's length makes it read past the map the same way. Python cannot
catch either. :func:`check_lmdb_file` reads the pages a reader walks through with ordinary file
reads (a short file is an error here, not a crash) and checks what keeps LMDB inside the file:

* both meta pages parse; the committed one (the higher transaction id, as LMDB picks it) says how
  many pages the file holds, and the file is at least that long;
* every branch and leaf page reachable from the roots (main tree, free-page tree, named
  sub-databases) lies inside those pages, stores its own page number and is reached once; its node
  offsets, key sizes and inline values stay inside the page;
* every large record's overflow pages lie inside the file.

Record bytes are not read (only the tree pages, about one page per hundred records), so the check
is cheap; it runs once per database and process tree (forked DataLoader workers inherit it).
Files of another layout than 64-bit little-endian LMDB 0.9 are left to LMDB (with the size check
of :func:`irframe.data.backends.check_not_truncated` still done).
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path
from typing import BinaryIO

from irframe.errors import DataError

__all__ = ["check_lmdb_file", "damaged"]

_MAGIC, _VERSION = 0xBEEFC0DE, 1
_HDR = 16  # page header: pgno u64, pad u16, flags u16, lower u16, upper u16 (overflow: pages u32)
_NODE = 8  # node header: lo u16, hi u16, flags u16, ksize u16
_P_BRANCH, _P_LEAF, _P_OVERFLOW, _P_META, _P_LEAF2 = 0x01, 0x02, 0x04, 0x08, 0x20
_F_BIGDATA, _F_SUBDATA, _F_DUPDATA = 0x01, 0x02, 0x04
_P_INVALID = (1 << 64) - 1
_DB_SIZE = 48  # MDB_db: pad u32, flags u16, depth u16, 4 x u64 counters, root u64
_META_LEN = _HDR + 136  # meta fields up to and including mm_txnid

_checked: dict[str, tuple[int, int, int]] = {}  # real path -> (inode, size, mtime_ns) found sound


def damaged(path: str | os.PathLike[str], problem: str) -> DataError:
    """The :class:`DataError` of a database whose ``data.mdb`` is damaged."""
    return DataError(
        f"{path}: LMDB data.mdb is damaged ({problem}); reading it could crash the process, so it is "
        "refused: copy it again or rebuild it with tools/create_lmdb.py"
    )


class _Meta:
    def __init__(self, buf: bytes) -> None:
        self.flags = struct.unpack_from("<H", buf, 10)[0]
        self.magic, self.version = struct.unpack_from("<II", buf, _HDR)
        self.psize = struct.unpack_from("<I", buf, _HDR + 24)[0]  # mm_psize aliases the free DB's md_pad
        self.free_root = struct.unpack_from("<Q", buf, _HDR + 24 + 40)[0]
        self.main_root = struct.unpack_from("<Q", buf, _HDR + 24 + _DB_SIZE + 40)[0]
        self.last_pg, self.txnid = struct.unpack_from("<QQ", buf, _HDR + 24 + 2 * _DB_SIZE)


def check_lmdb_file(path: str | os.PathLike[str]) -> None:
    """Refuse the database folder ``path`` when reading its ``data.mdb`` could crash (see the module doc).

    Raises:
        DataError: naming the database and what is wrong (truncated file, page out of range...).
    """
    data = Path(path) / "data.mdb"
    try:
        st = data.stat()
        fingerprint = (st.st_ino, st.st_size, st.st_mtime_ns)
        key = os.path.realpath(data)
        if _checked.get(key) == fingerprint:
            return
        with open(data, "rb") as fh:
            _Walk(fh, st.st_size, path).run()
    except OSError as exc:
        raise DataError(f"{path}: cannot read LMDB ({data.name}: {exc.strerror or exc})") from None
    _checked[key] = fingerprint


class _Walk:
    def __init__(self, fh: BinaryIO, size: int, path: str | os.PathLike[str]) -> None:
        self.fh, self.size, self.path = fh, size, path
        self.psize = 0
        self.last_pg = 0
        self.seen: set[int] = set()

    def _read(self, offset: int, length: int) -> bytes:
        self.fh.seek(offset)
        return self.fh.read(length)

    def run(self) -> None:
        if sys.byteorder != "little" or struct.calcsize("P") != 8:
            return  # another layout: left to LMDB
        head = self._read(0, _META_LEN)
        if len(head) < _META_LEN:
            return  # LMDB refuses it when opening
        m0 = _Meta(head)
        if m0.magic != _MAGIC or m0.version != _VERSION or not m0.flags & _P_META:
            return  # not a 64-bit LMDB 0.9 file: LMDB refuses it or reads it its own way
        psize = m0.psize
        if psize < 256 or psize > 1 << 16 or psize & (psize - 1):
            raise damaged(self.path, f"meta page 0 gives an impossible page size {psize}")
        self.psize = psize
        tail = self._read(psize, _META_LEN)
        if len(tail) < _META_LEN:
            raise self._short(2)
        m1 = _Meta(tail)
        if m1.magic != _MAGIC or m1.version != _VERSION:
            raise damaged(self.path, "meta page 1 is not an LMDB meta page")
        meta = m1 if m0.txnid < m1.txnid else m0  # what LMDB picks (mdb_env_pick_meta)
        self.last_pg = meta.last_pg
        if meta.last_pg < 1:
            raise damaged(self.path, f"the meta page claims {meta.last_pg + 1} pages")
        if self.size < (meta.last_pg + 1) * psize:
            raise self._short(meta.last_pg + 1)
        roots = [("free-page tree", meta.free_root), ("main tree", meta.main_root)]
        while roots:
            tree, root = roots.pop()
            if root != _P_INVALID:
                roots.extend(self._tree(tree, root))

    def _short(self, pages: int) -> DataError:
        return damaged(
            self.path,
            f"the file is {self.size} bytes but its header says it holds {pages} pages of {self.psize} bytes "
            f"({pages * self.psize} bytes): truncated, e.g. an interrupted copy",
        )

    def _tree(self, tree: str, root: int) -> list[tuple[str, int]]:
        """Check the pages of one B-tree; return the sub-trees found in its leaves."""
        subtrees: list[tuple[str, int]] = []
        stack = [root]
        while stack:
            pgno = stack.pop()
            where = f"{tree}, page {pgno}"
            if not 2 <= pgno <= self.last_pg:
                raise damaged(self.path, f"{where} is outside the file's {self.last_pg + 1} pages")
            if pgno in self.seen:
                raise damaged(self.path, f"{where} is reached twice")
            self.seen.add(pgno)
            page = self._read(pgno * self.psize, self.psize)
            stored, pad, flags, lower, upper = struct.unpack_from("<QHHHH", page, 0)
            if stored != pgno:
                raise damaged(self.path, f"{where} says it is page {stored}")
            if not _HDR <= lower <= upper <= self.psize or (lower - _HDR) % 2:
                raise damaged(self.path, f"{where} has a broken header (lower {lower}, upper {upper})")
            count = (lower - _HDR) // 2
            if flags & _P_LEAF2:  # fixed-size duplicate keys without node headers
                if _HDR + count * pad > self.psize:
                    raise damaged(self.path, f"{where} holds {count} keys of {pad} bytes, more than a page")
                continue
            if not flags & (_P_BRANCH | _P_LEAF) or (flags & _P_BRANCH and flags & _P_LEAF):
                raise damaged(self.path, f"{where} is neither a branch nor a leaf page (flags {flags:#x})")
            for i in range(count):
                found = self._node(page, i, upper, flags & _P_BRANCH, where)
                if isinstance(found, int):
                    stack.append(found)
                elif found is not None:
                    subtrees.append(found)
        return subtrees

    def _node(self, page: bytes, i: int, upper: int, branch: int, where: str) -> int | tuple[str, int] | None:
        """Check node ``i`` of a page: a branch's child page, a sub-tree's root, or ``None``."""
        ptr = struct.unpack_from("<H", page, _HDR + 2 * i)[0]
        if ptr < upper or ptr + _NODE > self.psize:
            raise damaged(self.path, f"{where}, node {i} is at offset {ptr}, outside the page")
        lo, hi, nflags, ksize = struct.unpack_from("<HHHH", page, ptr)
        start = ptr + _NODE + ksize  # where the value (or the overflow page number) begins
        if branch:
            if ptr + _NODE + ksize > self.psize:
                raise damaged(self.path, f"{where}, node {i} has a key of {ksize} bytes, past the page's end")
            return lo | hi << 16 | nflags << 32  # the child page
        dsize = lo | hi << 16
        if nflags & _F_BIGDATA:
            if start + 8 > self.psize:
                raise damaged(self.path, f"{where}, node {i} has a key of {ksize} bytes, past the page's end")
            first = struct.unpack_from("<Q", page, start)[0]
            pages = (_HDR - 1 + dsize) // self.psize + 1
            if first < 2 or first + pages - 1 > self.last_pg:
                raise damaged(
                    self.path,
                    f"{where}, record {i} claims {dsize} bytes on pages {first}-{first + pages - 1}, outside the "
                    f"file's {self.last_pg + 1} pages",
                )
            return None
        if start + dsize > self.psize:
            raise damaged(self.path, f"{where}, record {i} ({ksize}-byte key, {dsize}-byte value) runs past the page")
        if nflags & _F_SUBDATA and dsize == _DB_SIZE:  # a named sub-database or a tree of duplicates
            root = struct.unpack_from("<Q", page, start + 40)[0]
            return (f"sub-tree {bytes(page[ptr + _NODE : start])!r}", root)
        return None
