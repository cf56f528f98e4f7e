"""The option files of BasicSR (EDSR, RCAN, MSRResNet, RRDBNet PSNR, SwinIR), NAFNet (GoPro, SIDD,
REDS) and HAT (HAT, HAT-S, HAT-L) run as they are: every key is translated or noted, the files pass
``irframe show-options`` with their data folders present, and a shrunk copy of each family's training
file trains through tools/train.py's entry point, then its test file benchmarks the result through
tools/test.py's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from irframe.cli import main as cli_main
from irframe.compat.basicsr import translate
from irframe.evaluate.cli import benchmark_main
from irframe.options import load_options, load_with_bases
from irframe.train.cli import main as train_main

from .conftest import FIXTURES

NEW_FILES = [
    "train_RCAN_x4.yml",
    "test_RCAN_x4.yml",
    "train_MSRResNet_x4.yml",
    "test_MSRResNet_x4.yml",
    "train_RRDBNet_PSNR_x4.yml",
    "test_RRDBNet_PSNR_x4.yml",
    "test_SwinIR_SRx4_scratch.yml",
    "test_SwinIR_lightweight_SRx4.yml",
    "NAFNet-GoPro-width64_train.yml",
    "NAFNet-GoPro-width64_test.yml",
    "NAFNet-SIDD-width64_train.yml",
    "NAFNet-SIDD-width64_test.yml",
    "NAFNet-REDS-width64_train.yml",
    "NAFNet-REDS-width64_test.yml",
    "train_HAT_SRx4_finetune_from_SRx2.yml",
    "HAT-S_SRx4.yml",
    "HAT-L_SRx4_ImageNet-pretrain.yml",
]
ALL_FILES = sorted(p.name for p in FIXTURES.glob("*.yml"))


def leaves(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


@pytest.mark.parametrize("name", NEW_FILES)
def test_every_file_passes_show_options_with_its_data(name, data_tree, capsys):
    path = data_tree(name)
    assert cli_main(["show-options", str(path)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"{path}: translated from BasicSR's layout" in out


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_key_is_translated_or_noted(name):
    """Never silently dropped: each set key of the file is mapped, or noted with a reason."""
    raw = load_with_bases(FIXTURES / name)
    t = translate(raw, name)
    covered = [src for src, _ in t.mapped] + [note.split(": ", 1)[0] for note in t.notes]
    silent = [
        key for key, value in leaves(raw)
        if value is not None and not any(key == c or key.startswith(c + ".") for c in covered)
    ]
    assert silent == []


def notes_of(name: str) -> dict[str, str]:
    return dict(n.split(": ", 1) for n in translate(load_with_bases(FIXTURES / name), name).notes)


def test_nafnet_gopro_training_file():
    opts = load_options(FIXTURES / "NAFNet-GoPro-width64_train.yml")
    assert opts.model == {"type": "NAFNetLocal", "width": 64, "enc_blk_nums": [1, 1, 1, 28], "middle_blk_num": 1,
                          "dec_blk_nums": [1, 1, 1, 1]}
    train = opts.datasets["train"]
    assert train.batch_size == 8 and train.shuffle is True and train.num_workers == 8
    extra = train.dataset_cfg()
    assert extra["io_backend"] == {"type": "lmdb"} and extra["gt_size"] == 256
    assert extra["use_flip"] is True and extra["use_rot"] is True and extra["filename_tmpl"] == "{}"
    assert list(opts.datasets) == ["train", "gopro-test"]
    t = opts.train
    assert t.optim == {"type": "AdamW", "lr": 1e-3, "weight_decay": 1e-3, "betas": [0.9, 0.9]}
    assert t.scheduler == {"type": "CosineAnnealingLR", "T_max": 400000, "eta_min": 1e-7}
    assert t.total_iter == 400000 and t.warmup_iter == 0 and t.ema_decay == 0
    assert [(loss.type, loss.weight, loss.loss_cfg()) for loss in t.losses] == [
        ("PSNRLoss", 1.0, {"type": "PSNRLoss", "reduction": "mean"})
    ]
    assert t.grad_clip == 0.01  # ImageRestorationModel clips unless use_grad_clip: false
    assert [m["type"] for m in opts.val.metrics] == ["PSNR", "SSIM"] and opts.val.freq == 20000
    notes = notes_of("NAFNet-GoPro-width64_train.yml")
    assert "ImageRestorationModel" in notes["model_type"]
    assert "ImageRestorationModel's default" in notes["train.use_grad_clip"]
    assert "TrueCosineAnnealingLR" in notes["train.scheduler.type"]


def test_nafnet_grad_clip_follows_use_grad_clip():
    raw = load_with_bases(FIXTURES / "NAFNet-REDS-width64_train.yml")
    raw["train"]["use_grad_clip"] = False
    assert "grad_clip" not in translate(raw, "r.yml").native["train"]
    raw["train"]["use_grad_clip"] = True
    assert translate(raw, "r.yml").native["train"]["grad_clip"] == 0.01
    raw["model_type"] = "SRModel"  # BasicSR's SRModel never clips
    del raw["train"]["use_grad_clip"]
    assert "grad_clip" not in translate(raw, "r.yml").native["train"]


def test_nafnet_test_files():
    gopro = load_options(FIXTURES / "NAFNet-GoPro-width64_test.yml")
    assert gopro.train is None and gopro.model["type"] == "NAFNetLocal"
    assert list(gopro.test.datasets) == ["gopro-test"] and gopro.inference.tile is None
    assert gopro.test.checkpoint == "experiments/pretrained_models/NAFNet-GoPro-width64.pth"
    assert notes_of("NAFNet-GoPro-width64_test.yml")["val.grids"].startswith("False: whole images")
    # SIDD's test file lists its set under datasets.val: without a train section it is a test set
    sidd = load_options(FIXTURES / "NAFNet-SIDD-width64_test.yml")
    assert sidd.datasets == {} and list(sidd.test.datasets) == ["SIDD_val"]
    assert sidd.test.datasets["SIDD_val"].dataset_cfg()["io_backend"] == {"type": "lmdb"}
    # use_image: false scores the float output
    assert [(m["type"], m["quantize"]) for m in sidd.test.metrics] == [("PSNR", False), ("SSIM", False)]


def test_nafnet_grids_become_tiles():
    raw = load_with_bases(FIXTURES / "NAFNet-GoPro-width64_test.yml")
    raw["val"].update(grids=True, crop_size_h=256, crop_size_w=256, max_minibatch=8)
    t = translate(raw, "g.yml")
    assert t.native["inference"] == {"tile": 256, "tile_overlap": 0}
    assert ("val.crop_size_h", "inference.tile") in t.mapped
    raw["val"].update(crop_size_w=320)
    problems = translate(raw, "g.yml", collect=True).problems
    assert problems and problems[0].startswith("val.grids: irframe tiles with square tiles")
    raw["val"] = {"grids": True, "crop_size_h_ratio": 0.5, "crop_size_w_ratio": 0.5}
    assert translate(raw, "g.yml", collect=True).problems[0].startswith("val.grids:")


def test_nafnet_param_key_is_read():
    raw = load_with_bases(FIXTURES / "NAFNet-SIDD-width64_test.yml")
    raw["path"]["param_key"] = "params"  # NAFNet's spelling of BasicSR's param_key_g
    t = translate(raw, "p.yml")
    assert t.native["test"]["param_key"] == "params" and ("path.param_key", "test.param_key") in t.mapped


def test_hat_files():
    train = load_options(FIXTURES / "train_HAT_SRx4_finetune_from_SRx2.yml")
    assert train.model["type"] == "HAT" and train.model["window_size"] == 16 and train.model["overlap_ratio"] == 0.5
    assert train.train.pretrain.path == "./experiments/train_HAT_SRx2_from_scratch/models/net_g_latest.pth"
    assert train.train.pretrain.key == "params_ema" and train.train.pretrain.strict is True
    assert train.train.scheduler["milestones"] == [125000, 200000, 225000, 240000]
    assert list(train.datasets) == ["train", "Set5", "Set14"] and train.datasets["Set5"].dataset_cfg()["scale"] == 4
    assert "HATModel" in notes_of("train_HAT_SRx4_finetune_from_SRx2.yml")["model_type"]
    small = load_options(FIXTURES / "HAT-S_SRx4.yml")
    assert small.model["embed_dim"] == 144 and small.model["compress_ratio"] == 24
    assert small.test.param_key == "params_ema" and small.inference.tile is None
    large = load_options(FIXTURES / "HAT-L_SRx4_ImageNet-pretrain.yml")
    assert len(large.model["depths"]) == 12
    # HAT's tile: tile_size 256 with tile_pad 32 on each side -> 320-pixel pieces overlapping by 64
    assert (large.inference.tile, large.inference.tile_overlap) == (320, 64)
    assert "HAT keeps each piece's centre" in notes_of("HAT-L_SRx4_ImageNet-pretrain.yml")["tile"]


def test_hat_tile_problems_are_named():
    raw = load_with_bases(FIXTURES / "HAT-L_SRx4_ImageNet-pretrain.yml")
    raw["tile"] = {"tile_size": 0, "tile_pda": 32}
    problems = translate(raw, "h.yml", collect=True).problems
    assert "tile.tile_pda: unknown BasicSR key; did you mean 'tile_pad'?" in problems
    assert any(p.startswith("tile.tile_size: expected a positive number") for p in problems)


def test_swinir_and_sr_classics_files():
    light = load_options(FIXTURES / "test_SwinIR_lightweight_SRx4.yml")
    assert light.model["upsampler"] == "pixelshuffledirect" and light.model["embed_dim"] == 60
    assert light.model["window_size"] == 8  # the model pads to it (its spec's size multiple)
    assert "reflect-pads" in notes_of("test_SwinIR_lightweight_SRx4.yml")["model_type"]
    rrdb = load_options(FIXTURES / "train_RRDBNet_PSNR_x4.yml")
    assert rrdb.model == {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_block": 23,
                          "num_grow_ch": 32}
    assert rrdb.train.scheduler == {"type": "CosineAnnealingRestartLR", "periods": [250000] * 4,
                                    "restart_weights": [1, 1, 1, 1], "eta_min": 1e-7}
    assert rrdb.datasets["train"].enlarge_ratio == 100
    rcan = load_options(FIXTURES / "train_RCAN_x4.yml")
    assert rcan.model["num_group"] == 10 and rcan.model["num_block"] == 20 and rcan.model["squeeze_factor"] == 16
    assert rcan.datasets["train"].dataset_cfg()["gt_size"] == 192
    # MSRResNet's validation also asks for NIQE, which irframe lacks: noted (validation scores are only logged)
    srresnet = load_options(FIXTURES / "train_MSRResNet_x4.yml")
    assert [m["type"] for m in srresnet.val.metrics] == ["PSNR"]
    assert "irframe has no NIQE" in notes_of("train_MSRResNet_x4.yml")["val.metrics.niqe"]
    test_file = load_with_bases(FIXTURES / "test_MSRResNet_x4.yml")
    test_file["val"]["metrics"]["niqe"] = {"type": "calculate_niqe", "crop_border": 4}
    problems = translate(test_file, "t.yml", collect=True).problems
    assert problems == ["val.metrics.niqe.type: 'calculate_niqe': irframe has no NIQE; remove it from val.metrics "
                        "(PSNR and SSIM are measured: calculate_psnr, calculate_ssim)"]


def test_old_test_layout_keys_say_where_they_go():
    raw = load_with_bases(FIXTURES / "test_RCAN_x4.yml")
    raw.update(save_img=True, suffix=None, crop_border=None)
    problems = translate(raw, "old.yml", collect=True).problems
    assert problems[0] == ("save_img: a top-level key of BasicSR's pre-1.0 test files (BasicSR itself no longer "
                           "reads it there); write it as val.save_img")
    assert len(problems) == 3


# -- shrunk copies train and test ----------------------------------------------------------------
SR_TINY = {"num_feat": 8, "num_block": 1}
SWIN_TINY = {"embed_dim": 12, "depths": [1], "num_heads": [2], "window_size": 4, "img_size": 8}
HAT_TINY = {**SWIN_TINY, "compress_ratio": 3, "squeeze_factor": 2}
NAF_TINY = {"width": 8, "enc_blk_nums": [1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1]}

FAMILIES = {  # training file, test file, tiny network, training patch (GT pixels), test image size
    "EDSR": ("train_EDSR_Mx2.yml", "test_EDSR_Mx2.yml", SR_TINY, 16, 32),
    "RCAN": ("train_RCAN_x4.yml", "test_RCAN_x4.yml", {**SR_TINY, "num_group": 1, "squeeze_factor": 4}, 16, 32),
    "MSRResNet": ("train_MSRResNet_x4.yml", "test_MSRResNet_x4.yml", SR_TINY, 16, 32),
    "RRDBNet": ("train_RRDBNet_PSNR_x4.yml", "test_RRDBNet_PSNR_x4.yml", {**SR_TINY, "num_grow_ch": 4}, 16, 32),
    "SwinIR": ("train_SwinIR_SRx2_scratch.yml", "test_SwinIR_SRx2_scratch.yml", SWIN_TINY, 16, 32),
    # HAT-L's test file with its tile option: the 16-pixel inputs are run in 12-pixel tiles
    "HAT": ("train_HAT_SRx4_finetune_from_SRx2.yml", "HAT-L_SRx4_ImageNet-pretrain.yml", HAT_TINY, 32, 64),
    # GoPro in LMDB, NAFNetLocal with the local statistics of 16-pixel training crops at test time
    "NAFNet": ("NAFNet-GoPro-width64_train.yml", "NAFNet-GoPro-width64_test.yml", NAF_TINY, 16, 32),
}


def write_pairs(root: Path, count: int, size: int, scale: int, template: str, lmdb: bool, seed: int) -> tuple[str, str]:
    """GT images and their LQ copies (x``scale`` smaller, or noisy), named as ``filename_tmpl`` says."""
    from irframe.data.lmdb_pack import create_lmdb
    from irframe.train.synthetic import write_degraded_copies, write_textured_images

    gt, lq = root / "gt", root / "lq"
    write_textured_images(gt, count, size, seed=seed)
    suffix = template.replace("{}", "")
    write_degraded_copies(gt, lq, scale=scale, sigma=0 if scale > 1 else 20, suffix=suffix, seed=seed)
    if not lmdb:
        return str(gt), str(lq)
    create_lmdb(gt, root / "gt.lmdb", progress=False)
    create_lmdb(lq, root / "lq.lmdb", progress=False, key_template=template)
    return str(root / "gt.lmdb"), str(root / "lq.lmdb")


def shrink(raw: dict[str, Any], root: Path, net: dict[str, Any], patch: int, size: int) -> None:
    """Tiny network and generated images in place of the file's; a few iterations if it trains."""
    scale = raw.get("scale", 1)
    for i, (phase, cfg) in enumerate(raw["datasets"].items()):
        lmdb = (cfg.get("io_backend") or {}).get("type") == "lmdb"
        count = 4 if phase == "train" else 1
        cfg["dataroot_gt"], cfg["dataroot_lq"] = write_pairs(
            root / phase, count, size if phase != "train" else 32, scale, cfg.get("filename_tmpl", "{}"), lmdb, i
        )
        if phase == "train":
            cfg.update(batch_size_per_gpu=2, num_worker_per_gpu=0, gt_size=patch, dataset_enlarge_ratio=1)
    raw["network_g"].update(net)
    if "train" in raw:
        train, scheduler = raw["train"], raw["train"]["scheduler"]
        train["total_iter"] = 2
        if "milestones" in scheduler:
            scheduler["milestones"] = [1]
        if "periods" in scheduler:
            scheduler.update(periods=[1, 1], restart_weights=[1, 1])
        if "T_max" in scheduler:
            scheduler["T_max"] = 2
        raw["path"]["pretrain_network_g"] = None  # HAT's x4 starts from its x2 model
        raw["val"]["val_freq"] = 2
        raw["logger"].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_shrunk_family_trains_and_tests(family, tmp_path, monkeypatch, capsys):
    train_file, test_file, net, patch, size = FAMILIES[family]
    monkeypatch.chdir(tmp_path)
    raw = load_with_bases(FIXTURES / train_file)
    shrink(raw, tmp_path / "train_data", net, patch, size)
    Path("train.yml").write_text(yaml.safe_dump(raw, sort_keys=False))
    assert train_main(["-opt", "train.yml", "--threads", "1"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().err.count("BasicSR-style option file translated") == 1
    checkpoint = Path("experiments") / raw["name"] / "checkpoints" / "iter_000002"
    assert (checkpoint / "model.safetensors").is_file()
    log = (Path("experiments") / raw["name"] / "train.log").read_text()
    assert "PSNR" in log  # validated at iteration 2

    bench = load_with_bases(FIXTURES / test_file)
    shrink(bench, tmp_path / "test_data", net, patch, size)
    if family == "NAFNet":
        bench["network_g"]["train_size"] = [1, 3, 16, 16]  # pools over 24-pixel windows of the 32-pixel images
    if family == "HAT":
        bench["tile"] = {"tile_size": 8, "tile_pad": 2}
    bench["path"]["pretrain_network_g"] = str(checkpoint)
    # the checkpoint folder holds the EMA weights beside the raw ones: auto picks the EMA file
    bench["path"].pop("param_key_g", None)
    Path("test.yml").write_text(yaml.safe_dump(bench, sort_keys=False))
    assert benchmark_main(["-opt", "test.yml", "--out", "results", "--no-progress", "--device", "cpu"]) == 0, (
        capsys.readouterr().err
    )
    board = Path("results/leaderboard.md").read_text()
    names = [cfg["name"] for cfg in bench["datasets"].values()]
    assert all(name in board for name in names) and "PSNR" in board and "SSIM" in board
    run = json.loads(Path("results/leaderboard.json").read_text())["models"][bench["name"]]
    weights = "ema.safetensors" if "ema_decay" in raw["train"] else "model.safetensors"
    assert run["checkpoint"].endswith(f"iter_000002/{weights}")
    if family == "HAT":  # tile_size 8 + 2 x tile_pad 2
        assert (run["inference"]["tile"], run["inference"]["tile_overlap"]) == (12, 4)
