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

JPEG is libjpeg (:func:`~irframe.data.degradations.jpeg.jpeg_roundtrip`, the core's
``JPEGCompression``) at the quality drawn from ``jpeg_range``, rounded.

Where it runs: ``RealESRGANDataset.degrade_on``. In the data workers (``workers``, the default)
each sample is degraded on its own with every choice its own. On the training device (``device``,
as Real-ESRGAN's ``RealESRGANModel.feed_data``) the dataset returns the GT and this module's draws
(:meth:`RealESRGANDegradation.draw`: kernels, noise levels and seeds, JPEG qualities, crop) and the
training step degrades the whole batch at once (:func:`degrade_batch`); as in Real-ESRGAN, the
choices that change a tensor's size or the kind of an operation (resize factors and modes, Gaussian
or Poisson noise, second blur or not, the order of the last steps) are one per batch (the first
sample's), and a pool of past pairs (``train.step.queue_size``) mixes batches. Both paths run the
same operations (:mod:`.realesrgan_ops`): the per-sample path is :func:`degrade_batch` on a batch
of one, so an image degraded with the same draws gives the same LQ either way.

The operations compute what Real-ESRGAN's do: blur is a correlation with reflect-101 borders (its
``filter2D``), resizes are ``torch.nn.functional.interpolate`` with its modes and sizes, noise and
USM follow BasicSR's formulas, and the LQ is rounded to 8 bits at the end. Known differences: JPEG
is libjpeg at an integer quality (Real-ESRGAN's ``DiffJPEG`` simulates it in torch at a real-valued
quality), and each noise field comes from its image's own seeded generator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import default_collate

import irframe.data.degradations.realesrgan_ops as ops
from irframe.data.degradations.base import Degradation, per_channel
from irframe.data.degradations.realesrgan_kernels import (
    KERNEL_TYPES,
    REALESRGAN_KERNEL_PROB,
    REALESRGAN_KERNEL_RANGE,
    BlurKernelSampler,
    check_distribution,
    check_kernel_range,
    check_probability,
    check_range,
    draw_sinc,
    pad_kernel,
)
from irframe.data.degradations.realesrgan_ops import RESIZE_MODES, ResizeMode
from irframe.errors import DataError, OptionsError
from irframe.registry import DEGRADATIONS

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


# -- operations (one image; the batch operations of .realesrgan_ops with a batch of one) -----------
def filter2d(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Filter every channel with ``kernel`` as Real-ESRGAN's ``filter2D``: a correlation, borders
    reflected without repeating the edge pixel (torch ``reflect`` = OpenCV ``BORDER_REFLECT_101``).

    (The blur family's :func:`~irframe.data.degradations.blur.convolve` repeats the edge pixel.)
    All of Real-ESRGAN's kernels are point-symmetric, so correlation and convolution agree.
    """
    return ops.filter_image(img, kernel)


def resize(
    img: np.ndarray, mode: ResizeMode, *, size: tuple[int, int] | None = None, scale_factor: float | None = None
) -> np.ndarray:
    """Resize an ``HWC`` float32 image with ``torch.nn.functional.interpolate`` (Real-ESRGAN's
    resizes: no antialiasing, ``align_corners=False``; ``area`` averages, ``bicubic`` may overshoot)."""
    return ops.from_batch(ops.resize(ops.to_batch(img), mode, size=size, scale_factor=scale_factor))


def _seed(rng: np.random.Generator) -> int:
    """A noise field's seed (its own ``torch.Generator``), drawn from the sample's generator."""
    return int(rng.integers(2**63 - 1))


def gaussian_noise(
    img: np.ndarray, sigma: float, gray: bool, rng: np.random.Generator, clip: bool = True
) -> np.ndarray:
    """Add Gaussian noise of standard deviation ``sigma / 255``; ``gray``: one noise field shared by
    all channels (luminance noise) instead of one per channel (:func:`.realesrgan_ops.add_gaussian_noise`)."""
    return ops.from_batch(ops.add_gaussian_noise(ops.to_batch(img), [sigma], [gray], [_seed(rng)], clip))


def poisson_noise(img: np.ndarray, scale: float, gray: bool, rng: np.random.Generator, clip: bool = True) -> np.ndarray:
    """Add Poisson (shot) noise as BasicSR does: the image is rounded to 8-bit levels, its number of
    distinct levels (rounded up to a power of two) is the photon count, and ``scale`` times the
    difference between the Poisson draw and the image is added; ``gray``: the noise of the luma,
    shared by the channels (:func:`.realesrgan_ops.add_poisson_noise`)."""
    return ops.from_batch(ops.add_poisson_noise(ops.to_batch(img), [scale], [gray], [_seed(rng)], clip))


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


@dataclass(frozen=True)
class NoiseDraw:
    """One stage's noise for one image: Gaussian (``sigma``, 0-255 scale) or Poisson (``scale``),
    gray or not, and the seed of its field."""

    gaussian: bool
    sigma: float
    poisson_scale: float
    gray: bool
    seed: int


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

    def draw(self, rng: np.random.Generator) -> NoiseDraw:
        """Every value of one image's noise (both kinds' levels: a batch picks one kind for all)."""
        gaussian = bool(rng.random() < self.gaussian_noise_prob)
        sigma = float(rng.uniform(*self.noise_range))
        scale = float(rng.uniform(*self.poisson_scale_range))
        return NoiseDraw(gaussian, sigma, scale, bool(rng.random() < self.gray_noise_prob), _seed(rng))

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        d = self.draw(rng)
        x = ops.to_batch(img)
        if d.gaussian:
            return ops.from_batch(ops.add_gaussian_noise(x, [d.sigma], [d.gray], [d.seed]))
        return ops.from_batch(ops.add_poisson_noise(x, [d.poisson_scale], [d.gray], [d.seed]))


def _jpeg_range(where: str, key: str, jpeg_range: Sequence[float]) -> tuple[float, float]:
    return check_range(where, key, jpeg_range, minimum=1, maximum=100)


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
        return ops.from_batch(ops.resize_by(ops.to_batch(img), factor, mode))


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
        self.jpeg_range = _jpeg_range(where, "jpeg_range", jpeg_range)
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
        self.jpeg_range2 = _jpeg_range(where, "jpeg_range2", jpeg_range2)
        self.final_sinc_prob = check_probability(where, "final_sinc_prob", final_sinc_prob)
        self.final_sizes = self.kernel1.sizes  # Real-ESRGAN draws the final sinc's size from the same 7..21

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """Every random choice of one image's degradation, as a flat mapping of numbers and arrays
        (what ``RealESRGANDataset`` returns with ``degrade_on: device``; ``default_collate`` stacks
        them). :func:`degrade_batch` applies them. Kernels are zero-padded to ``blur_kernel_size``
        (``blur_kernel_size2``) so that a batch stacks; the final sinc is a unit pulse when off."""
        size = self.kernel1.blur_kernel_size
        kernel1 = pad_kernel(self.kernel1.draw(rng).kernel(), size)
        resize1, mode1 = self.resize1.draw_scale(rng), self.resize1.draw_mode(rng)
        noise1 = self.noise1.draw(rng)
        jpeg1 = float(rng.uniform(*self.jpeg_range))
        blur2 = bool(rng.random() < self.second_blur_prob)
        kernel2 = pad_kernel(self.kernel2.draw(rng).kernel(), self.kernel2.blur_kernel_size)
        resize2, mode2 = self.resize2.draw_scale(rng), self.resize2.draw_mode(rng)
        noise2 = self.noise2.draw(rng)
        sinc = bool(rng.random() < self.final_sinc_prob)
        sinc_kernel = pad_kernel(draw_sinc(rng, self.final_sizes, final=True).kernel(), size) if sinc else pulse(size)
        final_mode = self.resize2.draw_mode(rng)
        sinc_first = bool(rng.random() < 0.5)
        jpeg2 = float(rng.uniform(*self.jpeg_range2))
        out: dict[str, Any] = {
            "scale": self.scale,
            "kernel1": kernel1,
            "resize1": resize1,
            "resize1_mode": RESIZE_MODES.index(mode1),
        }
        out.update(_noise_entries("noise1", noise1))
        out.update(jpeg1=jpeg1, blur2=blur2, kernel2=kernel2, resize2=resize2, resize2_mode=RESIZE_MODES.index(mode2))
        out.update(_noise_entries("noise2", noise2))
        out.update(
            sinc=sinc,
            sinc_kernel=sinc_kernel,
            final_mode=RESIZE_MODES.index(final_mode),
            sinc_first=sinc_first,
            jpeg2=jpeg2,
        )
        return out

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = img.shape[:2]
        if h % self.scale or w % self.scale:
            raise DataError(
                f"RealESRGANDegradation(scale={self.scale}): image size {h}x{w} is not a multiple of the scale "
                "(mod-crop the GT first; RealESRGANDataset does)"
            )
        draws = default_collate([self.draw(rng)])  # a batch of one: the batched path's own operations
        return ops.from_batch(degrade_batch(ops.to_batch(img), draws))


def pulse(size: int) -> np.ndarray:
    """The ``size x size`` unit pulse (filtering with it changes nothing)."""
    kernel = np.zeros((size, size))
    kernel[size // 2, size // 2] = 1.0
    return kernel


def _noise_entries(prefix: str, d: NoiseDraw) -> dict[str, Any]:
    return {
        f"{prefix}_gaussian": d.gaussian,
        f"{prefix}_sigma": d.sigma,
        f"{prefix}_poisson": d.poisson_scale,
        f"{prefix}_gray": d.gray,
        f"{prefix}_seed": d.seed,
    }


#: The entries of :meth:`RealESRGANDegradation.draw` that are one per batch in :func:`degrade_batch`
#: (the first image's apply to all): they change a tensor's size or the kind of an operation.
BATCH_CHOICES = (
    "resize1",
    "resize1_mode",
    "noise1_gaussian",
    "blur2",
    "resize2",
    "resize2_mode",
    "noise2_gaussian",
    "final_mode",
    "sinc_first",
)


def _first(draws: Mapping[str, Any], key: str) -> Any:
    value = draws[key][0]
    return value.item() if isinstance(value, torch.Tensor) else value


def _noise(x: torch.Tensor, draws: Mapping[str, Any], prefix: str) -> torch.Tensor:
    gray, seeds = draws[f"{prefix}_gray"], draws[f"{prefix}_seed"]
    if bool(_first(draws, f"{prefix}_gaussian")):
        return ops.add_gaussian_noise(x, draws[f"{prefix}_sigma"], gray, seeds)
    return ops.add_poisson_noise(x, draws[f"{prefix}_poisson"], gray, seeds)


def _sinc(x: torch.Tensor, kernels: Any, on: list[bool]) -> torch.Tensor:
    """The final sinc filter of the images that drew one (a batch without any is left alone)."""
    return ops.filter2d(x, kernels) if any(on) else x


def degrade_batch(x: torch.Tensor, draws: Mapping[str, Any]) -> torch.Tensor:
    """Real-ESRGAN's two-stage degradation of a batch ``x`` (``N x C x H x W``, the sharpened GT)
    with the collated draws of its images (:meth:`RealESRGANDegradation.draw`): the LQ, ``H/scale x
    W/scale``, rounded to 8-bit levels, on ``x``'s device.

    Kernels, noise levels and seeds, gray noise, JPEG qualities and the final sinc are per image;
    the :data:`BATCH_CHOICES` are the first image's, as Real-ESRGAN draws them once per batch.
    """
    scale = int(_first(draws, "scale"))
    h, w = x.shape[-2:]
    if h % scale or w % scale:
        raise DataError(f"RealESRGANDegradation(scale={scale}): image size {h}x{w} is not a multiple of the scale")
    lq_size = (h // scale, w // scale)

    def mode(key: str) -> ResizeMode:
        return RESIZE_MODES[int(_first(draws, key))]

    # ----- first stage
    out = ops.filter2d(x, draws["kernel1"])
    out = ops.resize_by(out, float(_first(draws, "resize1")), mode("resize1_mode"))
    out = _noise(out, draws, "noise1")
    out = ops.jpeg(out, draws["jpeg1"])
    # ----- second stage
    if bool(_first(draws, "blur2")):
        out = ops.filter2d(out, draws["kernel2"])
    factor = float(_first(draws, "resize2"))
    size = (max(1, int(h / scale * factor)), max(1, int(w / scale * factor)))
    out = ops.resize(out, mode("resize2_mode"), size=size)
    out = _noise(out, draws, "noise2")
    # ----- [resize back + final sinc] and JPEG, in a random order
    sincs = [bool(v) for v in draws["sinc"]]
    if bool(_first(draws, "sinc_first")):
        out = _sinc(ops.resize(out, mode("final_mode"), size=lq_size), draws["sinc_kernel"], sincs)
        out = ops.jpeg(out, draws["jpeg2"])
    else:
        out = ops.jpeg(out, draws["jpeg2"])
        out = _sinc(ops.resize(out, mode("final_mode"), size=lq_size), draws["sinc_kernel"], sincs)
    return ops.quantize_8bit(out)


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
