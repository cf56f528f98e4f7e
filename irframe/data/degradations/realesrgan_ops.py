"""The operations of Real-ESRGAN's degradation, on batches: one implementation for both paths.

Every function takes an ``N x C x H x W`` float32 tensor and per-sample parameters (a tensor or a
sequence with one entry per image), and works on any device. The per-sample path (the data
workers, :class:`~irframe.data.degradations.realesrgan.RealESRGANDegradation` on one image) calls
them with a batch of one; the batched path (the training step, ``degrade_on: device``) with the
whole batch. Given the same parameters and noise seeds an image gets the same output either way.

* :func:`filter2d`: Real-ESRGAN's ``filter2D`` (a correlation, reflect-101 borders) with one
  kernel per image. On the CPU each image goes through OpenCV's ``filter2D`` (its DFT path makes a
  21x21 kernel ~3x faster than torch's depthwise convolution on 3 channels); elsewhere a grouped
  ``conv2d`` (:func:`filter2d_conv`, Real-ESRGAN's). Both agree to float32 round-off (tested).
* :func:`resize`: ``torch.nn.functional.interpolate`` with Real-ESRGAN's modes and sizes.
* :func:`add_gaussian_noise`, :func:`add_poisson_noise`: BasicSR's ``*_pt`` noise, each image's
  field drawn from its own ``torch.Generator`` seeded with its seed (so an image's noise does not
  depend on the batch it is in); gray noise is one field shared by the channels.
* :func:`jpeg`: libjpeg through OpenCV, one image at a time on the CPU, at the rounded quality
  (:func:`~irframe.data.degradations.jpeg.jpeg_roundtrip`). Real-ESRGAN's ``DiffJPEG`` simulates
  JPEG in torch on the GPU at a real-valued quality; irframe has no differentiable JPEG, so the
  batched path copies the batch to the CPU and back for its two JPEG steps.
* :func:`quantize_8bit`: clip and round to 8-bit levels (Real-ESRGAN's last LQ step).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

import irframe.data.degradations.jpeg as jpeg_module
from irframe.data.degradations.base import per_channel

ResizeMode = Literal["area", "bilinear", "bicubic"]
RESIZE_MODES: tuple[ResizeMode, ...] = ("area", "bilinear", "bicubic")
GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # OpenCV's RGB2GRAY (BT.601 luma)


def _per_image(values: torch.Tensor | Sequence[float] | Sequence[bool] | Sequence[int], n: int) -> list:
    out = values.tolist() if isinstance(values, torch.Tensor) else list(values)
    if len(out) != n:
        raise ValueError(f"expected {n} per-image values, got {len(out)}")
    return out


# -- blur ------------------------------------------------------------------------------------------
def trim_kernel(kernel: np.ndarray) -> np.ndarray:
    """A zero-padded square kernel without its all-zero frame (the same filter, smaller)."""
    k = kernel
    while k.shape[0] > 1 and not k[0].any() and not k[-1].any() and not k[:, 0].any() and not k[:, -1].any():
        k = k[1:-1, 1:-1]
    return k


def filter_image(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Filter an ``HWC`` float32 image with OpenCV (correlation, ``BORDER_REFLECT_101``)."""
    k = trim_kernel(np.asarray(kernel, dtype=np.float64))
    return per_channel(lambda x: cv2.filter2D(x, -1, k, borderType=cv2.BORDER_REFLECT_101), img)


def filter2d_conv(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Real-ESRGAN's ``filter2D``: reflect-pad by half the kernel, a grouped ``conv2d`` with one
    ``k x k`` kernel per image (``kernels``: ``N x k x k``, or one ``k x k`` for all)."""
    n, c, h, w = x.shape
    k = kernels.shape[-1]
    weight = kernels.to(device=x.device, dtype=x.dtype)
    if weight.dim() == 2:
        weight = weight.expand(n, k, k)
    pad = k // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    weight = weight[:, None].repeat_interleave(c, dim=0)  # (n * c, 1, k, k): every channel its image's kernel
    out = F.conv2d(padded.reshape(1, n * c, h + 2 * pad, w + 2 * pad), weight, groups=n * c)
    return out.reshape(n, c, h, w)


def filter2d(x: torch.Tensor, kernels: torch.Tensor | Sequence[np.ndarray]) -> torch.Tensor:
    """Filter image ``i`` of ``x`` with ``kernels[i]`` (Real-ESRGAN's ``filter2D``; see the module doc
    for the CPU and device implementations)."""
    if x.device.type != "cpu":
        stacked = kernels if isinstance(kernels, torch.Tensor) else torch.from_numpy(np.stack(list(kernels)))
        return filter2d_conv(x, stacked)
    ks = [k.numpy() if isinstance(k, torch.Tensor) else np.asarray(k) for k in kernels]
    if len(ks) != x.shape[0]:
        raise ValueError(f"filter2d: {x.shape[0]} images but {len(ks)} kernels")
    images = x.permute(0, 2, 3, 1).contiguous().numpy()
    out = np.stack([filter_image(img, k) for img, k in zip(images, ks, strict=True)])
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


# -- resize ----------------------------------------------------------------------------------------
def resize(
    x: torch.Tensor, mode: ResizeMode, *, size: tuple[int, int] | None = None, scale_factor: float | None = None
) -> torch.Tensor:
    """``interpolate`` as Real-ESRGAN resizes: no antialiasing, ``align_corners=False``; ``area``
    averages, ``bicubic`` may overshoot ``[0, 1]`` (not clipped)."""
    align = None if mode == "area" else False
    return F.interpolate(x, size=size, scale_factor=scale_factor, mode=mode, align_corners=align)


def resize_by(x: torch.Tensor, factor: float, mode: ResizeMode) -> torch.Tensor:
    """Resize by ``factor`` to ``floor(H f) x floor(W f)`` (at least one pixel); 1: a copy."""
    if factor == 1.0:
        return x.clone()
    h, w = x.shape[-2:]
    if math.floor(h * factor) < 1 or math.floor(w * factor) < 1:  # a tiny image: keep one pixel
        return resize(x, mode, size=(max(1, math.floor(h * factor)), max(1, math.floor(w * factor))))
    return resize(x, mode, scale_factor=factor)


# -- noise -----------------------------------------------------------------------------------------
def generator(seed: int, device: torch.device) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (one per image and noise step)."""
    return torch.Generator(device=device).manual_seed(int(seed))


def to_gray(x: torch.Tensor) -> torch.Tensor:
    """``N x 1 x H x W`` luma (0.299 R + 0.587 G + 0.114 B); a 1-channel batch as it is."""
    if x.shape[1] == 1:
        return x
    r, g, b = GRAY_WEIGHTS
    return r * x[:, 0:1] + g * x[:, 1:2] + b * x[:, 2:3]


def add_gaussian_noise(
    x: torch.Tensor,
    sigma: torch.Tensor | Sequence[float],
    gray: torch.Tensor | Sequence[bool],
    seeds: torch.Tensor | Sequence[int],
    clip: bool = True,
) -> torch.Tensor:
    """Add Gaussian noise of standard deviation ``sigma[i] / 255`` to image ``i``; ``gray[i]``: one
    field for all channels (luminance noise). Clipped to ``[0, 1]`` with ``clip``."""
    n, c, h, w = x.shape
    fields = []
    for s, g, seed in zip(_per_image(sigma, n), _per_image(gray, n), _per_image(seeds, n), strict=True):
        field = torch.randn((1 if g else c, h, w), generator=generator(seed, x.device), device=x.device)
        fields.append((field * (float(s) / 255.0)).to(x.dtype).expand(c, h, w))
    out = x + torch.stack(fields)
    return out.clamp(0.0, 1.0) if clip else out


def add_poisson_noise(
    x: torch.Tensor,
    scale: torch.Tensor | Sequence[float],
    gray: torch.Tensor | Sequence[bool],
    seeds: torch.Tensor | Sequence[int],
    clip: bool = True,
) -> torch.Tensor:
    """Add Poisson (shot) noise as BasicSR does: the image (its luma for ``gray[i]``) is rounded to
    8-bit levels, its photon count ``vals`` is the number of distinct levels rounded up to a power
    of two, and ``scale[i] * (Poisson(img * vals) / vals - img)`` is added."""
    n = x.shape[0]
    noises = []
    for i, (s, g, seed) in enumerate(zip(_per_image(scale, n), _per_image(gray, n), _per_image(seeds, n), strict=True)):
        source = to_gray(x[i : i + 1])[0] if g else x[i]
        levels = torch.clamp(torch.round(source * 255.0), 0, 255)
        count = int(torch.unique(levels).numel())
        vals = 2.0 ** math.ceil(math.log2(count)) if count > 1 else 1.0
        rounded = levels / 255.0
        noisy = torch.poisson(rounded * vals, generator=generator(seed, x.device)) / vals
        noises.append(((noisy - rounded) * float(s)).to(x.dtype).expand_as(x[i]))
    out = x + torch.stack(noises)
    return out.clamp(0.0, 1.0) if clip else out


# -- JPEG, 8 bits ----------------------------------------------------------------------------------
def jpeg(x: torch.Tensor, quality: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """JPEG-compress image ``i`` at quality ``round(quality[i])`` (libjpeg, one image at a time on
    the CPU; the input is clipped to ``[0, 1]`` first, as Real-ESRGAN does)."""
    qualities = _per_image(quality, x.shape[0])
    images = x.clamp(0.0, 1.0).permute(0, 2, 3, 1).detach().cpu().contiguous().numpy()
    out = np.stack(
        [jpeg_module.jpeg_roundtrip(img, int(round(float(q)))) for img, q in zip(images, qualities, strict=True)]
    )
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(x.device).contiguous()


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Clip to ``[0, 1]`` and round to multiples of 1/255 (Real-ESRGAN's last LQ step)."""
    return torch.clamp(torch.round(x * 255.0), 0.0, 255.0) / 255.0


# -- numpy adapters (one image, HWC) -----------------------------------------------------------------
def to_batch(img: np.ndarray) -> torch.Tensor:
    """An ``HWC`` float32 image as a ``1 x C x H x W`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).unsqueeze(0)


def from_batch(x: torch.Tensor) -> np.ndarray:
    """The one image of a ``1 x C x H x W`` tensor as an ``HWC`` float32 array."""
    return np.ascontiguousarray(x[0].permute(1, 2, 0).cpu().numpy(), dtype=np.float32)
