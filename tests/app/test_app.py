"""``irframe app`` without a browser: one upload restored (``restore_upload``), the model cache, bad uploads,
progress, and the page built (Gradio, when installed). The page in a real browser: test_app_browser.py."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from irframe.app import ModelCache, compare_html, default_models, prune_results, restore_upload
from irframe.cli import main as cli_main
from irframe.data.io import img2tensor, imread, quantize
from irframe.errors import DataError, OptionsError
from irframe.nn.inference import restore
from irframe.nn.weights import save_weights
from irframe.registry import ARCHS

TINY_SR = {"type": "SRVGGNetCompact", "num_feat": 8, "num_conv": 2, "upscale": 2}


def save_model(folder: Path, config: dict, name: str = "tiny") -> Path:
    """A model of ``config`` (seeded) saved as our safetensors (arch + config metadata), as training does."""
    torch.manual_seed(0)
    model = ARCHS.build(dict(config))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return save_weights(model, folder / f"{name}.safetensors", {"arch": config["type"], "config": json.dumps(config)})


def write_png(path: Path, shape: tuple[int, ...], dtype: type = np.uint8, seed: int = 0) -> Path:
    peak = np.iinfo(dtype).max
    img = np.random.default_rng(seed).integers(0, peak, size=shape, endpoint=True).astype(dtype)
    assert cv2.imwrite(str(path), img)
    return path


def expected(model: torch.nn.Module, path: Path, bit_depth: int, tile: int | None = None) -> np.ndarray:
    """What the app must write: restore() of the file, quantised as the io layer does."""
    x = img2tensor(imread(path)).unsqueeze(0)
    y = restore(model, x, tile=tile)[0].permute(1, 2, 0).numpy()
    return quantize(y, bit_depth)  # type: ignore[arg-type]


@pytest.fixture
def tiny_sr(tmp_path: Path) -> Path:
    return save_model(tmp_path, TINY_SR)


@pytest.fixture
def cache() -> ModelCache:
    return ModelCache("cpu", log=None)


def test_upload_is_restored_as_restore_does(tmp_path: Path, tiny_sr: Path, cache: ModelCache) -> None:
    src = write_png(tmp_path / "photo.png", (20, 28, 3))
    loaded = cache.get(str(tiny_sr))
    result = restore_upload(loaded, src, tmp_path)
    out = cv2.imread(str(result.output), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint8 and out.shape == (40, 56, 3)
    np.testing.assert_array_equal(out[:, :, ::-1], expected(loaded.model, src, 8))
    assert result.bit_depth == 8 and result.tiles == 1
    assert result.output.name == "photo_tiny.png"
    # the slider's two previews have the output's size (the input is upscaled for the comparison)
    for preview in (result.before, result.after):
        assert cv2.imread(str(preview)).shape == (40, 56, 3)
    assert "28 x 20 -> 56 x 40" in result.message and "whole image" in result.message


def test_16_bit_and_gray_sources_keep_their_depth_and_channels(
    tmp_path: Path, tiny_sr: Path, cache: ModelCache
) -> None:
    loaded = cache.get(str(tiny_sr))
    src16 = write_png(tmp_path / "deep.png", (16, 12, 3), np.uint16)
    result = restore_upload(loaded, src16, tmp_path)
    out = cv2.imread(str(result.output), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and result.bit_depth == 16 and "16-bit" in result.message
    np.testing.assert_array_equal(out[:, :, ::-1], expected(loaded.model, src16, 16))
    gray = write_png(tmp_path / "gray.png", (16, 12))
    out = cv2.imread(str(restore_upload(loaded, gray, tmp_path).output), cv2.IMREAD_UNCHANGED)
    assert out.ndim == 2 and out.shape == (32, 24)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A tiny file whose PNG header claims ``width`` x ``height`` (a decompression bomb's first bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)))
    return path


def test_bad_uploads_get_a_clear_message(tmp_path: Path, tiny_sr: Path, cache: ModelCache) -> None:
    loaded = cache.get(str(tiny_sr))
    with pytest.raises(DataError, match="no image uploaded"):
        restore_upload(loaded, None, tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match="empty.png: the file is empty"):
        restore_upload(loaded, tmp_path / "empty.png", tmp_path)
    (tmp_path / "notes.png").write_text("these are my notes, not a picture")
    with pytest.raises(DataError, match="notes.png: cannot decode image"):
        restore_upload(loaded, tmp_path / "notes.png", tmp_path)
    huge = _png_header_only(tmp_path / "huge.png", 30000, 20000)
    with pytest.raises(DataError, match=r"huge.png: 30000 x 20000 \(x2: 60000 x 40000\) is 2400.0 MP of output, "
                                        r"above this app's limit of 40.0 MP"):
        restore_upload(loaded, huge, tmp_path)
    # the limit counts output pixels: 40 x 30 is 1200 pixels in, 4800 out at x2
    small = write_png(tmp_path / "small.png", (30, 40, 3))
    with pytest.raises(DataError, match="above this app's limit"):
        restore_upload(loaded, small, tmp_path, max_pixels=4000)
    assert restore_upload(loaded, small, tmp_path, max_pixels=5000).output.is_file()


def test_progress_follows_the_tiles(tmp_path: Path, tiny_sr: Path, cache: ModelCache) -> None:
    loaded = cache.get(str(tiny_sr))
    src = write_png(tmp_path / "photo.png", (40, 56, 3))
    calls: list[tuple[int, int]] = []
    result = restore_upload(loaded, src, tmp_path, tile=16, progress=lambda done, total: calls.append((done, total)))
    total = calls[0][1]
    assert total > 1 and calls == [(i, total) for i in range(total + 1)] and result.tiles == total
    assert f"{total} tiles of 16 px" in result.message
    out = cv2.imread(str(result.output))[:, :, ::-1]
    np.testing.assert_array_equal(out, expected(loaded.model, src, 8, tile=16))


def test_models_are_loaded_once_and_the_cache_is_bounded(tmp_path: Path) -> None:
    refs = [str(save_model(tmp_path, TINY_SR, f"m{i}")) for i in range(3)]
    cache = ModelCache("cpu", capacity=2, log=None)
    first = cache.get(refs[0])
    assert cache.get(refs[0]) is first and cache.loads == 1
    cache.get(refs[1])
    cache.get(refs[2])  # drops refs[0], the least recently used
    assert cache.loads == 3
    cache.get(refs[0])
    assert cache.loads == 4
    assert "SRVGGNetCompact, x2 super-resolution, RGB" in first.describe()


def test_multi_task_models_need_their_task(tmp_path: Path, cache: ModelCache) -> None:
    ipt = save_model(tmp_path, {"type": "IPT", "n_feats": 16, "num_heads": 2, "num_layers": 1, "scale": [2, 3]})
    loaded = cache.get(str(ipt))
    assert loaded.tasks == ("sr_x2", "sr_x3") and "tasks: sr_x2, sr_x3" in loaded.describe()
    src = write_png(tmp_path / "photo.png", (48, 48, 3))
    with pytest.raises(OptionsError, match="multi-task"):
        restore_upload(loaded, src, tmp_path)
    result = restore_upload(loaded, src, tmp_path, task="sr_x3")
    assert cv2.imread(str(result.output)).shape == (144, 144, 3) and "task sr_x3" in result.message


def test_models_the_app_cannot_feed_are_refused(tmp_path: Path, cache: ModelCache) -> None:
    dual = {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
            "heads": [1, 2, 4, 8], "inp_channels": 6, "dual_pixel_task": True}
    with pytest.raises(OptionsError, match="6-channel input.*tools/infer.py"):
        cache.get(str(save_model(tmp_path, dual)))


def test_default_models_lists_checkpoints_then_the_zoo(tmp_path: Path, tiny_sr: Path, monkeypatch) -> None:
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    save_model(zoo, TINY_SR, "zoo_tiny")
    monkeypatch.setenv("IRFRAME_ZOO", str(zoo))
    assert default_models([str(tiny_sr)]) == [str(tiny_sr), "zoo:zoo_tiny"]
    assert default_models([str(tiny_sr)], zoo=False) == [str(tiny_sr)]


def test_old_results_are_pruned(tmp_path: Path, tiny_sr: Path, cache: ModelCache) -> None:
    src = write_png(tmp_path / "photo.png", (8, 8, 3))
    out = tmp_path / "results"
    out.mkdir()
    old = restore_upload(cache.get(str(tiny_sr)), src, out).output.parent
    new = restore_upload(cache.get(str(tiny_sr)), src, out).output.parent
    os.utime(old, (1, 1))
    prune_results(out)
    assert not old.exists() and new.is_dir()


def test_html_slider_embeds_both_previews(tmp_path: Path) -> None:
    before = write_png(tmp_path / "before.png", (8, 10, 3))
    after = write_png(tmp_path / "after.png", (8, 10, 3), seed=1)
    page = compare_html(before, after)
    assert page.count("data:image/png;base64,") == 2 and 'type="range"' in page and "clipPath" in page


def test_the_page_builds_with_either_slider(tmp_path: Path, tiny_sr: Path, cache: ModelCache) -> None:
    pytest.importorskip("gradio", reason='Gradio is not installed (pip install "irframe[app]")')
    from irframe.app import build_app

    for slider in ("auto", "html"):
        demo = build_app(cache, [str(tiny_sr)], tmp_path, slider=slider)  # type: ignore[arg-type]
        kinds = {type(block).__name__ for block in demo.blocks.values()}
        assert {"Dropdown", "File", "Button", "Markdown"} <= kinds
        assert ("HTML" in kinds) == (slider == "html")
    with pytest.raises(OptionsError, match="no model to offer"):
        build_app(cache, [], tmp_path)


def test_cli_refuses_a_bad_tile_before_starting(capsys) -> None:
    assert cli_main(["app", "--tile", "zero"]) == 1
    assert "--tile/--max-memory" in capsys.readouterr().err
