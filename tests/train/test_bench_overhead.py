"""benchmarks/bench_overhead.py runs and prints the overhead ratio (tiny sizes; no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_overhead_prints_ratio():
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_overhead.py"), "--device", "cpu", "--dim", "8",
           "--batch", "1", "--size", "16", "--iters", "1", "--rounds", "1", "--warmup", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ratio = [line for line in proc.stdout.splitlines() if line.startswith("overhead ratio")]
    assert ratio and float(ratio[0].split(":")[1].split("x")[0]) > 0
