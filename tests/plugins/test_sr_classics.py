"""SR classics plugin (EDSR, RCAN, MSRResNet, RRDBNet, SRVGGNetCompact): official layouts of every
released configuration, golden parity with BasicSR's code, detectors, checkpoint loading, tiling,
bad options and a few training iterations through the real trainer."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from irframe_sr_classics import IRFRAME_PLUGIN_API
from irframe_sr_classics.blocks import pixel_unshuffle
from irframe_sr_classics.detect import (
    detect_edsr,
    detect_msrresnet,
    detect_rcan,
    detect_rrdbnet,
    detect_srvgg,
)

import irframe
from irframe.errors import CheckpointError, OptionsError
from irframe.nn.autoload import check_config_against, detect_config
from irframe.nn.inference import restore
from irframe.nn.spec import get_spec
from irframe.registry import ARCHS, DETECTORS, PLUGIN_API_VERSION
from tests.helpers import (
    FIXTURES,
    ROOT,
    golden_breadth_configs,
    golden_breadth_output,
    official_config,
    official_state_dict,
    read_official,
    shared_golden_breadth_configs,
)

ARCH_NAMES = ("EDSR", "RCAN", "MSRResNet", "RRDBNet", "SRVGGNetCompact")
DETECTOR_FNS = {"EDSR": detect_edsr, "RCAN": detect_rcan, "MSRResNet": detect_msrresnet,
                "RRDBNet": detect_rrdbnet, "SRVGGNetCompact": detect_srvgg}
OFFICIAL_DIR = FIXTURES / "official" / "breadth"
# Released configurations of these archs (tests/fixtures/official/breadth/<name>.txt).
OFFICIAL = sorted(p.stem for p in OFFICIAL_DIR.glob("*.txt") if p.stem.startswith(ARCH_NAMES))
OTHERS = sorted(p.stem for p in OFFICIAL_DIR.glob("*.txt") if not p.stem.startswith(ARCH_NAMES))
# The golden cases (tests/fixtures/golden/breadth/index.json, a copy of ../shared's).
GOLDEN: dict[str, dict] = golden_breadth_configs(*ARCH_NAMES)
# Tiny models (milliseconds on a CPU) for the detector, loading and tiling tests.
TINY: dict[str, dict] = {
    "EDSR": {"type": "EDSR", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 2, "upscale": 2},
    "RCAN": {"type": "RCAN", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_group": 2, "num_block": 1,
             "squeeze_factor": 4, "upscale": 3},
    "MSRResNet": {"type": "MSRResNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 2, "upscale": 4},
    "RRDBNet": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "scale": 2, "num_feat": 8, "num_block": 1,
                "num_grow_ch": 4},
    "SRVGGNetCompact": {"type": "SRVGGNetCompact", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_conv": 2,
                        "upscale": 2, "act_type": "prelu"},
}


def released(name: str) -> str:
    """The official file of a released configuration (below tests/fixtures/official; arguments on line 1)."""
    return f"breadth/{name}"


def meta_state(name: str) -> dict[str, torch.Tensor]:
    """Meta tensors with the names, shapes and dtypes of a released configuration's file."""
    return official_state_dict(released(name), device="meta")


def with_defaults(config: dict) -> dict:
    """``config`` with the constructor defaults it leaves out (tuples as lists, as JSON has them)."""
    params = inspect.signature(ARCHS.get(config["type"])).parameters.values()
    defaults = {p.name: list(p.default) if isinstance(p.default, tuple) else p.default
                for p in params if p.default is not inspect.Parameter.empty}
    return {**defaults, **config}


def meta_build(config: dict) -> torch.nn.Module:
    with torch.device("meta"):  # full-size models without allocating their weights
        return ARCHS.build(dict(config))


def shapes(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def tiny(name: str, **changes: object) -> torch.nn.Module:
    torch.manual_seed(0)
    model = ARCHS.build({**TINY[name], **changes}).eval()
    with torch.no_grad():  # non-trivial weights everywhere (BasicSR's init makes some branches tiny)
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    return model


def my_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    """The warnings of this plugin's detectors (their messages start with "<arch> checkpoint")."""
    return [str(w.message) for w in record if str(w.message).startswith(tuple(f"{a} checkpoint" for a in ARCH_NAMES))]


# -- registration and specs ---------------------------------------------------------------------
def test_registered_by_the_plugin() -> None:
    for name in ARCH_NAMES:
        assert ARCHS.entry(name).provider == "sr_classics"
        assert DETECTORS.entry(name).provider == "sr_classics"
    assert IRFRAME_PLUGIN_API == PLUGIN_API_VERSION


@pytest.mark.parametrize(
    "config, spec",
    [
        (TINY["EDSR"], (3, 3, 2, 1, 255.0)),
        ({**TINY["EDSR"], "img_range": 1.0, "upscale": 8}, (3, 3, 8, 1, 1.0)),
        (TINY["RCAN"], (3, 3, 3, 1, 255.0)),
        (TINY["MSRResNet"], (3, 3, 4, 1, 1.0)),
        ({**TINY["RRDBNet"], "scale": 4}, (3, 3, 4, 1, 1.0)),
        (TINY["RRDBNet"], (3, 3, 2, 2, 1.0)),
        ({**TINY["RRDBNet"], "scale": 1}, (3, 3, 1, 4, 1.0)),
        ({**TINY["SRVGGNetCompact"], "num_in_ch": 1, "num_out_ch": 1, "upscale": 3}, (1, 1, 3, 1, 1.0)),
    ],
)
def test_spec_and_output_shape(config: dict, spec: tuple) -> None:
    model = ARCHS.build(config).eval()
    s = get_spec(model)
    assert (s.in_channels, s.out_channels, s.scale, s.size_multiple, s.value_range) == spec
    assert s.tileable and 0 < s.tile_overlap <= 32 and s.tile_overlap % s.size_multiple == 0
    x = torch.rand(1, s.in_channels, 13, 10)  # not a multiple of 2 / 4: restore pads and crops back
    y = restore(model, x)
    assert y.shape == (1, s.out_channels, 13 * s.scale, 10 * s.scale) and torch.isfinite(y).all()


# -- official layouts and golden parity -----------------------------------------------------------
def test_every_released_configuration_is_covered() -> None:
    released = {name.split("_")[0] for name in OFFICIAL}
    assert released == set(ARCH_NAMES) and len(OFFICIAL) == 15, OFFICIAL


@pytest.mark.parametrize("name", OFFICIAL)
def test_state_dict_matches_official(name: str) -> None:
    entries, total = read_official(released(name))
    model = meta_build(official_config(released(name)))
    assert shapes(model) == entries  # names, shapes and order: a released file loads with strict=True
    assert sum(v.numel() for v in model.state_dict().values()) == total


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_golden_parity(case: str) -> None:
    out, expected = golden_breadth_output(case, ARCHS.build)
    assert out.shape == expected.shape
    assert float((out - expected).abs().max()) < 1e-5 * max(1.0, float(expected.abs().max()))


def test_golden_configs_match_shared_index() -> None:
    shared = shared_golden_breadth_configs()
    for case, config in GOLDEN.items():
        assert shared[case] == config, case
    ours = {c for c in shared if c.startswith(("edsr", "rcan", "msrresnet", "rrdbnet", "srvgg"))}
    assert ours == set(GOLDEN)


# -- detectors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", OFFICIAL)
def test_released_files_detect_to_their_configuration(name: str) -> None:
    config = official_config(released(name))
    state = meta_state(name)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        detected = detect_config(state, source=name)
    assert detected == with_defaults(config)  # every argument, res_scale / img_range / rgb_mean included
    assert not my_warnings(record)  # released configurations need no guess
    check_config_against(detected, state, strict=True, source=name)
    claims = [arch for arch, fn in DETECTOR_FNS.items() if fn(state) is not None]
    assert claims == [config["type"]]  # EDSR vs MSRResNet etc.: only its own detector claims it


@pytest.mark.parametrize("name", OTHERS)
def test_other_families_released_files_are_not_claimed(name: str) -> None:
    state = meta_state(name)
    assert [arch for arch, fn in DETECTOR_FNS.items() if fn(state) is not None] == []


def test_edsr_and_msrresnet_same_shapes_other_names() -> None:
    edsr, msr = (meta_state(n) for n in ("EDSR_Mx4", "MSRResNet_x4"))
    assert sum(t.numel() for t in edsr.values()) == sum(t.numel() for t in msr.values())
    assert detect_edsr(msr) is None and detect_msrresnet(edsr) is None
    assert detect_edsr(edsr)["res_scale"] == 1.0 and detect_msrresnet(msr)["upscale"] == 4  # type: ignore[index]


@pytest.mark.parametrize(
    "config",
    [
        *TINY.values(),
        {**TINY["EDSR"], "upscale": 3, "num_block": 3},
        {**TINY["EDSR"], "upscale": 1},
        {**TINY["RCAN"], "upscale": 8, "squeeze_factor": 2},
        {**TINY["MSRResNet"], "upscale": 2, "num_in_ch": 1, "num_out_ch": 1},
        {**TINY["RRDBNet"], "scale": 4, "num_block": 2},
        {**TINY["RRDBNet"], "scale": 1},
        {**TINY["RRDBNet"], "scale": 2, "num_in_ch": 1, "num_out_ch": 1},
        {**TINY["SRVGGNetCompact"], "num_conv": 0, "upscale": 3},
    ],
)
def test_detector_round_trip(config: dict) -> None:
    model = meta_build(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # res_scale of a non-released EDSR / RCAN
        detected = detect_config(model.state_dict())
    for key, value in config.items():
        assert detected[key] == value, key
    assert shapes(meta_build(detected)) == shapes(model)


@pytest.mark.parametrize("arch, fact", [("EDSR", "res_scale"), ("RCAN", "res_scale")])
def test_unknown_res_scale_is_said_in_one_line(arch: str, fact: str) -> None:
    with pytest.warns(UserWarning, match=rf"{fact} is not stored.*using res_scale=1.*model\.res_scale") as record:
        detected = DETECTOR_FNS[arch](meta_build(TINY[arch]).state_dict(), filename="/x/tiny.pth")
    assert detected is not None and detected["res_scale"] == 1.0
    assert [str(w.message).count("\n") for w in record] == [0] and "tiny.pth" in str(record[0].message)


def test_edsr_gray_gets_a_gray_mean_said_in_one_line() -> None:
    state = meta_build({**TINY["EDSR"], "num_in_ch": 1, "num_out_ch": 1, "rgb_mean": [0.5]}).state_dict()
    with warnings.catch_warnings(), pytest.warns(UserWarning, match="rgb_mean is not stored"):
        warnings.filterwarnings("ignore", message=".*res_scale is not stored")
        detected = detect_edsr(state)
    assert detected is not None and detected["rgb_mean"] == [0.43]  # DIV2K's mean of the three
    check_config_against(detected, state)


def test_srvgg_act_type_from_prelu_weights_or_a_warning() -> None:
    prelu = meta_build(TINY["SRVGGNetCompact"]).state_dict()
    assert detect_srvgg(prelu)["act_type"] == "prelu"  # type: ignore[index]
    plain = meta_build({**TINY["SRVGGNetCompact"], "act_type": "relu"}).state_dict()
    with pytest.warns(UserWarning, match="act_type is 'relu' or 'leakyrelu'.*using 'leakyrelu'.*act_type: relu"):
        assert detect_srvgg(plain)["act_type"] == "leakyrelu"  # type: ignore[index]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the file name settles it: no warning
        assert detect_srvgg(plain, filename="compact_x2_relu.pth")["act_type"] == "relu"  # type: ignore[index]
        assert detect_srvgg(plain, filename="x2_leakyrelu.pth")["act_type"] == "leakyrelu"  # type: ignore[index]


def test_rrdbnet_scale_from_conv_first_channels() -> None:
    for scale, first_in in ((4, 3), (2, 12), (1, 48)):
        state = meta_build({**TINY["RRDBNet"], "scale": scale}).state_dict()
        assert state["conv_first.weight"].shape[1] == first_in
        detected = detect_rrdbnet(state)
        assert detected is not None and (detected["scale"], detected["num_in_ch"]) == (scale, 3)


def test_detectors_ignore_other_files() -> None:
    others = [{}, {"conv.weight": torch.zeros(3, 3, 3, 3)}, {"body.0.weight": torch.zeros(8, 3, 3, 3)},
              {"conv_first.weight": torch.zeros(8, 3, 3, 3), "conv_last.weight": torch.zeros(3, 8, 3, 3)},
              {"body.0.weight": torch.zeros(8, 3, 3, 3), "body.1.weight": torch.zeros(8, 8, 3, 3),
               "body.2.weight": torch.zeros(3, 8, 3, 3)}]  # a plain sequential net: convs at odd indices
    for state in others:
        assert all(fn(state) is None for fn in DETECTOR_FNS.values()), list(state)


def _without(state: dict, prefix: str) -> dict:
    return {k: v for k, v in state.items() if not k.startswith(prefix)}


@pytest.mark.parametrize(
    "arch, edit, match",
    [
        ("EDSR", lambda sd: {k.replace("body.1.", "body.2."): v for k, v in sd.items()},
         r"residual blocks body\.N \[1\] missing"),
        ("EDSR", lambda sd: {**sd, "upsample.0.weight": torch.zeros(40, 8, 3, 3)}, "no pixel-shuffle layout"),
        ("RCAN", lambda sd: _without(sd, "body.1.residual_group.0."), r"different numbers of blocks \[1, 0\]"),
        ("RCAN", lambda sd: {**sd, **{k: torch.zeros(9, 8, 1, 1) for k in sd if k.endswith("attention.1.weight")}},
         "narrows 8 channels to 9"),
        ("MSRResNet", lambda sd: {**sd, "upconv1.weight": torch.zeros(24, 8, 3, 3)}, "no x2/x3/x4 layout"),
        ("RRDBNet", lambda sd: {**sd, "body.0.rdb2.conv1.weight": torch.zeros(5, 8, 3, 3)}, "different channel"),
        ("RRDBNet", lambda sd: {"RRDB_trunk.0.RDB1.conv1.weight": torch.zeros(32, 64, 3, 3),
                                "conv_first.weight": torch.zeros(64, 3, 3, 3)}, "old layout"),
        ("SRVGGNetCompact", lambda sd: _without(sd, "body.2."), "not consecutive"),
        ("SRVGGNetCompact", lambda sd: {**sd, "body.6.weight": torch.zeros(10, 8, 3, 3)}, "not 3 x upscale"),
    ],
)
def test_detector_refusals_name_the_problem(arch: str, edit, match: str) -> None:
    state = edit(dict(meta_build(TINY[arch]).state_dict()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(CheckpointError, match=match):
            DETECTOR_FNS[arch](state)


def test_released_file_with_an_extra_or_missing_tensor_names_it() -> None:
    config = official_config(released("EDSR_Mx2"))
    extra = {**meta_state("EDSR_Mx2"), "body.3.conv3.weight": torch.empty(64, 64, 3, 3, device="meta")}
    assert detect_config(extra) == config
    with pytest.raises(CheckpointError, match=r"not in the config's model: body\.3\.conv3\.weight"):
        check_config_against(config, extra)
    missing = _without(meta_state("EDSR_Mx2"), "conv_after_body.bias")
    assert detect_config(missing) == config
    with pytest.raises(CheckpointError, match=r"not in the file: conv_after_body\.bias"):
        check_config_against(config, missing)


# -- checkpoints ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "arch, wrap",
    [("EDSR", "params"), ("RCAN", "params_ema"), ("MSRResNet", "plain"), ("RRDBNet", "module"),
     ("SRVGGNetCompact", "params_ema"), ("EDSR", "module")],
)
def test_load_model_on_released_file_layouts(tmp_path: Path, arch: str, wrap: str) -> None:
    model = tiny(arch)
    sd = model.state_dict()
    payload = {
        "params": {"params": sd},
        "params_ema": {"params_ema": sd},
        "plain": sd,
        "module": {f"module.{k}": v for k, v in sd.items()},
    }[wrap]
    path = tmp_path / f"{arch}.pth"
    torch.save(payload, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # res_scale of a non-released EDSR / RCAN
        loaded = irframe.load_model(path)
    assert type(loaded).__name__ == arch
    x = torch.rand(1, 3, 8, 12)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-6)


# -- tiling --------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["SRVGGNetCompact", "MSRResNet", "EDSR"])
def test_tiled_restore_equals_whole_image(arch: str) -> None:
    model = tiny(arch)
    x = torch.rand(1, 3, 101, 87)
    whole = restore(model, x)
    tiled = restore(model, x, tile=40)  # the spec's tile_overlap covers these tiny nets' receptive field
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 1e-5


def test_unshuffle_input_size() -> None:
    model = tiny("RRDBNet", scale=1)
    with pytest.raises(ValueError, match="13x16 is not a multiple of 4"):
        model(torch.rand(1, 3, 13, 16))
    x = torch.rand(1, 3, 30, 41)  # restore pads to multiples of 4 (whole image and tiles) and crops back
    whole, tiled = restore(model, x), restore(model, x, tile=16, tile_overlap=8)
    assert whole.shape == tiled.shape == x.shape and torch.isfinite(tiled).all()
    x = torch.rand(2, 3, 8, 12)
    assert torch.equal(pixel_unshuffle(x, 4), torch.nn.functional.pixel_unshuffle(x, 4))  # BasicSR's order = torch's


# -- options -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "config, match",
    [
        ({**TINY["EDSR"], "upscale": 5}, r"EDSR: upscale=5 is not supported.*2\^n.*and 3"),
        ({**TINY["RCAN"], "upscale": 6}, r"RCAN: upscale=6 is not supported"),
        ({**TINY["MSRResNet"], "upscale": 8}, r"MSRResNet: upscale=8 is not supported; choose one of 2, 3, 4"),
        ({**TINY["RRDBNet"], "scale": 3}, r"RRDBNet: scale=3 is not supported; choose 4, 2 or 1"),
        ({**TINY["SRVGGNetCompact"], "act_type": "gelu"}, "act_type"),
        ({**TINY["EDSR"], "rgb_mean": [0.5, 0.5]}, "rgb_mean has 2 values"),
        ({**TINY["EDSR"], "img_range": 0}, "img_range must be > 0"),
        ({**TINY["RCAN"], "squeeze_factor": 16}, "leaves no channel"),
        ({**TINY["MSRResNet"], "num_out_ch": 1}, "num_out_ch must equal num_in_ch"),
        ({**TINY["EDSR"], "num_feat": 0}, "num_feat=0"),
        ({**TINY["EDSR"], "num_blocks": 2}, "did you mean 'num_block'"),
    ],
)
def test_bad_options_are_one_line(config: dict, match: str) -> None:
    with pytest.raises(OptionsError, match=match) as info:
        ARCHS.build(config, path="model")
    assert "\n" not in str(info.value)


def test_bad_act_type_refused_outside_the_registry_too() -> None:
    from irframe_sr_classics.srvgg import SRVGGNetCompact

    with pytest.raises(OptionsError, match="act_type='gelu' is not supported; choose one of prelu, relu, leakyrelu"):
        SRVGGNetCompact(act_type="gelu")  # type: ignore[arg-type]


# -- training ------------------------------------------------------------------------------------
def test_three_training_iterations_of_edsr_x2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import load_file

    from irframe.data.io import imwrite
    from irframe.train.cli import main as train_main

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for i in range(2):
            gt = rng.random((32, 32, 3), dtype=np.float32)
            imwrite(tmp_path / split / "gt" / f"{i}.png", gt)
            imwrite(tmp_path / split / "lq" / f"{i}.png", gt.reshape(16, 2, 16, 2, 3).mean(axis=(1, 3)))
    opt = yaml.safe_load((ROOT / "plugins" / "sr_classics" / "options" / "train_EDSR_Mx2.yml").read_text())
    opt["model"].update(num_feat=8, num_block=1)
    for split in ("train", "val"):
        folders = {"dataroot_gt": str(tmp_path / split / "gt"), "dataroot_lq": str(tmp_path / split / "lq")}
        opt["datasets"][split].update(folders)
    opt["datasets"]["train"].update(gt_size=16, batch_size=2, num_workers=0)
    opt["train"].update(total_iter=3, scheduler={"type": "MultiStepLR", "milestones": [2], "gamma": 0.5})
    opt["val"]["freq"] = 3
    opt["logger"].update(print_freq=1, checkpoint_freq=3, tensorboard=False, progress_bar=False)
    opt["path"] = {"experiments_root": str(tmp_path / "exp")}
    (tmp_path / "edsr.yml").write_text(yaml.safe_dump(opt, sort_keys=False))
    assert train_main(["-opt", str(tmp_path / "edsr.yml"), "--threads", "1"]) == 0
    checkpoint = tmp_path / "exp" / "EDSR_Mx2_DIV2K" / "checkpoints" / "iter_000003"
    weights = load_file(str(checkpoint / "model.safetensors"))
    assert "upsample.0.weight" in weights and all(torch.isfinite(v).all() for v in weights.values())
    trained = irframe.load_model(checkpoint)  # our own file carries its config: no detection needed
    assert get_spec(trained).scale == 2 and trained(torch.rand(1, 3, 8, 8)).shape == (1, 3, 16, 16)
