"""``irframe.heap.keep_freed_memory``: the inference tools' allocator setting, and the user's own winning."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap

import pytest

from irframe.heap import keep_freed_memory

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux only")

# Many feature maps of a forward, in miniature: twenty 512 KiB blocks allocated, touched and freed, ten
# rounds. glibc's default moves its thresholds as blocks come and go, and whether it then returns such
# blocks differs from process to process (as the released models' page faults do), so the test first
# fixes glibc's starting state: blocks of 128 KiB and more are mapped when allocated and unmapped when
# freed, so every round faults them in again. keep_freed_memory must override that. Minor page faults
# per round, before and after.
_ROUNDS = textwrap.dedent("""
    import resource, torch
    from irframe.heap import M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, glibc, keep_freed_memory

    def rounds():
        faults = []
        for _ in range(10):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            maps = [torch.ones(1 << 17) for _ in range(20)]  # 20 x 512 KiB
            del maps
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        return faults

    libc = glibc()
    assert libc.mallopt(M_MMAP_THRESHOLD, 128 << 10) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 128 << 10) == 1
    returned = rounds()
    assert keep_freed_memory() == "kept"
    print([returned, rounds()])
""")


@linux_only
def test_kept_memory_is_reused_without_page_faults() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", _ROUNDS], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    returned, kept = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    assert sum(returned[-3:]) > 1000, returned  # the pattern faults while memory is handed back
    assert sum(kept[-3:]) < 100, kept  # and not once it is kept


@pytest.mark.parametrize(
    "environ, named",
    [
        ({"MALLOC_TRIM_THRESHOLD_": "131072"}, "MALLOC_TRIM_THRESHOLD_"),
        ({"MALLOC_MMAP_THRESHOLD_": "0"}, "MALLOC_MMAP_THRESHOLD_"),
        ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}, "GLIBC_TUNABLES"),
    ],
)
def test_the_users_own_malloc_setting_wins(environ: dict[str, str], named: str) -> None:
    said = keep_freed_memory(environ)
    assert said.startswith("left as is") and named in said


@linux_only
def test_other_glibc_tunables_do_not_count_as_a_malloc_setting() -> None:
    assert keep_freed_memory({"GLIBC_TUNABLES": "glibc.pthread.rseq=0"}) == "kept"
