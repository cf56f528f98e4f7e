"""Motion blur (linear camera shake) and defocus blur (out-of-focus disk).

Both convolve with a non-negative kernel that sums to 1, so outputs are weighted averages of input
pixels and stay in ``[0, 1]`` (clipped only to remove float round-off). Borders are mirrored
(OpenCV ``BORDER_REFLECT``), so no dark frame appears at the edges.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from irframe.data.degradations.base import Degradation, make_param, per_channel
from irframe.registry import DEGRADATIONS

_SUBSAMPLES = 8  # per pixel and axis when rasterising kernels (anti-aliased edges)


def line_kernel(length: float, angle: float) -> np.ndarray:
    """Anti-aliased line segment of ``length`` pixels through the kernel centre, summing to 1.

    ``angle`` is in degrees, counter-clockwise from the horizontal axis (0 = horizontal motion,
    90 = vertical). The kernel is square with an odd size just large enough for the segment.
    """
    if length <= 1.0:
        return np.ones((1, 1), dtype=np.float32)
    size = 2 * math.ceil(length / 2.0) + 1
    centre = (size - 1) / 2.0
    theta = math.radians(angle)
    steps = max(2, int(math.ceil(length * _SUBSAMPLES)))
    t = np.linspace(-(length - 1) / 2.0, (length - 1) / 2.0, steps)
    xs = centre + t * math.cos(theta)
    ys = centre - t * math.sin(theta)  # image rows grow downwards
    kernel = np.zeros((size, size), dtype=np.float64)
    # Bilinear splatting of points sampled densely along the segment.
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy, xx = np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)
            np.add.at(kernel, (yy, xx), wy * wx)
    return (kernel / kernel.sum()).astype(np.float32)


def disk_kernel(radius: float) -> np.ndarray:
    """Anti-aliased uniform disk of ``radius`` pixels (pillbox / defocus PSF), summing to 1."""
    if radius < 0.5:
        return np.ones((1, 1), dtype=np.float32)
    half = math.ceil(radius)
    size = 2 * half + 1
    # Pixel coverage estimated on a sub-pixel grid.
    offsets = (np.arange(_SUBSAMPLES) + 0.5) / _SUBSAMPLES - 0.5
    grid = np.arange(size) - half
    sub = (grid[:, None] + offsets[None, :]).reshape(-1)
    inside = (sub[:, None] ** 2 + sub[None, :] ** 2) <= radius**2
    coverage = inside.reshape(size, _SUBSAMPLES, size, _SUBSAMPLES).mean(axis=(1, 3))
    return (coverage / coverage.sum()).astype(np.float32)


def convolve(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve every channel of an ``HWC`` float32 image with ``kernel`` (mirrored borders)."""
    if kernel.shape == (1, 1):
        return img.copy()
    # filter2D correlates; flipping makes it a true convolution (kernels here are symmetric anyway).
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    return per_channel(lambda x: cv2.filter2D(x, -1, flipped, borderType=cv2.BORDER_REFLECT), img)


@DEGRADATIONS.register()
class MotionBlur(Degradation):
    """Linear motion blur: the image averaged along a straight segment.

    Args:
        length: blur length in pixels (default 15 when ``length_range`` is not given).
        length_range: ``[low, high]`` drawn uniformly per call.
        angle: motion direction in degrees (0 horizontal, 90 vertical).
        angle_range: ``[low, high]`` drawn per call. With neither ``angle`` nor ``angle_range`` the
            direction is uniform in ``[0, 180)`` degrees.
    """

    def __init__(
        self,
        length: float | None = None,
        length_range: tuple[float, float] | None = None,
        angle: float | None = None,
        angle_range: tuple[float, float] | None = None,
    ) -> None:
        self.length = make_param("MotionBlur", "length", length, length_range, 15.0, minimum=1.0, maximum=256.0)
        if angle is None and angle_range is None:
            angle_range = (0.0, 180.0)
        self.angle = make_param("MotionBlur", "angle", angle, angle_range, 0.0)

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        kernel = line_kernel(self.length.sample(rng), self.angle.sample(rng))
        return np.clip(convolve(img, kernel), 0.0, 1.0)


@DEGRADATIONS.register()
class DefocusBlur(Degradation):
    """Defocus blur: convolution with a uniform disk (the geometric-optics out-of-focus PSF).

    Args:
        radius: disk radius in pixels (default 3 when ``radius_range`` is not given); below 0.5
            the image is returned unchanged.
        radius_range: ``[low, high]`` drawn uniformly per call.
    """

    def __init__(self, radius: float | None = None, radius_range: tuple[float, float] | None = None) -> None:
        self.radius = make_param("DefocusBlur", "radius", radius, radius_range, 3.0, minimum=0.0, maximum=128.0)

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.clip(convolve(img, disk_kernel(self.radius.sample(rng))), 0.0, 1.0)
