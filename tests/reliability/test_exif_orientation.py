"""A photo's EXIF orientation is applied on read: ``Orientation=6`` (a phone held upright) comes out
upright, in ``imread``, in ``tools/infer.py``'s output and in ``create_lmdb``'s record.

The JPEGs are built here: an OpenCV-encoded raster with an ``APP1 Exif`` segment written by hand
(one IFD entry, tag 274), in both byte orders. OpenCV's own ``IMREAD_COLOR`` applies the orientation
(``IMREAD_UNCHANGED``, which irframe needs for 16-bit and alpha, does not), so it is the reference.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from irframe.data.io import decode_image, imread


def exif_segment(orientation: int, order: bytes = b"II") -> bytes:
    """An ``APP1`` segment holding an EXIF block with one entry: Orientation (SHORT)."""
    o = "<" if order == b"II" else ">"
    ifd = struct.pack(o + "H", 1) + struct.pack(o + "HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(o + "I", 0)
    tiff = order + struct.pack(o + "HI", 42, 8) + ifd
    payload = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def jpeg(orientation: int, order: bytes = b"II") -> bytes:
    """A 16 x 32 (h x w) JPEG of random pixels whose EXIF says ``orientation``."""
    raster = np.random.default_rng(orientation).integers(0, 256, (16, 32, 3)).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", raster, [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    data = encoded.tobytes()
    return data[:2] + exif_segment(orientation, order) + data[2:]  # right after SOI


def upright(data: bytes) -> np.ndarray:
    """OpenCV's default reading (orientation applied), as float RGB in [0, 1]."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None
    return bgr[:, :, ::-1].astype(np.float32) / 255.0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_is_applied_like_opencv(orientation: int) -> None:
    data = jpeg(orientation, b"MM" if orientation % 2 else b"II")
    got = decode_image(data, "photo.jpg")
    assert got.shape == ((32, 16, 3) if orientation >= 5 else (16, 32, 3))
    np.testing.assert_array_equal(got, upright(data))


def test_infer_writes_a_rotated_phone_photo_upright(tmp_path: Path) -> None:
    import torch

    from irframe.evaluate.infer import infer_files, plan_outputs

    photo = tmp_path / "in" / "photo.jpg"
    photo.parent.mkdir()
    photo.write_bytes(jpeg(6))
    assert imread(photo).shape == (32, 16, 3)  # 16 x 32 stored, shown turned 90 degrees clockwise
    result = infer_files(torch.nn.Identity(), plan_outputs(photo, tmp_path / "out"), progress=False)
    assert result.failed == [] and len(result.written) == 1
    out = imread(tmp_path / "out" / "photo.png")
    np.testing.assert_array_equal(out, upright(photo.read_bytes()))  # identity model: the upright input


def test_create_lmdb_stores_the_photo_upright(tmp_path: Path) -> None:
    from irframe.data.backends import LMDBBackend
    from irframe.data.lmdb_pack import create_lmdb

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(jpeg(8))
    create_lmdb(folder, tmp_path / "photos.lmdb", verify=True, progress=False)
    record = LMDBBackend(tmp_path / "photos.lmdb").read("photo")
    np.testing.assert_array_equal(record, imread(folder / "photo.jpg"))
    assert record.shape == (32, 16, 3)


def test_damaged_exif_block_reads_the_raster_as_stored() -> None:
    data = bytearray(jpeg(6))
    ifd_offset = data.index(b"Exif\0\0") + 6 + 4
    data[ifd_offset : ifd_offset + 4] = b"\xff\xff\xff\x00"  # the first IFD far past the block's end
    assert decode_image(bytes(data), "photo.jpg").shape == (16, 32, 3)
