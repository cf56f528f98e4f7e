"""Option files report every problem at once (schema, component arguments at any depth, paths),
each by its full dotted path after the file name; hints only for close or foreign keys."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from irframe.cli import main as cli_main
from irframe.errors import OptionsError
from irframe.options import TEST_PATHS, TRAIN_PATHS, check_options, load_options, validate_options
from irframe.registry import ARCHS

OPTIONS = Path(__file__).resolve().parents[2] / "options"

GOOD = """
name: good
model: {type: Restormer, dim: 8, num_blocks: [1, 1, 1, 1]}
datasets:
  train:
    type: OnlineDegradationDataset
    dataroot_gt: {data}
    degradation: {type: GaussianNoise, sigma: 25}
    batch_size: 2
train:
  total_iter: 10
  optim: {type: AdamW, lr: 2e-4}
  scheduler: {type: CosineAnnealingLR, T_max: 10}
  losses: [{type: L1Loss, weight: 1.0}]
val:
  metrics: [{type: PSNR, crop_border: 0}]
"""


@pytest.fixture(autouse=True)
def _plugins():
    if "Restormer" not in ARCHS:
        pytest.skip("the Restormer plugin is not installed")


def write(tmp: Path, text: str, name: str = "o.yml") -> Path:
    p = tmp / name
    p.write_text(textwrap.dedent(text).replace("{data}", str(tmp)))
    return p


def problems_of(exc: pytest.ExceptionInfo[OptionsError]) -> list[str]:
    return [line.strip() for line in str(exc.value).splitlines()[1:]]


def test_good_file_has_no_problems(tmp_path):
    opts = load_options(write(tmp_path, GOOD), check=True)
    assert check_options(opts) == []


def test_every_problem_at_once_with_full_dotted_paths(tmp_path):
    bad = (
        GOOD.replace("dim: 8", "dimm: 8")
        .replace("sigma: 25", "sigmaa: 25")
        .replace("lr: 2e-4", "lr: 2e-4, betas: fast")
        .replace("T_max: 10", "T_maxx: 10")
        .replace("weight: 1.0", "weight: 1.0, reduction: sum, eps: 1")
        .replace("crop_border: 0", "crop_border: true")
        .replace("total_iter: 10", "total_iter: lots")
        + "logger: {print_freq: true}\n"
    )
    f = write(tmp_path, bad)
    with pytest.raises(OptionsError) as exc:
        load_options(f, check=True)
    first = str(exc.value).splitlines()[0]
    assert first == f"{f}: 9 problems:"
    keys = [p.split(": ")[0] for p in problems_of(exc)]
    assert keys == [
        "train.total_iter",  # the schema's problems first
        "logger.print_freq",
        "model.dimm",
        "datasets.train.degradation.sigmaa",
        "train.optim.betas",
        "train.scheduler.T_maxx",
        "train.scheduler",  # T_max missing
        "train.losses.0.eps",
        "val.metrics.0.crop_border",
    ]
    assert problems_of(exc)[7].startswith("train.losses.0.eps: unknown key for L1Loss. Accepted keys: reduction")
    assert "did you mean 'dim'" in problems_of(exc)[2]
    assert "did you mean 'sigma'" in problems_of(exc)[3]
    assert "booleans are not numbers" in problems_of(exc)[1]


def test_missing_paths_listed_by_option_key_before_anything_is_built(tmp_path):
    text = f"""
    name: allinone
    model: {{type: Restormer, dim: 8, num_blocks: [1, 1, 1, 1]}}
    datasets:
      train:
        type: AllInOneDataset
        de_type: [denoise_15, denoise_25, derain]
        defaults: {{gt_size: 16}}
        sources:
          denoise: {{type: OnlineDegradationDataset, dataroot_gt: {tmp_path}/bsd}}
          derain: {{type: PairedImageDataset, dataroot_gt: {tmp_path}/rain/gt, dataroot_lq: {tmp_path}/rain/lq}}
      val: {{type: PairedImageDataset, dataroot_gt: {tmp_path}, dataroot_lq: {tmp_path}/val_lq}}
    train:
      total_iter: 10
      optim: {{type: Adam}}
      losses: [{{type: L1Loss}}]
      pretrain: {{path: {tmp_path}/gone.pth}}
    test:
      datasets:
        bench: {{type: PairedImageDataset, dataroot_gt: {tmp_path}/bench, dataroot_lq: {tmp_path}}}
    """
    f = tmp_path / "allinone.yml"
    f.write_text(textwrap.dedent(text))
    with pytest.raises(OptionsError) as exc:
        load_options(f, check=True)
    assert problems_of(exc) == [
        f"datasets.train.sources.denoise.dataroot_gt: folder not found: {tmp_path}/bsd",  # once for two tasks
        f"datasets.train.sources.derain.dataroot_gt: folder not found: {tmp_path}/rain/gt",
        f"datasets.train.sources.derain.dataroot_lq: folder not found: {tmp_path}/rain/lq",
        f"datasets.val.dataroot_lq: folder not found: {tmp_path}/val_lq",
        f"train.pretrain.path: checkpoint not found: {tmp_path}/gone.pth",
        f"test.datasets.bench.dataroot_gt: folder not found: {tmp_path}/bench",
    ]
    # a training run needs datasets and train paths only, a benchmark the test sets only
    opts = load_options(f)
    assert [p.split(":")[0] for p in check_options(opts, paths=TRAIN_PATHS)][-1] == "train.pretrain.path"
    assert [p.split(":")[0] for p in check_options(opts, paths=TEST_PATHS)] == ["test.datasets.bench.dataroot_gt"]
    assert check_options(opts, paths=False) == []


def test_show_options_checks_degradations_and_paths(tmp_path, capsys):
    f = write(tmp_path, GOOD.replace("sigma: 25", "sigmaa: 25"))
    assert cli_main(["show-options", str(f)]) == 1
    err = capsys.readouterr().err
    assert f"{f}: datasets.train.degradation.sigmaa: unknown key for GaussianNoise; did you mean 'sigma'?" in err
    g = write(tmp_path, GOOD.replace("dataroot_gt: {data}", "dataroot_gt: {data}/nowhere"), "g.yml")
    assert cli_main(["show-options", str(g)]) == 1
    assert f"datasets.train.dataroot_gt: folder not found: {tmp_path}/nowhere" in capsys.readouterr().err
    assert cli_main(["show-options", str(g), "--no-paths"]) == 0
    assert "name: good" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("where", "key", "pointer", "bad_hint"),
    [
        ("datasets.train", "use_shuffle", "here it is the loader key `shuffle`", "use_flip"),
        ("train", "mini_batch_sizes", "`train.progressive.batch_sizes`", "gt_size"),
        ("datasets.train", "dataset_enlarge_ratio", "`enlarge_ratio`", "dataroot_gt"),
    ],
)
def test_foreign_keys_get_a_pointer_not_a_bad_guess(tmp_path, where, key, pointer, bad_hint):
    f = write(tmp_path, GOOD)
    with pytest.raises(OptionsError) as exc:
        load_options(f, [f"{where}.{key}=1"], check=True)
    line = str(exc.value)
    assert f"{where}.{key}: unknown key" in line and pointer in line, line
    assert f"did you mean '{bad_hint}'" not in line


def test_foreign_top_level_keys_and_close_matches():
    base = {"name": "x", "model": {"type": "Restormer"}}
    with pytest.raises(OptionsError) as exc:
        validate_options({**base, "network_g": {}, "pixel_opt": {}, "trian": {}}, "f.yml")
    text = str(exc.value)
    assert "network_g: unknown key; `network_g` is BasicSR's name; here it is `model`" in text
    assert "translated automatically" in text
    assert "pixel_opt: unknown key; `pixel_opt` is BasicSR's name; here it is `train.losses`" in text
    assert "trian: unknown key; did you mean 'train'?" in text
    with pytest.raises(OptionsError) as exc:
        validate_options({**base, "datasetz_xyz": {}}, "f.yml")
    assert "did you mean" not in str(exc.value)


def test_booleans_are_not_integers_in_the_schema(tmp_path):
    f = write(tmp_path, GOOD)
    for override in ("logger.print_freq=true", "seed=false", "datasets.train.batch_size=true", "train.grad_clip=true"):
        with pytest.raises(OptionsError, match="booleans are not numbers"):
            load_options(f, [override])
    opts = load_options(f, ["train.ema_decay=0", "train.grad_clip=1", "logger.tensorboard=false"])
    assert opts.train.ema_decay == 0 and opts.train.grad_clip == 1.0 and opts.train.optim["lr"] == 2e-4


def test_shipped_option_files_pass_the_strict_checks():
    # options/zoo/ too: the zoo's option files are the record of how each shipped model was made
    files = [p for p in sorted(OPTIONS.rglob("*.yml")) if not p.name.startswith("_base_")]
    assert any(p.parent.name == "zoo" for p in files)
    for path in files:
        opts = load_options(path)
        assert check_options(opts, paths=False) == [], path


def test_train_tool_reports_all_problems_before_any_folder(tmp_path, capsys):
    from irframe.train.cli import main as train_main

    f = write(
        tmp_path,
        GOOD.replace("sigma: 25", "sigmaa: 25").replace("dataroot_gt: {data}", "dataroot_gt: {data}/missing")
        + "path: {experiments_root: {data}/experiments}\n",
    )
    assert train_main(["-opt", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {f}: 2 problems:\n")
    assert "  datasets.train.dataroot_gt: folder not found: " in err and "  datasets.train.degradation.sigmaa: " in err
    assert not (tmp_path / "experiments").exists()
