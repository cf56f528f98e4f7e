"""HAT plugin: official state_dict layouts, golden parity, detector, any input size, loading, training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import irframe
from irframe.errors import CheckpointError, OptionsError
from irframe.nn.autoload import check_config_against, detect_config
from irframe.nn.inference import restore
from irframe.nn.spec import get_spec
from irframe.registry import ARCHS, DETECTORS
from tests.helpers import (
    FIXTURES,
    load_golden_breadth,
    official_config,
    official_state_dict,
    read_official,
    shared_golden_breadth_configs,
    three_iteration_run,
)

pytest.importorskip("irframe_hat")
from irframe_hat.arch import HAT
from irframe_hat.detect import detect_hat
from irframe_swinir.blocks import relative_position_index, shifted_window_mask

# The released configurations (tests/fixtures/official/breadth/<name>.txt; arguments on line 1).
CONFIGS = sorted(p.stem for p in (FIXTURES / "official" / "breadth").glob("HAT*.txt"))
# A tiny HAT with a shifted block in every group (depth 2), for the tests that run it.
TINY = {
    "type": "HAT", "img_size": 16, "window_size": 4, "embed_dim": 12, "depths": [2, 2], "num_heads": [2, 3],
    "compress_ratio": 3, "squeeze_factor": 4, "mlp_ratio": 2.0, "upscale": 2, "upsampler": "pixelshuffle",
}


def released(name: str) -> str:
    """The official file of a released configuration, below tests/fixtures/official."""
    return f"breadth/{name}"


def shapes(state: dict) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in state.items()]


def meta_build(cfg: dict) -> torch.nn.Module:
    with torch.device("meta"):  # full-size models without allocating their weights
        return HAT(**{k: v for k, v in cfg.items() if k != "type"})


def tiny(**changes: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return ARCHS.build({**TINY, **changes}, path="network_g").eval()


def test_configs_are_present() -> None:
    assert {"HAT_SRx4", "HAT-S_SRx2", "HAT-L_SRx4_ImageNet-pretrain", "HAT_GAN_Real_SRx4"} <= set(CONFIGS)


@pytest.mark.parametrize("name", CONFIGS)
def test_state_dict_matches_official(name: str) -> None:
    entries, total = read_official(released(name))
    state = meta_build(official_config(released(name))).state_dict()
    official = official_state_dict(released(name), device="meta")
    assert shapes(state) == entries  # names, shapes and order
    assert [v.dtype for v in state.values()] == [v.dtype for v in official.values()]
    assert sum(v.numel() for v in state.values() if v.is_floating_point()) == total


def test_registered_with_spec_and_detector_order() -> None:
    assert ARCHS.entry("HAT").provider == "hat"
    entry = DETECTORS.entry("HAT")
    assert entry.provider == "hat" and entry.more_specific_than == ("SwinIR",)
    model = ARCHS.build({**TINY, "depths": ["2", "2"], "mlp_ratio": "2"}, path="network_g")  # YAML strings
    assert isinstance(model, HAT) and model.spec == get_spec(model)
    spec = model.spec
    # size_multiple: the official input rule (window_size); forward still pads other sizes itself
    assert (spec.in_channels, spec.out_channels, spec.scale, spec.size_multiple, spec.value_range) == (3, 3, 2, 4, 1.0)
    assert spec.fixed_size is None and spec.tileable
    assert "mean" not in model.state_dict()  # not persistent: official files do not hold it
    assert ARCHS.build({**TINY, "ape": True}).spec.fixed_size == 16


def test_golden_parity() -> None:
    config, x, expected, state = load_golden_breadth("hat_x2")
    model = HAT(**{k: v for k, v in config.items() if k != "type"}).eval()
    # the index buffers we compute are the official ones (negative entries included)
    for key in ("relative_position_index_SA", "relative_position_index_OCA"):
        assert torch.equal(getattr(model, key), state[key]), key
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        out = model(x)
    assert out.shape == expected.shape
    assert float((out - expected).abs().max()) < 1e-5 * max(1.0, float(expected.abs().max()))


def test_golden_config_matches_shared_index() -> None:
    case = shared_golden_breadth_configs()["hat_x2"]
    config = load_golden_breadth("hat_x2")[0]
    assert case["type"] == "HAT" and case == config


def test_shifted_window_mask() -> None:
    mask = shifted_window_mask((8, 8), 4, 2)
    assert mask.shape == (4, 16, 16)
    assert (mask[0] == 0).all()  # the top-left window holds one region only
    last = mask[3]  # the bottom-right window mixes 4 regions of 2x2 tokens each
    assert int((last == 0).sum()) == 4 * 4 * 4 and set(last.unique().tolist()) == {-100.0, 0.0}


def test_shifted_block_attends_as_swinir_does() -> None:
    """The golden case has no shifted block (depth 1): check HAB's shifted-window attention against
    SwinIR's block (golden-tested against the official SwinIR) with the CAB branch switched off."""
    if "SwinIR" not in ARCHS:  # loads the plugins first, so the import below registers nothing
        pytest.skip("SwinIR plugin not installed")
    swin_arch = pytest.importorskip("irframe_swinir.arch")
    from irframe_hat.arch import HAB

    torch.manual_seed(0)
    hab = HAB(12, (16, 16), 2, window_size=4, shift_size=2, squeeze_factor=2, conv_scale=0.0, mlp_ratio=2.0).eval()
    swin = swin_arch.SwinTransformerBlock(12, (16, 16), num_heads=2, window_size=4, shift_size=2, mlp_ratio=2.0)
    missing, unexpected = swin.load_state_dict(hab.state_dict(), strict=False)
    assert set(missing) == {"attn.relative_position_index", "attn_mask"}
    assert all(k.startswith("conv_block.") for k in unexpected)
    x = torch.randn(2, 8 * 12, 12)
    with torch.no_grad():
        ours = hab(x, (8, 12), relative_position_index(4), shifted_window_mask((8, 12), 4, 2))
        theirs = swin.eval()(x, (8, 12))
    assert torch.allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize("size", [(9, 13), (4, 7), (16, 16)])
def test_any_input_size_is_padded_to_the_window_inside_forward(size: tuple[int, int]) -> None:
    model = tiny()
    h, w = size
    x = torch.rand(1, 3, h, w)
    with torch.no_grad():
        out = model(x)
        # the official protocol: reflect-pad to the window, run, crop
        pad = torch.nn.functional.pad(x, (0, -w % 4, 0, -h % 4), mode="reflect")
        ref = model(pad)[:, :, : 2 * h, : 2 * w]
    assert out.shape == (1, 3, 2 * h, 2 * w)
    assert torch.allclose(out, ref, atol=1e-6)


def test_restore_on_a_size_that_is_not_a_window_multiple() -> None:
    model = tiny()
    x = torch.rand(3, 11, 14)
    y = restore(model, x)
    assert y.shape == (3, 22, 28)
    with torch.no_grad():
        assert torch.allclose(y, model(x[None])[0], atol=1e-6)
    tiled = restore(model, x, tile=8, tile_overlap=4)  # HAT's tile test: close to the whole image
    assert tiled.shape == y.shape and torch.isfinite(tiled).all()


def test_restore_pads_inputs_too_small_for_forwards_own_padding() -> None:
    # spec.size_multiple is the window, so the engine pads first (replicating where a reflection
    # does not fit); forward alone refuses these sizes (test_input_too_small_to_pad_is_a_clear_error)
    model = tiny()
    assert restore(model, torch.rand(3, 2, 3)).shape == (3, 4, 6)
    assert restore(model, torch.rand(1, 3, 1, 9)).shape == (1, 3, 2, 18)


def test_stochastic_depth_is_the_one_hat_used_before() -> None:
    """HAT's stochastic depth is SwinIR's DropPath (timm's semantics: one keep/drop per sample, kept
    samples scaled by 1/keep); with the same seed it equals torchvision's row-mode StochasticDepth,
    which HAT used before, to the bit."""
    ops = pytest.importorskip("torchvision.ops")
    hab = tiny(drop_path_rate=0.3).layers[1].residual_group.blocks[1]
    assert type(hab.drop_path).__name__ == "DropPath" and hab.drop_path.drop_prob == pytest.approx(0.3)
    hab.drop_path.train()
    x = torch.randn(64, 5, 12)
    torch.manual_seed(0)
    ours = hab.drop_path(x)
    torch.manual_seed(0)
    assert torch.equal(ours, ops.stochastic_depth(x, hab.drop_path.drop_prob, "row", training=True))
    assert isinstance(tiny().layers[0].residual_group.blocks[0].drop_path, torch.nn.Identity)  # rate 0


def test_ape_model_takes_its_size_only() -> None:
    model = tiny(ape=True)
    assert model(torch.rand(1, 3, 16, 16)).shape == (1, 3, 32, 32)
    with pytest.raises(OptionsError, match="ape=True takes 16x16 inputs only"):
        model(torch.rand(1, 3, 12, 12))


def test_one_training_step_reaches_every_parameter() -> None:
    model = tiny(use_checkpoint=True, drop_path_rate=0.1).train()
    lq, gt = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    loss = torch.nn.functional.l1_loss(model(lq), gt)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert torch.isfinite(loss)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"overlap_ratio": -0.5}, "overlap_ratio must be a finite number >= 0"),
        ({"window_size": 7, "img_size": 14}, r"int\(7\*0.5\)=3 pixels, which cannot be split evenly"),
        ({"num_heads": [2, 2, 2]}, "2 depths .* and 3 num_heads"),
        ({"upsampler": "pixelshuffledirect"}, "unknown upsampler 'pixelshuffledirect'"),
        ({"upsampler": ""}, "unknown upsampler ''"),
        ({"resi_connection": "3conv"}, "resi_connection must be '1conv' or 'identity'"),
        ({"upscale": 5}, "upscale must be 2\\^n"),
        ({"num_heads": [2, 5]}, r"num_heads\[1\]=5"),
        ({"img_size": 2}, "smaller than window_size 4"),
        ({"squeeze_factor": 13}, "squeeze_factor 13 leaves no channel"),
        ({"embed_dimm": 8}, "did you mean 'embed_dim'"),
    ],
)
def test_bad_options_are_one_line_errors(bad: dict, match: str) -> None:
    with pytest.raises(OptionsError, match=match) as info:
        ARCHS.build({**TINY, **bad}, path="network_g")
    assert "\n" not in str(info.value)


def test_input_too_small_to_pad_is_a_clear_error() -> None:
    with pytest.raises(OptionsError, match="too small to reflect-pad"):
        tiny()(torch.rand(1, 3, 2, 2))


@pytest.mark.parametrize("name", CONFIGS)
def test_detector_on_official_shape_lists(name: str) -> None:
    state = official_state_dict(released(name), device="meta")
    cfg = detect_config(state, source=name)
    assert cfg["type"] == "HAT"
    check_config_against(cfg, state, strict=True, source=name)  # names and shapes equal the file exactly
    official = official_config(released(name))
    for key in ("upscale", "in_chans", "window_size", "overlap_ratio", "img_range", "depths", "embed_dim",
                "num_heads", "mlp_ratio", "upsampler", "resi_connection", "compress_ratio", "squeeze_factor",
                "conv_scale"):
        assert cfg[key] == official[key], key


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"resi_connection": "identity", "qkv_bias": False, "patch_norm": False, "upscale": 3},
        {"in_chans": 1, "upscale": 8, "mlp_ratio": 4.0, "depths": [1, 2, 1], "num_heads": [2, 4, 6]},
        {"window_size": 8, "overlap_ratio": 0.25, "img_size": 32, "compress_ratio": 2, "squeeze_factor": 6},
        {"ape": True, "img_size": 8, "overlap_ratio": 0.0},
    ],
)
def test_detector_round_trip(changes: dict) -> None:
    cfg = {**TINY, **changes}
    state = meta_build(cfg).state_dict()
    detected = detect_hat(state)
    assert detected is not None
    assert shapes(meta_build(detected).state_dict()) == shapes(state)
    for key, value in changes.items():
        if key != "img_size" or changes.get("ape"):  # img_size is recorded only by ape's embedding
            assert detected[key] == value, key


def test_detector_ignores_other_families_and_rejects_broken_hat_files() -> None:
    assert detect_hat({}) is None
    swinir_like = {
        "conv_first.weight": torch.zeros(12, 3, 3, 3),
        "layers.0.residual_group.blocks.0.attn.relative_position_bias_table": torch.zeros(49, 2),
        "layers.0.residual_group.blocks.0.attn.relative_position_index": torch.zeros(16, 16),
        "norm.weight": torch.zeros(12),
    }
    assert detect_hat(swinir_like) is None
    state = dict(meta_build(TINY).state_dict())
    del state["conv_last.weight"]
    with pytest.raises(CheckpointError, match="conv_before_upsample/conv_last"):
        detect_hat(state)
    state = dict(meta_build(TINY).state_dict())
    state = {k: v for k, v in state.items() if not k.startswith("layers.1.residual_group.blocks.1.")}
    state = {k: v for k, v in state.items() if not k.startswith("layers.1.residual_group.blocks.0.")}
    with pytest.raises(CheckpointError, match="layers.1 has attention blocks"):
        detect_hat(state)


def test_load_model_on_a_params_ema_file(tmp_path: Path) -> None:
    model = tiny(resi_connection="identity")
    path = tmp_path / "HAT_tiny.pth"
    torch.save({"params_ema": model.state_dict()}, path)
    loaded = irframe.load_model(path)
    assert isinstance(loaded, HAT)
    assert loaded.irframe_config["depths"] == [2, 2] and loaded.irframe_config["resi_connection"] == "identity"
    x = torch.rand(1, 3, 10, 6)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_trains_a_few_iterations_through_the_trainer(tmp_path: Path) -> None:
    from irframe.train.cli import main as train_main

    sets = three_iteration_run(tmp_path, 24)
    bicubic_x2 = {"type": "BicubicDownsample", "scale": 2}
    options = {
        "name": "hat_tiny_x2",
        "seed": 0,
        "model": dict(TINY),
        "datasets": {
            "train": {"type": "OnlineDegradationDataset", "dataroot_gt": "unset", "degradation": bicubic_x2,
                      "scale": 2, "gt_size": 16, "use_flip": True, "batch_size": 2, "num_workers": 0},
            "val": {"type": "OnlineDegradationDataset", "dataroot_gt": "unset", "degradation": bicubic_x2,
                    "scale": 2, "seed": 0},
        },
        "train": {"total_iter": 3, "optim": {"type": "Adam", "lr": 2.0e-4, "betas": [0.9, 0.99]},
                  "losses": [{"type": "L1Loss"}]},
        "val": {"freq": 3, "metrics": [{"type": "PSNR", "crop_border": 2}]},
    }
    opt = tmp_path / "hat_tiny.yml"
    opt.write_text(yaml.safe_dump(options, sort_keys=False))
    assert train_main(["-opt", str(opt), "--threads", "1", "--set", *sets]) == 0
    checkpoint = tmp_path / "exp" / "hat_tiny_x2" / "checkpoints" / "iter_000003"
    model = irframe.load_model(checkpoint)
    assert isinstance(model, HAT) and model.irframe_config["depths"] == [2, 2]
    assert all(torch.isfinite(p).all() for p in model.parameters())
