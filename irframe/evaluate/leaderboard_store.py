"""The crash-safe file store of a leaderboard folder: its files replaced as one unit, under a lock.

:func:`write_board_files` writes every file of an update into a new folder ``.board/g_<id>/`` and
switches the symlink ``.board/current`` to it with one atomic rename; the top-level names are fixed
symlinks into ``.board/current``, so a reader (or a kill at any moment) sees either every old file or
every new one, never a mix. Where symlinks are not available the files are written one by one (each
atomically, :func:`atomic_write_text`). :func:`locked` serialises two runs updating one folder.
The store knows nothing of what the files hold (:mod:`irframe.evaluate.leaderboard` does).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from irframe.errors import DataError

__all__ = ["BOARD_DIR", "atomic_write_text", "locked", "write_board_files"]

BOARD_DIR = ".board"  # generations of the rendered files; ``current`` points at the live one


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def locked(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``folder``'s leaderboard (POSIX ``flock``; a no-op elsewhere)."""
    p = Path(folder)
    p.mkdir(parents=True, exist_ok=True)
    with open(p / ".leaderboard.lock", "a+") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: single-writer use only
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def write_board_files(folder: Path, texts: Mapping[str, str]) -> None:
    """Replace the files ``{name: text}`` in ``folder`` as one unit (see the module doc).

    Each file gets the usual permissions (0666 minus the umask). Raises :class:`DataError` naming
    the file when the disk is full or a name is taken by a folder.
    """
    board = folder / BOARD_DIR
    gen = board / f"g_{uuid.uuid4().hex[:12]}"
    try:
        gen.mkdir(parents=True)
        for name, text in texts.items():
            with open(gen / name, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        link = board / f".current_{gen.name}"
        os.symlink(gen.name, link)
    except NotImplementedError:  # no symlinks here: one file at a time
        shutil.rmtree(gen, ignore_errors=True)
        for name, text in texts.items():
            atomic_write_text(folder / name, text)
        return
    except OSError as exc:
        shutil.rmtree(gen, ignore_errors=True)
        raise DataError(
            f"{gen}: cannot write the leaderboard files ({exc.strerror or exc}); the previous ones are intact"
        ) from None
    os.replace(link, board / "current")  # the switch: every file changes at once
    for name in texts:
        top = folder / name
        target = os.path.join(BOARD_DIR, "current", name)
        if top.is_dir() and not top.is_symlink():
            raise DataError(f"{top}: is a folder; the leaderboard file cannot be written there")
        if not (top.is_symlink() and os.readlink(top) == target):
            tmp = folder / f".{name}.{gen.name}.link"
            os.symlink(target, tmp)
            os.replace(tmp, top)  # replaces an older regular file (or a foreign link) atomically
    for old in board.glob("g_*"):
        if old != gen:
            shutil.rmtree(old, ignore_errors=True)
    for stale in board.glob(".current_*"):
        stale.unlink(missing_ok=True)
