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

# Many feature maps of a forward, in miniature. After one 1 MiB block is mapped and freed, glibc's
# default sets its mapping threshold to 1 MiB and its trim threshold to 2 MiB, so twenty 512 KiB blocks
# come from the heap and, freed, leave 10 MiB at its top, which it hands back to the kernel: every round
# faults them in again. Minor page faults of the last three of ten rounds are printed.
_ROUNDS = textwrap.dedent("""
    import resource, sys, torch
    if sys.argv[1] == "keep":
        from irframe.heap import keep_freed_memory
        assert keep_freed_memory() == "kept"
    torch.ones(1 << 18)  # 1 MiB, freed at once
    faults = []
    for _ in range(10):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        maps = [torch.ones(1 << 17) for _ in range(20)]  # 20 x 512 KiB
        del maps
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(faults)
""")


def _late_faults(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", _ROUNDS, mode], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return sum(ast.literal_eval(out.stdout.strip().splitlines()[-1])[-3:])


@linux_only
def test_kept_memory_is_reused_without_page_faults() -> None:
    kept, default = _late_faults("keep"), _late_faults("default")
    if default == 0:
        pytest.skip("this system's malloc does not return these maps by default: nothing to compare")
    assert kept < 500 and kept < default, (kept, default)


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
