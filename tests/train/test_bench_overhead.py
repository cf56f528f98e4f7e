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


def test_benchmarks_name_the_cpu_by_family_and_model():
    """Two VMs that both call themselves "AMD EPYC" gave different ratios: the figures' first line says which."""
    cpuinfo = Path("/proc/cpuinfo")
    code = "import sys; sys.path.insert(0, 'benchmarks'); from common import cpu_line; print(cpu_line())"
    line = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert line.startswith("CPU ")
    if cpuinfo.is_file() and "cpu family" in cpuinfo.read_text(errors="replace"):
        family = next(v for k, _, v in (ln.partition(":") for ln in cpuinfo.read_text().splitlines())
                      if k.strip() == "cpu family").strip()
        assert f"cpu family {family}," in line
