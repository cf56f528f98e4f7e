"""NAFNet plugin: official state_dict layouts, golden parity (plain and TLC), detectors, loading,
inference through the engine, a few training iterations, and clear errors."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from irframe_nafnet import IRFRAME_PLUGIN_API
from irframe_nafnet.arch import Baseline, BaselineLocal, NAFNet, NAFNetLocal
from irframe_nafnet.blocks import LocalAvgPool2d, tlc_pooling_plan
from irframe_nafnet.detect import detect_baseline, detect_nafnet

import irframe
from irframe.errors import CheckpointError, OptionsError
from irframe.nn.autoload import check_config_against, detect_config
from irframe.nn.inference import restore
from irframe.nn.spec import get_spec
from irframe.registry import ARCHS, DETECTORS, PLUGIN_API_VERSION
from tests.helpers import FIXTURES, SHARED, three_iteration_run

OFFICIAL_DIR = FIXTURES / "official" / "breadth"
GOLDEN_DIR = FIXTURES / "golden" / "breadth"
OFFICIAL = sorted(p.stem for p in OFFICIAL_DIR.glob("*.txt") if re.search(r"NAFNet|Baseline", p.name))
# The golden cases (configs copied from ../shared/golden/breadth/index.json).
GOLDEN = {
    "nafnet": {"type": "NAFNet", "img_channel": 3, "width": 8, "middle_blk_num": 1, "enc_blk_nums": [1, 1],
               "dec_blk_nums": [1, 1]},
    "nafnet_local_tlc": {"type": "NAFNetLocal", "img_channel": 3, "width": 8, "middle_blk_num": 1,
                         "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1], "train_size": [1, 3, 16, 16],
                         "fast_imp": False},
}
TINY = {"type": "NAFNet", "width": 8, "middle_blk_num": 1, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1]}
TINY_BASELINE = {**TINY, "type": "Baseline", "dw_expand": 2, "ffn_expand": 2}
LOCAL_TYPES = {"NAFNetLocal", "BaselineLocal"}


def read_released(name: str) -> tuple[str, dict, list[tuple[str, tuple[int, ...]]], int]:
    """``(type, constructor args, [(key, shape)], float count)`` of an official ``<name>.txt``."""
    lines = (OFFICIAL_DIR / f"{name}.txt").read_text().splitlines()
    head = re.match(r"# [^:]+: (\w+) (\{.*\})$", lines[0])
    assert head, lines[0]
    total = int(re.search(r"(\d+) floating-point values", lines[1]).group(1))  # type: ignore[union-attr]
    entries = []
    for line in lines[2:]:
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.split("\t")[:2]
        entries.append((key, tuple(int(v) for v in re.findall(r"\d+", shape))))
    return head.group(1), json.loads(head.group(2)), entries, total


def shapes(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def meta_build(config: dict) -> torch.nn.Module:
    with torch.device("meta"):
        return ARCHS.build(dict(config), path="test.model")


def build_tiny(config: dict, seed: int = 0) -> torch.nn.Module:
    """``config`` with random weights (beta/gamma too, so every branch contributes), eval mode."""
    torch.manual_seed(seed)
    model = ARCHS.build(dict(config), path="test.model").eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.normal_(0, 0.5)
    return model


# -- registration, official layouts --------------------------------------------------------------------------------
def test_registered_by_the_plugin() -> None:
    for name in ("NAFNet", "NAFNetLocal", "Baseline", "BaselineLocal"):
        assert ARCHS.entry(name).provider == "nafnet"
    for name in ("NAFNet", "NAFNetBaseline"):
        assert DETECTORS.entry(name).provider == "nafnet"
    assert IRFRAME_PLUGIN_API == PLUGIN_API_VERSION
    assert len(OFFICIAL) == 9


@pytest.mark.parametrize("name", OFFICIAL)
def test_state_dict_matches_official(name: str) -> None:
    arch, args, expected, total = read_released(name)
    model = meta_build({"type": arch, **args})
    assert shapes(model) == expected  # names, shapes and order
    assert sum(v.numel() for v in model.state_dict().values()) == total


def test_spec_and_defaults() -> None:
    model = ARCHS.build({"type": "NAFNet"})  # the official defaults: width 16, one middle block, no levels
    assert [k for k in model.state_dict() if not k.startswith("middle_blks.0.")] == [
        "intro.weight", "intro.bias", "ending.weight", "ending.bias"]
    assert model.intro.out_channels == 16
    gray = ARCHS.build({**TINY, "img_channel": 1})
    spec = get_spec(gray)
    assert (spec.in_channels, spec.out_channels, spec.scale, spec.size_multiple, spec.value_range) == (1, 1, 1, 4, 1.0)
    assert spec.tileable and gray.padder_size == 4


# -- golden parity -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_golden_parity(case: str) -> None:
    data = np.load(GOLDEN_DIR / f"{case}.npz")
    model = ARCHS.build(GOLDEN[case]).eval()
    state = {k[len("sd/"):]: torch.from_numpy(data[k]) for k in data.files if k.startswith("sd/")}
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        out = model(torch.from_numpy(data["input"])).numpy()
    assert out.shape == data["output"].shape
    assert np.abs(out - data["output"]).max() < 1e-5 * max(1.0, float(np.abs(data["output"]).max()))


def test_golden_configs_match_shared_index() -> None:
    index = SHARED / "golden" / "breadth" / "index.json"
    if not index.is_file():
        pytest.skip(f"{index} not present")
    cases = json.loads(index.read_text())
    for case, config in GOLDEN.items():
        assert {"type": cases[case]["type"], **cases[case]["config"]} == config, case


def test_tlc_windows() -> None:
    # train 16x16 on 2 levels: 1.5 * 16 = 24 at full resolution, halved per level (the golden's 24 on 32x32)
    assert [k for k, _ in tlc_pooling_plan((1, 3, 16, 16), 2)] == [(24, 24), (12, 12), (6, 6)]
    # the released models: 256 crops, 4 levels
    assert [k for k, _ in tlc_pooling_plan((1, 3, 256, 256), 4)] == [(384, 384), (192, 192), (96, 96), (48, 48),
                                                                     (24, 24)]
    # a crop that is no multiple of 2**levels is zero padded first (18x30 -> 20x32 on 2 levels), and the
    # window is 1.5 * crop scaled to the padded map: 20 * 27 // 18, 32 * 45 // 30
    assert tlc_pooling_plan((1, 3, 18, 30), 2)[0][0] == (30, 48)


def test_local_pooling_is_a_box_mean_with_replicated_border() -> None:
    x = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    pool = LocalAvgPool2d((4, 5))
    out = pool(x)
    box = F.avg_pool2d(x, (4, 5), stride=1)  # 6 x 7 windows that fit
    assert out.shape == x.shape
    assert torch.allclose(out[:, :, 1:7, 2:9], box)
    assert torch.equal(out[:, :, 0, 2:9], out[:, :, 1, 2:9]) and torch.equal(out[:, :, 8, 2:9], out[:, :, 6, 2:9])
    # a window covering the input is the global mean, as the pooling it replaces
    assert torch.allclose(LocalAvgPool2d((9, 11))(x), x.mean((2, 3), keepdim=True))
    assert LocalAvgPool2d((9, 11), fast_imp=True)(x).shape == (2, 3, 1, 1)


def test_local_equals_plain_when_every_window_covers_the_input() -> None:
    plain = build_tiny(TINY)
    local = ARCHS.build({**TINY, "type": "NAFNetLocal", "train_size": [1, 3, 16, 16]}).eval()
    local.load_state_dict(plain.state_dict(), strict=True)  # same names
    x16, x32 = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(local(x16), plain(x16), atol=1e-6)  # windows 24/12/6 >= 16/8/4
        assert not torch.allclose(local(x32), plain(x32), atol=1e-4)  # 32/16/8: local statistics
        fast = ARCHS.build({**TINY, "type": "NAFNetLocal", "train_size": [1, 3, 16, 16], "fast_imp": True}).eval()
        fast.load_state_dict(plain.state_dict())
        y = fast(x32)
    assert y.shape == x32.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("cls", [NAFNet, Baseline, NAFNetLocal, BaselineLocal])
def test_forward_any_size_and_identity_at_init(cls: type) -> None:
    torch.manual_seed(0)
    model = cls(img_channel=1, width=4, middle_blk_num=1, enc_blk_nums=[1, 2], dec_blk_nums=[1, 1]).eval()
    x = torch.rand(2, 1, 13, 7)
    with torch.no_grad():
        assert model(x).shape == x.shape
        torch.nn.init.zeros_(model.ending.weight)
        torch.nn.init.zeros_(model.ending.bias)
        assert torch.equal(model(x), x)  # output = ending(...) + input


def test_wrong_input_channels_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"expected an \(N, 3, H, W\) input, got shape \(1, 1, 8, 8\)"):
        ARCHS.build(TINY)(torch.rand(1, 1, 8, 8))


# -- detectors -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", OFFICIAL)
def test_released_configs_are_detected(name: str) -> None:
    arch, args, expected, _ = read_released(name)
    state = {k: torch.empty(s, device="meta") for k, s in expected}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = detect_config(state, source=name)
    notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert config["type"] == arch
    for key, value in args.items():
        assert config[key] == value, key
    if arch in LOCAL_TYPES:
        assert config["train_size"] == [1, 3, 256, 256] and config["fast_imp"] is False
        assert len(notes) == 1 and "\n" not in notes[0]
        assert f"using {arch} with train_size [1, 3, 256, 256]" in notes[0]
        assert f"pass an option file (-opt) with model: {{type: {arch[:-len('Local')]}, ...}}" in notes[0]
    else:
        assert notes == [] and "train_size" not in config
    check_config_against(config, state, source=name)
    assert shapes(meta_build(config)) == expected


def test_file_name_hint() -> None:
    gopro_counts = meta_build({**TINY, "enc_blk_nums": [1, 1, 1, 28], "dec_blk_nums": [1, 1, 1, 1]}).state_dict()
    assert detect_nafnet(gopro_counts, filename="/models/NAFNet-SIDD-width32.pth")["type"] == "NAFNet"
    tiny = meta_build(TINY_BASELINE).state_dict()
    assert detect_baseline(tiny)["type"] == "Baseline"  # unknown counts, no hint: the plain model
    with pytest.warns(UserWarning, match=r"NAFNet-REDS-tiny\.pth.*BaselineLocal with train_size \[1, 3, 256, 256\]"):
        config = detect_baseline(tiny, filename="ckpt/NAFNet-REDS-tiny.pth")
    assert config == {**TINY_BASELINE, "img_channel": 3, "type": "BaselineLocal", "train_size": [1, 3, 256, 256],
                      "fast_imp": False}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert detect_nafnet(meta_build(TINY).state_dict(), filename="shreds_nafnet.pth")["type"] == "NAFNet"


@pytest.mark.parametrize(
    "config",
    [
        TINY,
        {**TINY, "img_channel": 1, "width": 6, "middle_blk_num": 0, "enc_blk_nums": [2, 0, 1],
         "dec_blk_nums": [0, 1, 3]},
        {**TINY_BASELINE, "dw_expand": 1, "ffn_expand": 3, "middle_blk_num": 2},
        {"type": "NAFNet", "img_channel": 3, "width": 4, "middle_blk_num": 0, "enc_blk_nums": [], "dec_blk_nums": []},
    ],
)
def test_detector_round_trip(config: dict) -> None:
    state = meta_build(config).state_dict()
    detected = detect_config(state)
    for key, value in config.items():
        assert detected[key] == value, key
    assert shapes(meta_build(detected)) == shapes(meta_build(config))


def test_families_do_not_claim_each_other_or_other_files() -> None:
    naf, base = meta_build(TINY).state_dict(), meta_build(TINY_BASELINE).state_dict()
    assert detect_baseline(naf) is None and detect_nafnet(base) is None
    assert detect_nafnet({}) is None and detect_baseline({}) is None
    other = {"intro.weight": torch.empty(8, 3, 3, 3), "conv_first.weight": torch.empty(8, 3, 3, 3)}
    assert detect_nafnet(other) is None and detect_baseline(other) is None


def test_detector_refuses_inconsistent_files() -> None:
    state = dict(meta_build(TINY).state_dict())
    no_up = {k: v for k, v in state.items() if not k.startswith("ups.1.")}
    with pytest.raises(CheckpointError, match=r"2 downsampling levels \(downs\.\*\) but 1 upsampling"):
        detect_nafnet(no_up)
    with pytest.raises(CheckpointError, match="ending.weight"):
        detect_nafnet({k: v for k, v in state.items() if not k.startswith("ending.")})
    mixed = {**state, **{f"encoders.0.0.se.{i}.weight": torch.empty(1, device="meta") for i in (1, 3)}}
    with pytest.raises(CheckpointError, match="mixes NAFNet"):
        detect_nafnet(mixed)
    missing = {k: v for k, v in state.items() if k != "decoders.0.0.conv5.bias"}
    with pytest.raises(CheckpointError, match=r"decoders\.0\.0\.conv5\.bias"):
        check_config_against(detect_config(missing), missing)


# -- loading, inference, training ----------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["params", "module"])
def test_load_model_released_layouts(tmp_path: Path, layout: str) -> None:
    model = build_tiny(TINY)
    state = model.state_dict()
    payload = {"params": state} if layout == "params" else {f"module.{k}": v for k, v in state.items()}
    path = tmp_path / "nafnet_tiny.pth"
    torch.save(payload, path)
    loaded = irframe.load_model(path)
    assert type(loaded) is NAFNet and loaded.irframe_config == {**TINY, "img_channel": 3}
    x = torch.rand(1, 3, 12, 20)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_restore_odd_size() -> None:
    model = build_tiny(TINY)
    x = torch.rand(1, 3, 13, 13)
    y = restore(model, x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    with torch.no_grad():  # size_multiple 4: the engine reflect-pads to 16x16 and crops back
        assert torch.allclose(y, model(F.pad(x, (0, 3, 0, 3), mode="reflect"))[..., :13, :13], atol=1e-6)
    tiled = restore(model, x, tile=8, tile_overlap=2)
    assert tiled.shape == x.shape and torch.isfinite(tiled).all()


@pytest.mark.slow  # torch.export + ONNX conversion: tens of seconds on a busy CPU
def test_onnx_export_of_the_local_variant_takes_any_multiple(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")
    pytest.importorskip("onnxscript", reason="the [export] extra is not installed")
    from irframe.nn.export import export_onnx

    config = {"type": "NAFNetLocal", "width": 4, "enc_blk_nums": [1], "dec_blk_nums": [1], "train_size": [1, 3, 16, 16]}
    model = build_tiny(config)
    export_onnx(model, tmp_path / "local.onnx", optimize=False, dynamic_batch=False)
    session = ort.InferenceSession(str(tmp_path / "local.onnx"))
    # windows 24 and 12: on 8x40 they cover the height but not the width; on 32x48 they are local
    for size in ((8, 40), (32, 48)):
        x = torch.rand(1, 3, *size)
        with torch.no_grad():
            expected = model(x).numpy()
        assert np.abs(session.run(None, {"input": x.numpy()})[0] - expected).max() < 1e-5


def test_trains_a_few_iterations(tmp_path: Path) -> None:
    from irframe.train.cli import main as train_main

    noise = {"type": "GaussianNoise", "sigma": 25}
    options = {
        "name": "nafnet_tiny_denoise",
        "seed": 0,
        "model": {**TINY, "width": 4},
        "datasets": {
            "train": {"type": "OnlineDegradationDataset", "dataroot_gt": "unset", "degradation": noise,
                      "gt_size": 16, "use_flip": True, "batch_size": 2, "num_workers": 0},
            "val": {"type": "OnlineDegradationDataset", "dataroot_gt": "unset", "degradation": noise, "seed": 0},
        },
        "train": {"total_iter": 3, "optim": {"type": "AdamW", "lr": 1.0e-3}, "losses": [{"type": "L1Loss"}]},
        "val": {"freq": 3, "metrics": [{"type": "PSNR", "crop_border": 0}]},
        "logger": {"print_freq": 1, "checkpoint_freq": 3},
    }
    opt = tmp_path / "train_nafnet.yml"
    opt.write_text(yaml.safe_dump(options))
    sets = three_iteration_run(tmp_path, 22)  # 22x22 validation images: not a multiple of 4
    assert train_main(["-opt", str(opt), "--threads", "1", "--set", *sets]) == 0
    checkpoint = tmp_path / "exp" / "nafnet_tiny_denoise" / "checkpoints" / "iter_000003"
    model = irframe.load_model(checkpoint)
    assert type(model) is NAFNet and model.intro.out_channels == 4


# -- bad options ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, match",
    [
        ({"width": -8}, r"NAFNet: width must be a positive number of channels, got -8"),
        ({"img_channel": 0}, "img_channel must be a positive"),
        ({"middle_blk_num": -1}, "middle_blk_num must be >= 0"),
        ({"enc_blk_nums": [1, 1, 1]}, r"enc_blk_nums \[1, 1, 1\] and dec_blk_nums \[1, 1\] must have the same length"),
        ({"dec_blk_nums": [1, -1]}, r"dec_blk_nums must hold block counts >= 0"),
        ({"type": "NAFNetLocal", "train_size": [1, 3, 256]}, r"NAFNetLocal: train_size must be 4 positive numbers"),
        ({"type": "BaselineLocal", "train_size": [1, 3, 0, 256]}, r"BaselineLocal: train_size must be 4 positive"),
        ({"type": "Baseline", "dw_expand": 0}, "dw_expand and ffn_expand must be >= 1"),
        ({"type": "Baseline", "width": 1}, r"width \* dw_expand must be >= 2"),
        ({"widht": 8}, "did you mean 'width'"),
    ],
)
def test_bad_options_are_one_clear_line(bad: dict, match: str) -> None:
    with pytest.raises(OptionsError, match=match) as info:
        ARCHS.build({**TINY, **bad}, path="network_g")
    assert "\n" not in str(info.value)
