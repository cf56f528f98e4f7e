"""Image helpers for the evaluation tools: source format probing, saving like the source, crops.

Restored images are written the way their input was stored: 16-bit sources give 16-bit PNGs,
8-bit (and JPEG, 8-bit by nature) give 8-bit PNGs, float (32-bit) TIFFs give float TIFFs, and a
grayscale source stays grayscale even when the model ran on a replicated 3-channel copy.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch

from irframe.data.io import (
    IMAGE_EXTENSIONS,
    LOSSLESS_EXTENSIONS,
    check_pixel_budget,
    convert_channels,
    imwrite,
    tensor2img,
)
from irframe.errors import DataError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # followed by the IHDR chunk; byte 25 is the colour type

__all__ = [
    "ImageFormat", "probe_image", "probe_bytes", "list_images", "save_restored", "output_suffix", "detail_box",
]



@dataclass(frozen=True)
class ImageFormat:
    """How a source image is stored: bit depth (8, 16, or 32 for float TIFF) and channels (1 gray, 3 colour)."""

    bit_depth: Literal[8, 16, 32] = 8
    channels: Literal[1, 3] = 3


def probe_image(path: str | os.PathLike[str]) -> ImageFormat:
    """Bit depth and channels of an image file (alpha dropped, as :func:`irframe.data.io.imread` does).

    Raises:
        DataError: the file is missing or cannot be decoded (names the file).
    """
    p = Path(path)
    try:
        data = np.fromfile(p, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"{p}: cannot read image file ({exc.strerror or exc})") from None
    return probe_bytes(data, str(p))


def probe_bytes(content: bytes | np.ndarray, source: str) -> ImageFormat:
    """:func:`probe_image` of encoded image bytes (an LMDB record); ``source`` names them in errors."""
    data = np.frombuffer(content, dtype=np.uint8) if isinstance(content, (bytes, bytearray, memoryview)) else content
    if data.size:
        check_pixel_budget(data, source)
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error:  # e.g. a header claiming more pixels than OpenCV's safety limit
        img = None
    if img is None:
        raise DataError(f"{source}: cannot decode image: truncated, corrupt or not an image")
    depth: Literal[8, 16, 32] = 32 if img.dtype.kind == "f" else 16 if img.dtype == np.uint16 else 8
    # OpenCV decodes a gray+alpha PNG as BGRA: its header's colour type (4) says it is gray.
    gray_png = data[:8].tobytes() == _PNG_SIGNATURE and data.size > 25 and int(data[25]) in (0, 4)
    channels: Literal[1, 3] = 1 if img.ndim == 2 or img.shape[2] in (1, 2) or gray_png else 3
    return ImageFormat(depth, channels)


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive), sorted by name."""
    p = Path(folder)
    if not p.is_dir():
        raise DataError(f"{p}: not a folder")
    return sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)


def output_suffix(source: str | os.PathLike[str]) -> str:
    """The output extension for a source file: its own if lossless (PNG/TIFF/...), else ``.png``."""
    ext = Path(source).suffix.lower()
    return ext if ext in LOSSLESS_EXTENSIONS and ext != ".bmp" else ".png"


def save_restored(path: str | os.PathLike[str], image: torch.Tensor, fmt: ImageFormat) -> None:
    """Write a ``[C,H,W]`` (or ``[1,C,H,W]``) [0,1] output with the source's depth and channels.

    A 3-channel output of a gray source is reduced to BT.601 luma (the model saw the gray image
    replicated, so its channels are near-equal); a 1-channel output stays gray whatever the source.
    Values are clipped to [0,1] when quantising (:func:`irframe.data.io.quantize`): models do not
    clamp, and a restored image legitimately overshoots at saturated edges and white backgrounds (no
    warning for that). An output far outside [0,1] (:func:`irframe.data.io.wrong_value_range`) is a
    wrong value range or a diverged model: it is still clipped, with a ``RuntimeWarning`` naming the
    file, because the saved image is wrong (a [-1,1] output clipped to [0,1] turns dark tones black).
    """
    arr = tensor2img(image)
    if fmt.channels == 1 and arr.shape[2] == 3:
        arr = convert_channels(arr, 1)
    suffix = Path(path).suffix.lower()
    bit_depth: Literal[8, 16, 32] = fmt.bit_depth if suffix != ".bmp" else 8
    if bit_depth == 32 and suffix not in (".tif", ".tiff"):  # only TIFF holds float: the closest is 16-bit
        warnings.warn(f"{path}: the source is a float image; {suffix} holds integers, so it is written as 16-bit",
                      RuntimeWarning, stacklevel=2)
        bit_depth = 16
    imwrite(path, arr, bit_depth=bit_depth)


def detail_box(image: torch.Tensor, size: int, multiple: int = 1) -> tuple[int, int, int, int]:
    """The ``size`` x ``size`` window of ``image`` (``[C,H,W]``) with the most detail.

    Detail is the mean absolute gradient; windows are tried on a half-size stride and aligned to
    ``multiple`` (the SR scale, so the matching input crop has whole pixels). The box depends on the
    image alone, so every model's crop of the same image shows the same place.

    Returns:
        ``(top, left, height, width)``; the whole image if it is smaller than ``size``.
    """
    c, h, w = image.shape[-3:]
    ch, cw = min(size, h), min(size, w)
    ch, cw = max(multiple, ch - ch % multiple), max(multiple, cw - cw % multiple)
    gray = image.reshape(c, h, w).float().mean(0)
    grad = torch.zeros_like(gray)
    grad[:, 1:] += (gray[:, 1:] - gray[:, :-1]).abs()
    grad[1:, :] += (gray[1:, :] - gray[:-1, :]).abs()
    # integral image: window sums in O(1) each
    integral = torch.nn.functional.pad(grad.double().cumsum(0).cumsum(1), (1, 0, 1, 0))
    step = max(multiple, (min(ch, cw) // 2) // multiple * multiple)
    best, best_box = -1.0, (0, 0, ch, cw)
    for top in range(0, h - ch + 1, step):
        for left in range(0, w - cw + 1, step):
            total = float(
                integral[top + ch, left + cw]
                - integral[top, left + cw]
                - integral[top + ch, left]
                + integral[top, left]
            )
            if total > best:
                best, best_box = total, (top, left, ch, cw)
    return best_box
