"""Leaderboard rows, sets and images whose names make the same file name never share a file.

Model names that are not file-system safe (``基线`` and ``改进`` both slugified to ``model``), and
image or set names that differ only in a character the slug replaces (``a b`` and ``a_b``), used
to share ``images/`` and ``crops/`` folders: the second run overwrote the first one's images and
crops, and the report showed the wrong pictures under the right names.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from irframe.evaluate.cli import benchmark_main
from irframe.evaluate.leaderboard import Leaderboard
from irframe.evaluate.models import slugify


def _write_pairs(root: Path, names: list[str]) -> None:
    import cv2

    rng = np.random.default_rng(0)
    for name in names:
        gt = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        lq = np.clip(gt + rng.normal(0, 20, gt.shape), 0, 255).astype(np.uint8)
        for sub, img in (("gt", gt), ("lq", lq)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            ok, data = cv2.imencode(".png", img)
            assert ok
            (root / sub / f"{name}.png").write_bytes(data.tobytes())


def _options(tmp_path: Path, model_name: str, width: int, sets: dict[str, Path]) -> Path:
    data: dict[str, Any] = {
        "name": "slugtest",
        "seed": width,
        "model": {"type": "RelNet", "width": width},
        "test": {
            "model_name": model_name,
            "datasets": {
                name: {"type": "PairedImageDataset", "dataroot_gt": str(path / "gt"), "dataroot_lq": str(path / "lq")}
                for name, path in sets.items()
            },
            "metrics": [{"type": "PSNR"}],
            "report_images": 2,
            "report_crop": 8,
        },
    }
    path = tmp_path / f"opt_{width}.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _files(board: Leaderboard, out: Path, model: str) -> dict[str, str]:
    """Every image and crop file the board records for ``model``, with the hash of its bytes."""
    found = {}
    for result in board.models[model]["datasets"].values():
        for img in result["images"]:
            for rel in (img.get("output"), img.get("crop")):
                if rel:
                    found[rel] = hashlib.sha256((out / rel).read_bytes()).hexdigest()
    return found


def test_models_sets_and_images_that_slugify_alike_never_share_a_file(relnet, tmp_path: Path) -> None:
    sets = {"a b": tmp_path / "set1", "a_b": tmp_path / "set2"}
    _write_pairs(sets["a b"], ["a b", "a_b"])
    _write_pairs(sets["a_b"], ["x"])
    out = tmp_path / "board"
    argv = ["--out", str(out), "--device", "cpu", "--no-progress"]
    assert benchmark_main(["-opt", str(_options(tmp_path, "基线", 4, sets)), *argv]) == 0
    first = _files(Leaderboard.load(out / "leaderboard.json"), out, "基线")
    assert benchmark_main(["-opt", str(_options(tmp_path, "改进", 8, sets)), *argv]) == 0
    board = Leaderboard.load(out / "leaderboard.json")
    second = _files(board, out, "改进")

    assert list(board.models) == ["基线", "改进"]  # the real names are the rows
    assert len(first) == len(second) == 2 * 3  # 3 images, each an output and a crop
    assert not set(first) & set(second), "two models share an output or crop file"
    # the first model's files are still its own (the second run did not overwrite them)
    assert _files(board, out, "基线") == first
    # inside one model: sets "a b"/"a_b" and images "a b"/"a_b" each get their own file
    assert len({rel.rsplit(".", 1)[0] for rel in second}) == 6
    inputs = [entry["input"] for images in board.report.values() for entry in images.values()]
    assert len(inputs) == len(set(inputs)) == 3

    # the report shows each model's own crop under its real name
    html = (out / "report.html").read_text(encoding="utf-8")
    shown = re.findall(r'<figure><img src="([^"]+)"[^>]*><figcaption><b>([^<]+)</b>', html)
    for model, files in (("基线", first), ("改进", second)):
        crops = {src for src, title in shown if title == model}
        assert crops and crops <= set(files), (model, crops)


def test_slugs_are_safe_readable_and_distinct() -> None:
    names = ["基线", "改进", "a b", "a_b", "a/b", "..", ".", "", "x" * 300, "model", "Restormer", "a\nb", "ab-1234abcd"]
    slugs = [slugify(n) for n in names]
    assert len(set(slugs)) == len(slugs)
    for slug in slugs:
        assert re.fullmatch(r"[A-Za-z0-9._+-]+", slug) and not slug.startswith(".") and len(slug) <= 100
    # a name that is already a safe file name keeps it (existing boards' paths stay valid)
    assert slugify("Restormer") == "Restormer" and slugify("SwinIR-x4_v1.2") == "SwinIR-x4_v1.2"
    assert slugify("a b").startswith("a_b-")
