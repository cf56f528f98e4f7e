"""Additive white Gaussian noise, fixed-level or blind (level drawn per image)."""

from __future__ import annotations

import numpy as np

from irframe.data.degradations.base import Degradation, make_param
from irframe.registry import DEGRADATIONS


@DEGRADATIONS.register()
class GaussianNoise(Degradation):
    """Add i.i.d. Gaussian noise with standard deviation ``sigma / 255``.

    ``sigma`` is on the 0-255 scale, as papers quote it (sigma 15/25/50). Each channel gets its own
    noise (colour noise; use a 1-channel dataset for gray denoising).

    Clipping differs between papers, so it is an option:
    ``clip=True`` (default) keeps the noisy image a valid image, like noisy test sets saved as
    image files and PromptIR's on-the-fly noise; ``clip=False`` keeps the exact additive model, like
    Restormer's and DnCNN's Gaussian denoising training and test noise. ``quantize=True`` also rounds
    to 8-bit levels (an image saved as PNG; PromptIR stores its noisy patches as uint8).

    Args:
        sigma: noise level on the 0-255 scale (default 25 when ``sigma_range`` is not given).
        sigma_range: ``[low, high]``: blind denoising, the level is drawn uniformly per call
            (Restormer's blind model uses ``[0, 50]``).
        clip: clip the result to ``[0, 1]``.
        quantize: round the result to multiples of 1/255 (implies clipping).
    """

    def __init__(
        self,
        sigma: float | None = None,
        sigma_range: tuple[float, float] | None = None,
        clip: bool = True,
        quantize: bool = False,
    ) -> None:
        self.sigma = make_param("GaussianNoise", "sigma", sigma, sigma_range, 25.0, minimum=0.0)
        self.clip = bool(clip)
        self.quantize = bool(quantize)

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        sigma = self.sigma.sample(rng)
        noisy = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma / 255.0)
        if self.quantize:
            return (np.rint(np.clip(noisy, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)
        return np.clip(noisy, 0.0, 1.0) if self.clip else noisy
