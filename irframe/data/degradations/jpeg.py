"""JPEG compression artefacts (encode and decode with OpenCV's libjpeg)."""

from __future__ import annotations

import cv2
import numpy as np

from irframe.data.degradations.base import Degradation, make_param
from irframe.data.io import quantize
from irframe.errors import DataError
from irframe.registry import DEGRADATIONS


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode an ``HWC`` float RGB/gray image as 8-bit JPEG at ``quality`` and decode it back."""
    q = quantize(img, 8, source="JPEGCompression input")
    if q.shape[2] == 3:
        q = np.ascontiguousarray(q[:, :, ::-1])  # libjpeg's YCbCr conversion expects BGR order here
    ok, buf = cv2.imencode(".jpg", q, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise DataError(f"JPEGCompression: OpenCV could not encode a {img.shape} image")
    dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if dec is None:
        raise DataError(f"JPEGCompression: OpenCV could not decode its own encoding of a {img.shape} image")
    dec = dec[:, :, None] if dec.ndim == 2 else dec[:, :, ::-1]
    return np.ascontiguousarray(dec, dtype=np.float32) / np.float32(255.0)


@DEGRADATIONS.register()
class JPEGCompression(Degradation):
    """Compress as JPEG: the input is rounded to 8 bits, encoded with libjpeg (4:2:0 chroma
    subsampling for colour) and decoded. The output is 8-bit quantised, hence in ``[0, 1]``.

    Args:
        quality: JPEG quality 1-100 (default 40 when ``quality_range`` is not given; the
            compression-artefact benchmarks use 10, 20, 30, 40).
        quality_range: ``[low, high]``: the quality is drawn per call (rounded to an integer).
    """

    def __init__(self, quality: int | None = None, quality_range: tuple[int, int] | None = None) -> None:
        self.quality = make_param("JPEGCompression", "quality", quality, quality_range, 40, minimum=1, maximum=100)

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return jpeg_roundtrip(img, int(round(self.quality.sample(rng))))
