"""imread / imwrite / tensor helpers: formats, conversions, rounding and bad files."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from irframe.data.io import decode_image, img2tensor, imread, imwrite, quantize, tensor2img
from irframe.errors import DataError


def test_imread_8bit_rgb_order_and_range(helpers, tmp_path: Path) -> None:
    bgr = helpers.random_uint8(np.random.default_rng(0), 10, 12)
    path = helpers.write_png(tmp_path / "a.png", bgr)
    img = imread(path)
    assert img.dtype == np.float32 and img.shape == (10, 12, 3) and img.flags.c_contiguous
    np.testing.assert_array_equal(img, bgr[:, :, ::-1].astype(np.float32) / 255.0)


def test_imread_16bit_png(helpers, tmp_path: Path) -> None:
    bgr16 = np.random.default_rng(1).integers(0, 65536, size=(8, 9, 3), dtype=np.uint16)
    img = imread(helpers.write_png(tmp_path / "b.png", bgr16))
    np.testing.assert_allclose(img, bgr16[:, :, ::-1] / 65535.0, atol=1e-7)


def test_imread_jpeg(helpers, tmp_path: Path) -> None:
    bgr = helpers.random_uint8(np.random.default_rng(2), 16, 16)
    path = tmp_path / "c.jpg"
    cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    img = imread(path)
    assert img.shape == (16, 16, 3) and img.min() >= 0.0 and img.max() <= 1.0
    np.testing.assert_array_equal(img, cv2.imread(str(path))[:, :, ::-1] / np.float32(255.0))


def test_gray_and_channel_conversions(helpers, tmp_path: Path) -> None:
    gray = helpers.random_uint8(np.random.default_rng(3), 6, 7, c=1)
    path = helpers.write_png(tmp_path / "g.png", gray)
    as_rgb = imread(path, channels=3)
    assert as_rgb.shape == (6, 7, 3)
    np.testing.assert_array_equal(as_rgb[:, :, 0], as_rgb[:, :, 2])
    assert imread(path, channels=None).shape == (6, 7, 1)
    np.testing.assert_array_equal(imread(path, channels=1)[:, :, 0], gray / np.float32(255.0))
    # colour -> gray is BT.601 luma
    rgb_path = helpers.write_png(tmp_path / "rgb.png", np.full((2, 2, 3), (0, 0, 255), np.uint8))  # BGR: pure red
    np.testing.assert_allclose(imread(rgb_path, channels=1), 0.299, atol=1e-6)


def test_rgba_composited_over_white(helpers, tmp_path: Path) -> None:
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[0, 0] = (0, 0, 255, 255)  # opaque red
    bgra[0, 1] = (0, 0, 0, 0)  # fully transparent black -> white
    bgra[1, 0] = (0, 0, 0, 51)  # 20% black over white -> 0.8
    img = imread(helpers.write_png(tmp_path / "rgba.png", bgra))
    np.testing.assert_allclose(img[0, 0], (1, 0, 0))
    np.testing.assert_allclose(img[0, 1], (1, 1, 1))
    np.testing.assert_allclose(img[1, 0], (0.8, 0.8, 0.8), atol=1e-6)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: None, "not found"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"this is not an image at all"), "cannot decode"),
    ],
    ids=["missing", "zero-byte", "not-an-image"],
)
def test_bad_files_raise_naming_the_file(tmp_path: Path, make, words: str) -> None:
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(DataError, match=words) as info:
        imread(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_truncated_files_raise(helpers, tmp_path: Path, ext: str) -> None:
    _ok, buf = cv2.imencode(ext, helpers.random_uint8(np.random.default_rng(4), 64, 64))
    path = tmp_path / f"trunc{ext}"
    path.write_bytes(buf.tobytes()[: len(buf) * 2 // 3])
    with pytest.raises(DataError) as info:
        imread(path)
    assert str(path) in str(info.value)


def test_decode_image_names_the_record() -> None:
    with pytest.raises(DataError, match=r"db\.lmdb:key1"):
        decode_image(b"\x89PNG\r\n\x1a\n garbage", "db.lmdb:key1")


def test_imwrite_roundtrip_8_and_16_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    u8 = rng.integers(0, 256, (5, 6, 3)).astype(np.float32) / 255.0
    imwrite(tmp_path / "x.png", u8)
    np.testing.assert_array_equal(imread(tmp_path / "x.png"), u8)
    u16 = rng.integers(0, 65536, (5, 6, 3)).astype(np.float64) / 65535.0
    imwrite(tmp_path / "y.png", u16, bit_depth=16)
    assert cv2.imread(str(tmp_path / "y.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    np.testing.assert_allclose(imread(tmp_path / "y.png"), u16, atol=1e-7)
    gray = u8[:, :, :1]
    imwrite(tmp_path / "g.png", gray)
    np.testing.assert_array_equal(imread(tmp_path / "g.png", channels=None), gray)


def test_imwrite_rounds_not_truncates(tmp_path: Path) -> None:
    img = np.full((1, 3, 3), 0.0, np.float32)
    img[0, 0] = 100.6 / 255.0  # -> 101, truncation would give 100
    img[0, 1] = 100.4 / 255.0  # -> 100
    img[0, 2] = 254.7 / 255.0  # -> 255
    imwrite(tmp_path / "r.png", img)
    back = cv2.imread(str(tmp_path / "r.png"))[0, :, 0]
    assert back.tolist() == [101, 100, 255]


def test_imwrite_clips_and_warns_only_beyond_a_tiny_fraction(tmp_path: Path) -> None:
    img = np.full((20, 20, 3), 0.5, np.float32)
    img[0, 0, 0] = 1.2  # one value in 1200: clipped silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        imwrite(tmp_path / "ok.png", img)
    assert cv2.imread(str(tmp_path / "ok.png"))[0, 0, 2] == 255
    wrong_range = img * 255.0  # a [0, 255] image: almost everything is out of range
    with pytest.warns(
        RuntimeWarning, match=r"bad\.png: values span \[127\.5, 306\], 100\.00% of them more than 0\.5 outside \[0, 1\]"
    ):
        imwrite(tmp_path / "bad.png", wrong_range)
    signed = img.copy()
    signed[:2] = -0.9  # a [-1, 1] output: its dark tones far below 0 (10% of the values)
    with pytest.warns(RuntimeWarning, match="value range"):
        imwrite(tmp_path / "signed.png", signed)
    far = img.copy()
    far[0, 0, 0] = 3.0  # a single value very far outside is not clipped silently either
    with pytest.warns(RuntimeWarning, match=r"span \[0\.5, 3\]"):
        imwrite(tmp_path / "far.png", far)
    overshoot = img.copy()
    overshoot[:10] = 1.2  # half the image just above 1 (a white page's background): silent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        imwrite(tmp_path / "overshoot.png", overshoot)


def test_imwrite_refuses_nan_lossy_and_bad_shapes(tmp_path: Path) -> None:
    img = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(DataError, match="lossless"):
        imwrite(tmp_path / "a.jpg", img)
    nan = img.copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        imwrite(tmp_path / "n.png", nan)
    with pytest.raises(DataError, match="shape"):
        imwrite(tmp_path / "s.png", np.zeros((4, 4, 2), np.float32))
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))


def test_quantize_rounds_to_nearest_and_clips() -> None:
    values = np.array([0.0, 0.4 / 255, 0.6 / 255, 1.49 / 255, 1.51 / 255, 1.0, -0.001, 1.001], np.float32)
    assert quantize(values).tolist() == [0, 0, 1, 1, 2, 255, 0, 255]
    assert quantize(np.array([0.6 / 65535]), 16).tolist() == [1]


def test_tensor_helpers_roundtrip() -> None:
    img = np.random.default_rng(6).random((5, 7, 3), dtype=np.float32)
    t = img2tensor(img)
    assert isinstance(t, torch.Tensor) and t.shape == (3, 5, 7) and t.dtype == torch.float32
    np.testing.assert_array_equal(tensor2img(t), img)
    np.testing.assert_array_equal(tensor2img(t[None]), img)
    assert [x.shape for x in img2tensor([img, img[:, :, :1]])] == [(3, 5, 7), (1, 5, 7)]
    with pytest.raises(ValueError, match="batch"):
        tensor2img(torch.zeros(2, 3, 4, 4))
    out_of_range = torch.full((1, 2, 2), 1.5)
    assert tensor2img(out_of_range).max() == 1.5  # no clamping in the helper
