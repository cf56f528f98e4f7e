"""Where encoded image bytes come from: a folder of files or an LMDB database (BasicSR layout).

A backend maps *keys* (file stems, e.g. ``0001`` or ``sub/0001`` for nested folders) to encoded
image bytes; datasets pair GT and LQ by key and decode with :func:`irframe.data.io.decode_image`.

LMDB layout (BasicSR's, so databases made by BasicSR's ``create_lmdb`` scripts load as they are):
``<name>.lmdb/`` holds ``data.mdb``, ``lock.mdb`` and ``meta_info.txt``; keys are the file stems
(ASCII), values the PNG-encoded image bytes; each ``meta_info.txt`` line reads
``<key>.png (<h>,<w>,<c>) <png compression level>``.

The LMDB environment is opened lazily, once per process and database (:func:`open_env`): a
DataLoader worker (forked or spawned) opens its own handle on first read, because LMDB handles must
not be used across a fork and cannot be pickled.

A damaged ``data.mdb`` is a :class:`DataError` naming the database, never a crash: LMDB reads
through a memory map, and touching a page past the end of a truncated file kills the process with
``SIGBUS`` (``Bus error``, nothing printed). So before LMDB maps a database its tree pages are
checked with plain file reads (:func:`irframe.data.lmdb_check.check_lmdb_file`: the file holds
the pages its header claims, and every page, node and record stays inside it), the opened
environment is checked again with LMDB's own ``info``/``stat`` (:func:`check_not_truncated`), a
record whose stored length exceeds the file is refused before it is copied, and LMDB's own errors
(``PageNotFoundError``, ``CorruptedError``...) are caught and name the database.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from irframe.data.io import Channels, decode_image, is_image_file
from irframe.data.lmdb_check import check_lmdb_file, damaged
from irframe.errors import DataError, OptionsError

META_INFO = "meta_info.txt"
_META_LINE = re.compile(r"^(?P<key>.+)\.png \((?P<h>\d+),(?P<w>\d+),(?P<c>\d+)\) (?P<level>\d+)$")


class Backend:
    """Key -> encoded bytes. Subclasses implement :meth:`keys`, :meth:`get` and :meth:`describe`."""

    root: str

    def keys(self) -> list[str]:
        """All keys, sorted."""
        raise NotImplementedError

    def get(self, key: str) -> bytes:
        """The encoded bytes stored under ``key`` (:class:`DataError` when missing)."""
        raise NotImplementedError

    def describe(self, key: str) -> str:
        """Where ``key`` lives, for messages and the samples' ``*_path`` fields."""
        raise NotImplementedError

    def read(self, key: str, channels: Channels = 3) -> np.ndarray:
        """Decode the image under ``key`` to float32 ``HWC`` RGB in ``[0, 1]``."""
        return decode_image(self.get(key), self.describe(key), channels)


def list_image_files(root: str | os.PathLike[str], recursive: bool = False) -> dict[str, Path]:
    """Map key (stem, relative to ``root``, POSIX separators) -> path for the images in a folder.

    Only files with an image extension are listed (``meta_info.txt``, ``Thumbs.db`` etc. are not
    images); hidden files are ignored. Two files with the same stem (``a.png`` and ``a.jpg``) are an
    error, since keys must be unique for pairing.
    """
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"{base}: image folder not found" if not base.exists() else f"{base}: not a folder")
    found: dict[str, Path] = {}
    walker = base.rglob("*") if recursive else base.iterdir()
    try:
        for path in walker:
            rel = path.relative_to(base)
            if any(part.startswith(".") for part in rel.parts) or not is_image_file(path) or not path.is_file():
                continue
            key = rel.with_suffix("").as_posix()
            if key in found:
                raise DataError(
                    f"{base}: two files share the key {key!r}: {found[key].name} and {path.name}; keep one"
                )
            found[key] = path
    except OSError as exc:  # a folder without read permission, a file system error
        raise DataError(f"{exc.filename or base}: cannot list the image folder ({exc.strerror or exc})") from None
    return dict(sorted(found.items()))


class DiskBackend(Backend):
    """Images as files in a folder (optionally nested: ``recursive=True``)."""

    def __init__(self, root: str | os.PathLike[str], recursive: bool = False) -> None:
        self.root = str(root)
        self.recursive = recursive
        self._files: dict[str, Path] | None = None

    @property
    def files(self) -> dict[str, Path]:
        if self._files is None:
            self._files = list_image_files(self.root, self.recursive)
        return self._files

    def keys(self) -> list[str]:
        return list(self.files)

    def path(self, key: str) -> Path:
        try:
            return self.files[key]
        except KeyError:
            raise DataError(f"{self.root}: no image with key {key!r}") from None

    def get(self, key: str) -> bytes:
        path = self.path(key)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise DataError(f"{path}: cannot read image file ({exc.strerror or exc})") from None

    def describe(self, key: str) -> str:
        return str(self.files[key]) if key in self.files else f"{self.root}/{key}"

    def __repr__(self) -> str:
        return f"DiskBackend({self.root!r})"


def read_meta_info(db_path: str | os.PathLike[str]) -> dict[str, tuple[tuple[int, int, int], int]]:
    """Parse an LMDB's ``meta_info.txt``: key -> ((h, w, c), compression level), in file order.

    Lines end at ``\\n`` only (an optional ``\\r`` before it is dropped), as BasicSR reads the file:
    a key holding a character that :meth:`str.splitlines` also splits on (U+2028, U+2029, U+0085,
    form feed...) stays one key."""
    meta = Path(db_path) / META_INFO
    out: dict[str, tuple[tuple[int, int, int], int]] = {}
    try:
        text = meta.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        bad_line = meta.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{meta}:{bad_line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); "
            "rewrite it with tools/create_lmdb.py"
        ) from None
    except OSError as exc:
        raise DataError(f"{meta}: cannot read ({exc.strerror or exc})") from None
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip(" \t"):
            continue
        m = _META_LINE.match(line.strip(" \t"))
        if m is None:
            raise DataError(f"{meta}:{lineno}: expected '<key>.png (h,w,c) <level>', got {line!r}")
        if m["key"] in out:
            raise DataError(f"{meta}:{lineno}: key {m['key']!r} is listed twice")
        out[m["key"]] = ((int(m["h"]), int(m["w"]), int(m["c"])), int(m["level"]))
    return out


# One read-only environment per database and process: py-lmdb refuses to open the same database
# twice in a process, and a handle inherited through fork() must not be used by the child.
_ENVS: dict[str, tuple[int, Any]] = {}  # real path -> (pid that opened it, environment)
_ENVS_LOCK = threading.Lock()


def open_env(path: str | os.PathLike[str]) -> Any:
    """This process's read-only environment of the LMDB at ``path`` (opened on first use)."""
    import lmdb

    key = os.path.realpath(path)
    with _ENVS_LOCK:
        entry = _ENVS.get(key)
        if entry is not None:
            pid, env = entry
            if pid == os.getpid():
                return env
            env.close()  # inherited from the parent: unmap this process's copy, then reopen
        check_lmdb_file(path)  # before LMDB maps it: a damaged file would crash the process (SIGBUS)
        try:
            env = lmdb.open(key, readonly=True, lock=False, readahead=False, meminit=False, max_readers=2048)
        except lmdb.Error as exc:
            raise DataError(f"{path}: cannot open LMDB ({exc})") from None
        try:
            check_not_truncated(env, path)  # LMDB's own view of the same, whatever the file's layout
        except BaseException:
            env.close()
            raise
        _ENVS[key] = (os.getpid(), env)
        return env


def check_not_truncated(env: Any, path: str | os.PathLike[str]) -> None:
    """Refuse an environment whose ``data.mdb`` is shorter than its header says (``last_pgno + 1``
    pages of ``psize`` bytes, from LMDB's own ``info``/``stat``, which read only the header pages):
    LMDB would map the missing pages and the first read of one would kill the process (SIGBUS)."""
    data = Path(path) / "data.mdb"
    try:
        size = data.stat().st_size
    except OSError as exc:
        raise DataError(f"{path}: cannot read LMDB ({data.name}: {exc.strerror or exc})") from None
    pages, psize = env.info()["last_pgno"] + 1, env.stat()["psize"]
    if size < pages * psize:
        raise damaged(
            path,
            f"the file is {size} bytes but its header says it holds {pages} pages of {psize} bytes "
            f"({pages * psize} bytes): truncated, e.g. an interrupted copy",
        )


def corrupt_lmdb(path: str | os.PathLike[str], exc: BaseException, what: str = "reading it") -> DataError:
    """The :class:`DataError` for an LMDB error raised while ``what`` (a damaged database)."""
    return damaged(path, f"{type(exc).__name__} while {what}: {exc}")


def read_record(txn: Any, path: str | os.PathLike[str], key: str) -> bytes | None:
    """The record ``key`` of an open read transaction (``buffers=True``), copied out, or ``None``.

    The stored length is checked against the file before the bytes are copied (a flipped length
    bit would make the copy read past the end of the memory map), and LMDB's errors on a corrupt
    tree become a :class:`DataError` naming the database and the key."""
    import lmdb

    try:
        value = txn.get(key.encode("utf-8"))
    except lmdb.Error as exc:
        raise corrupt_lmdb(path, exc, f"looking up {key!r}") from None
    if value is None:
        return None
    size = _data_size(path)
    if len(value) > size:
        raise damaged(path, f"record {key!r} claims {len(value)} bytes, more than the whole file's {size}")
    return bytes(value)


def _data_size(path: str | os.PathLike[str]) -> int:
    try:
        return (Path(path) / "data.mdb").stat().st_size
    except OSError as exc:
        raise DataError(f"{path}: cannot read LMDB (data.mdb: {exc.strerror or exc})") from None


def close_env(path: str | os.PathLike[str]) -> None:
    """Close this process's read-only environment of ``path`` if open (readers reopen it lazily)."""
    with _ENVS_LOCK:
        entry = _ENVS.pop(os.path.realpath(path), None)
    if entry is not None:
        entry[1].close()


class LMDBBackend(Backend):
    """Images as PNG records in an LMDB database (BasicSR layout; see the module doc).

    Keys come from ``meta_info.txt``, BasicSR's source of truth; a database without it is refused
    (``create_lmdb`` writes it last, so its absence means an unfinished database). The environment
    opens read-only on the first :meth:`get` in each process (see :func:`open_env`), so the backend
    holds no handle and pickles to DataLoader workers as a plain path.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.root = str(path)
        db = Path(path)
        if not (db / "data.mdb").is_file():
            what = "not found" if not db.exists() else "is not an LMDB database (no data.mdb)"
            raise DataError(f"{db}: LMDB {what}")
        if not (db / META_INFO).is_file():
            raise DataError(
                f"{db}: no {META_INFO} next to data.mdb (an unfinished database? rerun tools/create_lmdb.py "
                "on the same folder to finish it)"
            )
        self._keys: list[str] | None = None

    def keys(self) -> list[str]:
        """The keys ``meta_info.txt`` lists (a key listed twice is an error), checked against the
        database: records it does not list (a deleted line would silently drop them) are an error.
        A listed key without a record fails when read (or is skipped under ``skip_bad``)."""
        if self._keys is None:
            import lmdb

            keys = sorted(read_meta_info(self.root))
            env = open_env(self.root)
            try:
                with env.begin(write=False) as txn:  # keys only: no record is read
                    stored = {
                        bytes(k).decode("utf-8", "backslashreplace")
                        for k in txn.cursor().iternext(keys=True, values=False)
                    }
            except lmdb.Error as exc:
                raise corrupt_lmdb(self.root, exc, "listing its keys") from None
            unlisted = sorted(stored - set(keys))
            if unlisted:
                raise DataError(
                    f"{self.root}: the database holds {len(unlisted)} record(s) that {META_INFO} does not list "
                    f"(e.g. {', '.join(unlisted[:5])}: a line deleted, or the file of another database); "
                    "rerun tools/create_lmdb.py on its folder"
                )
            self._keys = keys
        return list(self._keys)

    def get(self, key: str) -> bytes:
        import lmdb

        try:
            with open_env(self.root).begin(write=False, buffers=True) as txn:
                value = read_record(txn, self.root, key)
        except lmdb.Error as exc:
            raise corrupt_lmdb(self.root, exc, f"reading {key!r}") from None
        if value is None:
            raise DataError(f"{self.root}: LMDB has no record with key {key!r}")
        return value

    def describe(self, key: str) -> str:
        return f"{self.root}:{key}"

    def close(self) -> None:
        """Close this process's environment of the database (it reopens on the next read)."""
        close_env(self.root)

    def __repr__(self) -> str:
        return f"LMDBBackend({self.root!r})"


def build_backend(io_backend: Mapping[str, Any] | None, root: str, *, where: str, recursive: bool = False) -> Backend:
    """Build the backend an ``io_backend`` option asks for (``{type: disk}`` or ``{type: lmdb}``).

    Args:
        io_backend: the option mapping (``None`` means disk).
        root: the folder (disk) or ``.lmdb`` database (lmdb) the dataset option points at.
        where: dotted option path used in error messages (``datasets.train.io_backend``).
        recursive: for disk, list nested folders too.
    """
    cfg = dict(io_backend or {"type": "disk"})
    kind = cfg.pop("type", None)
    if kind not in ("disk", "lmdb"):
        raise OptionsError(f"{where}.type: expected 'disk' or 'lmdb', got {kind!r}")
    if cfg:
        raise OptionsError(
            f"{where}: unknown key(s) {', '.join(sorted(cfg))} for io_backend {kind!r} (it takes only 'type')"
        )
    if kind == "lmdb":
        if recursive:
            raise OptionsError(f"{where}: 'recursive' applies to folders, not to an LMDB database")
        return LMDBBackend(root)
    return DiskBackend(root, recursive=recursive)
