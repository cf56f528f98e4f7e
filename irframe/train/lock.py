"""One writer per experiment folder: an exclusive lock held for the whole run.

Two runs writing one experiment (two ``--resume auto`` launches a moment apart, a forgotten run in
another terminal) replace each other's checkpoints, interleave the log and prune each other's
temporary folders. The run's main process therefore holds an exclusive lock on
``<experiment>/.irframe.lock`` from the moment it claims the folder until it ends; a second writer
is refused with one line naming the folder and the pid holding it.

The lock is a POSIX record lock (``fcntl.lockf``): the kernel drops it when the holding process
ends in any way (exit, exception, SIGKILL, a crash), so a lock left by a dead process is never
stale: the next run simply gets it. Unlike ``flock``, a record lock is *not* inherited by the
DataLoader worker processes a run forks, so a dying run's workers cannot keep holding it. Record
locks belong to the process, so a second claim from the same process is caught by a table of the
locks this process holds (two runs in one notebook), and this module never opens the lock file of
a folder this process holds (closing any descriptor of the file would drop the lock).

The lock file itself stays in the folder (deleting it would let two runs lock two different files);
it holds the pid, host and start time of the last holder, for the message.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import socket
from pathlib import Path

from irframe.errors import IrframeError

LOCK_FILE = ".irframe.lock"

try:  # POSIX; elsewhere runs are not locked (there is no portable lock the kernel releases)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class ExperimentInUse(IrframeError):
    """Another process is writing this experiment folder."""


# The locks this process holds: resolved folder -> lock (record locks cannot see the own process).
_HELD: dict[Path, ExperimentLock] = {}


def _key(folder: Path) -> Path:
    return Path(os.path.realpath(folder))


class ExperimentLock:
    """The exclusive lock of one experiment folder, held by this process (see the module doc)."""

    def __init__(self, folder: Path, fd: int | None) -> None:
        self.folder = folder
        self._fd = fd

    @classmethod
    def acquire(cls, folder: Path) -> ExperimentLock:
        """Lock ``folder`` for this process.

        Raises:
            ExperimentInUse: another process (or another run of this process) holds it; the
                message names the folder and the holder's pid.
            OSError: the lock file cannot be created (a read-only folder): the caller says so.
        """
        key = _key(folder)
        if key in _HELD:
            raise ExperimentInUse(
                f"{folder} is in use by another run in this process (pid {os.getpid()}); two runs never write "
                "one experiment folder: wait for it to end, or give this run another name (--set name=...)"
            )
        if fcntl is None:  # pragma: no cover
            lock = cls(folder, None)
            _HELD[key] = lock
            return lock
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            raise ExperimentInUse(
                f"{folder} is in use by another run ({describe_holder(folder)}); two runs never write one "
                "experiment folder: wait for it to end (or stop it), or give this run another name (--set name=...)"
            ) from None
        stamp = datetime.datetime.now().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode())
        lock = cls(folder, fd)
        _HELD[key] = lock
        return lock

    def release(self) -> None:
        """Give the lock up (idempotent). The lock file stays; its text is the last holder's."""
        _HELD.pop(_key(self.folder), None)
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)  # closing drops the record lock


def describe_holder(folder: Path) -> str:
    """The text the holder wrote into the lock file (``pid N on HOST since TIME``), or ``pid unknown``."""
    try:
        text = (folder / LOCK_FILE).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return text.splitlines()[0][:200] if text else "pid unknown (it is starting)"


def release_folder(folder: Path) -> None:
    """Give up this process's lock on ``folder`` (nothing when it holds none)."""
    held = _HELD.get(_key(folder))
    if held is not None:
        held.release()


def in_use(folder: Path) -> str | None:
    """Who holds ``folder``'s lock (``pid N ...``; this process included), or ``None`` when nobody does.

    Never opens the lock file of a folder this process holds (that would drop its lock)."""
    key = _key(folder)
    if key in _HELD:
        return f"pid {os.getpid()} (this process)"
    path = folder / LOCK_FILE
    if fcntl is None or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return describe_holder(folder)
    finally:
        os.close(fd)  # also drops the probe's own lock
    return None
