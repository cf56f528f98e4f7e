"""Synthetic rain streaks: sparse random drops smeared along one direction, screen-blended.

The usual recipe of synthetic deraining sets (Rain100L/H-style, made in Photoshop): sparse
random "drop" seeds are motion-blurred into streaks of one direction, softened, and blended onto
the clean image with *screen* blending ``1 - (1 - img) * (1 - streaks)``. Screen blending only
brightens and never leaves ``[0, 1]``, so the output needs no clipping. Streaks are achromatic.
"""

from __future__ import annotations

import cv2
import numpy as np

from irframe.data.degradations.base import Degradation, make_param
from irframe.data.degradations.blur import convolve, line_kernel
from irframe.errors import OptionsError
from irframe.registry import DEGRADATIONS


@DEGRADATIONS.register()
class RainStreaks(Degradation):
    """Add rain streaks.

    Args:
        density: fraction of pixels that seed a streak (default 0.01 when no range is given;
            about 0.002 is light rain, 0.03 heavy).
        density_range: ``[low, high]`` drawn per call.
        length: streak length in pixels (default 20).
        length_range: ``[low, high]`` drawn per call.
        angle: streak tilt in degrees from vertical (default 0; positive leans right at the top).
        angle_range: ``[low, high]`` drawn per call.
        intensity: streak brightness in ``[0, 1]`` at the streak core (default 0.8).
        intensity_range: ``[low, high]`` drawn per call.
        width: Gaussian softening sigma in pixels (thicker, softer streaks when larger).
    """

    def __init__(
        self,
        density: float | None = None,
        density_range: tuple[float, float] | None = None,
        length: float | None = None,
        length_range: tuple[float, float] | None = None,
        angle: float | None = None,
        angle_range: tuple[float, float] | None = None,
        intensity: float | None = None,
        intensity_range: tuple[float, float] | None = None,
        width: float = 0.6,
    ) -> None:
        owner = "RainStreaks"
        self.density = make_param(owner, "density", density, density_range, 0.01, minimum=0.0, maximum=1.0)
        self.length = make_param(owner, "length", length, length_range, 20.0, minimum=1.0, maximum=256.0)
        self.angle = make_param(owner, "angle", angle, angle_range, 0.0, minimum=-90.0, maximum=90.0)
        self.intensity = make_param(owner, "intensity", intensity, intensity_range, 0.8, minimum=0.0, maximum=1.0)
        if width < 0:
            raise OptionsError(f"{owner}.width: must be at least 0, got {width!r}")
        self.width = float(width)

    def streak_map(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """The ``H x W`` streak layer in ``[0, 1]`` (exposed for inspection and tests)."""
        density, length = self.density.sample(rng), self.length.sample(rng)
        angle, intensity = self.angle.sample(rng), self.intensity.sample(rng)
        seeds = (rng.random((height, width), dtype=np.float32) < density).astype(np.float32)
        seeds *= rng.uniform(0.5, 1.0, size=(height, width)).astype(np.float32)  # uneven drops
        # 90 degrees is vertical for line_kernel; a positive tilt leans the top to the right.
        kernel = line_kernel(length, 90.0 - angle)
        streaks = convolve(seeds[:, :, None], kernel)[:, :, 0] * np.float32(max(length, 1.0))
        if self.width > 0:
            streaks = cv2.GaussianBlur(streaks, (0, 0), self.width, borderType=cv2.BORDER_REFLECT)
        return np.clip(streaks * np.float32(intensity), 0.0, 1.0)

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        streaks = self.streak_map(img.shape[0], img.shape[1], rng)[:, :, None]
        return (1.0 - (1.0 - img) * (1.0 - streaks)).astype(np.float32)
