"""Classical (untrained) restorers registered as archs, so ``tools/test.py`` scores them like any model.

A baseline row is an option file with ``model: {type: NonLocalMeans, h: 10}`` (or ``Bicubic``) and
no checkpoint; the tensors follow the engine's contract (float in [0, 1], ``B x C x H x W``).

* :class:`NonLocalMeans`: OpenCV's non-local means (``cv2.fastNlMeansDenoising`` for gray,
  ``cv2.fastNlMeansDenoisingColored`` for RGB, with ``hColor = h``) on the 8-bit image;
* :class:`Bicubic`: MATLAB-style bicubic up-sampling (``imresize`` with antialiasing), the
  reference row of super-resolution tables;
* :class:`BM3D`: BM3D for gray images and CBM3D for RGB (the ``bm3d`` package, extra
  ``irframe[bm3d]``), the classical row every denoising paper reports.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torch.nn as nn

from irframe.errors import OptionsError
from irframe.nn.spec import ModelSpec
from irframe.registry import ARCHS

__all__ = ["BM3D", "Bicubic", "NonLocalMeans"]


def _check_channels(channels: int, owner: str) -> int:
    if channels not in (1, 3):
        raise OptionsError(f"{owner}.channels: expected 1 (gray) or 3 (RGB), got {channels!r}")
    return int(channels)


@ARCHS.register()
class NonLocalMeans(nn.Module):
    """OpenCV non-local means denoising (no weights).

    Args:
        h: filter strength on the 0-255 scale (OpenCV's ``h``; also ``hColor`` for RGB).
        channels: 1 (gray) or 3 (RGB).
        template_window: OpenCV ``templateWindowSize`` (odd).
        search_window: OpenCV ``searchWindowSize`` (odd).
    """

    def __init__(self, h: float = 10.0, channels: int = 3, template_window: int = 7, search_window: int = 21) -> None:
        super().__init__()
        if not h > 0:
            raise OptionsError(f"NonLocalMeans.h: expected a positive filter strength, got {h!r}")
        for key, v in (("template_window", template_window), ("search_window", search_window)):
            if not isinstance(v, int) or v < 1 or v % 2 == 0:
                raise OptionsError(f"NonLocalMeans.{key}: expected a positive odd integer, got {v!r}")
        self.h = float(h)
        self.channels = _check_channels(channels, "NonLocalMeans")
        self.template_window, self.search_window = template_window, search_window
        self.spec = ModelSpec(in_channels=self.channels, out_channels=self.channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise a ``B x C x H x W`` batch in [0, 1] (quantised to 8 bits, as OpenCV needs)."""
        import cv2

        if x.dim() != 4 or x.shape[1] != self.channels:
            raise OptionsError(f"NonLocalMeans(channels={self.channels}): got an input of shape {tuple(x.shape)}")
        imgs = (x.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        out = []
        for img in imgs:
            if self.channels == 1:
                den = cv2.fastNlMeansDenoising(
                    np.ascontiguousarray(img[..., 0]), None, self.h, self.template_window, self.search_window
                )[..., None]
            else:
                bgr = np.ascontiguousarray(img[..., ::-1])
                den = cv2.fastNlMeansDenoisingColored(
                    bgr, None, self.h, self.h, self.template_window, self.search_window
                )[..., ::-1]
            out.append(np.ascontiguousarray(den))
        y = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(dtype=torch.float32) / 255.0
        return y.to(x.device)


@ARCHS.register()
class Bicubic(nn.Module):
    """MATLAB-style bicubic up-sampling by ``scale`` (no weights): the SR tables' reference row.

    Args:
        scale: up-sampling factor (2, 3, 4...).
        channels: 1 (gray) or 3 (RGB).
    """

    def __init__(self, scale: int = 2, channels: int = 3) -> None:
        super().__init__()
        if not isinstance(scale, int) or scale < 1:
            raise OptionsError(f"Bicubic.scale: expected a positive integer, got {scale!r}")
        self.scale = scale
        self.channels = _check_channels(channels, "Bicubic")
        self.spec = ModelSpec(in_channels=self.channels, out_channels=self.channels, scale=scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Up-sample a ``B x C x H x W`` batch in [0, 1]."""
        from irframe.data.degradations.resize import imresize

        imgs = x.detach().float().permute(0, 2, 3, 1).cpu().numpy()
        out = np.stack([imresize(img, float(self.scale)) for img in imgs])
        return torch.from_numpy(np.ascontiguousarray(out)).permute(0, 3, 1, 2).to(x.device)


BM3D_PROFILES = ("np", "refilter", "vn", "high", "vn_old", "deb")


@ARCHS.register()
class BM3D(nn.Module):
    """BM3D (gray) / CBM3D (RGB) denoising with a known noise level (no weights).

    Runs the reference implementation of the ``bm3d`` package (Mäkinen, Azzari, Foi), which ships
    a compiled core, on float images in [0, 1]: ``bm3d.bm3d`` for one channel and ``bm3d.bm3d_rgb``
    (opponent colour transform, as CBM3D) for three. The input is not clipped or quantised, so the
    row scores the same noisy image the trained models see.

    Args:
        sigma: noise standard deviation on the 0-255 scale, or ``"auto"``: the true level of each
            test set, read from its degradation (a ``GaussianNoise`` with a fixed ``sigma``) by
            ``tools/test.py`` before the set runs (:meth:`adapt_to_test_set`).
        channels: 1 (BM3D) or 3 (CBM3D).
        profile: the package's parameter profile (``"np"``, its default and the published setting).
    """

    def __init__(self, sigma: float | Literal["auto"] = 25.0, channels: int = 1, profile: str = "np") -> None:
        super().__init__()
        if sigma != "auto" and (isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0 < sigma < 256):
            raise OptionsError(
                "BM3D.sigma: expected the noise level on the 0-255 scale (0 < sigma < 256) or 'auto' "
                f"(each test set's true level), got {sigma!r}"
            )
        if profile not in BM3D_PROFILES:
            raise OptionsError(f"BM3D.profile: expected one of {', '.join(BM3D_PROFILES)}, got {profile!r}")
        self.auto = sigma == "auto"
        self.sigma: float | None = None if self.auto else float(sigma)
        self.channels = _check_channels(channels, "BM3D")
        self.profile = profile
        self.spec = ModelSpec(in_channels=self.channels, out_channels=self.channels, tileable=False)

    def adapt_to_test_set(self, set_name: str, dataset: Any) -> None:
        """With ``sigma: auto``, take the noise level of the set's degradation (called per test set).

        Raises:
            OptionsError: the set's degradation has no single fixed Gaussian noise level.
        """
        if not self.auto:
            return
        sigma = fixed_noise_sigma(getattr(dataset, "degradation", None))
        if sigma is None or sigma <= 0:
            raise OptionsError(
                f"test.datasets.{set_name}: BM3D sigma 'auto' needs a degradation with one GaussianNoise of a "
                "fixed sigma > 0 (a synthetic noise set); give model.sigma for this set instead"
            )
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise a ``B x C x H x W`` batch in [0, 1] (float64 inside, float32 out)."""
        bm3d = _import_bm3d()
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise OptionsError(f"BM3D(channels={self.channels}): got an input of shape {tuple(x.shape)}")
        if self.sigma is None:
            raise OptionsError(
                "BM3D sigma 'auto': no test set has given the noise level yet (tools/test.py sets it per set "
                "from the set's GaussianNoise); call adapt_to_test_set or give model.sigma"
            )
        sigma = self.sigma / 255.0
        imgs = x.detach().double().permute(0, 2, 3, 1).cpu().numpy()
        out = []
        for img in imgs:
            if self.channels == 1:
                den = np.asarray(bm3d.bm3d(img[..., 0], sigma, profile=self.profile))[..., None]
            else:
                den = np.asarray(bm3d.bm3d_rgb(img, sigma, profile=self.profile))
            out.append(den)
        y = torch.from_numpy(np.ascontiguousarray(np.stack(out))).permute(0, 3, 1, 2).to(torch.float32)
        return y.to(x.device)


def fixed_noise_sigma(degradation: Any) -> float | None:
    """The noise level (0-255 scale) of a degradation that is one fixed ``GaussianNoise``, else ``None``.

    A ``Compose`` counts when exactly one of its steps is Gaussian noise (e.g. noise then JPEG:
    the level is still the noise's).
    """
    from irframe.data.degradations.compose import Compose
    from irframe.data.degradations.noise import GaussianNoise

    if isinstance(degradation, GaussianNoise):
        return degradation.sigma.low if degradation.sigma.fixed else None
    if isinstance(degradation, Compose):
        noisy = [d for d in degradation.degradations if isinstance(d, (GaussianNoise, Compose))]
        return fixed_noise_sigma(noisy[0]) if len(noisy) == 1 else None
    return None


def _import_bm3d() -> Any:
    try:
        import bm3d
    except ImportError:
        raise OptionsError(
            "BM3D needs the 'bm3d' package: pip install 'irframe[bm3d]' (or pip install bm3d)"
        ) from None
    return bm3d
