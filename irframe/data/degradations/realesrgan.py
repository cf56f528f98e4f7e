"""Real-ESRGAN's high-order degradation pipeline, as composable registered degradations.

Real-ESRGAN (Wang et al., ICCVW 2021) makes its training inputs from clean images in two rounds of
blur -> random resize -> Gaussian or Poisson noise -> JPEG, then resizes to the LR size and applies
a final sinc filter, in a random order with the last JPEG; the ground truth is USM-sharpened first.
This module holds the pieces, registered in ``DEGRADATIONS`` (each also usable alone):

============================  ===================================================================
``RandomKernelBlur``          a random Real-ESRGAN kernel (:mod:`.realesrgan_kernels`)
``RandomResize``              up / down / keep by a random factor; area, bilinear or bicubic
``GaussianPoissonNoise``      Gaussian or Poisson noise, colour or gray
``SincFilter``                the final sinc (ringing / overshoot) filter
``USMSharp``                  unsharp masking of the GT (Real-ESRGAN's ``USMSharp``)
``RealESRGANDegradation``     the whole two-stage pipeline, driven by Real-ESRGAN's option keys
============================  ===================================================================

JPEG is the core's :class:`~irframe.data.degradations.jpeg.JPEGCompression` (libjpeg, quality
drawn from ``jpeg_range`` and rounded) and Gaussian noise its
:class:`~irframe.data.degradations.noise.GaussianNoise`.

Where it runs. Real-ESRGAN synthesises a whole batch at once on the training GPU (the dataset only
draws the kernels), which forces one resize factor, one noise type and one JPEG quality per batch
and needs a pool of past pairs to mix them. Here each sample is degraded on its own in the data
workers, with its own generator (the dataset's per-sample seeding), so every sample gets its own
draws and a fixed seed gives a fixed pair on any number of workers. The operations compute what
Real-ESRGAN's do: blur is a correlation with reflect-101 borders (its ``filter2D``), resizes are
``torch.nn.functional.interpolate`` with its modes and sizes, noise and USM follow BasicSR's
formulas, and the LQ is rounded to 8 bits at the end. Two known differences: JPEG is libjpeg at an
integer quality (Real-ESRGAN's ``DiffJPEG`` simulates it in torch at a real-valued quality), and
kernels are not zero-padded to 21 (a padded kernel filters identically).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from irframe.data.degradations.base import Degradation, per_channel
from irframe.data.degradations.jpeg import JPEGCompression
from irframe.data.degradations.noise import GaussianNoise
from irframe.data.degradations.realesrgan_kernels import (
    KERNEL_TYPES,
    REALESRGAN_KERNEL_PROB,
    REALESRGAN_KERNEL_RANGE,
    BlurKernelSampler,
    KernelDraw,
    check_distribution,
    check_kernel_range,
    check_probability,
    check_range,
    draw_sinc,
)
from irframe.errors import DataError, OptionsError
from irframe.registry import DEGRADATIONS

ResizeMode = Literal["area", "bilinear", "bicubic"]
RESIZE_MODES: tuple[ResizeMode, ...] = ("area", "bilinear", "bicubic")

# Real-ESRGAN's option keys, by where its option files hold them: the dataset's (the kernels) and
# the top level's (read by RealESRGANModel.feed_data). A translated file gathers both into
# RealESRGANDataset's `degradation` mapping: see realesrgan_degradation_options().
REALESRGAN_DATASET_KEYS = (
    "blur_kernel_size",
    "kernel_list",
    "kernel_prob",
    "sinc_prob",
    "blur_sigma",
    "betag_range",
    "betap_range",
    "blur_kernel_size2",
    "kernel_list2",
    "kernel_prob2",
    "sinc_prob2",
    "blur_sigma2",
    "betag_range2",
    "betap_range2",
    "final_sinc_prob",
)
REALESRGAN_MODEL_KEYS = (
    "resize_prob",
    "resize_range",
    "gaussian_noise_prob",
    "noise_range",
    "poisson_scale_range",
    "gray_noise_prob",
    "jpeg_range",
    "second_blur_prob",
    "resize_prob2",
    "resize_range2",
    "gaussian_noise_prob2",
    "noise_range2",
    "poisson_scale_range2",
    "gray_noise_prob2",
    "jpeg_range2",
)


# -- operations ----------------------------------------------------------------------------------
def filter2d(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Filter every channel with ``kernel`` as Real-ESRGAN's ``filter2D``: a correlation, borders
    reflected without repeating the edge pixel (torch ``reflect`` = OpenCV ``BORDER_REFLECT_101``).

    (The blur family's :func:`~irframe.data.degradations.blur.convolve` repeats the edge pixel.)
    All of Real-ESRGAN's kernels are point-symmetric, so correlation and convolution agree.
    """
    return per_channel(lambda x: cv2.filter2D(x, -1, kernel, borderType=cv2.BORDER_REFLECT_101), img)


def resize(
    img: np.ndarray, mode: ResizeMode, *, size: tuple[int, int] | None = None, scale_factor: float | None = None
) -> np.ndarray:
    """Resize an ``HWC`` float32 image with ``torch.nn.functional.interpolate`` (Real-ESRGAN's
    resizes: no antialiasing, ``align_corners=False``; ``area`` averages, ``bicubic`` may overshoot)."""
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).unsqueeze(0)
    align = None if mode == "area" else False
    out = F.interpolate(t, size=size, scale_factor=scale_factor, mode=mode, align_corners=align)
    return np.ascontiguousarray(out[0].permute(1, 2, 0).numpy())


def to_gray(img: np.ndarray) -> np.ndarray:
    """``HxWx1`` luma (0.299 R + 0.587 G + 0.114 B) of an RGB image; a gray image as it is."""
    if img.shape[2] == 1:
        return img
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)[:, :, None]


def gaussian_noise(
    img: np.ndarray, sigma: float, gray: bool, rng: np.random.Generator, clip: bool = True
) -> np.ndarray:
    """Add Gaussian noise of standard deviation ``sigma / 255`` (:class:`GaussianNoise`); ``gray``:
    one noise field shared by all channels (luminance noise) instead of one per channel."""
    if not gray or img.shape[2] == 1:
        return GaussianNoise(sigma=sigma, clip=clip)(img, rng)
    field = GaussianNoise(sigma=sigma, clip=False)(np.zeros((*img.shape[:2], 1), np.float32), rng)
    out = img + field
    return np.clip(out, 0.0, 1.0) if clip else out


def poisson_noise(img: np.ndarray, scale: float, gray: bool, rng: np.random.Generator, clip: bool = True) -> np.ndarray:
    """Add Poisson (shot) noise as BasicSR does: the image is rounded to 8-bit levels, its number of
    distinct levels rounded up to a power of two ``vals`` sets the photon count, and the noise is
    ``(Poisson(vals * x) / vals - x) * scale`` (variance ``scale^2 * x / vals`` at a pixel of value
    ``x``). ``gray``: the noise of the luma, shared by all channels."""
    source = to_gray(img) if gray else img
    levels = np.clip(np.rint(source.astype(np.float64) * 255.0), 0, 255)
    count = int(np.count_nonzero(np.bincount(levels.astype(np.int64).ravel(), minlength=256)))
    vals = 2.0 ** math.ceil(math.log2(count)) if count > 1 else 1.0
    rounded = levels / 255.0
    noise = (rng.poisson(rounded * vals) / vals - rounded).astype(np.float32) * np.float32(scale)
    out = img + noise  # a gray field broadcasts over the channels
    return np.clip(out, 0.0, 1.0) if clip else out


def usm_sharp(
    img: np.ndarray, weight: float = 0.5, radius: int = 50, sigma: float = 0.0, threshold: float = 10.0
) -> np.ndarray:
    """Unsharp masking as BasicSR's ``usm_sharp`` / ``USMSharp``: ``K = clip(I + weight (I - B))``
    with ``B`` the Gaussian blur of ``I`` (size ``radius`` made odd, ``sigma`` 0: OpenCV's default
    for that size); where ``|I - B| * 255 > threshold`` (mask softened by the same blur) ``K``
    replaces ``I``. The output stays in ``[0, 1]``."""
    size = radius + 1 if radius % 2 == 0 else radius
    blur = per_channel(lambda x: cv2.GaussianBlur(x, (size, size), sigma), img)
    residual = img - blur
    mask = (np.abs(residual) * 255.0 > threshold).astype(np.float32)
    soft_mask = per_channel(lambda x: cv2.GaussianBlur(x, (size, size), sigma), mask)
    sharp = np.clip(img + weight * residual, 0.0, 1.0)
    return (soft_mask * sharp + (1.0 - soft_mask) * img).astype(np.float32)


def quantize_8bit(img: np.ndarray) -> np.ndarray:
    """Clip to ``[0, 1]`` and round to multiples of 1/255 (Real-ESRGAN's last LQ step)."""
    return (np.clip(np.rint(img * 255.0), 0.0, 255.0) / 255.0).astype(np.float32)


# -- samplers of one stage's random choices ---------------------------------------------------------
class ResizeSampler:
    """Real-ESRGAN's random resize of one stage: ``up`` (factor uniform in ``[1, high]``), ``down``
    (``[low, 1]``) or ``keep``, chosen with ``resize_prob``; the mode uniform among ``modes``."""

    def __init__(
        self,
        where: str,
        resize_prob: Sequence[float],
        resize_range: Sequence[float],
        modes: Sequence[ResizeMode] = RESIZE_MODES,
        suffix: str = "",
    ) -> None:
        self.resize_prob = check_distribution(where, f"resize_prob{suffix}", resize_prob, 3, "of up, down, keep")
        low, high = check_range(where, f"resize_range{suffix}", resize_range, minimum=1e-3)
        if not low <= 1.0 <= high:
            raise OptionsError(
                f"{where}.resize_range{suffix}: expected [low <= 1, high >= 1] (down- and up-scaling factors), "
                f"got {list(resize_range)!r}"
            )
        self.resize_range = (low, high)
        if isinstance(modes, str) or not modes or any(m not in RESIZE_MODES for m in modes):
            raise OptionsError(f"{where}.resize_modes: expected a list of {', '.join(RESIZE_MODES)}, got {modes!r}")
        self.modes: tuple[ResizeMode, ...] = tuple(modes)

    def draw_scale(self, rng: np.random.Generator) -> float:
        updown = int(rng.choice(3, p=self.resize_prob))
        if updown == 0:
            return float(rng.uniform(1.0, self.resize_range[1]))
        if updown == 1:
            return float(rng.uniform(self.resize_range[0], 1.0))
        return 1.0

    def draw_mode(self, rng: np.random.Generator) -> ResizeMode:
        return self.modes[int(rng.integers(len(self.modes)))]


class NoiseSampler:
    """One stage's noise: Gaussian with probability ``gaussian_noise_prob`` (``sigma`` uniform in
    ``noise_range``, 0-255 scale), else Poisson (``scale`` uniform in ``poisson_scale_range``); gray
    noise with probability ``gray_noise_prob``. The result is clipped to ``[0, 1]``."""

    def __init__(
        self,
        where: str,
        gaussian_noise_prob: float,
        noise_range: Sequence[float],
        poisson_scale_range: Sequence[float],
        gray_noise_prob: float,
        suffix: str = "",
    ) -> None:
        s = suffix
        self.gaussian_noise_prob = check_probability(where, f"gaussian_noise_prob{s}", gaussian_noise_prob)
        self.noise_range = check_range(where, f"noise_range{s}", noise_range, minimum=0.0)
        self.poisson_scale_range = check_range(where, f"poisson_scale_range{s}", poisson_scale_range, minimum=0.0)
        self.gray_noise_prob = check_probability(where, f"gray_noise_prob{s}", gray_noise_prob)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.gaussian_noise_prob:
            sigma = float(rng.uniform(*self.noise_range))
            return gaussian_noise(img, sigma, rng.random() < self.gray_noise_prob, rng)
        scale = float(rng.uniform(*self.poisson_scale_range))
        return poisson_noise(img, scale, rng.random() < self.gray_noise_prob, rng)


def _jpeg(where: str, key: str, jpeg_range: Sequence[float]) -> JPEGCompression:
    low, high = check_range(where, key, jpeg_range, minimum=1, maximum=100)
    return JPEGCompression(quality_range=(low, high))  # type: ignore[arg-type]  # floats: drawn, then rounded


def _apply_jpeg(jpeg: JPEGCompression, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Clipped first, as Real-ESRGAN does before its JPEG (out-of-range values would wrap otherwise).
    return jpeg(np.clip(img, 0.0, 1.0), rng)


def _sinc_filter(img: np.ndarray, draw: KernelDraw | None) -> np.ndarray:
    return img if draw is None else filter2d(img, draw.kernel())


# -- registered degradations -----------------------------------------------------------------------
class _ValuesCheckedEarly(Degradation):
    """Lets the option checker (``show-options``, the one-report check before training) build the
    degradation: construction is cheap and reads no file, so a bad value (an even kernel size, a
    probability outside [0, 1], probabilities that do not sum to 1) is reported before any work."""

    @classmethod
    def option_children(cls, kwargs: dict[str, Any]) -> list[tuple[str, str, Any]]:
        build: Callable[..., object] = cls
        build(**kwargs)  # raises the OptionsError naming the key; nothing is nested
        return []


@DEGRADATIONS.register()
class RandomKernelBlur(_ValuesCheckedEarly):
    """Blur with a random Real-ESRGAN kernel (see :mod:`.realesrgan_kernels` for the draws).

    Args:
        kernel_list: kernel types among ``iso``, ``aniso``, ``generalized_iso``,
            ``generalized_aniso``, ``plateau_iso``, ``plateau_aniso``.
        kernel_prob: one probability per ``kernel_list`` entry, summing to 1.
        kernel_range: ``[smallest, largest]`` odd kernel sizes; the size is uniform among the odd
            sizes in between (Real-ESRGAN: 7..21).
        blur_sigma: ``[low, high]`` standard deviations of the Gaussian-family kernels, in pixels.
        betag_range: shape range of the generalized Gaussians; betap_range: of the plateaus.
        sinc_prob: probability of a sinc kernel instead.
        blur_kernel_size: the padded kernel size of a batched pipeline (odd, >= the largest size).
        blur_prob: probability of blurring at all (Real-ESRGAN's ``second_blur_prob`` for stage 2).

    The output is a weighted average with non-negative weights (in ``[0, 1]``) except for sinc
    kernels, whose negative lobes can overshoot slightly (not clipped, as in Real-ESRGAN).
    """

    def __init__(
        self,
        kernel_list: Sequence[str] = KERNEL_TYPES,
        kernel_prob: Sequence[float] = REALESRGAN_KERNEL_PROB,
        kernel_range: Sequence[int] = REALESRGAN_KERNEL_RANGE,
        blur_sigma: Sequence[float] = (0.2, 3.0),
        betag_range: Sequence[float] = (0.5, 4.0),
        betap_range: Sequence[float] = (1.0, 2.0),
        sinc_prob: float = 0.1,
        blur_kernel_size: int = 21,
        blur_prob: float = 1.0,
    ) -> None:
        self.kernels = BlurKernelSampler(
            "RandomKernelBlur",
            kernel_list=kernel_list,
            kernel_prob=kernel_prob,
            kernel_range=kernel_range,
            blur_sigma=blur_sigma,
            betag_range=betag_range,
            betap_range=betap_range,
            sinc_prob=sinc_prob,
            blur_kernel_size=blur_kernel_size,
        )
        self.blur_prob = check_probability("RandomKernelBlur", "blur_prob", blur_prob)

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.blur_prob < 1.0 and rng.random() >= self.blur_prob:
            return img.copy()
        return filter2d(img, self.kernels.sample(rng))


@DEGRADATIONS.register()
class RandomResize(_ValuesCheckedEarly):
    """Resize by a random factor: up, down or keep (``resize_prob``), mode uniform among ``resize_modes``.

    The output size is ``floor(H * f) x floor(W * f)`` (Real-ESRGAN's first-stage resize); it
    changes the image size, so follow it with a resize to the LR size in a pipeline. Bicubic can
    overshoot ``[0, 1]`` slightly (not clipped, as in Real-ESRGAN: its noise step clips).

    Args:
        resize_prob: probabilities of up, down and keep (sum 1).
        resize_range: ``[low <= 1, high >= 1]``: down factors are uniform in ``[low, 1]``, up factors
            in ``[1, high]``.
        resize_modes: the interpolations to choose from (``area``, ``bilinear``, ``bicubic``).
    """

    def __init__(
        self,
        resize_prob: Sequence[float] = (0.2, 0.7, 0.1),
        resize_range: Sequence[float] = (0.15, 1.5),
        resize_modes: Sequence[ResizeMode] = RESIZE_MODES,
    ) -> None:
        self.resize = ResizeSampler("RandomResize", resize_prob, resize_range, resize_modes)

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        factor, mode = self.resize.draw_scale(rng), self.resize.draw_mode(rng)
        return _resize_by(img, factor, mode)


def _resize_by(img: np.ndarray, factor: float, mode: ResizeMode) -> np.ndarray:
    if factor == 1.0:
        return img.copy()
    h, w = img.shape[:2]
    if math.floor(h * factor) < 1 or math.floor(w * factor) < 1:  # a tiny image: keep one pixel
        return resize(img, mode, size=(max(1, math.floor(h * factor)), max(1, math.floor(w * factor))))
    return resize(img, mode, scale_factor=factor)


@DEGRADATIONS.register()
class GaussianPoissonNoise(_ValuesCheckedEarly):
    """Gaussian noise with probability ``gaussian_noise_prob``, else Poisson noise; gray (shared by
    the channels) with probability ``gray_noise_prob``. The output is clipped to ``[0, 1]``.

    Args:
        gaussian_noise_prob: probability of Gaussian (rather than Poisson) noise.
        noise_range: ``[low, high]`` Gaussian sigma on the 0-255 scale.
        poisson_scale_range: ``[low, high]`` Poisson noise scale (see :func:`poisson_noise`).
        gray_noise_prob: probability of gray noise.
    """

    def __init__(
        self,
        gaussian_noise_prob: float = 0.5,
        noise_range: Sequence[float] = (1.0, 30.0),
        poisson_scale_range: Sequence[float] = (0.05, 3.0),
        gray_noise_prob: float = 0.4,
    ) -> None:
        self.noise = NoiseSampler(
            "GaussianPoissonNoise", gaussian_noise_prob, noise_range, poisson_scale_range, gray_noise_prob
        )

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.noise(img, rng)


@DEGRADATIONS.register()
class SincFilter(_ValuesCheckedEarly):
    """Real-ESRGAN's final sinc filter (ringing and overshoot artefacts): with probability
    ``final_sinc_prob`` a circular low-pass kernel, size uniform among the odd sizes of
    ``kernel_range`` and cut-off uniform in ``[pi/3, pi]``; else the image unchanged. Can overshoot
    ``[0, 1]`` slightly (not clipped)."""

    def __init__(self, final_sinc_prob: float = 0.8, kernel_range: Sequence[int] = REALESRGAN_KERNEL_RANGE) -> None:
        self.final_sinc_prob = check_probability("SincFilter", "final_sinc_prob", final_sinc_prob)
        self.sizes = check_kernel_range("SincFilter", "kernel_range", kernel_range)

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.final_sinc_prob:
            return img.copy()
        return filter2d(img, draw_sinc(rng, self.sizes, final=True).kernel())


@DEGRADATIONS.register()
class USMSharp(_ValuesCheckedEarly):
    """Unsharp masking (Real-ESRGAN sharpens its ground truth with it; see :func:`usm_sharp`).

    Deterministic (it draws nothing). The output stays in ``[0, 1]``.

    Args:
        weight: strength of the added detail ``I - blur(I)``.
        radius: size of the Gaussian blur (made odd: 50 -> 51).
        sigma: its standard deviation; 0: OpenCV's default for the size (8 for 51).
        threshold: detail below this (0-255 scale) is left alone (soft mask).
    """

    def __init__(self, weight: float = 0.5, radius: int = 50, sigma: float = 0.0, threshold: float = 10.0) -> None:
        if radius < 1 or sigma < 0 or threshold < 0:
            raise OptionsError(
                f"USMSharp: expected radius >= 1, sigma >= 0, threshold >= 0; got radius={radius}, sigma={sigma}, "
                f"threshold={threshold}"
            )
        self.weight, self.radius = float(weight), int(radius)
        self.sigma, self.threshold = float(sigma), float(threshold)

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return usm_sharp(img, self.weight, self.radius, self.sigma, self.threshold)


@DEGRADATIONS.register()
class RealESRGANDegradation(_ValuesCheckedEarly):
    """Real-ESRGAN's two-stage ("high-order") degradation: GT ``H x W`` -> LQ ``H/scale x W/scale``.

    Per call, all draws from the one generator:

    1. blur with a random kernel (``kernel_list``, ``kernel_prob``, ``kernel_range``, ``blur_sigma``,
       ``betag_range``, ``betap_range``, ``sinc_prob``); random resize by a factor (``resize_prob``,
       ``resize_range``; area/bilinear/bicubic); Gaussian or Poisson noise (``gaussian_noise_prob``,
       ``noise_range``, ``poisson_scale_range``, ``gray_noise_prob``); JPEG (``jpeg_range``);
    2. with probability ``second_blur_prob`` a blur with the ``*2`` kernel options; a resize to
       ``(H/scale * f, W/scale * f)`` with ``f`` from ``resize_prob2`` / ``resize_range2``; noise (the
       ``*2`` noise keys); then, in a random order (1/2 each), [resize to ``H/scale x W/scale`` +
       final sinc filter (probability ``final_sinc_prob``)] and JPEG (``jpeg_range2``);
    3. clip and round to 8-bit levels.

    The keys and defaults are those of Real-ESRGAN's ``train_realesrgan_x4plus.yml`` (its dataset's
    kernel keys and its top-level degradation keys). The input must be ``scale``-divisible (datasets
    mod-crop first). Sharpen the GT before calling it (``USMSharp``) as Real-ESRGAN does.
    """

    def __init__(
        self,
        scale: int = 4,
        # first stage: blur
        kernel_list: Sequence[str] = KERNEL_TYPES,
        kernel_prob: Sequence[float] = REALESRGAN_KERNEL_PROB,
        blur_sigma: Sequence[float] = (0.2, 3.0),
        betag_range: Sequence[float] = (0.5, 4.0),
        betap_range: Sequence[float] = (1.0, 2.0),
        sinc_prob: float = 0.1,
        blur_kernel_size: int = 21,
        kernel_range: Sequence[int] = REALESRGAN_KERNEL_RANGE,
        # first stage: resize, noise, JPEG
        resize_prob: Sequence[float] = (0.2, 0.7, 0.1),
        resize_range: Sequence[float] = (0.15, 1.5),
        gaussian_noise_prob: float = 0.5,
        noise_range: Sequence[float] = (1.0, 30.0),
        poisson_scale_range: Sequence[float] = (0.05, 3.0),
        gray_noise_prob: float = 0.4,
        jpeg_range: Sequence[float] = (30.0, 95.0),
        # second stage
        second_blur_prob: float = 0.8,
        kernel_list2: Sequence[str] = KERNEL_TYPES,
        kernel_prob2: Sequence[float] = REALESRGAN_KERNEL_PROB,
        blur_sigma2: Sequence[float] = (0.2, 1.5),
        betag_range2: Sequence[float] = (0.5, 4.0),
        betap_range2: Sequence[float] = (1.0, 2.0),
        sinc_prob2: float = 0.1,
        blur_kernel_size2: int = 21,
        kernel_range2: Sequence[int] = REALESRGAN_KERNEL_RANGE,
        resize_prob2: Sequence[float] = (0.3, 0.4, 0.3),
        resize_range2: Sequence[float] = (0.3, 1.2),
        gaussian_noise_prob2: float = 0.5,
        noise_range2: Sequence[float] = (1.0, 25.0),
        poisson_scale_range2: Sequence[float] = (0.05, 2.5),
        gray_noise_prob2: float = 0.4,
        jpeg_range2: Sequence[float] = (30.0, 95.0),
        # the final sinc filter
        final_sinc_prob: float = 0.8,
        resize_modes: Sequence[ResizeMode] = RESIZE_MODES,
    ) -> None:
        where = "RealESRGANDegradation"
        if not isinstance(scale, (int, np.integer)) or isinstance(scale, bool) or scale < 1:
            raise OptionsError(f"{where}.scale: expected an integer >= 1, got {scale!r}")
        self.scale = int(scale)
        self.kernel1 = BlurKernelSampler(
            where,
            kernel_list=kernel_list,
            kernel_prob=kernel_prob,
            kernel_range=kernel_range,
            blur_sigma=blur_sigma,
            betag_range=betag_range,
            betap_range=betap_range,
            sinc_prob=sinc_prob,
            blur_kernel_size=blur_kernel_size,
        )
        self.resize1 = ResizeSampler(where, resize_prob, resize_range, resize_modes)
        self.noise1 = NoiseSampler(where, gaussian_noise_prob, noise_range, poisson_scale_range, gray_noise_prob)
        self.jpeg1 = _jpeg(where, "jpeg_range", jpeg_range)
        self.second_blur_prob = check_probability(where, "second_blur_prob", second_blur_prob)
        self.kernel2 = BlurKernelSampler(
            where,
            kernel_list=kernel_list2,
            kernel_prob=kernel_prob2,
            kernel_range=kernel_range2,
            blur_sigma=blur_sigma2,
            betag_range=betag_range2,
            betap_range=betap_range2,
            sinc_prob=sinc_prob2,
            blur_kernel_size=blur_kernel_size2,
            suffix="2",
        )
        self.resize2 = ResizeSampler(where, resize_prob2, resize_range2, resize_modes, suffix="2")
        self.noise2 = NoiseSampler(
            where, gaussian_noise_prob2, noise_range2, poisson_scale_range2, gray_noise_prob2, suffix="2"
        )
        self.jpeg2 = _jpeg(where, "jpeg_range2", jpeg_range2)
        self.final_sinc_prob = check_probability(where, "final_sinc_prob", final_sinc_prob)
        self.final_sizes = self.kernel1.sizes  # Real-ESRGAN draws the final sinc's size from the same 7..21

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = img.shape[:2]
        if h % self.scale or w % self.scale:
            raise DataError(
                f"RealESRGANDegradation(scale={self.scale}): image size {h}x{w} is not a multiple of the scale "
                "(mod-crop the GT first; RealESRGANDataset does)"
            )
        lq_size = (h // self.scale, w // self.scale)
        # ----- first stage
        out = filter2d(img, self.kernel1.sample(rng))
        factor, mode = self.resize1.draw_scale(rng), self.resize1.draw_mode(rng)
        out = _resize_by(out, factor, mode)
        out = self.noise1(out, rng)
        out = _apply_jpeg(self.jpeg1, out, rng)
        # ----- second stage
        if rng.random() < self.second_blur_prob:
            out = filter2d(out, self.kernel2.sample(rng))
        factor, mode = self.resize2.draw_scale(rng), self.resize2.draw_mode(rng)
        size = (max(1, int(h / self.scale * factor)), max(1, int(w / self.scale * factor)))
        out = resize(out, mode, size=size)
        out = self.noise2(out, rng)
        # ----- [resize back + final sinc] and JPEG, in a random order
        sinc = draw_sinc(rng, self.final_sizes, final=True) if rng.random() < self.final_sinc_prob else None
        mode = self.resize2.draw_mode(rng)
        if rng.random() < 0.5:
            out = _sinc_filter(resize(out, mode, size=lq_size), sinc)
            out = _apply_jpeg(self.jpeg2, out, rng)
        else:
            out = _apply_jpeg(self.jpeg2, out, rng)
            out = _sinc_filter(resize(out, mode, size=lq_size), sinc)
        return quantize_8bit(out)


def realesrgan_degradation_options(
    dataset_opt: Mapping[str, Any], top_opt: Mapping[str, Any], scale: int | None = None
) -> dict[str, Any]:
    """The ``RealESRGANDegradation`` mapping of a Real-ESRGAN option file: the dataset's kernel keys
    (:data:`REALESRGAN_DATASET_KEYS`) and the top level's degradation keys
    (:data:`REALESRGAN_MODEL_KEYS`) together, with ``scale`` (default: the top level's). Keys the
    file does not set keep this module's defaults (Real-ESRGAN's x4plus values)."""
    out: dict[str, Any] = {"type": "RealESRGANDegradation"}
    chosen = scale if scale is not None else top_opt.get("scale")
    if chosen is not None:
        out["scale"] = chosen
    out.update({k: dataset_opt[k] for k in REALESRGAN_DATASET_KEYS if k in dataset_opt})
    out.update({k: top_opt[k] for k in REALESRGAN_MODEL_KEYS if k in top_opt})
    return out
