"""How many CPU threads a process gives torch: one deliberate choice, printed, overridable.

torch's default (one intra-op thread per core) is right on a quiet machine and badly wrong on a
busy one: threads that compete with other processes for the same cores made small-model training
3-7x slower than one thread. Launchers add their own guess (``accelerate launch`` and ``torchrun``
set ``OMP_NUM_THREADS=1`` when it is unset), so the same run differed 10x between ``python`` and
``accelerate launch``. The tools (train, test, infer, demo) therefore call
:func:`configure_threads` once, which prints one line saying what it chose and why.

The policy of ``auto`` (:func:`choose_threads`):

1. cores this process may use: ``len(os.sched_getaffinity(0))``, capped by a cgroup CPU quota
   (``/sys/fs/cgroup/cpu.max``, rounded up);
2. shared by the local processes of a launch (``LOCAL_WORLD_SIZE``, set by torchrun and
   ``accelerate launch``), minus the DataLoader workers of this process (each uses a core), at
   least 1;
3. capped by the cores the machine has free: ``os.cpu_count()`` minus the load, the number of other
   threads runnable right now (median of a few reads of ``/proc/loadavg`` over 0.2 s; the 1-minute
   load average where that is missing). The instant figure, not the average: the average lags a
   minute behind, so it would miss a job that just started and count one that just ended (such as
   the previous run of the same command). When the load exceeds the cores available the machine is
   oversubscribed, and the line says so.

An explicit choice always wins: ``--threads N`` on the command line, then ``threads: N`` in the
option file, then an ``OMP_NUM_THREADS`` the user exported. (``--threads``/``threads:`` are capped
at :data:`MAX_THREADS_PER_CORE` per core of the machine, and the line says so.) Under a launcher
(recognised by the environment variables it sets) ``OMP_NUM_THREADS`` is the launcher's:
``torchrun`` sets 1 when it is unset, ``accelerate launch`` 1 (or physical cores / processes with
``--cpu``), and a process cannot tell that from a value the user exported before launching. So there
the policy decides (and says it replaced the launcher's value); ``--threads N`` or ``threads: N``
fixes the count under a launcher.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ThreadChoice",
    "add_threads_argument",
    "available_cores",
    "choose_threads",
    "configure_threads",
    "machine_load",
    "threads_arg",
]

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
# Environment variables a launcher sets in the processes it starts (accelerate launch, torchrun).
LAUNCHER_MARKERS = ("ACCELERATE_MIXED_PRECISION", "ACCELERATE_DYNAMO_BACKEND", "TORCHELASTIC_RUN_ID")
# configure_threads exports its choice as OMP_NUM_THREADS (accelerate's CPU set-up would otherwise
# replace it) and records it here, so a later call knows that value was not the user's.
CHOSEN_ENV = "IRFRAME_THREADS_CHOSEN"
# An explicit thread count may oversubscribe the cores (a deliberate choice), up to this many per core.
MAX_THREADS_PER_CORE = 4


@dataclass(frozen=True)
class ThreadChoice:
    """The decision: how many threads, and the reason in words.

    Attributes:
        threads: intra-op threads for torch.
        reason: why (one line, printed by :func:`configure_threads`).
        oversubscribed: the machine's load exceeded the cores available to this process.
        from_env: the user's ``OMP_NUM_THREADS`` decided (nothing to export then).
    """

    threads: int
    reason: str
    oversubscribed: bool = False
    from_env: bool = False

    def line(self) -> str:
        """The line the tools print."""
        text = f"threads: {self.threads} ({self.reason})"
        if self.oversubscribed:
            text += "; WARNING: the machine is oversubscribed, expect slow steps (other processes share the cores)"
        return text


def threads_arg(text: str | int) -> int | str:
    """Parse ``auto`` or a positive integer (``--threads`` and the ``threads:`` option)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str) and text.strip().lower() == "auto":
        return "auto"
    else:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected 'auto' or a positive number of threads, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive number of threads, got {text!r}")
    return value


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads auto|N`` to a tool's parser (default: the option file's ``threads``, else auto)."""
    parser.add_argument(
        "--threads", type=threads_arg, default=None, metavar="auto|N",
        help="CPU threads for torch in this process; 'auto' (default, unless the option file sets threads): "
        "cores available / local processes - loader workers, fewer when the machine is busy",
    )


def _cgroup_quota(path: Path = CGROUP_CPU_MAX) -> float | None:
    """CPUs allowed by a cgroup v2 quota (``"max 100000"``: none), or ``None``."""
    try:
        fields = path.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = float(fields[0]), float(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def available_cores(cgroup_file: Path = CGROUP_CPU_MAX) -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup quota (rounded up)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_file)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _runnable_now(samples: int = 9, interval: float = 0.025) -> float | None:
    """Threads runnable right now, other than the reader (median of a few ``/proc/loadavg`` reads)."""
    counts = []
    for i in range(samples):
        try:
            field = Path("/proc/loadavg").read_text(encoding="ascii").split()[3]  # "running/total"
            counts.append(int(field.split("/")[0]) - 1)  # the reader itself is running
        except (OSError, IndexError, ValueError):
            return None
        if i + 1 < samples:
            time.sleep(interval)
    counts.sort()
    return float(max(0, counts[len(counts) // 2]))


def machine_load() -> float:
    """The machine's load: the other threads runnable now, else (no ``/proc``) the 1-minute load
    average, which lags a minute behind the machine."""
    now = _runnable_now()
    if now is not None:
        return now
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def _launcher_default(env: Mapping[str, str]) -> bool:
    """``OMP_NUM_THREADS`` set by accelerate launch / torchrun or by an earlier
    :func:`configure_threads` of this process tree, rather than by the user."""
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp and omp == env.get(CHOSEN_ENV, "").strip():
        return True
    return bool(omp) and any(k in env for k in LAUNCHER_MARKERS)


def choose_threads(
    requested: int | str | None = None,
    *,
    workers: int = 0,
    env: Mapping[str, str] | None = None,
    cores: int | None = None,
    machine_cores: int | None = None,
    load: float | None = None,
) -> ThreadChoice:
    """Decide the thread count (see the module docstring for the policy).

    Args:
        requested: ``--threads`` / ``threads:`` (an int, ``"auto"`` or ``None`` = auto).
        workers: DataLoader worker processes this process starts (each takes a core).
        env: the environment (default ``os.environ``): ``OMP_NUM_THREADS``, ``LOCAL_WORLD_SIZE``.
        cores: cores available to this process (default :func:`available_cores`).
        machine_cores: cores of the whole machine, the load's scale (default ``os.cpu_count()``).
        load: the machine's load (default :func:`machine_load`).
    """
    env = os.environ if env is None else env
    if requested is not None and requested != "auto":
        value = int(threads_arg(requested))
        machine_cores = (os.cpu_count() or 1) if machine_cores is None else machine_cores
        limit = MAX_THREADS_PER_CORE * max(1, machine_cores)
        if value > limit:  # 3000 threads on 2 cores: thousands of OpenMP threads fighting for them
            return ThreadChoice(
                limit, f"--threads or the option file's threads asked for {value}; capped at {limit} "
                f"({MAX_THREADS_PER_CORE} per core of the machine's {machine_cores})"
            )
        return ThreadChoice(value, "set by --threads or the option file's threads")
    omp = env.get("OMP_NUM_THREADS", "").strip()
    launcher_note = ""
    if omp and not _launcher_default(env):
        try:
            value = int(omp)
        except ValueError:
            value = 0
        if value >= 1:
            return ThreadChoice(value, f"OMP_NUM_THREADS={omp} from the environment", from_env=True)
        launcher_note = f"; OMP_NUM_THREADS={omp!r} ignored (not a positive number)"
    elif omp and omp != env.get(CHOSEN_ENV, "").strip():
        launcher_note = f"; the launcher's OMP_NUM_THREADS={omp} replaced (--threads N fixes the count)"
    cores = available_cores() if cores is None else cores
    try:
        local = max(1, int(env.get("LOCAL_WORLD_SIZE", "1") or 1))
    except ValueError:
        local = 1
    share = max(1, cores // local - max(0, workers))
    parts = [f"{cores} core{'s' if cores != 1 else ''} available"]
    if local > 1:
        parts.append(f"/ {local} local processes")
    if workers:
        parts.append(f"- {workers} loader worker{'s' if workers != 1 else ''}")
    reason = "auto: " + " ".join(parts)
    machine_cores = (os.cpu_count() or cores) if machine_cores is None else machine_cores
    load = machine_load() if load is None else load
    free = machine_cores - load
    oversubscribed = load > cores
    threads = share
    if free < share:
        threads = max(1, math.floor(free))
        reason += f"; busy machine: load {load:.1f} on {machine_cores} cores leaves {max(free, 0):.1f} free"
    return ThreadChoice(threads, reason + launcher_note, oversubscribed)


def configure_threads(
    requested: int | str | None = None,
    *,
    workers: int = 0,
    log: Callable[[str], object] | None = print,
) -> ThreadChoice:
    """Choose the thread count, apply it to torch (``torch.set_num_threads``) and print the line.

    Unless the user's ``OMP_NUM_THREADS`` decided, the choice is also exported as
    ``OMP_NUM_THREADS`` (so accelerate's CPU set-up keeps it) and as :data:`CHOSEN_ENV` (so a later
    call does not mistake it for the user's setting).

    Args:
        requested: ``--threads`` (wins) or the option file's ``threads`` (``None``/``"auto"``: policy).
        workers: DataLoader workers this process will start.
        log: receives the one-line explanation (``None``: silent); only the process of rank 0 logs.

    Raises:
        DistributedError: ``accelerate launch`` started one process where several were asked for
            (its CPU launcher does; :func:`irframe.launch.lost_processes`): the thread share and the
            global batch would silently be wrong, so the message gives the ``torchrun`` command.
    """
    import torch

    from irframe.errors import DistributedError
    from irframe.launch import lost_processes

    lost = lost_processes()
    if lost is not None:
        raise DistributedError(lost)
    choice = choose_threads(requested, workers=workers)
    torch.set_num_threads(choice.threads)
    if not choice.from_env:  # accelerate sets its own count on a multi-process CPU run unless it is set
        os.environ["OMP_NUM_THREADS"] = os.environ[CHOSEN_ENV] = str(choice.threads)
    if log is not None and os.environ.get("RANK", "0") == "0":  # one line per launch, not per process
        log(choice.line())
    return choice
