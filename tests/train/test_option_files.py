"""Every paper option file: the paper's hyper-parameters are there, and a shrunk copy (tiny model,
a few iterations, generated images) trains end to end through the real components."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from irframe.options import load_options
from irframe.train.build import run_training
from irframe.train.checkpoint_folders import latest_checkpoint
from irframe.train.synthetic import write_degraded_copies, write_textured_images

OPTIONS = Path(__file__).resolve().parents[2] / "options"
COMMON = [
    "train.total_iter=3",
    "val.freq=3",
    "logger.print_freq=1",
    "logger.checkpoint_freq=3",
    "logger.tensorboard=false",
    "logger.progress_bar=false",
]
LOADER = ["num_workers=0", "persistent_workers=false", "pin_memory=false", "batch_size=2"]
TINY_RESTORMER = ["model.dim=8", "model.num_blocks=[1,1,1,1]", "model.num_refinement_blocks=1"]
TINY_IPT = ["model.n_feats=16", "model.num_heads=2", "model.num_layers=1", "model.patch_size=12"]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Generated data: clean 64px images, noisy and x2-downscaled copies, small validation sets."""
    root = tmp_path_factory.mktemp("images")
    write_textured_images(root / "gt", 4, 64, seed=1)
    write_degraded_copies(root / "gt", root / "noisy", sigma=25)
    write_textured_images(root / "val_gt", 2, 32, seed=2)
    write_degraded_copies(root / "val_gt", root / "val_noisy", sigma=25, seed=3)
    write_degraded_copies(root / "val_gt", root / "val_x2", scale=2, suffix="x2")
    return root


def loader(key: str) -> list[str]:
    return [f"datasets.{key}.{item}" for item in LOADER]


def train(name: str, tmp_path: Path, overrides: list[str]) -> tuple:
    opts = load_options(OPTIONS / f"{name}.yml", [*COMMON, f"path.experiments_root={tmp_path}", *overrides])
    result = run_training(opts)
    assert result.iteration == 3 and latest_checkpoint(result.experiment / "checkpoints") is not None
    assert result.val is not None and all(s["PSNR"] > 0 for s in result.val.scores.values())
    return opts, result


def test_paper_hyper_parameters():
    derain = load_options(OPTIONS / "restormer_derain.yml")
    t = derain.train
    assert t.total_iter == 300000 and t.optim == {
        "type": "AdamW",
        "lr": 3e-4,
        "betas": [0.9, 0.999],
        "weight_decay": 1e-4,
    }
    assert t.scheduler["periods"] == [92000, 208000] and t.scheduler["eta_mins"] == [3e-4, 1e-6]
    assert t.progressive.patch_sizes == [128, 160, 192, 256, 320, 384]
    assert t.progressive.batch_sizes == [8, 5, 4, 2, 1, 1]
    assert t.progressive.iters == [92000, 64000, 48000, 36000, 36000, 24000] and t.ema_decay == 0.999
    assert [loss.type for loss in t.losses] == ["L1Loss"] and t.grad_clip == 0.01
    assert derain.model["LayerNorm_type"] == "WithBias"
    assert load_options(OPTIONS / "restormer_gaussian_color_denoise.yml").model["LayerNorm_type"] == "BiasFree"
    prompt = load_options(OPTIONS / "promptir_allinone.yml")
    assert prompt.train.optim["lr"] == 2e-4 and prompt.datasets["train"].batch_size == 8
    assert prompt.datasets["train"].model_extra["de_type"] == [
        "denoise_15",
        "denoise_25",
        "denoise_50",
        "derain",
        "dehaze",
    ]
    pre = load_options(OPTIONS / "ipt_pretrain.yml")
    assert pre.train.optim["type"] == "Adam" and pre.train.optim["lr"] == 5e-5
    assert [(loss.type, loss.weight) for loss in pre.train.losses] == [("L1Loss", None), ("IPTContrastiveLoss", 0.1)]
    assert pre.model["scale"] == [2, 3, 4, 1, 1, 1] and pre.model["num_queries"] == 6
    fine = load_options(OPTIONS / "ipt_finetune_sr_x2.yml")
    assert fine.train.optim["lr"] == 2e-5 and fine.train.pretrain.drop


def test_restormer_derain(images, tmp_path):
    _, result = train(
        "restormer_derain",
        tmp_path,
        [
            *TINY_RESTORMER,
            *loader("train"),
            f"datasets.train.dataroot_gt={images / 'gt'}",
            f"datasets.train.dataroot_lq={images / 'noisy'}",
            f"datasets.val_rain100l.dataroot_gt={images / 'val_gt'}",
            f"datasets.val_rain100l.dataroot_lq={images / 'val_noisy'}",
            # two progressive stages: 2 iterations of 2 x 16px patches, then 1 of 1 x 24px
            "train.progressive.iters=[2,1]",
            "train.progressive.patch_sizes=[16,24]",
            "train.progressive.batch_sizes=[2,1]",
            "train.scheduler.periods=[1,2]",
        ],
    )
    log = (result.experiment / "train.log").read_text()
    assert (
        "global batch (per process x processes x accumulation): 2 = 2 x 1 x 1, 1 = 1 x 1 x 1 (per progressive stage)"
        in log
    )


def test_restormer_gaussian_color_denoise(images, tmp_path):
    train("restormer_gaussian_color_denoise", tmp_path, [
        *TINY_RESTORMER, *loader("train"), "train.progressive=null", "datasets.train.gt_size=16",
        f"datasets.train.dataroot_gt={images / 'gt'}", f"datasets.val_cbsd68_sigma25.dataroot_gt={images / 'val_gt'}",
        "train.scheduler.periods=[1,2]",
    ])


def test_promptir_allinone(images, tmp_path):
    train(
        "promptir_allinone",
        tmp_path,
        [
            *TINY_RESTORMER,
            "model.heads=[1,1,1,1]",
            "model.prompt_dims=[8,16,32]",
            "model.prompt_sizes=[16,8,4]",
            *loader("train"),
            "datasets.train.defaults.gt_size=16",
            f"datasets.train.sources.denoise.dataroot_gt={images / 'gt'}",
            f"datasets.train.sources.derain.dataroot_gt={images / 'gt'}",
            f"datasets.train.sources.derain.dataroot_lq={images / 'noisy'}",
            f"datasets.train.sources.dehaze.dataroot_gt={images / 'gt'}",
            f"datasets.train.sources.dehaze.dataroot_lq={images / 'noisy'}",
            f"datasets.val_denoise_25.dataroot_gt={images / 'val_gt'}",
            f"datasets.val_derain.dataroot_gt={images / 'val_gt'}",
            f"datasets.val_derain.dataroot_lq={images / 'val_noisy'}",
            f"datasets.val_dehaze.dataroot_gt={images / 'val_gt'}",
            f"datasets.val_dehaze.dataroot_lq={images / 'val_noisy'}",
            "train.warmup_iter=1",
            "train.scheduler.T_max=2",
        ],
    )


IPT_DATA = [
    "datasets.train.sources.sr_x2.gt_size=24", "datasets.train.sources.sr_x3.gt_size=36",
    "datasets.train.sources.sr_x4.gt_size=48", "datasets.train.sources.denoise30.gt_size=12",
    "datasets.train.sources.denoise50.gt_size=12", "datasets.train.sources.derain.gt_size=12",
]


def test_ipt_pretrain_then_finetune(images, tmp_path):
    val = [
        f"datasets.val_set14_x2.dataroot_gt={images / 'val_gt'}",
        f"datasets.val_set14_x2.dataroot_lq={images / 'val_x2'}",
    ]
    _, result = train("ipt_pretrain", tmp_path, [
        *TINY_IPT, *loader("train"), *IPT_DATA, *val, f"datasets.train.defaults.dataroot_gt={images / 'gt'}",
        "train.scheduler.milestones=[2]",
    ])
    log = (result.experiment / "train.log").read_text()
    assert "IPTContrastiveLoss" in log
    # fine-tune x2 from the (tiny) pre-trained weights, re-saved the way the official .pt is stored
    from safetensors.torch import load_file

    pretrained = tmp_path / "IPT_pretrain.pt"
    torch.save(load_file(str(latest_checkpoint(result.experiment / "checkpoints") / "model.safetensors")), pretrained)
    _, result = train("ipt_finetune_sr_x2", tmp_path, [
        *TINY_IPT, *loader("train"), *val, f"datasets.train.dataroot_gt={images / 'gt'}", "datasets.train.gt_size=24",
        f"train.pretrain.path={pretrained}",
    ])
    log = (result.experiment / "train.log").read_text()
    assert f"pre-trained weights {pretrained}:" in log and "dropped by train.pretrain.drop" in log


TINY_RRDB = ["model.num_feat=8", "model.num_block=1", "model.num_grow_ch=4"]


def test_realesrgan_two_stages(images, tmp_path):
    """options/realesrnet_x4.yml, then options/realesrgan_x4.yml from its checkpoint folder (the EMA)."""
    write_degraded_copies(images / "val_gt", tmp_path / "val_x4", scale=4)
    data = [
        *loader("train"), f"datasets.train.dataroot_gt={images / 'gt'}", "datasets.train.meta_info=null",
        "datasets.train.gt_size=32", "datasets.train.crop_pad_size=48",
        f"datasets.Set5.dataroot_gt={images / 'val_gt'}", f"datasets.Set5.dataroot_lq={tmp_path / 'val_x4'}",
        "train.scheduler.milestones=[3]",
    ]
    net_opts, net = train("realesrnet_x4", tmp_path, [*TINY_RRDB, *data, "train.pretrain=null"])
    assert net_opts.train.step == {"type": "SupervisedStep", "target": "gt_usm"}
    gan_opts, gan = train("realesrgan_x4", tmp_path, [
        *TINY_RRDB, *data, f"train.pretrain.path={net.experiment / 'checkpoints' / 'iter_000003'}",
        "train.step.network_d.num_feat=4", "train.losses.1.random_backbone=true",
        "train.losses.1.layer_weights={conv1_2: 0.1, conv2_2: 0.1}",
    ])
    assert gan_opts.train.step["gan"]["loss_weight"] == 0.1 and gan_opts.train.step["gan_target"] == "gt"
    log = (gan.experiment / "train.log").read_text()
    assert "pre-trained weights" in log and "l_g_percep" in log and "out_d_fake" in log
    assert (latest_checkpoint(gan.experiment / "checkpoints") / "net_d.safetensors").is_file()
