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
