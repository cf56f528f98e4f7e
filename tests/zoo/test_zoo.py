"""The model zoo: zoo:NAME resolution, listing, publishing, classical baselines, and the shipped models.

The last test loads every ``zoo/*.safetensors`` of the checkout and checks it restores one real crop
(from ../shared/data) better than its degraded input: a fast check, not a re-training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import irframe
from irframe.errors import CheckpointError, OptionsError
from irframe.nn.weights import save_weights
from irframe.registry import ARCHS, DEGRADATIONS

ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "zoo"

TINY = {
    "type": "Restormer", "inp_channels": 1, "out_channels": 1, "dim": 8, "num_blocks": [1, 1, 1, 1],
    "num_refinement_blocks": 1, "heads": [1, 1, 1, 1], "ffn_expansion_factor": 2.0, "bias": False,
    "LayerNorm_type": "BiasFree",
}


def _psnr(a: np.ndarray, b: np.ndarray, crop_border: int = 0, test_y_channel: bool = False) -> float:
    """PSNR in dB of two [0, 1] images quantised to 8 bits (optionally the SR protocol: Y, border cropped)."""
    from irframe.metrics.numpy_metrics import calculate_psnr

    a8, b8 = np.rint(np.clip(a, 0, 1) * 255), np.rint(np.clip(b, 0, 1) * 255)
    return float(calculate_psnr(a8, b8, crop_border=crop_border, test_y_channel=test_y_channel))


@pytest.fixture
def tiny_ckpt(tmp_path: Path) -> Path:
    """A tiny gray Restormer written as tools/train.py writes checkpoints (arch + config metadata)."""
    torch.manual_seed(0)
    model = ARCHS.build(TINY)
    return save_weights(
        model, tmp_path / "ckpt" / "model.safetensors", {"arch": "Restormer", "config": json.dumps(TINY)}
    )


@pytest.fixture
def zoo_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "zoo"
    folder.mkdir()
    monkeypatch.setenv("IRFRAME_ZOO", str(folder))
    return folder


def test_publish_then_load_by_zoo_name(tiny_ckpt: Path, zoo_tmp: Path) -> None:
    from irframe.zoo import list_zoo, publish

    out = publish(tiny_ckpt.parent, "tiny_gray", {"task": "gray test model", "option_file": "x.yml"})
    assert out == zoo_tmp / "tiny_gray.safetensors"
    model = irframe.load_model("zoo:tiny_gray")
    assert model.irframe_config["dim"] == 8
    ref = irframe.load_model(tiny_ckpt)
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), ref(x))
    (entry,) = list_zoo()
    assert (entry.name, entry.arch, entry.card["task"]) == ("tiny_gray", "Restormer", "gray test model")
    assert entry.card["source"] == str(tiny_ckpt)
    assert entry.params == sum(p.numel() for p in ref.state_dict().values())
    # zoo:NAME.safetensors works too
    assert irframe.load_model("zoo:tiny_gray.safetensors").irframe_config == model.irframe_config


def test_publish_half_stores_float16_and_loads_as_float32(tiny_ckpt: Path, zoo_tmp: Path, tmp_path: Path) -> None:
    from safetensors import safe_open

    from irframe.zoo import list_zoo, publish

    full = publish(tiny_ckpt, "full", {"task": "t"})
    half = publish(tiny_ckpt, "half", {"task": "t"}, half=True)
    with safe_open(str(half), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable) == {torch.float16}
    assert half.stat().st_size < 0.6 * full.stat().st_size
    model, ref = irframe.load_model("zoo:half"), irframe.load_model("zoo:full")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    for (name, a), b in zip(model.state_dict().items(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b.half().float()), name  # only the stored rounding differs
    assert {e.name: e.card.get("stored") for e in list_zoo()} == {"full": None, "half": "float16"}
    huge = save_weights({"w": torch.tensor([1e6])}, tmp_path / "huge.safetensors", {"arch": "X", "config": "{}"})
    with pytest.raises(CheckpointError, match=r"huge\.safetensors: w holds 1e\+06, beyond float16's range"):
        publish(huge, "huge", {}, half=True)


def test_publish_refuses_overwrite_bad_names_and_foreign_files(tiny_ckpt: Path, zoo_tmp: Path, tmp_path: Path) -> None:
    from irframe.zoo import publish

    publish(tiny_ckpt, "m", {"task": "t"})
    with pytest.raises(CheckpointError, match="exists"):
        publish(tiny_ckpt, "m", {"task": "t"})
    publish(tiny_ckpt, "m", {"task": "t2"}, force=True)
    for bad in ("a/b", "zoo:x", "m.safetensors", ""):
        with pytest.raises(CheckpointError, match="zoo name"):
            publish(tiny_ckpt, bad, {})
    bare = save_weights({"w": torch.zeros(2)}, tmp_path / "bare.safetensors")
    with pytest.raises(CheckpointError, match="metadata"):
        publish(bare, "bare", {})


def test_unknown_zoo_name_lists_available(tiny_ckpt: Path, zoo_tmp: Path) -> None:
    from irframe.zoo import publish

    publish(tiny_ckpt, "alpha", {"task": "t"})
    with pytest.raises(CheckpointError, match=r"no zoo model 'beta'.*available: alpha"):
        irframe.load_model("zoo:beta")
    with pytest.raises(CheckpointError, match="plain model name"):
        irframe.load_model("zoo:../alpha")
    with pytest.raises(CheckpointError, match="plain model name"):
        irframe.load_model("zoo:")


def test_cli_zoo_lists_and_publishes(tiny_ckpt: Path, zoo_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from irframe.cli import main

    assert main(["zoo"]) == 0
    assert "no zoo models" in capsys.readouterr().out
    assert main(["zoo", "publish", str(tiny_ckpt), "cli_model", "--option", "o.yml", "--task", "gray test"]) == 0
    capsys.readouterr()
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    assert "cli_model" in out and "Restormer" in out and "gray test" in out
    assert main(["zoo", "publish", str(tiny_ckpt), "cli_model", "--option", "o.yml", "--task", "t"]) == 1
    assert "exists" in capsys.readouterr().err


def test_infer_tool_takes_zoo_name(tiny_ckpt: Path, zoo_tmp: Path, tmp_path: Path) -> None:
    import cv2

    from irframe.evaluate.cli import infer_main
    from irframe.zoo import publish

    publish(tiny_ckpt, "tiny", {"task": "t"})
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), (np.random.default_rng(0).random((24, 20)) * 255).astype(np.uint8))
    out_dir = tmp_path / "out"
    assert (
        infer_main(["--checkpoint", "zoo:tiny", "--input", str(img), "--output", str(out_dir), "--device", "cpu"]) == 0
    )
    restored = cv2.imread(str(out_dir / "in.png"), cv2.IMREAD_UNCHANGED)
    assert restored is not None and restored.shape == (24, 20)


def _real_crop(shared: Path, rel: str, channels: int, top: int = 96, left: int = 96, size: int = 64) -> np.ndarray:
    from irframe.data.io import imread

    img = imread(shared / "data" / rel, channels=channels)
    return np.ascontiguousarray(img[top : top + size, left : left + size])


def test_non_local_means_baseline_denoises_a_real_crop(shared_dir: Path) -> None:
    clean = _real_crop(shared_dir, "Kodak24/clean/kodim05.png", 3)
    noisy = DEGRADATIONS.build({"type": "GaussianNoise", "sigma": 25})(clean, np.random.default_rng(0))
    nlm = ARCHS.build({"type": "NonLocalMeans", "h": 10, "channels": 3})
    out = nlm(torch.from_numpy(noisy).permute(2, 0, 1)[None]).squeeze(0).permute(1, 2, 0).numpy()
    assert _psnr(out, clean) > _psnr(noisy, clean) + 2.0
    gray = _real_crop(shared_dir, "BSD68/clean/test001.png", 1)
    noisy_g = DEGRADATIONS.build({"type": "GaussianNoise", "sigma": 25})(gray, np.random.default_rng(0))
    out_g = ARCHS.build({"type": "NonLocalMeans", "h": 25, "channels": 1})(
        torch.from_numpy(noisy_g).permute(2, 0, 1)[None]
    )
    assert _psnr(out_g[0].permute(1, 2, 0).numpy(), gray) > _psnr(noisy_g, gray) + 2.0


def test_classical_baselines_check_their_options() -> None:
    with pytest.raises(OptionsError, match="NonLocalMeans.h"):
        ARCHS.build({"type": "NonLocalMeans", "h": 0})
    with pytest.raises(OptionsError, match="search_window"):
        ARCHS.build({"type": "NonLocalMeans", "search_window": 20})
    with pytest.raises(OptionsError, match="NonLocalMeans.channels"):
        ARCHS.build({"type": "NonLocalMeans", "channels": 2})
    with pytest.raises(OptionsError, match="Bicubic.scale"):
        ARCHS.build({"type": "Bicubic", "scale": 0})
    with pytest.raises(OptionsError, match="input of shape"):
        ARCHS.build({"type": "NonLocalMeans", "channels": 3})(torch.rand(1, 1, 8, 8))


def test_bicubic_baseline_is_matlab_imresize() -> None:
    from irframe.data.degradations.resize import imresize

    x = np.random.default_rng(1).random((10, 12, 3)).astype(np.float32)
    out = ARCHS.build({"type": "Bicubic", "scale": 2})(torch.from_numpy(x).permute(2, 0, 1)[None])
    assert out.shape == (1, 3, 20, 24)
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), imresize(x, 2.0), atol=1e-6)


# How each shipped zoo model is checked: a real crop (from images the model never trained on) and
# how its degraded input is made. A zoo file without an entry here fails the test below.
CHECKS: dict[str, dict] = {
    "restormer_color_denoise_s25": {"gt": "Kodak24/clean/kodim05.png", "channels": 3, "noise": 25},
    "restormer_gray_denoise_s25": {"gt": "BSD68/clean/test001.png", "channels": 1, "noise": 25},
    "nafnet_gray_denoise_s25": {"gt": "BSD68/clean/test001.png", "channels": 1, "noise": 25},
    "nafnet_color_denoise_s25": {"gt": "Kodak24/clean/kodim05.png", "channels": 3, "noise": 25},
    "nafnet_gray_denoise_s25_more": {"gt": "BSD68/clean/test001.png", "channels": 1, "noise": 25},
    "nafnet_color_denoise_s25_more": {"gt": "Kodak24/clean/kodim05.png", "channels": 3, "noise": 25},
    # sigma-blind: one model, never told the level, checked at both ends of its training range
    "nafnet_gray_denoise_blind": {"gt": "BSD68/clean/test001.png", "channels": 1, "noise": [15, 50]},
    "restormer_dirty_documents_tiny": {
        "gt": "DirtyDocuments/clean/3.png",
        "lq": "DirtyDocuments/noisy/3.png",
        "channels": 1,
    },
    "promptir_allinone": {"gt": "Rain100H/clean/100.png", "lq": "Rain100H/rainy/100.png", "channels": 3},
    # SR: a 128x128 LR crop (the face), scored by the SR protocol (Y, `scale` border pixels cropped)
    # against its MATLAB bicubic up-sampling; the bar is the zoo's SR target, bicubic + 0.5 dB
    # ("margin"): the default 64x64 crop is a smooth patch where bicubic is already at 40.6 dB
    "ipt_sr_x2": {
        "gt": "Set5/HR/baby.png",
        "lq": "Set5/LR_bicubic/X2/babyx2.png",
        "channels": 3,
        "scale": 2,
        "top": 64,
        "size": 128,
        "margin": 0.5,
    },
}


def _zoo_files() -> list[Path]:
    return sorted(ZOO.glob("*.safetensors")) if ZOO.is_dir() else []


@pytest.mark.parametrize("file", _zoo_files(), ids=lambda p: p.stem)
def test_zoo_model_restores_a_real_crop(file: Path, shared_dir: Path) -> None:
    # a few MB each (larger models are published with --half: float16 storage)
    assert file.stat().st_size < 10 * 2**20, f"{file.name}: a zoo model must stay a few MB"
    check = CHECKS.get(file.stem)
    assert check is not None, f"{file.name}: add a real-crop check for it to CHECKS in {__file__}"
    model = irframe.load_model(f"zoo:{file.stem}")
    scale = check.get("scale", 1)
    top, size = check.get("top", 96), check.get("size", 64)  # in input pixels (SR: LR pixels)
    gt = _real_crop(shared_dir, check["gt"], check["channels"], top=top * scale, left=top * scale, size=size * scale)
    if "lq" in check:
        inputs = {"": _real_crop(shared_dir, check["lq"], check["channels"], top=top, left=top, size=size)}
    else:
        levels = check["noise"] if isinstance(check["noise"], list) else [check["noise"]]
        noise = {sigma: DEGRADATIONS.build({"type": "GaussianNoise", "sigma": sigma}) for sigma in levels}
        inputs = {f" at sigma {sigma}": deg(gt, np.random.default_rng(0)) for sigma, deg in noise.items()}
    from irframe.nn.inference import restore

    for label, lq in inputs.items():
        with torch.no_grad():
            out = restore(model, torch.from_numpy(lq).permute(2, 0, 1)[None], task=check.get("task"))
        restored = out[0].permute(1, 2, 0).numpy()
        if scale > 1:  # the input's own estimate of the HR crop: MATLAB bicubic
            from irframe.data.degradations.resize import imresize

            lq = imresize(lq, float(scale))
        assert restored.shape == gt.shape
        protocol = {"crop_border": scale, "test_y_channel": True} if scale > 1 else {}
        before, after = _psnr(lq, gt, **protocol), _psnr(restored, gt, **protocol)
        margin = check.get("margin", 1.0)
        assert after > before + margin, (
            f"{file.name}{label}: restored {after:.2f} dB vs input {before:.2f} dB (+{margin} needed)"
        )
