"""Float (32-bit) TIFFs: values that cannot be an image are refused naming the file, and a float
source is restored into a float TIFF instead of being squeezed into 8 bits without a word."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from irframe.data.io import imread, imwrite
from irframe.errors import DataError
from irframe.evaluate.images import probe_image, save_restored


def float_tiff(path: Path, values: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), values.astype(np.float32))
    return path


@pytest.mark.parametrize(
    ("fill", "match"),
    [
        (np.nan, r"float image holds 48 NaN or infinite value\(s\) of 48"),
        (np.inf, r"float image holds 48 NaN or infinite value\(s\) of 48"),
        (1e30, r"float image values span \[1e\+30, 1e\+30\].*rescale the file"),
        (255.0, r"float image values span \[255, 255\]"),
    ],
)
def test_float_tiff_that_is_not_an_image_names_the_file(tmp_path: Path, fill: float, match: str) -> None:
    bad = float_tiff(tmp_path / "bad.tif", np.full((4, 4, 3), fill))
    with pytest.raises(DataError, match=rf"^{tmp_path / 'bad.tif'}: {match}"):
        imread(bad)


def test_float_tiff_in_range_reads_as_stored(tmp_path: Path) -> None:
    values = np.random.default_rng(0).uniform(-0.05, 1.05, (5, 6, 3)).astype(np.float32)  # a little overshoot
    got = imread(float_tiff(tmp_path / "ok.tif", values[:, :, ::-1]))
    np.testing.assert_array_equal(got, values)


def test_a_float_source_is_written_back_as_a_float_tiff(tmp_path: Path) -> None:
    values = np.random.default_rng(1).random((5, 6, 3), dtype=np.float32)
    source = float_tiff(tmp_path / "in.tif", values[:, :, ::-1])
    fmt = probe_image(source)
    assert fmt.bit_depth == 32
    out = tmp_path / "out" / "in.tif"
    save_restored(out, torch.from_numpy(values.transpose(2, 0, 1)), fmt)
    stored = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert stored is not None and stored.dtype == np.float32
    np.testing.assert_array_equal(stored[:, :, ::-1], values)  # not quantised to 8 bits


def test_a_float_source_saved_as_png_warns(tmp_path: Path) -> None:
    values = np.random.default_rng(2).random((5, 6, 3), dtype=np.float32)
    fmt = probe_image(float_tiff(tmp_path / "in.tif", values))
    with pytest.warns(RuntimeWarning, match=r"float image; \.png holds integers, so it is written as 16-bit"):
        save_restored(tmp_path / "out.png", torch.from_numpy(values.transpose(2, 0, 1)), fmt)
    written = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert written is not None and written.dtype == np.uint16


def test_imwrite_float_tiff_refuses_nan(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nan\.tif: image contains NaN or infinite values \(1 of 12\)"):
        imwrite(tmp_path / "nan.tif", np.array([[[np.nan, 0, 0]], [[0, 0, 0]], [[0, 0, 0]], [[0, 0, 0]]]), bit_depth=32)
    with pytest.raises(DataError, match=r"\.png cannot hold 32-bit images"):
        imwrite(tmp_path / "x.png", np.zeros((2, 2, 3), np.float32), bit_depth=32)
