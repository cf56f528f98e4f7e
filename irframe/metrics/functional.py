"""Batched PSNR / SSIM / RMSE on torch tensors (any device), following BasicSR's protocol.

Inputs are NCHW tensors in [0,1] with RGB channel order (the engine's convention); values are
returned per image as float64 tensors ``[N]`` on the input device. The numpy functions in
:mod:`irframe.metrics.numpy_metrics` are the reference these are tested against.

Why float64: SSIM subtracts squared means of 0-255 values (``E[x^2] - E[x]^2``); float32 cancellation
there costs far more than the 1e-5 parity we promise.
"""

from __future__ import annotations

import torch

from irframe.metrics.numpy_metrics import SSIM_WINDOW_SIZE, gaussian_window_1d

__all__ = [
    "check_pair",
    "quantize_8bit",
    "rgb_to_y",
    "to_255",
    "crop_borders",
    "psnr",
    "ssim",
    "mse",
]

# BT.601 luma weights for R, G, B on [0,1] input (BasicSR's rgb2ycbcr, y_only=True), offset 16.
_Y_WEIGHTS_RGB = (65.481, 128.553, 24.966)


def check_pair(pred: torch.Tensor, gt: torch.Tensor, what: str = "metric") -> None:
    """Raise ``TypeError``/``ValueError`` unless ``pred`` and ``gt`` are same-shaped float NCHW tensors."""
    for label, t in (("pred", pred), ("gt", gt)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{what}: {label} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(f"{what}: {label} must be NCHW (4-D), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{what}: {label} must be a float tensor in [0,1], got dtype {t.dtype}")
    if pred.shape != gt.shape:
        raise ValueError(f"{what}: pred and gt shapes differ: {tuple(pred.shape)} vs {tuple(gt.shape)}")
    if pred.device != gt.device:
        raise ValueError(f"{what}: pred is on {pred.device} but gt is on {gt.device}")


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0,1], scale to 0-255 and round, as BasicSR's ``tensor2img`` does before metrics.

    The multiply happens in the input dtype (float32 for the engine) exactly like BasicSR's numpy
    code, so a value on a rounding boundary lands on the same integer. Returns float64.
    """
    return (x.clamp(0, 1) * 255.0).round().to(torch.float64)


def to_255(x: torch.Tensor, quantize: bool) -> torch.Tensor:
    """[0,1] tensor -> float64 on the 0-255 scale, rounded to 8 bit when ``quantize``."""
    return quantize_8bit(x) if quantize else x.to(torch.float64) * 255.0


def rgb_to_y(x255: torch.Tensor) -> torch.Tensor:
    """BT.601 Y (0-255 scale, not rounded) of an RGB NCHW tensor on the 0-255 scale; N1HW.

    1-channel input is returned as is (BasicSR leaves non-3-channel images untouched).
    """
    if x255.shape[1] == 1:
        return x255
    if x255.shape[1] != 3:
        raise ValueError(f"the Y channel needs 1 or 3 input channels, got {x255.shape[1]}")
    r, g, b = x255[:, 0:1], x255[:, 1:2], x255[:, 2:3]
    wr, wg, wb = _Y_WEIGHTS_RGB
    return 16.0 + (wr * r + wg * g + wb * b) / 255.0


def crop_borders(x: torch.Tensor, crop_border: int) -> torch.Tensor:
    """Cut ``crop_border`` pixels from every side of an NCHW tensor (a view)."""
    if crop_border == 0:
        return x
    h, w = x.shape[-2:]
    if 2 * crop_border >= min(h, w):
        raise ValueError(f"crop_border {crop_border} leaves nothing of a {h}x{w} image")
    return x[..., crop_border:-crop_border, crop_border:-crop_border]


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error of two NCHW tensors -> ``[N]``."""
    return ((a - b) ** 2).flatten(1).mean(dim=1)


def psnr(a255: torch.Tensor, b255: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB, peak 255) of two prepared 0-255 NCHW tensors; ``inf`` where equal."""
    return 10.0 * torch.log10(255.0 * 255.0 / mse(a255, b255))


def _filter_valid(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Separable 'valid' correlation of the last two dims with ``outer(taps, taps)``.

    Shifted in-place sums rather than a grouped ``conv2d``: float64 depthwise convolutions take a
    slow path on CPU (about 4x slower here), and on a GPU these few element-wise passes are cheap.
    """
    n = len(taps)
    h, w = x.shape[-2:]
    rows = x[..., 0 : h - n + 1, :] * taps[0]
    for i in range(1, n):
        rows.add_(x[..., i : h - n + 1 + i, :], alpha=taps[i])
    out = rows[..., 0 : w - n + 1] * taps[0]
    for j in range(1, n):
        out.add_(rows[..., j : w - n + 1 + j], alpha=taps[j])
    return out


def ssim(a255: torch.Tensor, b255: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of two prepared 0-255 NCHW tensors -> ``[N]``.

    Per channel with an 11x11 Gaussian (sigma 1.5) in 'valid' mode, then averaged over channels and
    pixels (equal to BasicSR's mean of per-channel means, since all channels have the same size).
    """
    n, _, h, w = a255.shape
    if min(h, w) < SSIM_WINDOW_SIZE:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW_SIZE}x{SSIM_WINDOW_SIZE} (after cropping), "
            f"got {h}x{w}"
        )
    # On the CPU, image by image: the filter's 22 passes then run on cache-sized maps (2-3x faster
    # than the whole batch at once, benchmarks/RESULTS.md). A GPU filters the whole batch at once.
    step = 1 if a255.device.type == "cpu" else n
    return torch.cat([_ssim_batch(a255[i : i + step], b255[i : i + step]) for i in range(0, n, step)])


def _ssim_batch(a255: torch.Tensor, b255: torch.Tensor) -> torch.Tensor:
    c = a255.shape[1]
    a = a255.to(torch.float64)
    b = b255.to(torch.float64)
    # One filtering pass over four maps of every channel at once. The filter is linear, so
    # E[a^2] + E[b^2] (all the formula needs of them) comes from filtering a^2 + b^2.
    maps = torch.cat([a, b, a * a + b * b, a * b], dim=1)
    mu1, mu2, e_sq, e12 = _filter_valid(maps, gaussian_window_1d().tolist()).split(c, dim=1)
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma_sq_sum, sigma12 = e_sq - mu1_sq - mu2_sq, e12 - mu1_mu2  # sigma1^2 + sigma2^2, sigma12
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma_sq_sum + c2))
    return ssim_map.flatten(1).mean(dim=1)
