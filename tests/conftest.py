"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tiny models on a small shared CPU: one intra-op thread is as fast, and several OpenMP threads
# competing for 2 cores (pytest beside another job) slowed small convolutions 20-100x.
torch.set_num_threads(1)
# The tools choose their threads (irframe.threads) and respect a user's OMP_NUM_THREADS: tests that
# run them, in this process or as subprocesses, keep the one thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IRFRAME_SHARED", ROOT.parent / "shared"))
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(autouse=True)
def _process_allocator_untouched(monkeypatch):
    """Tools run in this process (``infer_main``, ``test_main``, ``irframe app``) would set glibc to keep
    freed memory for the rest of the pytest worker (irframe.heap), so that later tests' memory readings
    (``--tile auto``'s estimates) depended on which tests ran before them in the worker. Here they only
    report "kept"; the allocator itself is tested in subprocesses (tests/core/test_heap.py)."""
    import irframe.heap

    monkeypatch.setattr(irframe.heap, "mallopt", lambda libc, param, value: True)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``):
    tiny models gain nothing from threads, and on a busy 2-core machine OpenMP's barriers slow them
    down badly (and unsteady memory readings). Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def shared_dir() -> Path:
    """../shared when present (real images, official files); skips the test otherwise."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    return SHARED


@pytest.fixture
def registry_sandbox():
    """Lets a test load extra plugins; restores the registries and loader afterwards."""
    from irframe.registry import LOADER

    LOADER.ensure_loaded()
    restore = LOADER.snapshot()
    try:
        yield LOADER
    finally:
        restore()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` need a CUDA device: where torch sees none they are skipped, with the reason."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (marker 'cuda'); benchmarks/gpu/run.sh runs them")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
