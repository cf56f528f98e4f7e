"""The BM3D / CBM3D baseline: the `bm3d` package's output on the engine's [0, 1] tensors, scored as an arch."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from irframe.errors import OptionsError
from irframe.registry import ARCHS

bm3d = pytest.importorskip("bm3d", reason="the BM3D baseline needs the bm3d extra (pip install 'irframe[bm3d]')")


def _noisy(channels: int, sigma: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:40, 0:40] / 40.0
    clean = np.stack([0.5 + 0.3 * np.sin(6 * xx + c) * np.cos(4 * yy) for c in range(channels)])[None]
    noisy = clean + rng.normal(0, sigma / 255.0, clean.shape)
    return torch.from_numpy(clean).float(), torch.from_numpy(noisy).float()


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / torch.mean((a.double() - b.double()) ** 2)))


@pytest.mark.parametrize("channels", [1, 3])
def test_bm3d_is_the_packages_output_on_the_same_image(channels: int) -> None:
    clean, noisy = _noisy(channels, 25.0)
    model = ARCHS.build({"type": "BM3D", "channels": channels, "sigma": 25})
    out = model(noisy)
    assert out.shape == noisy.shape and out.dtype == torch.float32
    img = noisy[0].double().permute(1, 2, 0).numpy()
    ref = bm3d.bm3d(img[..., 0], 25 / 255.0)[..., None] if channels == 1 else bm3d.bm3d_rgb(img, 25 / 255.0)
    assert np.allclose(out[0].permute(1, 2, 0).numpy(), ref, atol=1e-6)
    # and it denoises: far above the noisy input
    assert _psnr(out, clean) > _psnr(noisy, clean) + 5


def test_bm3d_bad_options_are_one_line() -> None:
    with pytest.raises(OptionsError, match=r"BM3D.sigma: .*got 0"):
        ARCHS.build({"type": "BM3D", "sigma": 0})
    with pytest.raises(OptionsError, match=r"BM3D.profile: expected one of np"):
        ARCHS.build({"type": "BM3D", "profile": "fast"})
    with pytest.raises(OptionsError, match=r"BM3D.channels"):
        ARCHS.build({"type": "BM3D", "channels": 2})
    model = ARCHS.build({"type": "BM3D", "channels": 1})
    with pytest.raises(OptionsError, match=r"BM3D\(channels=1\): got an input of shape \(1, 3, 8, 8\)"):
        model(torch.rand(1, 3, 8, 8))


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    model = ARCHS.build({"type": "BM3D", "channels": 1})
    monkeypatch.setitem(sys.modules, "bm3d", None)
    with pytest.raises(OptionsError, match=r"pip install 'irframe\[bm3d\]'"):
        model(torch.rand(1, 1, 8, 8))


def _degradation(spec: dict):
    from irframe.data.degradations import build_degradation

    return build_degradation(spec, "test")


def test_fixed_noise_sigma_reads_one_fixed_gaussian_noise() -> None:
    from irframe.evaluate.classical import fixed_noise_sigma

    assert fixed_noise_sigma(_degradation({"type": "GaussianNoise", "sigma": 15})) == 15.0
    noise_then_jpeg = {"type": "Compose", "degradations": [{"type": "GaussianNoise", "sigma": 50},
                                                           {"type": "JPEGCompression", "quality": 90}]}
    assert fixed_noise_sigma(_degradation(noise_then_jpeg)) == 50.0
    assert fixed_noise_sigma(_degradation({"type": "GaussianNoise", "sigma_range": [0, 50]})) is None  # blind
    assert fixed_noise_sigma(None) is None


def test_auto_sigma_is_each_test_sets_true_level(tmp_path) -> None:
    """Two noise levels in one tools/test.py run: BM3D sigma 'auto' denoises each with its own true sigma."""
    import json

    import cv2
    import yaml

    from irframe.evaluate.cli import benchmark_main

    clean, _ = _noisy(1, 0.0)
    root = tmp_path / "clean"
    root.mkdir()
    for i in range(2):
        img = np.roll(clean[0, 0].numpy(), 7 * i, axis=1)
        cv2.imwrite(str(root / f"{i}.png"), (img * 255).round().astype(np.uint8))
    sets = {f"sigma{s}": {"type": "OnlineDegradationDataset", "dataroot_gt": str(root), "channels": 1, "seed": 0,
                          "degradation": {"type": "GaussianNoise", "sigma": s}} for s in (15, 50)}
    opts = {"name": "bm3d_auto", "model": {"type": "BM3D", "channels": 1, "sigma": "auto"},
            "test": {"datasets": sets, "metrics": [{"type": "PSNR"}], "save_images": False, "report_images": 0}}
    opt = tmp_path / "bm3d.yml"
    opt.write_text(yaml.safe_dump(opts, sort_keys=False))
    scores = {}
    runs = (("auto", []), ("fixed15", ["--set", "model.sigma=15"]), ("fixed50", ["--set", "model.sigma=50"]))
    for name, extra in runs:
        out = tmp_path / name
        assert benchmark_main(["-opt", str(opt), "--out", str(out), "--device", "cpu", "--no-progress", *extra]) == 0
        board = json.loads((out / "leaderboard.json").read_text())
        scores[name] = {k: v["scores"] for k, v in board["models"]["bm3d_auto"]["datasets"].items()}
    assert scores["auto"]["sigma15"] == scores["fixed15"]["sigma15"]
    assert scores["auto"]["sigma50"] == scores["fixed50"]["sigma50"]
    assert scores["fixed15"]["sigma50"] != scores["auto"]["sigma50"]  # the level matters: the test can fail


def test_auto_sigma_on_a_set_without_a_fixed_level_names_the_set() -> None:
    from irframe.data.datasets.single import OnlineDegradationDataset  # noqa: F401  (the class the tool builds)

    model = ARCHS.build({"type": "BM3D", "channels": 1, "sigma": "auto"})
    with pytest.raises(OptionsError, match=r"no test set has given the noise level"):
        model(torch.rand(1, 1, 8, 8))

    class Blind:
        degradation = _degradation({"type": "GaussianNoise", "sigma_range": [0, 50]})

    with pytest.raises(OptionsError, match=r"test.datasets.Blind50: BM3D sigma 'auto' needs .* fixed sigma"):
        model.adapt_to_test_set("Blind50", Blind())
