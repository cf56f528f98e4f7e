"""Classical (untrained) restorers registered as archs, so ``tools/test.py`` scores them like any model.

A baseline row is an option file with ``model: {type: NonLocalMeans, h: 10}`` (or ``Bicubic``) and
no checkpoint; the tensors follow the engine's contract (float in [0, 1], ``B x C x H x W``).

* :class:`NonLocalMeans`: OpenCV's non-local means (``cv2.fastNlMeansDenoising`` for gray,
  ``cv2.fastNlMeansDenoisingColored`` for RGB, with ``hColor = h``) on the 8-bit image;
* :class:`Bicubic`: MATLAB-style bicubic up-sampling (``imresize`` with antialiasing), the
  reference row of super-resolution tables.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from irframe.errors import OptionsError
from irframe.nn.spec import ModelSpec
from irframe.registry import ARCHS

__all__ = ["Bicubic", "NonLocalMeans"]


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
