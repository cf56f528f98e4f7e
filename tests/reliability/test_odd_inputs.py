"""Inference on odd inputs: 1x1, odd sizes, very large (tiled), gray, gray+alpha, RGBA, 16-bit.

``restore`` must give ``scale`` times the input size in the input's float dtype for every arch's
spec (size multiple, fixed input size, scale); ``tools/infer.py`` must write each image with its
own bit depth and channels (alpha composited away), or name the file it cannot handle. Odd sizes of
53x61 on the real archs and the basic 8/16-bit gray/RGBA outputs are covered in
``tests/nn/test_inference_archs.py`` and ``tests/evaluate/test_infer_tool.py``.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from irframe.evaluate.cli import infer_main
from irframe.nn.inference import restore
from irframe.nn.spec import get_spec
from irframe.nn.weights import save_weights
from irframe.registry import ARCHS

REAL = {
    "Restormer": {"dim": 4, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1, "heads": [1, 1, 1, 1]},
    "IPT": {"n_feats": 8, "patch_size": 48, "patch_dim": 3, "num_heads": 1, "num_layers": 1,
            "num_queries": 1, "scale": [2], "rgb_range": 255},
}
ODD_SIZES = [(1, 1), (1, 2), (3, 5), (17, 1)]


def build(name: str) -> torch.nn.Module:
    if name not in ARCHS:
        pytest.skip(f"arch {name} is not registered (plugin not installed)")
    torch.manual_seed(0)
    return ARCHS.build({"type": name, **REAL[name]}, path=f"test.{name}")


@pytest.mark.parametrize("name", list(REAL))
def test_restore_tiny_and_odd_sizes_on_real_archs(name: str) -> None:
    model = build(name)
    spec = get_spec(model)
    for h, w in ODD_SIZES:
        for dtype in (torch.float32, torch.float64):
            x = torch.rand(1, spec.in_channels, h, w, dtype=dtype)
            y = restore(model, x, task=spec.tasks[0] if spec.tasks else None)
            assert y.shape == (1, spec.out_channels, h * spec.scale, w * spec.scale), (name, h, w)
            assert y.dtype == dtype and torch.isfinite(y).all(), (name, h, w)


def test_restore_very_large_image_runs_tile_by_tile(relnet) -> None:
    model = relnet()
    seen: list[tuple[int, int]] = []
    model.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape[-2:])))
    x = torch.rand(1, 3, 1501, 2003)  # 3 Mpx, odd sides
    y = restore(model, x, tile=256, tile_overlap=16)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert max(max(s) for s in seen) == 256 and len(seen) > 40  # never the whole image at once
    # conv net, receptive radius 2: tiled equals whole away from the image border, seams included
    whole = restore(model, x[..., 690:770, 990:1100])[..., 10:-10, 10:-10]
    torch.testing.assert_close(y[..., 700:760, 1000:1090], whole, atol=1e-5, rtol=0)


def png_gray_alpha(path: Path, gray_alpha: np.ndarray) -> Path:
    """Write an 8-bit gray+alpha PNG (colour type 4), which OpenCV cannot write."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w, _ = gray_alpha.shape
    rows = b"".join(b"\0" + gray_alpha[y].tobytes() for y in range(h))  # filter 0 per row
    header = struct.pack(">IIBBBBB", w, h, 8, 4, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )
    return path


def write(path: Path, array: np.ndarray) -> Path:
    """Write an OpenCV-ordered array (BGR/BGRA/gray/gray+alpha); the folder is created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array), path
    return path


@pytest.fixture
def odd_images(tmp_path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """An input folder of odd images -> the (shape, dtype) each output must have."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "odd"

    def u8(*shape: int) -> np.ndarray:
        return rng.integers(0, 256, shape, dtype=np.uint8)

    def u16(*shape: int) -> np.ndarray:
        return rng.integers(0, 65536, shape, dtype=np.uint16)

    write(folder / "one_rgb.png", u8(1, 1, 3))
    write(folder / "one_gray16.png", u16(1, 1))
    write(folder / "odd_rgba.png", u8(3, 5, 4))
    write(folder / "odd_rgba16.png", u16(7, 9, 4))
    png_gray_alpha(folder / "gray_alpha.png", u8(5, 6, 2))
    write(folder / "photo.jpg", u8(17, 31, 3))
    write(folder / "tall.tif", u16(33, 1, 3))
    return {
        "one_rgb.png": ((1, 1, 3), np.uint8),
        "one_gray16.png": ((1, 1), np.uint16),
        "odd_rgba.png": ((3, 5, 3), np.uint8),
        "odd_rgba16.png": ((7, 9, 3), np.uint16),
        "gray_alpha.png": ((5, 6), np.uint8),
        "photo.png": ((17, 31, 3), np.uint8),  # JPEG in, lossless PNG out
        "tall.tif": ((33, 1, 3), np.uint16),
    }


def check_outputs(out: Path, expected: dict[str, tuple[tuple[int, ...], np.dtype]]) -> None:
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    for name, (shape, dtype) in expected.items():
        img = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
        assert img is not None and img.shape == shape and img.dtype == dtype, (name, getattr(img, "shape", None))


def test_infer_tool_on_odd_images_with_a_real_arch(odd_images, tmp_path, tools) -> None:
    """The real script, in a fresh process, with a Restormer (size multiple 8) from its checkpoint."""
    model = build("Restormer")
    ckpt = tmp_path / "restormer.safetensors"
    save_weights(model, ckpt, {"arch": "Restormer", "config": json.dumps({"type": "Restormer", **REAL["Restormer"]})})
    out = tmp_path / "out"
    proc = tools.run(tools.INFER, ["--checkpoint", str(ckpt), "--input", str(tmp_path / "odd"), "--output", str(out),
                                   "--device", "cpu", "--no-progress"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    check_outputs(out, odd_images)


def test_infer_very_large_image_tiled_and_a_bad_tile_named(relnet, tmp_path, capsys) -> None:
    yy, xx = np.mgrid[0:1200, 0:1700]
    big = np.stack([(xx // 7) % 256, (yy // 5) % 256, ((xx + yy) // 9) % 256], -1).astype(np.uint8)
    src = write(tmp_path / "big" / "big.png", big)
    ckpt = tmp_path / "relnet.safetensors"
    save_weights(relnet(), ckpt, {"arch": "RelNet", "config": '{"type": "RelNet"}'})
    args = ["--checkpoint", str(ckpt), "--device", "cpu", "--no-progress"]
    assert infer_main([*args, "--input", str(src), "--output", str(tmp_path / "o"), "--tile", "256"]) == 0
    out = cv2.imread(str(tmp_path / "o" / "big.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == big.shape and out.dtype == np.uint8
    # a tile that does not fit the model is named, not a crash deep inside
    assert infer_main([*args, "--input", str(src), "--output", str(tmp_path / "o2"), "--tile", "0"]) == 2
    assert "tile" in capsys.readouterr().err
