"""A BasicSR-style file's problems, all in one run, each named as the file spells it, with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from irframe.errors import OptionsError
from irframe.options import load_options, load_with_bases
from irframe.train.cli import main as train_main

from .conftest import FIXTURES

MAX_LINE = 400  # one problem line, key and fix included


def write(tmp_path: Path, data: dict, name: str = "bad.yml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def lines_of(message: str) -> list[str]:
    return [line.strip() for line in message.splitlines()[1:]]


def test_translator_and_component_problems_in_one_run(data_tree, tmp_path, capsys):
    """batch_size_per_gpus (the translator's) no longer hides lrr (Adam's): one run names both."""
    raw = load_with_bases(data_tree("train_EDSR_Mx2.yml"))
    train = raw["datasets"]["train"]
    train["batch_size_per_gpus"] = train.pop("batch_size_per_gpu")
    raw["train"]["optim_g"]["lrr"] = raw["train"]["optim_g"].pop("lr")
    path = write(tmp_path, raw)
    assert train_main(["-opt", str(path), "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and f"{path}: 2 problems:" in err
    lines = lines_of(err)
    assert lines[0] == "datasets.train.batch_size_per_gpus: unknown BasicSR key; did you mean 'batch_size_per_gpu'?"
    assert lines[1].startswith("train.optim_g.lrr: unknown key for Adam; did you mean 'lr'?")  # not train.optim
    assert all(len(line) < MAX_LINE for line in lines)
    assert not Path("experiments").exists()  # nothing was started


def test_unknown_basicsr_keys_get_the_close_basicsr_key(tmp_path):
    raw = load_with_bases(FIXTURES / "NAFNet-GoPro-width64_train.yml")
    raw["train"]["total_iters"] = raw["train"].pop("total_iter")
    raw["val"]["val_freqs"] = 100
    raw["logger"]["log_everything"] = True  # nothing close: no guess
    raw["datasets"]["val"]["batch_size"] = 1  # the native loader key: BasicSR's name is given
    raw["path"]["pretrain_networkg"] = None
    raw["manual_sed"] = 1
    with pytest.raises(OptionsError) as info:
        load_options(write(tmp_path, raw))
    lines = lines_of(str(info.value))
    assert "train.total_iters: unknown BasicSR key; did you mean 'total_iter'?" in lines
    assert "val.val_freqs: unknown BasicSR key; did you mean 'val_freq'?" in lines
    assert "logger.log_everything: unknown BasicSR key (no irframe equivalent is known for it)" in lines
    assert ("datasets.val.batch_size: irframe's loader key in a BasicSR-style file; BasicSR's name is "
            "'batch_size_per_gpu'") in lines
    assert "path.pretrain_networkg: unknown BasicSR key; did you mean 'pretrain_network_g'?" in lines
    assert "manual_sed: unknown BasicSR key; did you mean 'manual_seed'?" in lines
    # the translator left total_iter out because of its problem: no second "missing" line for it
    assert not any("missing required key" in line for line in lines)


def test_native_problems_name_the_files_keys(data_tree, tmp_path):
    raw = load_with_bases(data_tree("train_SwinIR_SRx2_scratch.yml"))
    raw["network_g"]["embed_dimm"] = raw["network_g"].pop("embed_dim")
    raw["datasets"]["val"]["dataroot_gt"] = "datasets/nowhere"
    raw["train"]["pixel_opt"]["loss_weight"] = "heavy"
    raw["val"]["metrics"]["psnr"]["test_y_channel"] = "maybe"
    with pytest.raises(OptionsError) as info:
        load_options(write(tmp_path, raw), check=True)
    lines = lines_of(str(info.value))
    keys = sorted(line.split(":", 1)[0] for line in lines)
    # as spelled in the file: network_g (model), datasets.val (datasets.Set5), train.pixel_opt.loss_weight
    # (train.losses.0.weight), val.metrics.psnr (val.metrics.0)
    assert keys == ["datasets.val.dataroot_gt", "network_g.embed_dimm", "train.pixel_opt.loss_weight",
                    "val.metrics.psnr.test_y_channel"], lines
    assert any(line.startswith("network_g.embed_dimm: unknown key for SwinIR; did you mean 'embed_dim'?")
               for line in lines)


def test_overrides_keep_their_native_names(tmp_path):
    with pytest.raises(OptionsError) as info:
        load_options(FIXTURES / "train_EDSR_Mx2.yml", ["train.optim.lrr=1"], check=True, paths=False)
    assert lines_of(str(info.value)) == [] and str(info.value).split(": ", 1)[1].startswith(
        "train.optim.lrr: unknown key for Adam; did you mean 'lr'?"
    )


def test_check_components_names_the_files_keys_too(tmp_path):
    """The trainer's own check (irframe.train.build) and tools/test.py's run on loaded options."""
    from irframe.options import check_components

    raw = load_with_bases(FIXTURES / "test_RCAN_x4.yml")
    raw["network_g"]["num_groups"] = raw["network_g"].pop("num_group")
    opts = load_options(write(tmp_path, raw))
    with pytest.raises(OptionsError) as info:
        check_components(opts)
    assert "network_g.num_groups: unknown key for RCAN; did you mean 'num_group'?" in str(info.value)


def test_missing_name_and_network_are_reported_once(tmp_path):
    raw = load_with_bases(FIXTURES / "train_RCAN_x4.yml")
    del raw["name"]
    raw["network_g"] = {"num_feat": 64}
    with pytest.raises(OptionsError) as info:
        load_options(write(tmp_path, raw), check=True, paths=False)
    lines = lines_of(str(info.value))
    assert [line.split(":", 1)[0] for line in lines] == ["name", "network_g"], lines


def test_native_dataset_key_typo_offers_the_loader_key(tmp_path):
    text = f"""
name: typo
model: {{type: EDSR, num_in_ch: 3, num_out_ch: 3, num_feat: 8, num_block: 1, upscale: 2}}
datasets:
  train:
    type: PairedImageDataset
    dataroot_gt: {tmp_path}
    dataroot_lq: {tmp_path}
    scale: 2
    batch_sise: 4
train:
  total_iter: 10
  optim: {{type: Adam, lr: 1.0e-4}}
  losses: [{{type: L1Loss}}]
"""
    path = tmp_path / "typo.yml"
    path.write_text(text)
    with pytest.raises(OptionsError) as info:
        load_options(path, check=True)
    message = str(info.value)
    assert message.startswith(f"{path}: datasets.train.batch_sise: unknown key for PairedImageDataset; "
                              "did you mean 'batch_size'? Accepted keys: dataroot_gt, ")
    assert "and the loader's: batch_size, " in message  # batch_size reads as valid
    assert len(message) - len(str(path)) < 500
