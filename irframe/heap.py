"""Keep freed memory in the process for the next call: the inference tools' allocator setting.

A forward on the CPU allocates and frees feature maps of several MB each. glibc's ``malloc`` hands
large blocks back to the kernel when they are freed (``munmap``, or trimming the top of the heap),
so the next call of the same forward asks the kernel for them again and pays a page fault per 4 KiB
page: for the paper-size Restormer at 128x128, about 17 thousand faults and 44 ms of system time a
call on the 2-core VM of ``benchmarks/RESULTS.md`` (``bench_fast.py --faults``). Told to keep what it frees
(``M_TRIM_THRESHOLD`` high, ``M_MMAP_THRESHOLD`` at its 32 MiB maximum, which also fixes glibc's
otherwise moving threshold), ``malloc`` reuses the same pages: blocks up to 32 MiB fault no more
after the first call.

The cost: the process keeps its peak heap resident between calls instead of returning it, which is
what a restoring process wants (the next image needs the same memory) and what PyTorch's GPU
allocator does on the GPU. Blocks above 32 MiB are still mapped per call (glibc's limit). Explicit
``malloc_trim`` (as ``--tile auto``'s probes call before measuring) still releases everything.

``tools/infer.py``, ``tools/test.py``, ``tools/train.py`` and ``irframe app`` call :func:`keep_freed_memory`
once at start; :func:`malloc_trim` is the explicit release. The user's own ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_`` or a malloc setting in ``GLIBC_TUNABLES`` (glibc's environment tunables)
win: with any of them set, nothing is changed. A training step in a process of its own took 19-24 % less
time with it (``bench_train_step.py --isolated``, ``benchmarks/RESULTS.md``); measured in one process
beside other variants it had looked the same, as their frees had already raised glibc's thresholds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from collections.abc import Mapping

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc caps M_MMAP_THRESHOLD at HEAP_MAX_SIZE / 2 = 32 MiB on 64-bit; larger values are refused.
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 2**31 - 1  # an int parameter: the largest it takes
USER_TUNABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


@functools.lru_cache(maxsize=1)
def glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (looked up once: ``find_library`` may run ``ldconfig``), else ``None``."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except (OSError, TypeError):
        return None
    # musl and others have mallopt as a stub or not at all; glibc alone answers gnu_get_libc_version
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "malloc_trim") else None


def keep_freed_memory(environ: Mapping[str, str] | None = None) -> str:
    """Set glibc's ``malloc`` to keep freed memory for reuse (see the module docstring).

    Args:
        environ: the environment to check for the user's own setting (default ``os.environ``).

    Returns:
        What was done, as a phrase for a log line: ``"kept"``, or why nothing was changed (not Linux,
        not glibc, the user's ``MALLOC_*`` / ``GLIBC_TUNABLES`` setting, ``mallopt`` refused).
    """
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return f"left as is ({sys.platform}: not glibc)"
    mine = [k for k in USER_TUNABLES if k in env and (k != "GLIBC_TUNABLES" or "malloc" in env[k])]
    if mine:
        return f"left as is ({', '.join(mine)} set)"
    libc = glibc()
    if libc is None:
        return "left as is (not glibc)"
    if not (mallopt(libc, M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(libc, M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        return "left as is (mallopt refused)"
    return "kept"


def mallopt(libc: ctypes.CDLL, param: int, value: int) -> bool:
    """glibc's ``mallopt(param, value)`` for this whole process; ``True`` when glibc took it.

    The one place the process's allocator is changed (the test suite replaces it: a pytest worker
    runs many tests in one process, and their memory readings must not depend on which ran first).
    """
    call = libc.mallopt
    call.argtypes, call.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return call(param, value) == 1


def malloc_trim() -> None:
    """Give freed heap pages back to the system (glibc's ``malloc_trim(0)``); a no-op elsewhere."""
    libc = glibc()
    if libc is not None:
        libc.malloc_trim(0)
