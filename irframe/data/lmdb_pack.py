"""Pack a folder of images into an LMDB database in BasicSR's layout (see :mod:`.backends`).

* Records are the images re-encoded as PNG (``cv2.IMREAD_UNCHANGED`` in, so 16-bit and gray stay
  as they are) at a chosen zlib level, under the file stem as key: lossless, and what BasicSR's
  scripts write, so BasicSR can read our databases and we read BasicSR's.
* Resumable: records are committed in batches; a rerun after an interruption skips the keys already
  committed (LMDB transactions are atomic: a batch is either fully there or absent), so nothing is
  written twice and nothing is lost. ``meta_info.txt`` is written last; a database without it is
  incomplete and :class:`~irframe.data.backends.LMDBBackend` refuses it.
* A rerun notices source images that changed since they were packed: each committed record's
  source size and modification time are kept in ``irframe_sources.txt`` (next to ``data.mdb``,
  appended after every committed batch), and a record whose source differs (or was never
  fingerprinted) is re-encoded and overwritten instead of being kept stale.
* SR pairs: BasicSR's paired LMDB reader (``paired_paths_from_lmdb``) pairs LQ and GT records by
  identical keys (both ``meta_info.txt`` must list the same keys; ``filename_tmpl`` is not used for
  LMDB). ``key_template="{}x4"`` packs LR files named ``babyx4.png`` under the GT key ``baby``.
* File names that cannot be keys of ``meta_info.txt`` (a newline or other control character,
  leading/trailing spaces, bytes that are not UTF-8) are refused by name before anything is written;
  other characters that :meth:`str.splitlines` splits on (U+2028, U+2029) are fine: ``meta_info.txt``
  lines end at ``\n`` only (:func:`~irframe.data.backends.read_meta_info`).
* An image with an EXIF orientation (a phone's JPEG) is stored upright, as it is read from disk.
* The map size is estimated from the data (encoded sizes of a few sample images) and doubled
  whenever a batch does not fit.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from irframe.data.backends import (
    META_INFO,
    check_not_truncated,
    close_env,
    corrupt_lmdb,
    list_image_files,
    open_env,
    read_meta_info,
    read_record,
)
from irframe.data.io import apply_orientation, atomic_write, check_pixel_budget, decode_image, exif_orientation
from irframe.data.lmdb_check import check_lmdb_file
from irframe.errors import DataError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # PNG colour type -> channels as OpenCV decodes
_MIN_MAP_SIZE = 64 << 20
_BATCH_BYTES = 64 << 20  # commit at least this often (bytes) ...
_BATCH_RECORDS = 256  # ... or every this many records
SOURCES = "irframe_sources.txt"  # "<size> <mtime_ns> <key>" per committed record; the last line of a key wins


@dataclass
class PackReport:
    """What :func:`create_lmdb` did."""

    path: str
    total: int  # images in the folder (= records in the database at the end)
    written: int  # records written by this run
    skipped: int  # records already committed by an earlier, interrupted run
    verified: bool
    rewritten: int = 0  # committed records re-encoded because their source image changed


def png_shape(data: bytes, source: str) -> tuple[int, int, int]:
    """``(h, w, c)`` of a PNG from its IHDR header, without decoding the pixels."""
    if len(data) < 26 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise DataError(f"{source}: record is not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    color_type = data[25]
    if color_type not in _PNG_CHANNELS:
        raise DataError(f"{source}: PNG has an invalid colour type {color_type}")
    return height, width, _PNG_CHANNELS[color_type]


def encode_png(path: Path, compress_level: int) -> bytes:
    """Read an image file as stored (bit depth, channels), turned upright by its EXIF orientation as
    :func:`~irframe.data.io.imread` does, and re-encode it as PNG."""
    try:
        data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except OSError as exc:  # a folder, no permission, /proc/self/mem (EIO)...
        raise DataError(f"{path}: cannot read image file ({exc.strerror or exc})") from None
    if data.size == 0:
        raise DataError(f"{path}: empty image file (0 bytes)")
    check_pixel_budget(data, str(path))
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:  # e.g. a header claiming more pixels than OpenCV's safety limit
        img = None
    if img is None:
        raise DataError(f"{path}: cannot decode image ({data.size} bytes): truncated, corrupt or not an image")
    if img.dtype not in (np.uint8, np.uint16):
        raise DataError(f"{path}: PNG records hold 8/16-bit images; this file has {img.dtype} pixels")
    img = np.ascontiguousarray(apply_orientation(img, exif_orientation(data)))
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, int(compress_level)])
    if not ok:
        raise DataError(f"{path}: OpenCV could not encode the image as PNG")
    return buf.tobytes()


def _estimate_map_size(paths: list[Path], compress_level: int) -> int:
    """Bytes to reserve: mean encoded size of up to 4 sample images x count, with headroom."""
    if not paths:
        return _MIN_MAP_SIZE
    picks = sorted({round(i * (len(paths) - 1) / 3) for i in range(4)})
    mean = sum(len(encode_png(paths[i], compress_level)) for i in picks) / len(picks)
    # x2 for size variation between images and LMDB's page overhead; the writer grows it if short.
    return max(_MIN_MAP_SIZE, int(mean * len(paths) * 2))


def _fingerprint(path: Path) -> tuple[int, int]:
    """``(size, mtime_ns)`` of a source image: what tells a rerun that it changed."""
    try:
        st = path.stat()
    except OSError as exc:  # removed since the folder was listed, a dangling link...
        raise DataError(f"{path}: cannot read image file ({exc.strerror or exc})") from None
    return st.st_size, st.st_mtime_ns


def _read_sources(out: Path) -> dict[str, tuple[int, int]]:
    """The source fingerprints of committed records (a torn last line is ignored)."""
    found: dict[str, tuple[int, int]] = {}
    try:
        text = (out / SOURCES).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return found
    except OSError as exc:
        raise DataError(f"{out / SOURCES}: cannot read ({exc.strerror or exc})") from None
    for line in text.split("\n"):
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
            found[parts[2]] = (int(parts[0]), int(parts[1]))
    return found


def _append_sources(out: Path, prints: list[tuple[str, tuple[int, int]]]) -> None:
    try:
        with open(out / SOURCES, "a", encoding="utf-8") as fh:
            fh.write("".join(f"{size} {mtime} {key}\n" for key, (size, mtime) in prints))
    except OSError as exc:  # the records are committed: a rerun re-encodes them (no fingerprint), nothing is lost
        raise DataError(f"{out / SOURCES}: cannot be written ({exc.strerror or exc})") from None


def _check_keys(files: dict[str, Path]) -> None:
    """Refuse file names that cannot be written as one ``meta_info.txt`` line (named)."""
    import unicodedata

    for key, path in files.items():
        why = None
        if any(unicodedata.category(ch).startswith("C") for ch in key):
            why = "a newline or other control character"
        elif key != key.strip():
            why = "leading or trailing spaces"
        else:
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                why = "bytes that are not UTF-8"
        if why:
            raise DataError(
                f"{os.fsencode(path)!r}: its name holds {why}, which {META_INFO} cannot list; rename the file"
            )


def _write_batch(env: Any, batch: list[tuple[str, bytes]]) -> None:
    import lmdb

    while True:
        try:
            with env.begin(write=True) as txn:
                for key, value in batch:
                    txn.put(key.encode("utf-8"), value)  # overwrites a stale record of a changed source
            return
        except lmdb.MapFullError:  # the transaction was aborted: grow the map and retry it
            env.set_mapsize(env.info()["map_size"] * 2)


def _committed_keys(env: Any, out: Path) -> set[str]:
    """The keys already in the database (a key that is not UTF-8 cannot come from this tool: refused)."""
    with env.begin(write=False) as txn:
        raw = list(txn.cursor().iternext(keys=True, values=False))
    keys, alien = set(), []
    for k in raw:
        try:
            keys.add(bytes(k).decode("utf-8"))
        except UnicodeDecodeError:
            alien.append(bytes(k))
    if alien:
        raise DataError(
            f"{out}: the database holds {len(alien)} key(s) that are not UTF-8 text (e.g. "
            f"{', '.join(repr(k) for k in alien[:5])}), so it was not made by create_lmdb (its keys are file "
            "names): choose a new output path"
        )
    return keys


def _write_meta_info(out: Path, env: Any, keys: list[str], compress_level: int) -> None:
    lines = []
    with env.begin(write=False, buffers=True) as txn:  # buffers: only the 32 header bytes are read
        for key in keys:
            value = txn.get(key.encode("utf-8"))
            if value is None:  # cannot happen after a complete run; guards against silent loss
                raise DataError(f"{out}: record {key!r} is missing after packing")
            h, w, c = png_shape(bytes(value[:32]), f"{out}:{key}")
            lines.append(f"{key}.png ({h},{w},{c}) {compress_level}\n")
    atomic_write(out / META_INFO, "".join(lines).encode("utf-8"))


def keys_from_template(files: dict[str, Path], key_template: str, folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Re-key ``files`` (stem -> path) by the part of each file name that ``key_template`` marks with
    ``{}``: with ``"{}x4"``, ``babyx4`` becomes ``baby`` (a relative folder, with ``recursive``, is kept).

    Raises:
        DataError: a template without exactly one ``{}``, files whose names do not follow it (listed),
            or two files giving the same key.
    """
    if key_template == "{}":
        return files
    if key_template.count("{}") != 1:
        raise DataError(f"key template {key_template!r}: must contain '{{}}' once (where the key is in the file name)")
    prefix, suffix = key_template.split("{}")
    out: dict[str, Path] = {}
    unmatched: list[str] = []
    for stem, path in files.items():
        head, sep, name = stem.rpartition("/")
        if len(name) > len(prefix) + len(suffix) and name.startswith(prefix) and name.endswith(suffix):
            key = head + sep + name[len(prefix) : len(name) - len(suffix)]
            if key in out:
                raise DataError(
                    f"{folder}: {out[key].name} and {path.name} both give the key {key!r} (key template "
                    f"{key_template!r})"
                )
            out[key] = path
        else:
            unmatched.append(path.name)
    if unmatched:
        more = f" ... and {len(unmatched) - 10} more" if len(unmatched) > 10 else ""
        raise DataError(
            f"{folder}: {len(unmatched)} image(s) not named like the key template {key_template!r}: "
            f"{', '.join(unmatched[:10])}{more}"
        )
    return dict(sorted(out.items()))


def create_lmdb(
    in_folder: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    compress_level: int = 0,
    verify: bool = False,
    recursive: bool = False,
    progress: bool = True,
    key_template: str = "{}",
) -> PackReport:
    """Pack every image of ``in_folder`` into the LMDB ``out_path`` (BasicSR layout), resumably.

    Args:
        in_folder: folder of images; keys are their stems (relative paths without extension when
            ``recursive``).
        out_path: the database folder; must end with ``.lmdb`` (BasicSR's convention). If it exists
            (an interrupted or earlier run), committed keys are kept and skipped.
        compress_level: PNG zlib level 0-9 (default 0: larger than BasicSR's 1 but decoded ~2x faster).
        verify: decode every record afterwards (see :func:`verify_lmdb`).
        recursive: include images in sub-folders.
        progress: show a tqdm progress bar.
        key_template: how file stems hold the keys (:func:`keys_from_template`); ``"{}x4"`` packs
            ``babyx4.png`` as ``baby``, the key of its GT, as BasicSR's paired LMDB reader requires.

    Raises:
        DataError: unreadable input images (named), or an existing database holding keys that are
            not in ``in_folder`` (a different folder's database).
    """
    import lmdb

    out = Path(out_path)
    if out.suffix != ".lmdb":
        raise DataError(f"{out}: the LMDB path must end with '.lmdb'")
    if not 0 <= int(compress_level) <= 9:
        raise DataError(f"compress_level must be 0-9, got {compress_level!r}")
    files = list_image_files(in_folder, recursive=recursive)
    if not files:
        nested = not recursive and bool(list_image_files(in_folder, recursive=True))
        hint = " directly inside (its sub-folders hold some: pass --recursive, keys = relative paths)" if nested else ""
        raise DataError(f"{in_folder}: no images found{hint}")
    files = keys_from_template(files, key_template, in_folder)
    _check_keys(files)

    out.mkdir(parents=True, exist_ok=True)
    close_env(out)  # a reader handle of this process would block the writer (one env per process)
    if (out / "data.mdb").is_file():
        check_lmdb_file(out)  # an existing database: LMDB would crash on a damaged one (SIGBUS)
    try:
        env = lmdb.open(str(out), map_size=_MIN_MAP_SIZE)
    except lmdb.Error as exc:
        raise DataError(f"{out}: cannot open LMDB ({exc})") from None
    try:
        check_not_truncated(env, out)  # an existing database: reading a truncated one would crash
        pending, stale = _pack(env, out, files, in_folder, int(compress_level), progress)
    except lmdb.Error as exc:
        raise corrupt_lmdb(out, exc, "adding to it") from None
    finally:
        env.close()
    if verify:
        verify_lmdb(out, progress=progress)
    return PackReport(
        str(out), total=len(files), written=len(pending), skipped=len(files) - len(pending), verified=verify,
        rewritten=len(stale),
    )


def _pack(
    env: Any, out: Path, files: dict[str, Path], in_folder: str | os.PathLike[str], compress_level: int, progress: bool
) -> tuple[list[str], set[str]]:
    """Write the records that are missing or stale, then ``meta_info.txt``; ``(pending, stale)``."""
    from tqdm import tqdm

    done = _committed_keys(env, out)
    foreign = sorted(done - set(files))
    if foreign:
        raise DataError(
            f"{out}: the database holds {len(foreign)} key(s) that are not images of {in_folder} "
            f"(e.g. {', '.join(foreign[:5])}); it was made from another folder: choose a new output path"
        )
    known = _read_sources(out)
    stale = {k for k in done if known.get(k) != _fingerprint(files[k])}
    pending = [k for k in files if k not in done or k in stale]
    if pending:
        (out / META_INFO).unlink(missing_ok=True)  # incomplete until the end of this run
        want = (
            _estimate_map_size([files[k] for k in pending], compress_level)
            + env.info()["last_pgno"] * env.stat()["psize"]
        )
        if want > env.info()["map_size"]:
            env.set_mapsize(want)
    batch: list[tuple[str, bytes]] = []
    prints: list[tuple[str, tuple[int, int]]] = []
    batch_bytes = 0
    with tqdm(
        total=len(files),
        initial=len(files) - len(pending),
        unit="img",
        desc=f"packing {out.name}",
        disable=not progress,
    ) as bar:
        for key in pending:
            prints.append((key, _fingerprint(files[key])))  # before reading: a later change shows
            value = encode_png(files[key], compress_level)
            batch.append((key, value))
            batch_bytes += len(value)
            if len(batch) >= _BATCH_RECORDS or batch_bytes >= _BATCH_BYTES:
                _write_batch(env, batch)
                _append_sources(out, prints)
                bar.update(len(batch))
                batch, prints, batch_bytes = [], [], 0
        if batch:
            _write_batch(env, batch)
            _append_sources(out, prints)
            bar.update(len(batch))
    _write_meta_info(out, env, list(files), compress_level)
    return pending, stale


def verify_lmdb(path: str | os.PathLike[str], *, progress: bool = True) -> int:
    """Decode every record of a BasicSR-layout LMDB and check it against ``meta_info.txt``.

    Returns the number of records checked. Raises :class:`DataError` listing the keys that are
    missing, undecodable or of another shape than recorded, or records absent from ``meta_info``.
    """
    import lmdb

    db = Path(path)
    if not (db / META_INFO).is_file():
        raise DataError(f"{db}: no {META_INFO} (incomplete database? rerun create_lmdb to finish it)")
    meta = read_meta_info(db)
    problems: list[str] = []
    env = open_env(db)  # the process's shared read-only handle (a second one would be refused); size checked
    stored = env.stat()["entries"]
    try:
        _verify_records(env, db, meta, problems, progress)
    except lmdb.Error as exc:
        raise corrupt_lmdb(db, exc, "verifying it") from None
    if stored != len(meta):
        problems.append(f"the database holds {stored} records but {META_INFO} lists {len(meta)}")
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise DataError(f"{db}: {len(problems)} problem(s):\n  {shown}{more}")
    return len(meta)


def _verify_records(
    env: Any, db: Path, meta: dict[str, tuple[tuple[int, int, int], int]], problems: list[str], progress: bool
) -> None:
    """Decode every record ``meta_info.txt`` lists; append what is wrong to ``problems``."""
    from tqdm import tqdm

    with env.begin(write=False, buffers=True) as txn:
        for key, (shape, _level) in tqdm(meta.items(), unit="img", desc=f"verifying {db.name}", disable=not progress):
            try:
                value = read_record(txn, db, key)  # a length past the file's end is refused, not read
            except DataError as exc:
                problems.append(f"{key}: {exc}")
                continue
            if value is None:
                problems.append(f"{key}: missing")
                continue
            try:
                img = decode_image(value, f"{db}:{key}", channels=None)
            except DataError as exc:
                problems.append(f"{key}: {exc}")
                continue
            h, w, c = shape
            # decode_image composites alpha, so a 4-channel record decodes to 3 channels.
            got_c = {2: 1, 4: 3}.get(c, c)
            if img.shape != (h, w, got_c):
                problems.append(f"{key}: decoded shape {img.shape}, meta_info says ({h},{w},{c})")
