"""Option files: safe YAML, _base_ inheritance, --set overrides, strict schema, saved resolution."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from irframe.cli import main as cli_main
from irframe.errors import OptionsError
from irframe.options import apply_overrides, load_options, load_yaml, save_options, validate_options

BASE = """
name: base
model: {type: Restormer, dim: 8, num_blocks: [1, 1, 1, 1]}
datasets:
  train: {type: PairedImageDataset, dataroot_gt: /data/gt, batch_size: 2}
train:
  total_iter: 100
  optim: {type: AdamW, lr: 3.0e-4, betas: [0.9, 0.999]}
  losses: [{type: L1Loss, weight: 1.0}]
"""


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(textwrap.dedent(text))
    return p


def test_base_inheritance_deep_merges(tmp_path):
    write(tmp_path, "base.yml", BASE)
    write(tmp_path, "extra.yml", "train: {grad_accum: 4}\nseed: 7\n")
    child = write(
        tmp_path, "child.yml", "_base_: [base.yml, extra.yml]\nname: child\ntrain: {optim: {lr: 1.0e-4}}\n"
    )
    opts = load_options(child)
    assert opts.name == "child" and opts.seed == 7
    assert opts.train.optim == {"type": "AdamW", "lr": 1e-4, "betas": [0.9, 0.999]}  # merged, not replaced
    assert opts.train.grad_accum == 4 and opts.train.total_iter == 100
    assert opts.datasets["train"].batch_size == 2
    assert opts.datasets["train"].dataset_cfg() == {"type": "PairedImageDataset", "dataroot_gt": "/data/gt"}


def test_set_overrides_are_typed(tmp_path):
    f = write(tmp_path, "o.yml", BASE)
    opts = load_options(
        f, ["train.optim.lr=2e-4", "datasets.train.batch_size=4", "model.num_blocks=[2,2,2,2]", "seed=3"]
    )
    assert opts.train.optim["lr"] == 2e-4 and isinstance(opts.train.optim["lr"], float)
    assert opts.datasets["train"].batch_size == 4 and opts.seed == 3
    assert opts.model["num_blocks"] == [2, 2, 2, 2]
    assert apply_overrides({"a": [{"b": 1}]}, ["a.0.b=null"]) == {"a": [{"b": None}]}
    with pytest.raises(OptionsError, match="expected KEY.PATH=VALUE"):
        apply_overrides({}, ["novalue"])
    with pytest.raises(OptionsError, match=r"a\.5.*not an index of a list of 1"):
        apply_overrides({"a": [1]}, ["a.5=2"])


def test_unknown_key_named_with_dotted_path_and_suggestion(tmp_path):
    f = write(tmp_path, "o.yml", BASE + "  grad_clipp: 0.01\n")
    with pytest.raises(OptionsError, match=r"o\.yml: train\.grad_clipp: unknown key; did you mean 'grad_clip'\?"):
        load_options(f)
    f = write(tmp_path, "t.yml", BASE + "trian: {}\n")
    with pytest.raises(OptionsError, match=r"trian: unknown key; did you mean 'train'"):
        load_options(f)


def test_wrong_type_and_missing_key(tmp_path):
    f = write(tmp_path, "o.yml", BASE.replace("total_iter: 100", "total_iter: lots"))
    with pytest.raises(OptionsError, match=r"train\.total_iter: .*integer.*got 'lots'"):
        load_options(f)
    f = write(tmp_path, "m.yml", BASE.replace("name: base\n", ""))
    with pytest.raises(OptionsError, match=r"m\.yml: name: missing required key"):
        load_options(f)
    with pytest.raises(OptionsError, match=r"model: .*'type' key"):
        validate_options({"name": "x", "model": {"dim": 8}})


def test_base_cycle_and_missing_base(tmp_path):
    write(tmp_path, "a.yml", "_base_: b.yml\nname: a\n")
    write(tmp_path, "b.yml", "_base_: a.yml\n")
    with pytest.raises(OptionsError, match=r"_base_ cycle: .*a\.yml -> .*b\.yml -> .*a\.yml"):
        load_options(tmp_path / "a.yml")
    write(tmp_path, "c.yml", "_base_: nowhere.yml\nname: c\n")
    with pytest.raises(OptionsError, match=r"c\.yml: _base_ file 'nowhere\.yml' not found"):
        load_options(tmp_path / "c.yml")
    with pytest.raises(OptionsError, match=r"missing\.yml: option file not found"):
        load_options(tmp_path / "missing.yml")


def test_yaml_python_tags_refused_and_duplicates_rejected(tmp_path):
    marker = tmp_path / "pwned"
    f = write(tmp_path, "evil.yml", f'name: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(OptionsError, match=r"evil\.yml:1:7: invalid YAML.*refused"):
        load_yaml(f)
    assert not marker.exists()
    f = write(tmp_path, "dup.yml", "name: a\nname: b\n")
    with pytest.raises(OptionsError, match=r"dup\.yml:2:1: invalid YAML: found duplicate key 'name'"):
        load_yaml(f)


def test_resolved_options_round_trip(tmp_path):
    f = write(tmp_path, "o.yml", BASE)
    opts = load_options(f, ["train.ema_decay=0.999"])
    out = tmp_path / "exp" / "options.yml"
    save_options(opts, out)
    again = load_options(out)
    assert again.to_dict() == opts.to_dict()


def test_show_options_cli(tmp_path, capsys):
    f = write(tmp_path, "o.yml", BASE)
    assert cli_main(["show-options", str(f), "--no-check", "--set", "train.total_iter=5"]) == 0
    assert "total_iter: 5" in capsys.readouterr().out
    bad = write(tmp_path, "bad.yml", BASE + "vall: {}\n")
    assert cli_main(["show-options", str(bad), "--no-check"]) == 1
    assert "vall: unknown key; did you mean 'val'" in capsys.readouterr().err
