"""PSNR / SSIM on numpy arrays, numerically matching BasicSR's ``calculate_psnr`` / ``calculate_ssim``.

Conventions (BasicSR's): images on the 0-255 scale (uint8 or float), channels in BGR order as
``cv2.imread`` returns them, ``crop_border`` pixels cut from every side first, and the optional Y
channel is ITU-R BT.601 luma ``Y = 16 + (24.966 B + 128.553 G + 65.481 R)`` computed on [0,1] input,
not rounded. SSIM is computed per channel with an 11x11 Gaussian window (sigma 1.5) in 'valid' mode
and averaged over channels.

These are the reference implementations: the batched torch metrics in
:mod:`irframe.metrics.functional` are tested against them.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "reorder_image",
    "to_y_channel",
    "calculate_psnr",
    "calculate_ssim",
    "gaussian_window_1d",
    "SSIM_WINDOW_SIZE",
    "SSIM_SIGMA",
]

# BT.601 luma weights for B, G, R (BasicSR's bgr2ycbcr, y_only=True) on [0,1] input, offset 16.
_Y_WEIGHTS_BGR = np.array([24.966, 128.553, 65.481], dtype=np.float64)
SSIM_WINDOW_SIZE = 11
SSIM_SIGMA = 1.5


def reorder_image(img: np.ndarray, input_order: str = "HWC") -> np.ndarray:
    """Return ``img`` as HxWxC (a 2-D image gets a trailing channel axis).

    Args:
        img: an HxW, HxWxC or CxHxW array.
        input_order: ``'HWC'`` or ``'CHW'``; ignored for 2-D input.
    """
    if input_order not in ("HWC", "CHW"):
        raise ValueError(f"input_order must be 'HWC' or 'CHW', got {input_order!r}")
    if img.ndim == 2:
        return img[..., None]
    if img.ndim != 3:
        raise ValueError(f"expected a 2-D or 3-D image array, got shape {img.shape}")
    return img.transpose(1, 2, 0) if input_order == "CHW" else img


def to_y_channel(img: np.ndarray) -> np.ndarray:
    """BT.601 Y of a BGR 0-255 image, on the 0-255 scale (HxWx1), as BasicSR computes it.

    BasicSR works in float32 here (``img.astype(np.float32) / 255``, then luma in float64 cast back
    to float32); we keep those casts so results match it bit for bit. A 1-channel image is returned
    unchanged (scaled through the same float32 round trip).
    """
    img = img.astype(np.float32) / 255.0
    if img.ndim == 3 and img.shape[2] == 3:
        luma = (np.dot(img, _Y_WEIGHTS_BGR) + 16.0) / 255.0
        img = luma.astype(np.float32)[..., None]
    return img * 255.0


def _prepare(
    img: np.ndarray, img2: np.ndarray, crop_border: int, input_order: str, test_y_channel: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Shared steps of PSNR and SSIM: checks, reorder, crop, optional Y, float64."""
    if img.shape != img2.shape:
        raise ValueError(f"image shapes differ: {img.shape} vs {img2.shape}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    img = reorder_image(img, input_order)
    img2 = reorder_image(img2, input_order)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, ...]
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"crop_border {crop_border} leaves nothing of an image of shape {img2.shape}")
    if test_y_channel:
        if img.shape[2] not in (1, 3):
            raise ValueError(f"test_y_channel needs 1 or 3 channels, got {img.shape[2]}")
        img = to_y_channel(img)
        img2 = to_y_channel(img2)
    return img.astype(np.float64), img2.astype(np.float64)


def calculate_psnr(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: int,
    input_order: str = "HWC",
    test_y_channel: bool = False,
) -> float:
    """PSNR (dB) of two 0-255 images, BasicSR's protocol; ``inf`` for identical images.

    Args:
        img, img2: images on the 0-255 scale, BGR channel order, same shape.
        crop_border: pixels cut from each side before the computation.
        input_order: ``'HWC'`` or ``'CHW'``.
        test_y_channel: compare the BT.601 Y channel only.
    """
    a, b = _prepare(img, img2, crop_border, input_order, test_y_channel)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0 * 255.0 / mse))


def gaussian_window_1d(size: int = SSIM_WINDOW_SIZE, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian (as ``cv2.getGaussianKernel(size, sigma)``), float64."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    k = np.exp(-(x**2) / (2.0 * sigma**2))
    return k / k.sum()


def _filter_valid(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2-D image with ``outer(k, k)``.

    Equal to BasicSR's ``cv2.filter2D(img, -1, window)[5:-5, 5:-5]``: the border handling of
    filter2D never reaches the part it keeps.
    """
    n = k.size
    h, w = img.shape
    rows = sum(k[i] * img[i : h - n + 1 + i, :] for i in range(n))
    return sum(k[j] * rows[:, j : w - n + 1 + j] for j in range(n))


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of one 2-D channel on the 0-255 scale (Wang et al. 2004 constants)."""
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    k = gaussian_window_1d()
    mu1 = _filter_valid(a, k)
    mu2 = _filter_valid(b, k)
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    sigma1_sq = _filter_valid(a * a, k) - mu1_sq
    sigma2_sq = _filter_valid(b * b, k) - mu2_sq
    sigma12 = _filter_valid(a * b, k) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    )
    return float(ssim_map.mean())


def calculate_ssim(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: int,
    input_order: str = "HWC",
    test_y_channel: bool = False,
) -> float:
    """SSIM of two 0-255 images, BasicSR's protocol (per channel, averaged).

    Args:
        img, img2: images on the 0-255 scale, BGR channel order, same shape, at least 11x11 after
            cropping (the Gaussian window is applied in 'valid' mode).
        crop_border: pixels cut from each side before the computation.
        input_order: ``'HWC'`` or ``'CHW'``.
        test_y_channel: compare the BT.601 Y channel only.
    """
    a, b = _prepare(img, img2, crop_border, input_order, test_y_channel)
    if min(a.shape[0], a.shape[1]) < SSIM_WINDOW_SIZE:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW_SIZE}x{SSIM_WINDOW_SIZE} after cropping "
            f"{crop_border} border pixels, got {a.shape[0]}x{a.shape[1]}"
        )
    return float(np.mean([_ssim_channel(a[..., c], b[..., c]) for c in range(a.shape[2])]))
