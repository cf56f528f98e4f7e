"""Synthetic low light: darken with a gamma curve and a gain, then add sensor noise.

``out = brightness * img ** gamma + n``, ``n ~ N(0, (noise_sigma / 255)^2)``. A gamma above 1
darkens shadows more than highlights (as an under-exposed camera response does), ``brightness`` is
the global exposure gain, and the noise stands for the read/shot noise that dominates dark images.
"""

from __future__ import annotations

import numpy as np

from irframe.data.degradations.base import Degradation, make_param
from irframe.registry import DEGRADATIONS


@DEGRADATIONS.register()
class LowLight(Degradation):
    """Darken an image and add noise.

    Args:
        gamma: exponent applied to ``[0, 1]`` values (default 2.0 when no range is given).
        gamma_range: ``[low, high]`` drawn per call (e.g. ``[1.5, 3.5]``).
        brightness: gain after the gamma curve, in ``(0, 1]`` (default 0.3).
        brightness_range: ``[low, high]`` drawn per call (e.g. ``[0.1, 0.5]``).
        noise_sigma: Gaussian noise level on the 0-255 scale (default 5; 0 disables noise).
        noise_sigma_range: ``[low, high]`` drawn per call.
        clip: clip the result to ``[0, 1]`` (noise can push dark pixels below 0).
    """

    def __init__(
        self,
        gamma: float | None = None,
        gamma_range: tuple[float, float] | None = None,
        brightness: float | None = None,
        brightness_range: tuple[float, float] | None = None,
        noise_sigma: float | None = None,
        noise_sigma_range: tuple[float, float] | None = None,
        clip: bool = True,
    ) -> None:
        owner = "LowLight"
        self.gamma = make_param(owner, "gamma", gamma, gamma_range, 2.0, minimum=0.1, maximum=10.0)
        self.brightness = make_param(owner, "brightness", brightness, brightness_range, 0.3, minimum=0.0, maximum=1.0)
        self.noise_sigma = make_param(owner, "noise_sigma", noise_sigma, noise_sigma_range, 5.0, minimum=0.0)
        self.clip = bool(clip)

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        gamma, gain, sigma = self.gamma.sample(rng), self.brightness.sample(rng), self.noise_sigma.sample(rng)
        # max(., 0) guards the power against tiny negative inputs (an unclipped earlier stage).
        out = np.float32(gain) * np.power(np.maximum(img, 0.0), np.float32(gamma))
        if sigma > 0:
            out = out + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma / 255.0)
        return np.clip(out, 0.0, 1.0) if self.clip else out.astype(np.float32)
