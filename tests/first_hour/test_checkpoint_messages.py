"""Messages a newcomer reads when weights do not fit: the fix first, what differs as a count, short.

(issue 30: a gray checkpoint with RGB options gave a 1,303-character line with the fix after 26
shape pairs; an IPT file given to a Restormer was described as a list of keys; ``zoo:NAME`` was
refused where a checkpoint path is read for training.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from irframe.errors import CheckpointError
from irframe.evaluate.models import load_for_eval
from irframe.nn.autoload import checkpoint_arch, other_arch
from irframe.nn.weights import (
    WeightsMismatchError,
    load_weights,
    read_state_for,
    save_weights,
    weights_path_problem,
)
from irframe.options import load_options
from tests.helpers import build_tiny_arch

ROOT = Path(__file__).resolve().parents[2]
GRAY_ZOO = "zoo:restormer_gray_denoise_s25"


@pytest.mark.parametrize("option_file", ["options/restormer_gaussian_color_denoise.yml",
                                         "options/zoo/restormer_color_denoise_s25.yml"])
def test_a_gray_checkpoint_with_rgb_options_says_the_fix_first_in_a_short_line(option_file):
    opts = load_options(ROOT / option_file, check=False)
    with pytest.raises(CheckpointError) as err:
        load_for_eval(opts.model, GRAY_ZOO, source=option_file)
    text = str(err.value)
    path = str(ROOT / "zoo" / "restormer_gray_denoise_s25.safetensors")
    assert text.startswith(f"{path}: does not fit the model of {option_file}: a gray (1-channel) checkpoint")
    fix = text.index("fix: --set model=null")
    assert fix < text.index("inp_channels=1 (options: 3)") < text.index("tensor shape(s) differ")
    assert text.count(" vs model ") == 1  # one example shape pair, the rest as a count
    assert "\n" not in text and len(text) - len(path) - len(option_file) < 400


def test_weights_of_another_arch_are_named_not_listed(tmp_path):
    ipt, restormer = build_tiny_arch("IPT"), build_tiny_arch("Restormer")
    # an official-style file (no metadata): the detectors tell what it holds
    file = tmp_path / "IPT_tiny.pt"
    torch.save(ipt.state_dict(), file)
    assert checkpoint_arch(ipt.state_dict()) == "IPT"
    assert other_arch(restormer, ipt.state_dict()) == "holds an IPT checkpoint, not a Restormer"
    assert other_arch(ipt, ipt.state_dict()) is None
    with pytest.raises(CheckpointError) as err:
        load_for_eval(_tiny_config("Restormer"), file, source="r.yml")
    text = str(err.value)
    assert text.startswith(f"{file}: holds an IPT checkpoint, not a Restormer as the model of r.yml; fix: --set model=")
    assert len(text) - len(str(file)) < 250
    # one of our files records its arch: resuming or loading it into another arch says so in one line
    ours = tmp_path / "ipt.safetensors"
    save_weights(ipt, ours, {"arch": "IPT", "config": _tiny_config("IPT")})
    with pytest.raises(WeightsMismatchError) as err:
        load_weights(restormer, ours)
    text = str(err.value)
    assert text.startswith(f"{ours}: holds an IPT checkpoint, not a Restormer: load it as an IPT (")
    assert len(text) - len(str(ours)) < 300


def test_key_lists_are_counts_with_two_examples(tmp_path):
    restormer = build_tiny_arch("Restormer")
    state = {f"{k}.renamed": v for k, v in restormer.state_dict().items()}
    file = tmp_path / "renamed.pth"
    torch.save(state, file)
    with pytest.raises(WeightsMismatchError) as err:
        load_weights(restormer, file)
    text = str(err.value)
    n = len(state)
    assert f"{n} key(s) of Restormer missing from the file (e.g. " in text
    assert f"{n} unexpected key(s) in the file (e.g. " in text
    assert text.count(".renamed") == 2 and len(text) - len(str(file)) < 400


def test_zoo_names_are_accepted_wherever_a_checkpoint_path_is_read():
    from irframe.registry import ARCHS

    gray = ARCHS.build(_zoo_config(GRAY_ZOO))
    state, metadata = read_state_for(gray, GRAY_ZOO)  # what train.pretrain reads (irframe.train.finetune)
    assert metadata["arch"] == "Restormer" and set(state) == set(gray.state_dict())
    assert load_weights(gray, GRAY_ZOO).missing == []
    assert weights_path_problem(GRAY_ZOO) is None and weights_path_problem("zoo:ipt_sr_x2") is None
    problem = weights_path_problem("zoo:ipt_sr_x3")
    assert problem is not None and "no zoo model 'ipt_sr_x3'" in problem and "ipt_sr_x2" in problem
    assert weights_path_problem("missing.pth") == "checkpoint file not found: missing.pth"


def _tiny_config(name: str) -> dict:
    from tests.helpers import TINY_ARCHS

    return {"type": name, **TINY_ARCHS[name]}


def _zoo_config(ref: str) -> dict:
    from irframe.nn.weights import config_from_metadata, read_safetensors_header, resolve_weights_file

    meta, _ = read_safetensors_header(resolve_weights_file(ref))
    config = config_from_metadata(meta)
    assert config is not None
    return config
