"""SwinIR plugin: official state_dict layouts, golden parity, detector, loading, inference, training."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
import yaml
from irframe_swinir.arch import SwinIR
from irframe_swinir.blocks import (
    DropPath,
    Mlp,
    PatchEmbed,
    PatchUnEmbed,
    Upsample,
    UpsampleOneStep,
    pad_to_window,
    window_partition,
    window_reverse,
)
from irframe_swinir.detect import detect_swinir

from irframe.errors import CheckpointError, OptionsError
from irframe.nn.spec import get_spec
from irframe.registry import ARCHS, DETECTORS
from tests.helpers import (
    golden_breadth_configs,
    golden_breadth_output,
    official_config,
    official_state_dict,
    read_official,
    shared_golden_breadth_configs,
)

# Released configurations (tests/fixtures/official/breadth/SwinIR_<name>.txt; arguments on line 1).
RELEASED = (
    "classical_x2", "classical_x3", "classical_x4", "classical_x8",
    "lightweight_x2", "lightweight_x3", "lightweight_x4",
    "real_x4_M", "real_x4_L",
    "gray_dn", "color_dn",
    "jpeg_car_gray", "jpeg_car_color",
)
# The golden cases (tests/fixtures/golden/breadth/index.json, a copy of ../shared's).
GOLDEN = golden_breadth_configs("SwinIR")
# A tiny model with shifted blocks (attn_mask buffers), for loading, inference and training.
SHIFTED = {"type": "SwinIR", "upscale": 2, "in_chans": 3, "img_size": 8, "window_size": 4, "depths": [2],
           "embed_dim": 12, "num_heads": [2], "mlp_ratio": 2.0, "upsampler": "pixelshuffle"}


def released(name: str) -> str:
    """The official file of a released configuration (below tests/fixtures/official; arguments on line 1)."""
    return f"breadth/SwinIR_{name}"


def layout(state: Mapping[str, torch.Tensor]) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    return [(k, tuple(v.shape), v.dtype) for k, v in state.items()]


def build(cfg: dict) -> SwinIR:
    return SwinIR(**{k: v for k, v in cfg.items() if k != "type"})


def meta_build(cfg: dict) -> SwinIR:
    with torch.device("meta"):  # full-size models without allocating their weights
        return build(cfg)


def tiny(**overrides: object) -> SwinIR:
    torch.manual_seed(0)
    return ARCHS.build({**SHIFTED, **overrides}, path="network_g")


# -- official layouts and golden parity -----------------------------------------------------------
@pytest.mark.parametrize("name", RELEASED)
def test_state_dict_matches_official(name: str) -> None:
    _, total = read_official(released(name))
    model = meta_build(official_config(released(name)))
    expected = layout(official_state_dict(released(name), device="meta"))
    assert layout(model.state_dict()) == expected  # names, shapes, dtypes and order: strict=True loading works
    assert sum(v.numel() for v in model.state_dict().values() if v.is_floating_point()) == total


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_golden_parity(case: str) -> None:
    out, ref = golden_breadth_output(case, build)
    assert out.shape == ref.shape
    assert float((out - ref).abs().max()) < 1e-5 * max(1.0, float(ref.abs().max()))


def test_golden_configs_match_shared_index() -> None:
    shared = shared_golden_breadth_configs()
    for case, cfg in GOLDEN.items():
        assert shared[case] == cfg, case


# -- registration, spec, forward --------------------------------------------------------------------
def test_registered_with_spec() -> None:
    assert ARCHS.entry("SwinIR").provider == "swinir"
    assert DETECTORS.entry("SwinIR").provider == "swinir"
    model = ARCHS.build({**SHIFTED, "mlp_ratio": "2", "img_range": "1."}, path="network_g")
    assert isinstance(model, SwinIR) and model.spec == get_spec(model)
    assert (model.spec.scale, model.spec.size_multiple, model.spec.value_range) == (2, 4, 1.0)
    jpeg = meta_build(official_config(released("jpeg_car_color")))
    assert (jpeg.spec.scale, jpeg.spec.size_multiple, jpeg.spec.value_range, jpeg.spec.in_channels) == (1, 7, 255.0, 3)
    assert "mean" not in jpeg.state_dict()  # not persistent, as the official plain attribute
    assert tiny(ape=True).spec.fixed_size == 8 and model.spec.fixed_size is None


@pytest.mark.parametrize(
    "overrides, size, out",
    [
        ({}, (10, 13), (20, 26)),
        ({"upsampler": "pixelshuffledirect", "upscale": 3}, (5, 8), (15, 24)),
        ({"upsampler": "nearest+conv", "upscale": 4, "resi_connection": "3conv"}, (6, 9), (24, 36)),
        ({"upsampler": "", "upscale": 2, "in_chans": 1}, (9, 11), (9, 11)),  # denoising: scale 1 whatever upscale
        ({"upsampler": "pixelshuffle", "upscale": 8, "img_size": 12}, (4, 4), (32, 32)),
    ],
)
def test_any_input_size_is_padded_to_the_window_and_cropped(overrides: dict, size: tuple, out: tuple) -> None:
    model = tiny(**overrides).eval()
    chans = model.spec.in_channels
    with torch.no_grad():
        y = model(torch.rand(2, chans, *size))
    assert tuple(y.shape) == (2, chans, *out)
    assert model.spec.scale * size[0] == out[0]


def test_denoiser_is_a_residual_of_its_input() -> None:
    model = tiny(upsampler="", upscale=1, in_chans=1, img_range=255.0).eval()
    torch.nn.init.zeros_(model.conv_last.weight)
    torch.nn.init.zeros_(model.conv_last.bias)
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), x, atol=1e-5)


def test_shifted_mask_buffer_equals_the_one_computed_on_the_fly() -> None:
    model = tiny().eval()
    block = model.layers[0].residual_group.blocks[1]
    assert block.shift_size == 2 and tuple(block.attn_mask.shape) == (4, 16, 16)
    assert torch.equal(block.attn_mask, block.calculate_mask((8, 8)))
    x = torch.rand(1, 3, 8, 8)  # nominal size: the buffer is used; other sizes compute their own
    with torch.no_grad():
        y = model(x)
        block.attn_mask.fill_(0.0)  # a wrong buffer changes the nominal-size output only
        assert not torch.allclose(model(x), y)


def test_input_sizes_the_model_cannot_take_are_clear_errors() -> None:
    model = tiny(window_size=8, img_size=16).eval()
    with pytest.raises(OptionsError, match="too small to reflect-pad"):
        model(torch.rand(1, 3, 3, 3))
    ape = tiny(ape=True).eval()
    with torch.no_grad():
        assert ape(torch.rand(1, 3, 8, 8)).shape == (1, 3, 16, 16)
        with pytest.raises(OptionsError, match=r"ape=True takes only inputs of img_size \(8, 8\).*got 12x12"):
            ape(torch.rand(1, 3, 10, 10))


# -- bad options -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, match",
    [
        ({"upsampler": "pixelshuffle_direct"}, "upsampler.*'pixelshuffle_direct'"),
        ({"resi_connection": "2conv"}, "resi_connection"),
        ({"img_size": 10}, "window_size 4 does not divide img_size 10x10"),
        ({"depths": [2, 2], "num_heads": [2]}, "2 depths .* and 1 num_heads"),
        ({"num_heads": [5]}, r"num_heads\[0\]=5 does not divide embed_dim=12"),
        ({"upscale": 5}, "'pixelshuffle' supports upscale 2\\^n or 3, got 5"),
        ({"upsampler": "nearest+conv", "upscale": 2}, "'nearest\\+conv' supports upscale 4 only"),
        ({"depths": []}, "depths must be a non-empty list"),
        ({"img_range": 0}, "img_range must be > 0"),
        ({"window_sise": 8}, "did you mean 'window_size'"),
    ],
)
def test_bad_options_are_one_line_errors(bad: dict, match: str) -> None:
    with pytest.raises(OptionsError, match=match) as info:
        ARCHS.build({**SHIFTED, **bad}, path="network_g")
    assert "\n" not in str(info.value)


def test_constructor_refuses_what_the_type_hints_cannot() -> None:
    with pytest.raises(OptionsError, match="SwinIR: unknown upsampler 'pixelshuffle_direct'; use 'pixelshuffle'"):
        SwinIR(upsampler="pixelshuffle_direct")  # type: ignore[arg-type]
    with pytest.raises(OptionsError, match="resi_connection must be '1conv' or '3conv', got '2conv'"):
        SwinIR(resi_connection="2conv")  # type: ignore[arg-type]


# -- shared blocks (imported by other plugins, e.g. HAT) --------------------------------------------
def test_shared_blocks() -> None:
    x = torch.rand(2, 8, 12, 5)
    windows = window_partition(x, 4)
    assert windows.shape == (12, 4, 4, 5) and torch.equal(window_reverse(windows, 4, 8, 12), x)
    mlp = Mlp(6, 12)
    assert [n for n, _ in mlp.named_children()] == ["fc1", "act", "fc2", "drop"]
    assert mlp(torch.rand(1, 6)).shape == (1, 6)
    embed = PatchEmbed(img_size=8, patch_size=1, in_chans=6, embed_dim=6, norm_layer=torch.nn.LayerNorm)
    tokens = embed(torch.rand(2, 6, 3, 5))
    assert tokens.shape == (2, 15, 6) and embed.norm is not None
    assert PatchEmbed(embed_dim=6).norm is None
    assert PatchUnEmbed(embed_dim=6)(tokens, (3, 5)).shape == (2, 6, 3, 5)
    assert [k for k in Upsample(4, 8).state_dict() if k.endswith("weight")] == ["0.weight", "2.weight"]
    assert Upsample(3, 8)(torch.rand(1, 8, 2, 2)).shape == (1, 8, 6, 6)
    assert UpsampleOneStep(3, 8, 1)(torch.rand(1, 8, 2, 2)).shape == (1, 1, 6, 6)
    with pytest.raises(OptionsError, match="upscale 6 is not supported"):
        Upsample(6, 8)
    padded = pad_to_window(torch.arange(9.0).view(1, 1, 3, 3), 4)
    assert padded.shape == (1, 1, 4, 4) and padded[0, 0, 3].tolist() == [3.0, 4.0, 5.0, 4.0]  # reflect


def test_drop_path_drops_whole_samples_and_rescales_the_kept_ones() -> None:
    drop = DropPath(0.25)
    x = torch.ones(4000, 3, 2)
    assert drop.eval()(x) is x
    torch.manual_seed(0)
    y = drop.train()(x)
    per_sample = y.flatten(1)
    assert torch.equal(per_sample.amin(1), per_sample.amax(1))  # one decision per sample
    assert per_sample[:, 0].unique().tolist() == [0.0, pytest.approx(1 / 0.75)]  # kept ones scaled by 1/keep
    assert abs(float((per_sample[:, 0] > 0).float().mean()) - 0.75) < 0.03


# -- detector ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", RELEASED)
def test_detector_on_released_layouts(name: str) -> None:
    from irframe.nn.autoload import check_config_against, detect_config

    config = official_config(released(name))
    state = official_state_dict(released(name), device="meta")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a released configuration is identified: nothing to say
        detected = detect_config(state, source=name)
    assert detected["type"] == "SwinIR"
    check_config_against(detected, state, source=name)
    assert layout(meta_build(detected).state_dict()) == layout(state)
    for key in ("upscale", "in_chans", "img_size", "window_size", "img_range", "depths", "embed_dim", "num_heads",
                "mlp_ratio", "upsampler", "resi_connection"):
        assert detected[key] == config[key], key


@pytest.mark.parametrize(
    "cfg",
    [
        {**SHIFTED, "qkv_bias": False, "patch_norm": False},
        {**SHIFTED, "depths": [2, 3], "num_heads": [2, 3], "mlp_ratio": 1.5, "upscale": 4},
        {**SHIFTED, "upsampler": "pixelshuffledirect", "upscale": 3, "in_chans": 1, "img_size": 16},
        {**SHIFTED, "upsampler": "nearest+conv", "upscale": 4, "resi_connection": "3conv", "embed_dim": 16},
        {**SHIFTED, "ape": True, "img_size": 12},
    ],
)
def test_detector_round_trip(cfg: dict) -> None:
    model = meta_build(cfg)
    with pytest.warns(UserWarning, match="img_range is not recorded in the file; using 1.0"):
        detected = detect_swinir(model.state_dict())
    assert detected is not None
    assert layout(meta_build(detected).state_dict()) == layout(model.state_dict())
    for key, value in cfg.items():
        assert detected[key] == value, key


def test_detector_img_range_hints() -> None:
    state = meta_build(GOLDEN["swinir_jpeg_w7_range255"]).state_dict()
    with pytest.warns(UserWarning, match=r"using 255.0 \(window 7 without an upsampler is SwinIR's JPEG setting\); "
                                         "set model.img_range in an option file to override"):
        assert detect_swinir(state)["img_range"] == 255.0
    denoise = meta_build({**SHIFTED, "upsampler": "", "upscale": 1}).state_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert detect_swinir(denoise, filename="/models/006_colorCAR_DFWB_s126w7_SwinIR-M_jpeg10.pth")[
            "img_range"] == 255.0
    with pytest.warns(UserWarning, match="using 1.0") as record:
        assert detect_swinir(denoise, filename="my_denoiser.pth")["img_range"] == 1.0
    assert len(record) == 1 and "my_denoiser.pth" in str(record[0].message)


def test_detector_ignores_other_files_and_names_broken_ones() -> None:
    assert detect_swinir({}) is None
    other = {"conv_first.weight": torch.zeros(8, 3, 3, 3), "conv_last.weight": torch.zeros(3, 8, 3, 3)}
    assert detect_swinir(other) is None
    state = dict(meta_build(SHIFTED).state_dict())
    holes = {k: v for k, v in state.items() if not k.startswith("layers.0.residual_group.blocks.1.")}
    holes.update({k.replace("blocks.1.", "blocks.2."): v for k, v in state.items() if ".blocks.1." in k})
    with pytest.raises(CheckpointError, match=r"blocks of layers.0 are numbered \[0, 2\]"):
        detect_swinir(holes)
    table = "layers.0.residual_group.blocks.0.attn.relative_position_bias_table"
    with pytest.raises(CheckpointError, match="not \\(2\\*window_size-1\\)\\*\\*2"):
        detect_swinir({**state, table: torch.zeros(50, 2, device="meta")})


def test_superset_family_is_claimed_silently() -> None:
    # A family built on SwinIR (extra tensors, e.g. HAT) is matched without a warning; that family's
    # own detector, registered more_specific_than SwinIR, wins when installed.
    state = {**meta_build(SHIFTED).state_dict(), "layers.0.residual_group.blocks.0.conv_block.weight": torch.zeros(1)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert detect_swinir(state) is not None


# -- loading released-style files, inference, training ---------------------------------------------
def test_load_model_params_ema(tmp_path: Path) -> None:
    import irframe

    model = tiny().eval()
    path = tmp_path / "001_classicalSR_tiny_x2.pth"
    torch.save({"params_ema": model.state_dict()}, path)
    with pytest.warns(UserWarning, match="img_range"):
        loaded = irframe.load_model(str(path))
    assert isinstance(loaded, SwinIR) and loaded.irframe_config["upscale"] == 2
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    torch.save({"params": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    with pytest.warns(UserWarning, match="img_range"):
        assert isinstance(irframe.load_model(str(path)), SwinIR)


def test_load_model_names_a_missing_tensor(tmp_path: Path) -> None:
    import irframe

    state = tiny().state_dict()
    del state["layers.0.residual_group.blocks.1.attn_mask"]
    state["extra.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match="extra.weight") as info:  # not a pure SwinIR file: no warning
        irframe.load_model(str(tmp_path / "w.pth"))
    assert "attn_mask" in str(info.value)


def test_restore_pads_non_multiple_inputs() -> None:
    from irframe.nn.inference import restore

    model = tiny().eval()
    x = torch.rand(1, 3, 10, 13)
    y = restore(model, x)
    assert y.shape == (1, 3, 20, 26)
    with torch.no_grad():
        assert torch.allclose(y, model(x), atol=1e-6)  # the engine's reflect pad is the official one
    assert restore(tiny(upsampler="", upscale=1), torch.rand(3, 6, 5)).shape == (3, 6, 5)


def test_training_step_with_checkpointing_and_drop_path() -> None:
    model = tiny(use_checkpoint=True, drop_path_rate=0.2, upscale=3).train()
    lq, gt = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 24, 24)
    loss = torch.nn.functional.l1_loss(model(lq), gt)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_trains_sr_x2_through_the_trainer(tmp_path: Path) -> None:
    from irframe.options import load_options
    from irframe.train.build import run_training
    from irframe.train.checkpoint_folders import latest_checkpoint
    from irframe.train.synthetic import write_degraded_copies, write_textured_images

    data = tmp_path / "data"
    write_textured_images(data / "gt", 2, 32, seed=1)
    write_degraded_copies(data / "gt", data / "lq", scale=2, suffix="x2")
    paired = {"type": "PairedImageDataset", "dataroot_gt": str(data / "gt"), "dataroot_lq": str(data / "lq"),
              "filename_tmpl": "{}x2", "scale": 2}
    options = {
        "name": "SwinIR_tiny_x2",
        "model": {**SHIFTED, "drop_path_rate": 0.1},
        "datasets": {
            "train": {**paired, "gt_size": 16, "use_flip": True, "use_rot": True, "batch_size": 2},
            "val": paired,
        },
        "train": {"total_iter": 3, "optim": {"type": "Adam", "lr": 2e-4, "betas": [0.9, 0.99]},
                  "losses": [{"type": "L1Loss"}], "ema_decay": 0.999},
        "val": {"freq": 3, "metrics": [{"type": "PSNR", "crop_border": 2, "test_y_channel": True}]},
        "logger": {"print_freq": 1, "checkpoint_freq": 3, "tensorboard": False, "progress_bar": False},
        "path": {"experiments_root": str(tmp_path / "exp")},
    }
    (tmp_path / "swinir.yml").write_text(yaml.safe_dump(options))
    result = run_training(load_options(tmp_path / "swinir.yml"))
    assert result.iteration == 3 and latest_checkpoint(result.experiment / "checkpoints") is not None
    assert result.val is not None and all(s["PSNR"] > 0 for s in result.val.scores.values())
