"""Registered fidelity metrics: PSNR, SSIM (BasicSR protocol) and RMSE (Kaggle document denoising)."""

from __future__ import annotations

import torch

from irframe.metrics.base import Metric
from irframe.metrics.functional import mse, psnr, ssim
from irframe.registry import METRICS

__all__ = ["PSNR", "RMSE", "SSIM"]


@METRICS.register()
class PSNR(Metric):
    """Peak signal-to-noise ratio in dB (peak 255), equal to BasicSR's ``calculate_psnr``.

    ``inf`` for an image identical to its ground truth (as BasicSR).
    """

    name = "PSNR"
    higher_is_better = True

    def __init__(self, crop_border: int = 0, test_y_channel: bool = False, quantize: bool = True) -> None:
        super().__init__(crop_border=crop_border, test_y_channel=test_y_channel, quantize=quantize)

    def compute(self, a255: torch.Tensor, b255: torch.Tensor) -> torch.Tensor:
        return psnr(a255, b255)


@METRICS.register()
class SSIM(Metric):
    """Structural similarity, equal to BasicSR's ``calculate_ssim`` (11x11 Gaussian, sigma 1.5)."""

    name = "SSIM"
    higher_is_better = True

    def __init__(self, crop_border: int = 0, test_y_channel: bool = False, quantize: bool = True) -> None:
        super().__init__(crop_border=crop_border, test_y_channel=test_y_channel, quantize=quantize)

    def compute(self, a255: torch.Tensor, b255: torch.Tensor) -> torch.Tensor:
        return ssim(a255, b255)


@METRICS.register()
class RMSE(Metric):
    """Root mean squared error of [0,1] intensities (lower is better).

    This is the Kaggle "Denoising Dirty Documents" score. Kaggle pools every pixel of the test set,
    so the data-set score is ``sqrt(sum(rmse_i^2 * n_i) / sum(n_i))`` (see :meth:`reduce`), not the
    mean of per-image values. ``quantize`` defaults to ``False`` because submissions are float
    intensities, not 8-bit images.
    """

    name = "RMSE"
    higher_is_better = False

    def __init__(self, crop_border: int = 0, test_y_channel: bool = False, quantize: bool = False) -> None:
        super().__init__(crop_border=crop_border, test_y_channel=test_y_channel, quantize=quantize)

    @property
    def protocol(self) -> str:
        space = "Y" if self.test_y_channel else "all-channels"
        depth = "8bit" if self.quantize else "float"
        return f"RMSE-[0,1] {space} crop{self.crop_border} {depth}"

    def compute(self, a255: torch.Tensor, b255: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(mse(a255 / 255.0, b255 / 255.0))

    def reduce(self, values: torch.Tensor, num_pixels: torch.Tensor | None = None) -> float:
        """Pooled RMSE over all pixels: per-image MSEs weighted by pixel counts (equal if omitted)."""
        sq = values.to(torch.float64) ** 2
        if num_pixels is None:
            return float(torch.sqrt(sq.mean()))
        n = torch.as_tensor(num_pixels, dtype=torch.float64, device=sq.device)
        if n.shape != sq.shape:
            raise ValueError(f"RMSE.reduce: {tuple(sq.shape)} values but {tuple(n.shape)} pixel counts")
        return float(torch.sqrt((sq * n).sum() / n.sum()))
