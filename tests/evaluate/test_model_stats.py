"""tools/model_stats.py: our counts beside the papers' quoted figures."""

from __future__ import annotations

from pathlib import Path

from irframe.evaluate.cli import stats_main
from irframe.evaluate.model_stats import PAPER_FIGURES, build_on_meta, measure, stats_table
from irframe.nn.stats import count_params
from irframe.registry import ARCHS

TINY = {"type": "Restormer", "dim": 4, "num_blocks": [1, 1, 1, 1], "heads": [1, 1, 1, 1], "num_refinement_blocks": 1}


def test_meta_build_counts_like_a_real_model() -> None:
    real = ARCHS.build(TINY)
    row = measure(build_on_meta(TINY), "tiny", "Restormer", size=30)
    assert row.params == count_params(real)
    assert (row.height, row.width) == (32, 32) and "multiple of 8" in row.note  # rounded up for Restormer
    assert row.flops is not None and row.layer_flops is not None and 0 < row.layer_flops < row.flops


def test_full_restormer_matches_the_paper_and_table_labels_quotes(capsys) -> None:
    # meta tensors: the full model at 256x256 costs no arithmetic
    assert stats_main(["--arch", "Restormer", "--size", "256"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| Restormer |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "26.13" and cells[3] == "26.10"  # ours, paper
    assert cells[7] == "140.99" and cells[8] == "140.99 @256x256"  # layer GMACs (ours), paper
    assert "Paper: quoted, not measured" in out and PAPER_FIGURES["Restormer"].source in out


def test_options_file_fixed_size_model_and_errors(tmp_path: Path, capsys) -> None:
    opt = tmp_path / "ipt.yml"
    opt.write_text(
        "name: ipt_tiny\n"
        "model: {type: IPT, n_feats: 8, patch_size: 12, patch_dim: 3, num_heads: 1, num_layers: 1, scale: [1]}\n"
    )
    assert stats_main(["-opt", str(opt), "--size", "64"]) == 0
    out = capsys.readouterr().out
    assert "| ipt_tiny | IPT |" in out and "12x12 (one patch" in out and "115.50" in out
    assert stats_main(["--arch", "Restormr"]) == 2
    assert "did you mean 'Restormer'" in capsys.readouterr().err


def test_table_without_paper_figures() -> None:
    row = measure(build_on_meta(TINY), "tiny", "Restormer", size=16, flops=False)
    table = stats_table([row], papers={})
    assert "| tiny | Restormer |" in table and "| – |" in table
    assert row.gmacs is None and row.layer_gmacs is None
