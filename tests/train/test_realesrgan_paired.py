"""Real-ESRGAN's paired fine-tuning (``high_order_degradation: false``, ``RealESRGANPairedDataset``):
the dataset reads a ``gt, lq`` meta_info list, folders or LMDBs, sharpens the GT; a shrunk copy of
Real-ESRGAN's ``finetune_realesrgan_x4plus_pairdata.yml`` passes ``show-options`` and trains two
iterations on the CPU; bad input is one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from irframe.cli import main as cli_main
from irframe.compat.basicsr import translate
from irframe.errors import DataError, OptionsError
from irframe.registry import DATASETS
from irframe.train.cli import main as train_main
from irframe.train.synthetic import write_degraded_copies, write_textured_images

# The layout of Real-ESRGAN's options/finetune_realesrgan_x4plus_pairdata.yml, shrunk: tiny networks,
# 32 px patches, 2 iterations, no pre-trained weights (paths filled in by the test).
PAIRDATA = """
name: finetune_RealESRGANx4plus_400k_pairdata
model_type: RealESRGANModel
scale: 4
num_gpu: auto
manual_seed: 0

# USM the ground-truth
l1_gt_usm: True
percep_gt_usm: True
gan_gt_usm: False

high_order_degradation: False # do not use the high-order degradation generation process

datasets:
  train:
    name: DIV2K
    type: RealESRGANPairedDataset
    dataroot_gt: GT
    dataroot_lq: LQ
    meta_info: META
    io_backend:
      type: disk

    gt_size: 32
    use_hflip: True
    use_rot: False

    use_shuffle: true
    num_worker_per_gpu: 0
    batch_size_per_gpu: 2
    dataset_enlarge_ratio: 1
    prefetch_mode: ~

network_g:
  type: RRDBNet
  num_in_ch: 3
  num_out_ch: 3
  num_feat: 8
  num_block: 1
  num_grow_ch: 4

network_d:
  type: UNetDiscriminatorSN
  num_in_ch: 3
  num_feat: 4
  skip_connection: True

path:
  resume_state: ~

train:
  ema_decay: 0.999
  optim_g:
    type: Adam
    lr: !!float 1e-4
    weight_decay: 0
    betas: [0.9, 0.99]
  optim_d:
    type: Adam
    lr: !!float 1e-4
    weight_decay: 0
    betas: [0.9, 0.99]

  scheduler:
    type: MultiStepLR
    milestones: [2]
    gamma: 0.5

  total_iter: 2
  warmup_iter: -1  # no warm up

  pixel_opt:
    type: L1Loss
    loss_weight: 1.0
    reduction: mean
  perceptual_opt:
    type: PerceptualLoss
    layer_weights:
      'conv1_2': 0.1
      'conv2_2': 0.1
    vgg_type: vgg19
    use_input_norm: true
    perceptual_weight: !!float 1.0
    style_weight: 0
    range_norm: false
    criterion: l1
  gan_opt:
    type: GANLoss
    gan_type: vanilla
    real_label_val: 1.0
    fake_label_val: 0.0
    loss_weight: !!float 1e-1

  net_d_iters: 1
  net_d_init_iters: 0

logger:
  print_freq: 1
  save_checkpoint_freq: 2
  use_tb_logger: false
  wandb:
    project: ~
    resume_id: ~

dist_params:
  backend: nccl
  port: 29500
"""


def pair_tree(root: Path, n: int = 3) -> tuple[Path, Path, Path]:
    """GT (48 px) and x4 LQ folders under sub-folders, and a Real-ESRGAN pair list of them."""
    gt = root / "DF2K" / "HR_sub"
    write_textured_images(gt, n, 48, seed=4)
    write_degraded_copies(gt, root / "DF2K" / "LR_sub", scale=4)
    meta = root / "meta_info_pair.txt"
    meta.write_text("".join(f"HR_sub/img_{i:04d}.png, LR_sub/img_{i:04d}.png\n" for i in range(n)))
    return root / "DF2K", root / "DF2K", meta


def finetune_file(root: Path) -> Path:
    gt, lq, meta = pair_tree(root)
    raw = yaml.safe_load(PAIRDATA)
    raw["datasets"]["train"].update(dataroot_gt=str(gt), dataroot_lq=str(lq), meta_info=str(meta))
    path = root / "finetune_realesrgan_x4plus_pairdata.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_translation_of_the_pairdata_file(tmp_path):
    path = finetune_file(tmp_path)
    t = translate(yaml.safe_load(path.read_text()), path.name, collect=True)
    assert t.problems == []
    train = t.native["datasets"]["train"]
    assert train["type"] == "RealESRGANPairedDataset" and train["scale"] == 4 and train["gt_usm"] is True
    assert train["meta_info"].endswith("meta_info_pair.txt") and train["dataroot_lq"].endswith("DF2K")
    assert "degrade_on" not in train and "degradation" not in train  # the pairs are used as given
    step = t.native["train"]["step"]
    assert step["type"] == "AdversarialStep" and "queue_size" not in step
    assert (step["pixel_target"], step["perceptual_target"], step["gan_target"]) == ("gt_usm", "gt_usm", "gt")
    assert any(n.startswith("high_order_degradation: false") for n in t.notes)


def test_shrunk_pairdata_file_passes_show_options_and_trains_two_iterations(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = finetune_file(tmp_path)
    assert cli_main(["show-options", str(path)]) == 0, capsys.readouterr().err
    assert "translated from BasicSR's layout" in capsys.readouterr().out
    overrides = ["logger.progress_bar=false", "train.losses.1.random_backbone=true"]
    assert train_main(["-opt", str(path), "--threads", "1", "--set", *overrides]) == 0
    root = tmp_path / "experiments" / "finetune_RealESRGANx4plus_400k_pairdata"
    log = (root / "train.log").read_text()
    for part in ("l_g_pix", "l_g_percep", "l_g_gan", "l_d_real", "l_d_fake"):
        assert part in log
    last = root / "checkpoints" / "iter_000002"
    assert {"model.safetensors", "net_d.safetensors", "trainer_state.pt"} <= {p.name for p in last.iterdir()}


def test_paired_dataset_reads_the_pair_list_and_sharpens_the_gt(tmp_path):
    gt, lq, meta = pair_tree(tmp_path)
    meta.write_text("HR_sub/img_0002.png, LR_sub/img_0002.png\n\nHR_sub/img_0000.png, LR_sub/img_0000.png\n")
    cfg = {"type": "RealESRGANPairedDataset", "dataroot_gt": str(gt), "dataroot_lq": str(lq), "meta_info": str(meta),
           "gt_size": 32, "scale": 4, "seed": 0}
    ds = DATASETS.build(cfg, path="datasets.train")
    assert len(ds) == 2
    sample = ds[0]
    assert sample["name"] == "img_0002" and sample["gt_path"].endswith("HR_sub/img_0002.png")
    assert sample["gt"].shape == sample["gt_usm"].shape == (3, 32, 32) and sample["lq"].shape == (3, 8, 8)
    assert not torch.equal(sample["gt"], sample["gt_usm"])
    for key in ("lq", "gt", "gt_usm"):
        assert torch.equal(ds[0][key], sample[key])  # seeded
    # without meta_info the folders are paired by name (PairedImageDataset's reading)
    folders = DATASETS.build({"type": "RealESRGANPairedDataset", "dataroot_gt": str(gt / "HR_sub"),
                              "dataroot_lq": str(lq / "LR_sub"), "gt_usm": False}, path="datasets.train")
    assert len(folders) == 3 and "gt_usm" not in folders[1] and folders[1]["lq"].shape == (3, 12, 12)


@pytest.mark.parametrize(
    "line, error, message",
    [
        ("HR_sub/img_0000.png LR_sub/img_0000.png\n", DataError, r"meta_info: .* line 1: expected 'gt_path, lq_path'"),
        ("HR_sub/img_0000.png, LR_sub/nothing.png\n", DataError,
         r"meta_info: .* line 1 names LR_sub/nothing.png, not found in dataroot_lq"),
    ],
    ids=["no-comma", "missing-lq"],
)
def test_bad_pair_lists_are_one_line(tmp_path, line, error, message):
    gt, lq, meta = pair_tree(tmp_path)
    meta.write_text(line)
    cfg = {"type": "RealESRGANPairedDataset", "dataroot_gt": str(gt), "dataroot_lq": str(lq), "meta_info": str(meta)}
    with pytest.raises(error, match=r"RealESRGANPairedDataset\." + message) as info:
        DATASETS.build(cfg, path="datasets.train")
    assert "\n" not in str(info.value)


def test_paired_file_with_the_high_order_degradation_is_one_line(tmp_path):
    path = finetune_file(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw.pop("high_order_degradation")
    t = translate(raw, path.name, collect=True)
    assert len(t.problems) == 1 and t.problems[0].startswith("high_order_degradation: absent (true: RealESRGANModel")
    raw["high_order_degradation"] = False
    raw["datasets"]["train"]["type"] = "RealESRGANDataset"
    raw["datasets"]["train"].pop("dataroot_lq")
    problems = translate(raw, path.name, collect=True).problems
    assert any(p.startswith("high_order_degradation: false trains on given LQ/GT pairs") for p in problems), problems
    with pytest.raises(OptionsError, match="high_order_degradation"):
        translate(raw, path.name)
