"""Figures and names the README states, checked against what the code computes or writes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from irframe.evaluate.model_stats import build_on_meta
from irframe.nn.stats import count_params
from irframe.options import load_options
from irframe.train.experiment import Experiment

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _models_row(arch_prefix: str) -> str:
    """The arch's row of the README's "## Models" table (the "## Architectures" table has rows too)."""
    models = README.split("\n## Models\n", 1)[1]
    return next(line for line in models.splitlines() if line.startswith(f"| {arch_prefix}"))


def test_ipt_parameter_counts_are_the_ones_model_stats_prints():
    row = _models_row("IPT")
    default = count_params(build_on_meta({"type": "IPT"})) / 1e6
    assert f"| {default:.2f} M |" in row  # what `model_stats.py --arch IPT` prints: 115.46
    pretrain = count_params(build_on_meta(load_options(ROOT / "options" / "ipt_pretrain.yml").model)) / 1e6
    assert f"{pretrain:.2f} M" in row and "ipt_pretrain.yml" in row  # the 6-task layout: 118.89


@pytest.mark.parametrize("folder", ["tensorboard"])
def test_experiment_folder_names_in_the_readme_are_the_real_ones(folder):
    exp = Experiment("x", Path("experiments/x"), None, "")
    assert exp.tensorboard.name == folder
    listed = re.search(r"Experiment folder `experiments/<name>/`: (.*?)\n- ", README, re.DOTALL).group(1)
    assert f"`{folder}/`" in listed and "tb_logger" not in listed


def test_readme_top_level_keys_match_the_schema():
    from irframe.options import Options

    line = next(line for line in README.splitlines() if line.startswith("- Top-level keys:"))
    keys = re.findall(r"`([^`]*)`", line)[0].split(", ")
    assert keys == list(Options.model_fields)


def test_the_demos_times_say_the_load_they_were_measured_at():
    paragraph = README.split("The demo generates synthetic textured images", 1)[1].split("Its experiment", 1)[0]
    times = re.findall(r"(\d+) s\b", paragraph)
    assert len(times) >= 3
    for seconds in times:  # each time with the load it was measured at (or "with both cores free")
        after = paragraph.split(f"{seconds} s", 1)[1][:60]
        assert re.search(r"\bload\b|cores free", after), (seconds, after)
    assert "quiet, 109 s" not in README
