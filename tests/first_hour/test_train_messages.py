"""The training side of the first hour (issue 30): each message one short line that names the file
or key and says the fix first; ``zoo:NAME`` read wherever training reads a checkpoint path.

Every run here is in-process on a tiny Restormer (``tests.helpers.TINY_ARCHS``) and 16 px images;
most are refused before their first iteration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from irframe.errors import CheckpointError, DataError, OptionsError
from irframe.nn.weights import save_weights
from irframe.options import TRAIN_PATHS, check_options, deep_merge, validate_options
from irframe.train.build import run_training
from irframe.train.synthetic import write_textured_images
from tests.helpers import TINY_ARCHS, build_tiny_arch

RESTORMER = {"type": "Restormer", **TINY_ARCHS["Restormer"]}
GRAY = {**RESTORMER, "inp_channels": 1, "out_channels": 1}
IPT = {"type": "IPT", **TINY_ARCHS["IPT"]}
BOUND = 300  # characters of a message, besides the file names it quotes
# what accelerate 1.x exports through its one-process ("simple") launcher (tests/first_hour/test_launch.py)
SIMPLE_LAUNCH = {"ACCELERATE_USE_CPU": "True", "ACCELERATE_MIXED_PRECISION": "no", "ACCELERATE_DYNAMO_BACKEND": "NO"}


def options(root: Path, name: str = "run", **changes: Any) -> dict[str, Any]:
    """A one-iteration run of a tiny RGB Restormer on ``root/train`` into ``root/exp``."""
    base = {
        "name": name,
        "model": RESTORMER,
        "datasets": {"train": {
            "type": "OnlineDegradationDataset", "dataroot_gt": str(root / "train"),
            "degradation": {"type": "GaussianNoise", "sigma": 25}, "gt_size": 16, "batch_size": 2,
        }},
        "train": {"total_iter": 1, "optim": {"type": "AdamW", "lr": 1e-3}, "losses": [{"type": "L1Loss"}]},
        "logger": {"print_freq": 1, "checkpoint_freq": 1, "tensorboard": False, "progress_bar": False},
        "path": {"experiments_root": str(root / "exp")},
    }
    return deep_merge(base, changes)


def with_model(data: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    return {**data, "model": model}


def train(data: dict[str, Any], resume: str | None = None) -> Any:
    return run_training(validate_options(data, "run.yml", check=True, paths=TRAIN_PATHS), resume=resume)


def one_line(text: str, *quoted: Any) -> int:
    """The length of ``text`` without the file names it quotes; asserts it is one line."""
    assert "\n" not in text, text
    return len(text) - sum(len(str(q)) * text.count(str(q)) for q in quoted)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    build_tiny_arch("Restormer")  # skips without the plugin
    write_textured_images(tmp_path / "train", 4, 16, seed=0)
    return tmp_path


# -- 1. zoo:NAME wherever training reads a checkpoint path ----------------------------------------
def test_zoo_names_are_accepted_as_train_pretrain_path(root):
    data = options(root, train={"pretrain": {"path": "zoo:restormer_gray_denoise_s25"}})
    assert [p for p in check_options(data, paths=TRAIN_PATHS) if "pretrain" in p] == []
    # past the path checks of options_checks and build.py: the file is read (and refused for its channels)
    with pytest.raises(CheckpointError, match=r"^zoo:restormer_gray_denoise_s25: a gray \(1-channel\) checkpoint"):
        train(data)
    unknown = options(root, train={"pretrain": {"path": "zoo:ipt_sr_x3"}})
    [problem] = [p for p in check_options(unknown, paths=TRAIN_PATHS) if "pretrain" in p]
    assert problem.startswith("train.pretrain.path: zoo:ipt_sr_x3: no zoo model 'ipt_sr_x3'") and "ipt_sr_x2" in problem
    assert not (root / "exp" / "run").exists()


def test_zoo_names_are_accepted_as_the_discriminators_pretrain(root, monkeypatch):
    from irframe.registry import ARCHS
    from irframe.train.build import build_model
    from irframe.train.step import build_step

    disc = {"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4}
    zoo = root / "zoo"
    save_weights(ARCHS.build(disc), zoo / "tiny_d.safetensors", {"arch": disc["type"], "config": disc})
    monkeypatch.setenv("IRFRAME_ZOO", str(zoo))
    step = {"type": "AdversarialStep", "network_d": disc, "optim_d": {"type": "Adam", "lr": 1e-3},
            "gan": {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1},
            "pretrain_d": {"path": "zoo:tiny_d"}}
    data = options(root, train={"step": step})
    assert check_options(data, paths=TRAIN_PATHS) == []
    opts = validate_options(data, "run.yml")
    built = build_step(opts, build_model(opts))
    assert any(note.startswith("discriminator: pre-trained weights zoo:tiny_d: ") for note in built.notes)


# -- 2. a file of another arch given as train.pretrain --------------------------------------------
def test_an_ipt_file_given_to_a_restormer_is_named_with_the_fix(root):
    ipt = build_tiny_arch("IPT")
    official = root / "IPT_tiny.pt"  # no metadata: the detectors tell what it holds
    torch.save(ipt.state_dict(), official)
    ours = root / "ipt.safetensors"
    save_weights(ipt, ours, {"arch": "IPT", "config": IPT})
    for file in (official, ours):
        with pytest.raises(CheckpointError) as err:
            train(options(root, train={"pretrain": {"path": str(file)}}))
        text = str(err.value)
        assert text.startswith(f"{file}: holds an IPT checkpoint, not a Restormer: fix: give a Restormer checkpoint "
                               "as train.pretrain.path, or set model.type: IPT"), text
        assert "train.pretrain.drop" not in text and one_line(text, file) < BOUND
    assert not (root / "exp" / "run").exists()


# -- 4. a gray checkpoint with RGB options: the fix first, the shape pairs as a count --------------
def test_a_gray_pretrain_for_rgb_options_says_the_fix_first(root):
    from irframe.registry import ARCHS

    gray = ARCHS.build(GRAY)
    ours, official = root / "gray.safetensors", root / "gray.pth"
    save_weights(gray, ours, {"arch": "Restormer", "config": GRAY})
    torch.save(gray.state_dict(), official)  # no metadata: the Restormer detector reads its config
    for file in (ours, official, "zoo:restormer_gray_denoise_s25"):
        with pytest.raises(CheckpointError) as err:
            train(options(root, train={"pretrain": {"path": str(file)}}))
        text = str(err.value)
        assert text.startswith(f"{file}: a gray (1-channel) checkpoint, the options build 3 channels; fix: set "
                               "model.inp_channels: 1, model.out_channels: 1"), text
        assert "train.pretrain.drop" in text
        assert text.index("fix:") < text.index("tensor shape(s) differ") and text.count(" vs model ") == 1
        assert one_line(text, file) < BOUND
    assert "74 tensor shape(s) differ" in text  # the zoo's Restormer is of another size too: a count, one example


# -- 3 and 4. resuming with options of another arch or other channels ------------------------------
@pytest.fixture
def gray_run(root) -> Path:
    """A finished one-iteration run of a gray Restormer (``root/exp/run``)."""
    write_textured_images(root / "train", 4, 16, seed=0)
    result = train(options(root, model=GRAY, datasets={"train": {"channels": 1}}))
    return result.last_checkpoint


def test_resuming_into_another_arch_names_both_and_the_fix(root, gray_run):
    with pytest.raises(OptionsError) as err:
        train(with_model(options(root), IPT), resume="auto")
    text = str(err.value)
    assert text.startswith(f"run.yml: cannot resume {gray_run}: it holds a Restormer model, the options build an IPT "
                           "(model.type); fix: give this run another name (--set name=...)"), text
    assert "without --resume" in text and one_line(text, gray_run) < BOUND


def test_resuming_a_gray_run_with_rgb_options_says_so_first(root, gray_run):
    with pytest.raises(OptionsError) as err:
        train(options(root), resume="auto")  # RGB data and model
    text = str(err.value)
    assert text.startswith(f"run.yml: cannot resume {gray_run}: a gray (1-channel) checkpoint, the options build 3 "
                           "channels; fix: keep what the run started with (model.inp_channels: 1, model.out_channels: "
                           "1, datasets.train.channels: 1), or start a new experiment"), text
    assert one_line(text, gray_run) < BOUND


# -- 5. a bad option file is printed once under accelerate launch ---------------------------------
@pytest.mark.parametrize("tool", ["train", "demo"])
def test_a_bad_option_file_is_printed_once_under_accelerate_launch(tmp_path, monkeypatch, capsys, tool):
    from irframe.train import cli, demo

    for key, value in SIMPLE_LAUNCH.items():
        monkeypatch.setenv(key, value)
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"name": "x", "model": RESTORMER, "train": {"total_itr": 3}}))
    if tool == "train":
        status = cli.main(["-opt", str(bad)])
    else:
        monkeypatch.setattr(demo, "TRAIN_IMAGES", 1)
        monkeypatch.setattr(demo, "VAL_IMAGES", 1)
        monkeypatch.setattr(demo, "IMAGE_SIZE", 16)
        status = demo.main(["--data", str(tmp_path / "data"), "-opt", str(bad)])
    out, err = capsys.readouterr()
    assert status == 2 and err == ""  # accelerate's launcher repeats the child's stderr, not its stdout
    assert out.count("train.total_itr") == 1 and out.count("error: ") == 1, out


# -- 6. a corrupt training image -------------------------------------------------------------------
def test_a_corrupt_training_image_names_skip_bad_and_leaves_no_experiment_folder(root):
    (root / "train" / "img_0002.png").unlink()
    (root / "train" / "img_0003.png").unlink()
    bad = root / "train" / "img_0001.png"
    bad.write_bytes(b"not a png at all")  # two images, a batch of two: the first batch reads it
    with pytest.raises(DataError) as err:
        train(options(root, name="c"))
    text = str(err.value)
    assert text.startswith(f"{bad}: cannot decode image") and "datasets.train.skip_bad: true" in text
    assert one_line(text, bad) < BOUND
    assert not (root / "exp" / "c").exists()
