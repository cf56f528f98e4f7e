"""BasicSR's ESRGAN / SRGAN files and Real-ESRGAN's Real-ESRNet / Real-ESRGAN / fine-tuning files run
as they are: ``network_d``, ``gan_opt``, ``optim_d``, ``net_d_*``, ``pretrain_network_d`` become
``train.step: AdversarialStep``; ``RealESRGANDataset`` and the top-level degradation keys become the
dataset's ``RealESRGANDegradation``; a shrunk copy of both Real-ESRGAN stages trains on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from irframe.cli import main as cli_main
from irframe.compat.basicsr import translate
from irframe.errors import OptionsError
from irframe.options import load_options, load_with_bases
from irframe.train.cli import main as train_main
from irframe.train.synthetic import write_degraded_copies, write_textured_images

from .conftest import FIXTURES

GAN_FILES = [
    "train_ESRGAN_x4.yml",
    "train_MSRGAN_x4.yml",
    "train_realesrnet_x4plus.yml",
    "train_realesrgan_x4plus.yml",
    "finetune_realesrgan_x4plus.yml",
]


def native(name: str, raw: dict | None = None) -> tuple[dict, dict[str, str]]:
    t = translate(raw if raw is not None else load_with_bases(FIXTURES / name), name)
    return t.native, dict(n.split(": ", 1) for n in t.notes)


@pytest.mark.parametrize("name", GAN_FILES)
def test_gan_files_pass_show_options_with_their_data(name, data_tree, capsys):
    path = data_tree(name)
    assert cli_main(["show-options", str(path)]) == 0, capsys.readouterr().err
    assert f"{path}: translated from BasicSR's layout" in capsys.readouterr().out


def test_esrgan_and_srgan_files():
    esrgan, notes = native("train_ESRGAN_x4.yml")
    step = esrgan["train"]["step"]
    assert step == {
        "type": "AdversarialStep",
        "network_d": {"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 64},
        "optim_d": {"type": "Adam", "lr": 1e-4, "weight_decay": 0, "betas": [0.9, 0.99]},
        "gan": {"type": "GANLoss", "gan_type": "vanilla", "real_label_val": 1.0, "fake_label_val": 0.0,
                "loss_weight": 5e-3},
        "net_d_iters": 1,
        "net_d_init_iters": 0,
        "relativistic": True,
    }
    assert [(loss["type"], loss.get("weight")) for loss in esrgan["train"]["losses"]] == [
        ("L1Loss", 1e-2), ("PerceptualLoss", None)
    ]
    assert "relativistic average" in notes["model_type"]
    srgan, _ = native("train_MSRGAN_x4.yml")
    assert "relativistic" not in srgan["train"]["step"] and srgan["model"]["type"] == "MSRResNet"


def test_realesrgan_files():
    gan, notes = native("train_realesrgan_x4plus.yml")
    train = gan["datasets"]["train"]
    assert train["type"] == "RealESRGANDataset" and train["gt_usm"] is True and train["scale"] == 4
    assert train["meta_info"] == "datasets/DF2K/meta_info/meta_info_DF2Kmultiscale+OST_sub.txt"
    deg = train["degradation"]
    # the dataset's kernel keys and the top-level degradation keys, gathered in one mapping
    assert deg["type"] == "RealESRGANDegradation" and deg["scale"] == 4
    assert deg["blur_sigma"] == [0.2, 3] and deg["blur_sigma2"] == [0.2, 1.5] and deg["final_sinc_prob"] == 0.8
    assert deg["resize_prob"] == [0.2, 0.7, 0.1] and deg["noise_range2"] == [1, 25] and deg["jpeg_range2"] == [30, 95]
    step = gan["train"]["step"]
    assert (step["pixel_target"], step["perceptual_target"], step["gan_target"]) == ("gt_usm", "gt_usm", "gt")
    assert step["network_d"]["type"] == "UNetDiscriminatorSN" and step["gan"]["loss_weight"] == 0.1
    assert "pool" in notes["queue_size"]
    # RealESRGANModel.feed_data degrades each batch on the GPU: the batched path, with its pair pool
    assert train["degrade_on"] == "device" and step["queue_size"] == 180
    net, _ = native("train_realesrnet_x4plus.yml")
    assert net["train"]["step"] == {"type": "SupervisedStep", "target": "gt_usm", "queue_size": 180}
    assert net["datasets"]["train"]["gt_usm"] is True and net["datasets"]["train"]["degrade_on"] == "device"
    finetune, _ = native("finetune_realesrgan_x4plus.yml")
    assert finetune["train"]["step"]["pretrain_d"] == {
        "path": "experiments/pretrained_models/RealESRGAN_x4plus_netD.pth", "key": "params", "strict": True
    }


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda raw: raw["train"].pop("gan_opt"), "train.gan_opt: missing: ESRGANModel trains network_d with an "
         "adversarial loss"),
        (lambda raw: raw.pop("network_d"), "network_d: missing: ESRGANModel trains a discriminator beside network_g"),
        (lambda raw: raw["network_d"].update(type="RRDBNet"), "network_d: RRDBNet is a restorer"),
        (lambda raw: raw["network_d"].update(input_size=256), "network_d (VGGStyleDiscriminator): the "
         "training patch (datasets.train.gt_size) is 128x128 but input_size is 256"),
    ],
    ids=["no-gan-opt", "no-network-d", "not-a-discriminator", "size-mismatch"],
)
def test_bad_gan_files_say_one_line_before_any_work(change, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = load_with_bases(FIXTURES / "train_ESRGAN_x4.yml")
    change(raw)
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    if "input_size" in str(raw.get("network_d")):
        # the patch size is checked when the discriminator is built: run the training on tiny data
        images(tmp_path, raw)
        raw["path"].pop("pretrain_network_g")
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        with pytest.raises(OptionsError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            from irframe.train.build import run_training

            run_training(load_options(path, ["train.losses.1.random_backbone=true"]))
        assert not Path("experiments").exists()
        return
    with pytest.raises(OptionsError) as info:
        load_options(path, check=True, paths=False)
    assert expected in str(info.value), str(info.value)


def test_a_model_type_without_discriminator_drops_network_d():
    raw = load_with_bases(FIXTURES / "train_ESRGAN_x4.yml")
    raw["model_type"] = "SRModel"
    out, notes = native("x.yml", raw)
    assert "step" not in out["train"] and "trains no discriminator" in notes["network_d"]
    assert "trains no discriminator" in notes["train.gan_opt"]


# -- shrunk copies train on the CPU ---------------------------------------------------------------
def images(root: Path, raw: dict) -> None:
    """Small generated images for every dataset of ``raw`` (a meta_info list where it names one)."""
    for phase, cfg in raw["datasets"].items():
        gt = root / phase / "gt"
        write_textured_images(gt, 3, 48 if phase == "train" else 32, seed=len(phase))
        cfg["dataroot_gt"] = str(gt)
        if "dataroot_lq" in cfg:
            write_degraded_copies(gt, root / phase / "lq", scale=raw.get("scale", 1))
            cfg["dataroot_lq"] = str(root / phase / "lq")
        if "meta_info" in cfg:
            listed = root / phase / "meta_info.txt"
            listed.write_text("\n".join(p.name for p in sorted(gt.glob("*.png"))) + "\n")
            cfg["meta_info"] = str(listed)
        cfg.update(num_worker_per_gpu=0, batch_size_per_gpu=2)


def shrink(raw: dict, root: Path, name: str, iters: int) -> Path:
    """Tiny networks, 32px patches, ``iters`` iterations, generated data; returns the written file."""
    raw["name"] = name
    raw["network_g"].update(num_feat=8, num_block=1, num_grow_ch=4)
    if "network_d" in raw:
        raw["network_d"]["num_feat"] = 4
    raw["gt_size"] = 32
    raw["datasets"]["train"]["gt_size"] = 32
    images(root, raw)
    raw["train"].update(total_iter=iters)
    raw["train"]["scheduler"]["milestones"] = [iters]
    raw["logger"].update(print_freq=1, save_checkpoint_freq=iters, use_tb_logger=False)
    raw["path"].pop("pretrain_network_g", None)
    path = root / f"{name}.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_shrunk_realesrnet_then_realesrgan_train_on_cpu(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # stage 1: Real-ESRNet, L1 on the USM-sharpened GT of the high-order degradations
    net = shrink(load_with_bases(FIXTURES / "train_realesrnet_x4plus.yml"), tmp_path, "net", 3)
    assert train_main(["-opt", str(net), "--threads", "1", "--set", "logger.progress_bar=false"]) == 0
    stage1 = tmp_path / "experiments" / "net" / "checkpoints" / "iter_000003"
    assert (stage1 / "ema.safetensors").is_file()
    # stage 2: Real-ESRGAN from stage 1's EMA weights (the file's param_key_g: params_ema), U-Net discriminator
    raw = load_with_bases(FIXTURES / "train_realesrgan_x4plus.yml")
    gan = shrink(raw, tmp_path, "gan", 3)
    raw = yaml.safe_load(gan.read_text())
    raw["path"]["pretrain_network_g"] = str(stage1)
    gan.write_text(yaml.safe_dump(raw, sort_keys=False))
    capsys.readouterr()
    overrides = ["logger.progress_bar=false", "train.losses.1.random_backbone=true",
                 "train.losses.1.layer_weights={conv1_2: 0.1, conv2_2: 0.1}"]
    assert train_main(["-opt", str(gan), "--threads", "1", "--set", *overrides]) == 0
    log = (tmp_path / "experiments" / "gan" / "train.log").read_text()
    for part in ("l_g_pix", "l_g_percep", "l_g_gan", "l_d_real", "l_d_fake", "out_d_real", "out_d_fake"):
        assert part in log
    assert "pre-trained weights" in log and "UNetDiscriminatorSN" in log
    last = tmp_path / "experiments" / "gan" / "checkpoints" / "iter_000003"
    assert {"model.safetensors", "ema.safetensors", "net_d.safetensors"} <= {p.name for p in last.iterdir()}
    assert load_file(str(last / "net_d.safetensors"))  # the discriminator is saved beside the generator


def test_shrunk_esrgan_trains_on_cpu(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = load_with_bases(FIXTURES / "train_ESRGAN_x4.yml")
    raw["network_g"].update(num_feat=8, num_block=1, num_grow_ch=4)
    raw["network_d"]["num_feat"] = 2
    images(tmp_path, raw)
    raw["datasets"]["train"].update(gt_size=128)
    raw["train"].update(total_iter=2)
    raw["val"]["val_freq"] = 2
    raw["logger"].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    raw["path"].pop("pretrain_network_g")
    write_textured_images(tmp_path / "big", 2, 160, seed=7)  # VGGStyleDiscriminator judges 128x128 patches
    raw["datasets"]["train"]["dataroot_gt"] = str(tmp_path / "big")
    write_degraded_copies(tmp_path / "big", tmp_path / "big_lq", scale=4)
    raw["datasets"]["train"]["dataroot_lq"] = str(tmp_path / "big_lq")
    path = tmp_path / "esrgan.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    overrides = ["logger.progress_bar=false", "train.losses.1.random_backbone=true",
                 "train.losses.1.layer_weights={conv1_2: 1}"]
    assert train_main(["-opt", str(path), "--threads", "1", "--set", *overrides]) == 0
    log = (tmp_path / "experiments" / raw["name"] / "train.log").read_text()
    assert "relativistic average" in log and "l_g_gan" in log and "val @ 2" in log
