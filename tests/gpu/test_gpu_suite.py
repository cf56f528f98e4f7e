"""benchmarks/gpu: the dry run (CPU, tiny sizes) runs every stage, and the card-fit arithmetic."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "benchmarks" / "gpu" / "suite.py"


def _suite():
    spec = importlib.util.spec_from_file_location("irframe_gpu_suite", SUITE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_fit_cards_reports_fit_or_an_even_grad_accum():
    fit = _suite().fit_cards
    # 2 GiB fixed + 3 GiB per sample, global batch 8: 24 GiB holds 6 -> 4 x 2; 40 GiB holds 11 -> fits
    assert fit(2.0, 3.0, 8) == {"24GiB": "batch 4 x grad_accum 2", "40GiB": "fits (batch 8)", "80GiB": "fits (batch 8)"}
    assert fit(2.0, 30.0, 8)["24GiB"] == "1 sample does not fit"
    # 80 GiB holds 5 of 14 GiB: 8 = 4 x 2 (5 would not divide 8)
    assert fit(2.0, 14.0, 8)["80GiB"] == "batch 4 x grad_accum 2"
    assert fit(2.0, 14.0, 8)["40GiB"] == "batch 2 x grad_accum 4"


def test_run_sh_is_valid_bash():
    proc = subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu" / "run.sh")], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_dry_run_runs_every_stage_on_the_cpu(tmp_path, capsys):
    suite = _suite()
    status = suite.main(["--dry-run", "--out", str(tmp_path)])
    assert status == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["environment"]["dry_run"] is True and results["environment"]["device"] == "cpu"
    assert set(suite.STAGES) <= set(results)
    assert results["tests"][0]["returncode"] == 0 and results["tests"][0]["collected"] > 0  # the CUDA tests import
    for stage in suite.STAGES:
        for row in results[stage]:
            assert str(row.get("status", "ok" if row.get("ok") else "bad")).startswith("ok"), (stage, row)
    assert {r["model"] for r in results["train"]} == {"demo", "Restormer", "PromptIR", "IPT"}
    assert all(r["finite"] and r["reload_cpu"] for r in results["train"])
    assert all(r["ratio"] > 0 for r in results["overhead"])
    assert any(r["what"] == "train iteration" and r["speedup"] > 0 for r in results["compile"])
    summary = (tmp_path / "summary.md").read_text()
    assert "## Summary" in summary and "reference loop (re-implementation of the official training step)" in summary
    assert "official" not in summary.replace("re-implementation of the official training step", "")
