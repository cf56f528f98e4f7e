"""BasicSR / Restormer option files: recognised, translated key by key, validated natively."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from irframe.compat.basicsr import is_basicsr, translate, translate_basicsr
from irframe.errors import OptionsError
from irframe.options import check_components, load_options, load_with_bases, validate_options

from .conftest import roots_under

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "basicsr_options"
RESTORMER_FILES = [
    "Deraining_Restormer.yml",
    "Deblurring_Restormer.yml",
    "DefocusDeblur_Single_8bit_Restormer.yml",
    "DefocusDeblur_DualPixel_16bit_Restormer.yml",
    "GaussianColorDenoising_Restormer.yml",
    "GaussianGrayDenoising_Restormer.yml",
    "GaussianColorDenoising_RestormerSigma15.yml",
    "RealDenoising_Restormer.yml",
]
BASICSR_FILES = [
    "train_EDSR_Mx2.yml",
    "test_EDSR_Mx2.yml",
    "train_SwinIR_SRx2_scratch.yml",
    "test_SwinIR_SRx2_scratch.yml",
]


def raw(name: str) -> dict:
    return load_with_bases(FIXTURES / name)


def native(name: str) -> dict:
    return translate_basicsr(raw(name), name)[0]


@pytest.mark.parametrize("name", RESTORMER_FILES + BASICSR_FILES)
def test_every_layout_translates_and_validates(name, capsys):
    opts = load_options(FIXTURES / name)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "BasicSR-style option file translated" in line]
    assert len(lines) == 1 and lines[0].startswith(f"{FIXTURES / name}: ")
    assert "keys mapped" in lines[0] and "irframe show-options" in lines[0]
    assert opts.name == raw(name)["name"]
    assert opts.seed == raw(name)["manual_seed"]


@pytest.mark.parametrize("name", RESTORMER_FILES)
def test_restormer_files_pass_the_component_checks(name, data_tree):
    from irframe.registry import DATASETS

    opts = load_options(data_tree(name))
    if "DualPixel" in name and "DualPixelDataset" not in DATASETS.names():
        pytest.skip("DualPixelDataset is not registered in this tree yet")
    check_components(opts)  # arch kwargs, dataset kwargs, optimizer, scheduler, loss, metrics
    assert opts.model["type"] == "Restormer"


def test_deraining_mapping():
    opts = load_options(FIXTURES / "Deraining_Restormer.yml")
    train = opts.datasets["train"]
    assert train.type == "PairedImageDataset" and train.batch_size == 8 and train.num_workers == 8
    assert train.shuffle is True and train.enlarge_ratio == 1
    extra = train.dataset_cfg()
    assert extra["use_flip"] is True and extra["use_rot"] is True  # geometric_augs
    assert extra["gt_size"] == 384 and extra["filename_tmpl"] == "{}" and extra["io_backend"] == {"type": "disk"}
    assert set(opts.datasets) == {"train", "ValSet"}
    t = opts.train
    assert t.total_iter == 300000 and t.warmup_iter == 0 and t.grad_clip == 0.01
    assert t.progressive.iters == [92000, 64000, 48000, 36000, 36000, 24000]
    assert t.progressive.batch_sizes == [8, 5, 4, 2, 1, 1]
    assert t.progressive.patch_sizes == [128, 160, 192, 256, 320, 384]
    assert t.optim == {"type": "AdamW", "lr": 3e-4, "weight_decay": 1e-4, "betas": [0.9, 0.999]}
    assert t.scheduler["type"] == "CosineAnnealingRestartCyclicLR" and t.scheduler["eta_mins"] == [3e-4, 1e-6]
    assert t.mixing_augs.mixup is False
    assert [(loss.type, loss.weight) for loss in t.losses] == [("L1Loss", 1.0)]
    assert opts.val.freq == 4000 and opts.val.save_images is False
    assert opts.val.metrics == [{"type": "PSNR", "crop_border": 0, "test_y_channel": False}]
    assert opts.logger.print_freq == 1000 and opts.logger.checkpoint_freq == 4000 and opts.logger.tensorboard


def test_gaussian_denoising_maps_to_online_noise():
    color = native("GaussianColorDenoising_Restormer.yml")
    train, val = color["datasets"]["train"], color["datasets"]["ValSet"]
    assert train["type"] == "OnlineDegradationDataset" and train["channels"] == 3
    assert train["degradation"] == {"type": "GaussianNoise", "clip": False, "sigma_range": [0, 50]}
    assert "dataroot_lq" not in train  # 'none' in Restormer's file
    assert val["degradation"] == {"type": "GaussianNoise", "clip": False, "sigma": 25} and val["seed"] == 0
    assert color["train"]["mixing_augs"] == {"mixup": True, "mixup_beta": 1.2, "use_identity": True}
    sigma15 = native("GaussianColorDenoising_RestormerSigma15.yml")["datasets"]
    assert sigma15["train"]["degradation"]["sigma"] == 15 and sigma15["ValSet"]["degradation"]["sigma"] == 15
    gray = native("GaussianGrayDenoising_Restormer.yml")
    assert gray["datasets"]["train"]["channels"] == 1 and gray["datasets"]["ValSet"]["channels"] == 1
    assert gray["model"]["inp_channels"] == 1


def test_gaussian_choice_builds_a_random_choice_of_levels():
    data = raw("GaussianColorDenoising_Restormer.yml")
    data["datasets"]["train"].update(sigma_type="choice", sigma_range=[15, 25, 50])
    deg = translate_basicsr(data, "x.yml")[0]["datasets"]["train"]["degradation"]
    assert deg["type"] == "RandomChoice"
    assert [d["sigma"] for d in deg["degradations"]] == [15, 25, 50]
    from irframe.data.degradations.compose import build_degradation

    build_degradation(deg, "datasets.train.degradation")  # builds through the registry


def test_gaussian_noise_is_built_and_unclipped(tmp_path):
    import cv2
    import numpy as np

    from irframe.registry import DATASETS

    (tmp_path / "gt").mkdir()
    cv2.imwrite(str(tmp_path / "gt" / "a.png"), np.full((16, 16, 3), 250, np.uint8))
    cfg = native("GaussianColorDenoising_Restormer.yml")["datasets"]["ValSet"]
    cfg = {k: v for k, v in cfg.items() if k not in ("batch_size", "num_workers", "shuffle")}
    cfg["dataroot_gt"] = str(tmp_path / "gt")
    ds = DATASETS.build(cfg, path="datasets.ValSet")
    lq = ds[0]["lq"]
    assert float(lq.max()) > 1.0  # sigma 25 on near-white: Restormer does not clip
    assert np.array_equal(np.asarray(ds[0]["lq"]), np.asarray(lq))  # fixed validation noise


def test_edsr_and_swinir_train_files():
    edsr = native("train_EDSR_Mx2.yml")
    train = edsr["datasets"]["train"]
    assert train["scale"] == 2 and train["gt_size"] == 96 and train["use_flip"] and train["use_rot"]
    assert train["enlarge_ratio"] == 100 and train["batch_size"] == 16
    assert edsr["datasets"]["Set5"]["scale"] == 2
    assert edsr["train"]["ema_decay"] == 0.999
    assert edsr["train"]["scheduler"] == {"type": "MultiStepLR", "milestones": [200000], "gamma": 0.5}
    assert edsr["model"]["type"] == "EDSR" and edsr["model"]["num_feat"] == 64
    swinir = native("train_SwinIR_SRx2_scratch.yml")
    assert swinir["val"]["metrics"] == [{"type": "PSNR", "crop_border": 2, "test_y_channel": True}]


def test_test_files_fill_the_test_section():
    edsr = validate_options(native("test_EDSR_Mx2.yml"))
    assert edsr.train is None and edsr.val is None
    assert list(edsr.test.datasets) == ["Set5", "Set14", "DIV2K100"]
    assert edsr.test.datasets["DIV2K100"].dataset_cfg()["filename_tmpl"] == "{}x2"
    assert edsr.test.checkpoint.endswith("EDSR_Mx2_f64b16_DIV2K_official-3ba7b086.pth")
    assert [m["type"] for m in edsr.test.metrics] == ["PSNR", "SSIM"] and edsr.test.save_images
    swinir = validate_options(native("test_SwinIR_SRx2_scratch.yml"))
    assert swinir.test.param_key == "params_ema" and list(swinir.test.datasets) == ["Set5", "Set14"]


def test_set_names_become_keys():
    data = raw("test_EDSR_Mx2.yml")
    data["datasets"]["test_2"]["name"] = "Set5"  # a duplicate name falls back to the phase key
    data["datasets"]["test_3"]["name"] = "DIV2K.valid 100"  # dots/spaces would nest or break dotted paths
    assert list(translate_basicsr(data, "n.yml")[0]["test"]["datasets"]) == ["Set5", "test_2", "DIV2K_valid_100"]


def test_unregistered_arch_fails_at_model_type(data_tree, tmp_path):
    """EDSR is registered (plugin sr_classics), so the translated file passes; the same file naming an
    arch nobody registered fails at model.type only, naming the file."""
    check_components(load_options(data_tree("train_EDSR_Mx2.yml")))
    unknown = tmp_path / "train_EDSRX_Mx2.yml"
    unknown.write_text((FIXTURES / "train_EDSR_Mx2.yml").read_text().replace("type: EDSR", "type: EDSRX"))
    with pytest.raises(OptionsError) as info:
        check_components(load_options(unknown))
    msg = str(info.value)
    # named as the file spells it (network_g, not the native model)
    assert msg.startswith(str(unknown)) and "network_g.type: unknown arch 'EDSRX'" in msg
    assert "dataroot" not in msg  # the translated datasets are fine; only the arch is missing


def test_meaningless_keys_are_noted_not_mapped():
    notes = translate(raw("Deraining_Restormer.yml"), "d.yml").notes
    for key in ("num_gpu", "dist_params", "datasets.train.prefetch_mode", "val.window_size", "logger.wandb",
                "model_type", "train.use_grad_clip"):
        assert any(n.startswith(f"{key}:") for n in notes), key
    assert any("0.01" in n for n in notes if n.startswith("train.use_grad_clip"))


def test_unknown_keys_are_all_reported_at_once():
    data = raw("Deraining_Restormer.yml")
    data["network_e"] = {"type": "VGGStyleDiscriminator"}
    data["datasets"]["train"]["colour_jitter"] = True
    data["train"]["lr_policy"] = "step"
    data["val"]["metrics"]["fid"] = {"type": "calculate_fid", "crop_border": 0}
    data["path"]["resume_state"] = "experiments/x/training_states/1000.state"
    data["bogus_top"] = 1
    with pytest.raises(OptionsError) as info:
        translate_basicsr(data, "my.yml")
    msg = str(info.value)
    assert msg.startswith("my.yml: 6 problem(s)")
    for where in ("network_e:", "datasets.train.colour_jitter:", "train.lr_policy:", "val.metrics.fid.type:",
                  "path.resume_state:", "bogus_top:"):
        assert where in msg, where


def test_native_keys_in_a_basicsr_file_are_named():
    data = raw("train_EDSR_Mx2.yml")
    data["model"] = {"type": "Restormer"}
    with pytest.raises(OptionsError, match="model: a native irframe key in a BasicSR-style file"):
        translate_basicsr(data, "mixed.yml")


def test_unknown_dataset_type_and_model_type_are_refused():
    data = raw("train_EDSR_Mx2.yml")
    data["datasets"]["train"]["type"] = "FFHQDegradationDataset"
    data["model_type"] = "StyleGAN2Model"
    data["train"]["net_d_reg_every"] = 16
    with pytest.raises(OptionsError) as info:
        translate_basicsr(data, "g.yml")
    msg = str(info.value)
    assert "datasets.train.type: 'FFHQDegradationDataset'" in msg and "model_type: 'StyleGAN2Model'" in msg
    # the GAN keys of a model that trains no discriminator are noted as dropped (BasicSR ignores them too)
    notes = translate(data, "g.yml", collect=True).notes
    assert any(n.startswith("train.net_d_reg_every: dropped") for n in notes)


def test_native_files_are_not_basicsr():
    for path in sorted((ROOT / "options").glob("*.yml")):
        assert not is_basicsr(load_with_bases(path)), path
    assert is_basicsr({"name": "x", "network_g": {"type": "Restormer"}})
    assert is_basicsr({"datasets": {"train": {"batch_size_per_gpu": 2}}})


def test_set_overrides_use_native_keys(tmp_path, capsys):
    opts = load_options(FIXTURES / "Deraining_Restormer.yml", ["train.optim.lr=1e-4", "datasets.train.batch_size=2"])
    assert opts.train.optim["lr"] == 1e-4 and opts.datasets["train"].batch_size == 2


def test_charbonnier_eps_and_warmup_are_converted_with_notes(tmp_path):
    data = raw("train_EDSR_Mx2.yml")
    data["train"]["pixel_opt"] = {"type": "CharbonnierLoss", "loss_weight": 1.0, "reduction": "mean", "eps": 1e-12}
    data["train"]["warmup_iter"] = 100
    data["train"]["scheduler"] = {"type": "MultiStepRestartLR", "milestones": [10, 20], "gamma": 0.5,
                                  "restarts": [15], "restart_weights": [0.5]}
    t = translate(data, "c.yml")
    loss = t.native["train"]["losses"][0]
    assert loss["type"] == "CharbonnierLoss" and loss["eps"] == pytest.approx(1e-6) and loss["weight"] == 1.0
    assert t.native["train"]["warmup_iter"] == 100 and t.native["train"]["warmup_schedule"] == "under"
    assert any(n.startswith("train.warmup_iter: train.warmup_schedule: under") for n in t.notes)
    assert any(n.startswith("train.scheduler: after the warm-up BasicSR's MultiStepRestartLR") and "99/100" in n
               for n in t.notes)
    assert any(n.startswith("train.pixel_opt.eps:") for n in t.notes)
    assert t.native["train"]["scheduler"]["type"] == "MultiStepRestartLR"
    t.native["model"] = {"type": "Restormer"}  # EDSR is not registered here
    roots_under(t.native["datasets"], tmp_path)
    check_components(validate_options(t.native))  # the scheduler and loss kwargs are valid natively


def test_translation_leaves_the_input_untouched():
    data = raw("GaussianColorDenoising_Restormer.yml")
    before = yaml.safe_dump(data)
    translate_basicsr(data, "x.yml")
    assert yaml.safe_dump(data) == before


def test_lmdb_backend_and_perceptual_loss_pass_through(tmp_path):
    data = raw("train_EDSR_Mx2.yml")
    data["datasets"]["train"]["io_backend"] = {"type": "lmdb"}
    data["train"]["perceptual_opt"] = {"type": "PerceptualLoss", "layer_weights": {"conv5_4": 1},
                                       "perceptual_weight": 1.0, "style_weight": 0}
    out = translate_basicsr(data, "p.yml")[0]
    assert out["datasets"]["train"]["io_backend"] == {"type": "lmdb"}
    assert out["train"]["losses"][1] == {"type": "PerceptualLoss", "layer_weights": {"conv5_4": 1},
                                         "perceptual_weight": 1.0, "style_weight": 0}
    out["model"] = {"type": "Restormer"}
    roots_under(out["datasets"], tmp_path)
    check_components(validate_options(out))  # the built-in VGG PerceptualLoss takes BasicSR's keys
