"""create_lmdb --key-template: SR pairs packed with identical LQ/GT keys, as BasicSR's paired LMDB
reader (paired_paths_from_lmdb) requires, and read back by PairedImageDataset with the lmdb backend."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from irframe.data.backends import read_meta_info
from irframe.data.io import img2tensor, imread
from irframe.data.lmdb_pack import create_lmdb
from irframe.errors import DataError
from irframe.registry import DATASETS

ROOT = Path(__file__).resolve().parents[2]


def sr_pairs(root: Path, helpers, scale: int = 2, n: int = 3) -> tuple[Path, Path]:
    """GT ``img<i>.png`` and LR ``img<i>x<scale>.png`` (BasicSR/DIV2K naming); GT = enlarged LR."""
    rng = np.random.default_rng(0)
    gt_dir, lq_dir = root / "HR", root / f"LR_x{scale}"
    for i in range(n):
        lq = helpers.random_uint8(rng, 8, 12)
        helpers.write_png(lq_dir / f"img{i}x{scale}.png", lq)
        helpers.write_png(gt_dir / f"img{i}.png", np.repeat(np.repeat(lq, scale, axis=0), scale, axis=1))
    return gt_dir, lq_dir


def load_tool():
    spec = importlib.util.spec_from_file_location("create_lmdb_tool", ROOT / "tools" / "create_lmdb.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_lr_packed_under_the_gt_keys_reads_as_a_paired_lmdb_set(tmp_path: Path, helpers) -> None:
    gt_dir, lq_dir = sr_pairs(tmp_path, helpers)
    tool = load_tool()
    assert tool.main([str(gt_dir), str(tmp_path / "hr.lmdb"), "--no-progress"]) == 0
    assert tool.main([str(lq_dir), str(tmp_path / "lr_x2.lmdb"), "--key-template", "{}x2", "--no-progress"]) == 0
    # BasicSR's rule: the two meta_info.txt list the same keys (with shapes scale x apart)
    gt_meta, lq_meta = read_meta_info(tmp_path / "hr.lmdb"), read_meta_info(tmp_path / "lr_x2.lmdb")
    assert list(gt_meta) == list(lq_meta) == ["img0", "img1", "img2"]
    assert gt_meta["img0"][0] == (16, 24, 3) and lq_meta["img0"][0] == (8, 12, 3)

    pair = {
        "type": "PairedImageDataset",
        "dataroot_gt": str(tmp_path / "hr.lmdb"),
        "dataroot_lq": str(tmp_path / "lr_x2.lmdb"),
        "io_backend": {"type": "lmdb"},
        "scale": 2,
    }
    ds = DATASETS.build(pair)
    assert len(ds) == 3
    for i in range(3):
        s = ds[i]
        assert s["name"] == f"img{i}"
        torch.testing.assert_close(s["lq"], img2tensor(imread(lq_dir / f"img{i}x2.png")), rtol=0, atol=0)
        torch.testing.assert_close(s["gt"], img2tensor(imread(gt_dir / f"img{i}.png")), rtol=0, atol=0)
    crop = DATASETS.build({**pair, "gt_size": 8, "use_flip": True, "use_rot": True})[(1, 8, 7)]
    expected_gt = crop["lq"].repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    torch.testing.assert_close(crop["gt"], expected_gt, rtol=0, atol=0)  # aligned LQ/GT crops


def test_key_template_errors_name_the_files(tmp_path: Path, helpers) -> None:
    _gt_dir, lq_dir = sr_pairs(tmp_path, helpers, scale=4, n=2)
    helpers.write_png(lq_dir / "stray.png", np.zeros((8, 12, 3), np.uint8))
    with pytest.raises(DataError, match=r"1 image\(s\) not named like the key template '\{\}x4': stray.png"):
        create_lmdb(lq_dir, tmp_path / "lr.lmdb", key_template="{}x4", progress=False)
    (lq_dir / "stray.png").unlink()
    with pytest.raises(DataError, match=r"must contain '\{\}' once"):
        create_lmdb(lq_dir, tmp_path / "lr.lmdb", key_template="x4", progress=False)
    helpers.write_png(lq_dir / "sub" / "img0x4.png", np.zeros((8, 12, 3), np.uint8))
    report = create_lmdb(lq_dir, tmp_path / "nested.lmdb", key_template="{}x4", recursive=True, progress=False)
    assert report.total == 3 and list(read_meta_info(tmp_path / "nested.lmdb")) == ["img0", "img1", "sub/img0"]
