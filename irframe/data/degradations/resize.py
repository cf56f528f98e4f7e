"""MATLAB-compatible bicubic resizing (the standard way SR benchmarks make LR images).

:func:`imresize` reproduces MATLAB's ``imresize(img, scale, 'bicubic')`` (and BasicSR's
``imresize``, which follows it): Keys' cubic kernel with ``a = -0.5``; when shrinking with
antialiasing the kernel is stretched by ``1/scale`` (a wider low-pass filter); the output size is
``ceil(in * scale)``; pixels outside the image are mirrored symmetrically (edge pixel repeated).
Height is resized first, then width. Computation is in float64 (the result is cast back to the
input's float dtype), so results agree with the reference to ~1e-12 before that cast.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from irframe.data.degradations.base import Degradation
from irframe.errors import DataError, OptionsError
from irframe.registry import DEGRADATIONS

_KERNEL_WIDTH = 4.0  # support of the cubic kernel, in input pixels


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with ``a = -0.5`` (MATLAB's ``bicubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=64)
def contributions(in_length: int, out_length: int, scale: float, antialiasing: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weights and input indices of every output pixel along one axis.

    Returns ``(weights, indices)``, both ``out_length x taps``: output pixel ``i`` is
    ``sum_k weights[i, k] * signal[indices[i, k]]``. Indices that fall outside ``[0, in_length)``
    are folded back by symmetric mirroring (MATLAB's boundary rule: edge pixel repeated).
    """
    shrink_aa = scale < 1 and antialiasing
    width = _KERNEL_WIDTH / scale if shrink_aa else _KERNEL_WIDTH
    x = np.arange(1, out_length + 1, dtype=np.float64)  # 1-based output coordinates
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # matching input coordinate (1-based)
    left = np.floor(u - width / 2.0)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    dist = u[:, None] - idx
    weights = scale * cubic(dist * scale) if shrink_aa else cubic(dist)
    weights /= weights.sum(axis=1, keepdims=True)
    period = 2 * in_length  # mirror 1-based indices: 0 -> 1, -1 -> 2, n+1 -> n, ...
    indices = np.mod(idx.astype(np.int64) - 1, period)
    indices = np.where(indices >= in_length, period - 1 - indices, indices)
    weights.setflags(write=False)
    indices.setflags(write=False)
    return weights, indices


def _resize_axis(data: np.ndarray, axis: int, out_length: int, scale: float, antialiasing: bool) -> np.ndarray:
    weights, indices = contributions(data.shape[axis], out_length, scale, antialiasing)
    data = np.moveaxis(data, axis, 0)
    shape = (out_length,) + (1,) * (data.ndim - 1)
    # One gathered slice per tap keeps memory at the output's size (a full gather would be taps x).
    out = np.zeros((out_length, *data.shape[1:]), dtype=np.float64)
    for k in range(weights.shape[1]):
        out += weights[:, k].reshape(shape) * data[indices[:, k]]
    return np.moveaxis(out, 0, axis)


def imresize(img: np.ndarray, scale: float, antialiasing: bool = True) -> np.ndarray:
    """Resize like MATLAB's ``imresize(img, scale, 'bicubic')``.

    Args:
        img: float ``HWC`` or ``HW`` array (values are not rescaled; use ``[0, 1]`` images).
        scale: size multiplier (``1/4`` shrinks by 4, ``2`` enlarges by 2).
        antialiasing: widen the kernel when shrinking (MATLAB's default).

    Returns:
        The resized array, ``ceil(H*scale) x ceil(W*scale)``, in the input's float dtype.
        Not clipped: bicubic overshoots slightly near sharp edges, as MATLAB's does.
    """
    arr = np.asarray(img)
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"imresize: expected a float image (e.g. uint8 / 255), got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise DataError(f"imresize: expected an HxW or HxWxC array, got shape {arr.shape}")
    if not scale > 0:
        raise ValueError(f"imresize: scale must be positive, got {scale!r}")
    in_h, in_w = arr.shape[:2]
    out_h, out_w = math.ceil(in_h * scale), math.ceil(in_w * scale)
    data = arr.astype(np.float64, copy=False)
    out = _resize_axis(data, 0, out_h, float(scale), bool(antialiasing))  # height first, as MATLAB
    out = _resize_axis(out, 1, out_w, float(scale), bool(antialiasing))
    return out.astype(arr.dtype, copy=False)


@DEGRADATIONS.register()
class BicubicDownsample(Degradation):
    """Bicubic downsampling by an integer factor, MATLAB-compatible (see :func:`imresize`).

    The input height and width must be multiples of ``scale`` (datasets mod-crop GT first), so that
    the LR image is exactly ``H/scale x W/scale``. The output is not clipped (bicubic overshoot is
    tiny and is what MATLAB-made LR images contain before 8-bit saving).

    Args:
        scale: downsampling factor (2, 3 or 4 in the SR benchmarks; any integer >= 1 works).
        antialiasing: MATLAB's antialiasing when shrinking (on in every SR benchmark).
    """

    def __init__(self, scale: int = 4, antialiasing: bool = True) -> None:
        if not isinstance(scale, (int, np.integer)) or scale < 1:
            raise OptionsError(f"BicubicDownsample.scale: expected an integer >= 1, got {scale!r}")
        self.scale = int(scale)
        self.antialiasing = bool(antialiasing)

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = img.shape[:2]
        if h % self.scale or w % self.scale:
            raise DataError(
                f"BicubicDownsample(scale={self.scale}): image size {h}x{w} is not a multiple of the scale "
                "(mod-crop the GT first; datasets do this when given `scale`)"
            )
        if self.scale == 1:
            return img.copy()
        return imresize(img, 1.0 / self.scale, self.antialiasing)
