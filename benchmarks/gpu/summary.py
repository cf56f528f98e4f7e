"""The GPU suite's summary (``summary.md``): a headline per stage, then each stage's table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CARDS_GIB = (24, 40, 80)
"""The GPU memory sizes (GiB) the ``stages`` stage says a paper's batch fits on."""
# In the order they run: compile last, since a cold inductor compile of a paper model takes minutes.
STAGES = ("tests", "train", "overhead", "inference", "stages", "compile")


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.1f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


COLUMNS = {
    "tests": ["command", "returncode", "collected", "passed", "failed", "skipped", "ok"],
    "train": ["model", "precision", "iters", "batch", "lq_patch", "it_s", "first_loss", "last_loss", "loss_down",
              "finite", "reload_cpu", "wall_s", "status"],
    "overhead": ["model", "precision", "batch", "lq_patch", "reference_it_s", "trainer_it_s", "ratio",
                 "reference_peak_gib", "trainer_peak_gib", "status"],
    "compile": ["model", "what", "precision", "eager_ms", "compiled_ms", "speedup", "compile_s", "eager_peak_gib",
                "compiled_peak_gib", "status"],
    "inference": ["model", "side", "precision", "tile", "ms", "peak_gib", "estimated_gib", "status"],
    "stages": ["model", "precision", "lq_patch", "global_batch", "per_sample_gib", "fixed_gib", "predicted_global_gib",
               "measured_global_gib", *[f"{c}GiB" for c in CARDS_GIB], "status"],
}
TITLES = {
    "tests": "CUDA-marked tests", "train": "Training runs (generated images; loss: first vs last logged window)",
    "overhead": "Trainer vs reference loop (re-implementation of the official training step)",
    "compile": "torch.compile (train.compile through accelerate; restore of a compiled model)",
    "inference": "Inference of the paper-size models (whole image where it fits, else auto tiles)",
    "stages": "Largest progressive stage: memory per sample, fit on one card, grad_accum to reach the paper's batch",
}


def summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One line per figure: the headline of each stage."""
    out = []
    for stage in STAGES:
        rows = results.get(stage)
        if rows is None:
            continue
        bad = [r for r in rows if not str(r.get("status", "ok" if r.get("ok", True) else "x")).startswith("ok")]
        if stage == "tests":
            r = rows[0]
            text = f"rc {r['returncode']}: " + ", ".join(
                f"{r[k]} {k}" for k in ("collected", "passed", "failed", "skipped") if k in r
            )
        elif stage == "train":
            ok = [r for r in rows if r.get("status") == "ok"]
            judged = (
                "finite, reloaded on the CPU (dry run: loss trend not judged)"
                if results["environment"]["dry_run"]
                else "finite, loss down, reloaded on the CPU"
            )
            text = f"{len(ok)}/{len(rows)} runs {judged}"
        elif stage == "overhead":
            ratios = [f"{r['model']} {r['precision']} {r['ratio']}x" for r in rows if "ratio" in r]
            text = "Trainer / reference time: " + ", ".join(ratios)
        elif stage == "compile":
            sp = [
                f"{r['model']} {r['what'].split()[0]} {r['precision']} {r['speedup']}x" for r in rows if "speedup" in r
            ]
            text = "eager / compiled time: " + ", ".join(sp)
        elif stage == "inference":
            big = [f"{r['model']} {r['side']} {r['precision']} {r.get('ms')} ms ({r.get('tile')})" for r in rows
                   if r.get("side") == max(x.get("side", 0) for x in rows) and "ms" in r]
            text = "largest side: " + ", ".join(big)
        else:
            fits = [
                f"{r['model']} {r['precision']}: " + "; ".join(f"{c} {r.get(c)}" for c in ("24GiB", "40GiB", "80GiB"))
                for r in rows
                if "24GiB" in r
            ]
            text = " / ".join(fits) or "memory not measured"
        out.append({"stage": stage, "result": text, "problems": len(bad)})
    return out


def write_summary(results: dict[str, Any], out: Path) -> str:
    env = results["environment"]
    head = (f"GPU suite ({'dry run, CPU, tiny sizes' if env['dry_run'] else env.get('gpu', env['device'])}); "
            f"torch {env['torch']}, accelerate {env['accelerate']}, {env['date']}, {results['wall_s']} s")
    parts = [f"# {head}", "", "## Summary", "", table(summary_rows(results), ["stage", "result", "problems"])]
    for stage in STAGES:
        if stage in results:
            parts += ["", f"## {TITLES[stage]}", "", table(results[stage], COLUMNS[stage])]
    text = "\n".join(parts) + "\n"
    (out / "summary.md").write_text(text, encoding="utf-8")
    return text
