"""Tiny files that ask for huge allocations are refused quickly, with the file named.

* a ``.safetensors`` of a few hundred bytes whose metadata config describes a 17.7 B-parameter
  Restormer (or ``inp_channels: 10**6``, ``10**30``, NaN) is refused before the model is built:
  the config is checked against the file's tensors on the ``meta`` device;
* an image whose header claims more pixels than the budget (``IRFRAME_MAX_IMAGE_PIXELS``, default
  16384 x 16384) is refused before decoding, by every reader (``imread``, ``probe_image``,
  ``create_lmdb`` and its ``--verify``).
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from irframe.data.io import MAX_IMAGE_PIXELS, MAX_PIXELS_ENV, header_size, imread, imwrite
from irframe.data.lmdb_pack import create_lmdb
from irframe.errors import CheckpointError, DataError
from irframe.evaluate.images import probe_image
from irframe.nn.autoload import load_model

pytest.importorskip("irframe_restormer")

TINY = {"dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1, "heads": [1, 1, 1, 1]}


def bomb_file(path: Path, config_text: str, tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """A safetensors file holding ``tensors`` (default: one scalar) and our metadata config."""
    save_file(tensors or {"x": torch.zeros(1)}, str(path), metadata={"arch": "Restormer", "config": config_text})
    return path


@pytest.mark.parametrize(
    "config",
    [
        {
            "type": "Restormer",
            "dim": 1200,
            "num_blocks": [8, 8, 8, 8],
            "num_refinement_blocks": 8,
            "heads": [1, 2, 4, 8],
        },
        {"type": "Restormer", **TINY, "inp_channels": 10**6, "out_channels": 10**6},
        {"type": "Restormer", **TINY, "dim": 10**30},
    ],
    ids=["17.7B-params", "inp_channels-1e6", "dim-1e30"],
)
def test_huge_config_in_a_tiny_file_is_refused_before_allocating(tmp_path: Path, config: dict) -> None:
    file = bomb_file(tmp_path / "bomb.safetensors", json.dumps(config))
    assert file.stat().st_size < 1024
    start = time.perf_counter()
    with pytest.raises(CheckpointError) as info:
        load_model(file)
    assert time.perf_counter() - start < 5, "refused, but only after building the model"
    assert str(file) in str(info.value)
    assert "refused before building" in str(info.value) or "cannot build" in str(info.value)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_number_in_the_metadata_config_is_a_checkpoint_error(tmp_path: Path, bad: str) -> None:
    file = bomb_file(tmp_path / "nan.safetensors", '{"type": "Restormer", "ffn_expansion_factor": ' + bad + "}")
    with pytest.raises(CheckpointError, match=f"non-finite number {bad}") as info:
        load_model(file)
    assert str(file) in str(info.value)


def test_deeply_nested_metadata_config_is_a_checkpoint_error(tmp_path: Path) -> None:
    file = bomb_file(tmp_path / "deep.safetensors", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="nested too deeply") as info:
        load_model(file)
    assert str(file) in str(info.value)


def test_a_config_that_fits_its_tensors_still_loads(tmp_path: Path) -> None:
    from irframe.registry import ARCHS

    model = ARCHS.build({"type": "Restormer", **TINY})
    file = bomb_file(tmp_path / "ok.safetensors", json.dumps({"type": "Restormer", **TINY}), model.state_dict())
    loaded = load_model(file)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    # one tensor shape changed: refused with the key named, before building
    state = dict(model.state_dict())
    key = next(k for k, v in state.items() if v.ndim == 4)
    state[key] = torch.zeros(*state[key].shape[:-1], state[key].shape[-1] + 1)
    bad = bomb_file(tmp_path / "bad.safetensors", json.dumps({"type": "Restormer", **TINY}), state)
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        load_model(bad)


def png_claiming(width: int, height: int) -> bytes:
    """A ~60-byte PNG whose header claims ``width x height`` RGB pixels (OpenCV accepts the
    header below its 2^30-pixel limit and allocates the whole image before finding no data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    )


def test_image_above_the_pixel_budget_is_refused_by_every_reader(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    bomb = folder / "bomb.png"
    bomb.write_bytes(png_claiming(30000, 30000))  # 9e8 pixels: under OpenCV's limit, over ours
    assert MAX_IMAGE_PIXELS < 30000 * 30000
    for read in (imread, probe_image):
        start = time.perf_counter()
        with pytest.raises(DataError, match="30000 x 30000.*above the budget") as info:
            read(bomb)
        assert time.perf_counter() - start < 2
        assert str(bomb) in str(info.value)
    with pytest.raises(DataError, match=r"bomb\.png.*above the budget"):
        create_lmdb(folder, tmp_path / "out.lmdb", progress=False)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif", ".webp", ".ppm"])
def test_budget_reads_each_format_header_and_is_overridable(tmp_path: Path, ext: str, monkeypatch) -> None:
    img = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    path = tmp_path / f"img{ext}"
    ok, buf = cv2.imencode(ext, img)
    assert ok
    path.write_bytes(buf.tobytes())
    assert header_size(path.read_bytes()) == (50, 40)
    assert imread(path).shape == (40, 50, 3)  # within the default budget
    with pytest.raises(DataError, match=f"{path.name}.*50 x 40 = 2000 pixels, above the budget of 1999"):
        imread(path, max_pixels=1999)
    monkeypatch.setenv(MAX_PIXELS_ENV, "1999")
    with pytest.raises(DataError, match=MAX_PIXELS_ENV):
        probe_image(path)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(DataError, match="IRFRAME_MAX_IMAGE_PIXELS='lots'"):
        imread(path)


def test_verify_decodes_records_within_the_budget(tmp_path: Path, monkeypatch) -> None:
    from irframe.train.synthetic import write_textured_images

    folder = tmp_path / "imgs"
    write_textured_images(folder, 2, 16, seed=0)
    create_lmdb(folder, tmp_path / "db.lmdb", progress=False, verify=True)
    monkeypatch.setenv(MAX_PIXELS_ENV, "100")  # 16 x 16 = 256 pixels per record
    with pytest.raises(DataError, match=r"db\.lmdb:img_0000.*above the budget"):
        create_lmdb(folder, tmp_path / "db.lmdb", progress=False, verify=True)


def test_infer_tool_refuses_both_bombs_with_a_clear_error(relnet, tmp_path: Path, capsys) -> None:
    from irframe.evaluate.cli import infer_main
    from irframe.nn.weights import save_weights

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    (inputs / "bomb.png").write_bytes(png_claiming(30000, 30000))
    good = save_weights(
        relnet(), tmp_path / "relnet.safetensors", {"arch": "RelNet", "config": '{"type": "RelNet", "width": 8}'}
    )
    args = ["--input", str(inputs), "--output", str(out), "--device", "cpu", "--no-progress"]
    assert infer_main(["--checkpoint", str(good), *args]) != 0
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err, err
    assert "bomb.png: image header claims 30000 x 30000" in err and "above the budget" in err, err
    huge = bomb_file(tmp_path / "huge.safetensors", json.dumps({"type": "Restormer", **TINY, "dim": 1200}))
    (inputs / "bomb.png").unlink()
    imwrite(inputs / "ok.png", np.full((8, 8, 3), 0.5, dtype=np.float32))
    assert infer_main(["--checkpoint", str(huge), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "huge.safetensors" in err[0] and "refused before building" in err[0], err
    assert not list(out.glob("*.png"))
