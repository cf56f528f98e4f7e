"""DualPixelDataset: 16-bit left/right views + target, aligned crops, pairing errors, and a few
training iterations of a tiny dual-pixel Restormer through the real trainer."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from irframe.errors import DataError, OptionsError
from irframe.registry import DATASETS

OFFSET_L, OFFSET_R = 1000, 2000  # the views are the target plus these 16-bit offsets


def write_triplets(root: Path, n: int = 3, h: int = 24, w: int = 32, seed: int = 0, tmpl: str = "{}") -> Path:
    """``target/``, ``inputL/``, ``inputR/`` 16-bit RGB PNGs; L and R are the target plus an offset."""
    rng = np.random.default_rng(seed)
    for sub in ("target", "inputL", "inputR"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        gt = rng.integers(0, 60000, size=(h, w, 3), dtype=np.uint16)
        name = f"img{i}"
        assert cv2.imwrite(str(root / "target" / f"{name}.png"), gt)
        assert cv2.imwrite(str(root / "inputL" / f"{tmpl.format(name)}.png"), gt + OFFSET_L)
        assert cv2.imwrite(str(root / "inputR" / f"{tmpl.format(name)}.png"), gt + OFFSET_R)
    return root


def build(root: Path, **kw):
    cfg = {
        "type": "DualPixelDataset",
        "dataroot_gt": str(root / "target"),
        "dataroot_lqL": str(root / "inputL"),
        "dataroot_lqR": str(root / "inputR"),
        **kw,
    }
    return DATASETS.build(cfg)


def test_sample_is_left_right_stacked_and_16bit_exact(tmp_path: Path) -> None:
    root = write_triplets(tmp_path)
    ds = build(root)
    assert len(ds) == 3
    s = ds[1]
    assert s["lq"].shape == (6, 24, 32) and s["gt"].shape == (3, 24, 32)
    assert s["lq"].dtype == torch.float32 and s["name"] == "img1"
    bgr = cv2.imread(str(root / "target" / "img1.png"), cv2.IMREAD_UNCHANGED)
    expected_gt = torch.from_numpy(bgr[:, :, ::-1].astype(np.float32).transpose(2, 0, 1) / 65535.0)
    torch.testing.assert_close(s["gt"], expected_gt, rtol=0, atol=1e-7)
    # left first, then right (Restormer's torch.cat([lqL, lqR], 0)); divided by 65535, not 255
    torch.testing.assert_close(s["lq"][:3], expected_gt + OFFSET_L / 65535.0, rtol=0, atol=1e-6)
    torch.testing.assert_close(s["lq"][3:], expected_gt + OFFSET_R / 65535.0, rtol=0, atol=1e-6)
    assert s["lq_path"].endswith("inputL/img1.png") and s["lqR_path"].endswith("inputR/img1.png")
    assert s["gt_path"].endswith("target/img1.png")


def test_views_and_target_share_every_crop_flip_and_rotation(tmp_path: Path) -> None:
    ds = build(write_triplets(tmp_path), gt_size=16, use_flip=True, use_rot=True, seed=3)
    seen_shapes = set()
    for i in range(12):
        s = ds[(i % 3, 16, 100 + i)]
        assert s["lq"].shape == (6, 16, 16) and s["gt"].shape == (3, 16, 16)
        # any misalignment between the three images breaks these constant differences (random GT)
        torch.testing.assert_close(
            s["lq"][:3] - s["gt"], torch.full_like(s["gt"], OFFSET_L / 65535.0), rtol=0, atol=1e-6
        )
        torch.testing.assert_close(
            s["lq"][3:] - s["gt"], torch.full_like(s["gt"], OFFSET_R / 65535.0), rtol=0, atol=1e-6
        )
        seen_shapes.add(tuple(s["gt"][0, 0, :3].tolist()))
    assert len(seen_shapes) > 3  # the crops/transforms do vary


def test_filename_tmpl_pairs_views_to_targets(tmp_path: Path) -> None:
    ds = build(write_triplets(tmp_path, n=2, tmpl="{}_view"), filename_tmpl="{}_view")
    assert [t[1] for t in ds.triplets] == ["img0_view", "img1_view"]
    assert ds[0]["name"] == "img0"


def test_unpaired_names_and_sizes_are_errors_naming_the_files(tmp_path: Path) -> None:
    root = write_triplets(tmp_path)
    (root / "inputR" / "img2.png").unlink()
    with pytest.raises(DataError, match=r"GT images without LQ: img2 \(expected LQ 'img2'\)"):
        build(root)
    root2 = write_triplets(tmp_path / "b", n=1)
    assert cv2.imwrite(str(root2 / "inputL" / "img0.png"), np.zeros((20, 32, 3), np.uint16))
    with pytest.raises(DataError, match=r"inputL/img0.png is 20x32 but its target .*target/img0.png is 24x32"):
        build(root2)[0]
    with pytest.raises(OptionsError, match=r"DualPixelDataset.filename_tmpl"):
        build(root, filename_tmpl="x")
    with pytest.raises(DataError, match=r"DualPixelDataset.dataroot_lqR"):
        build(root, dataroot_lqR=str(tmp_path / "missing"))


def test_lmdb_triplets_read_like_the_folders(tmp_path: Path) -> None:
    """Restormer ships the DPDD test set as inputL/inputR/target LMDBs: 16-bit records stay 16-bit."""
    from irframe.data.lmdb_pack import create_lmdb

    root = write_triplets(tmp_path / "png", n=2)
    for sub in ("target", "inputL", "inputR"):
        create_lmdb(root / sub, tmp_path / f"{sub}.lmdb", progress=False)
    db = DATASETS.build({
        "type": "DualPixelDataset", "dataroot_gt": str(tmp_path / "target.lmdb"),
        "dataroot_lqL": str(tmp_path / "inputL.lmdb"), "dataroot_lqR": str(tmp_path / "inputR.lmdb"),
        "io_backend": {"type": "lmdb"},
    })
    folder = build(root)
    for i in range(2):
        a, b = db[i], folder[i]
        assert a["name"] == b["name"] and a["lq_path"].endswith("inputL.lmdb:" + b["name"])
        torch.testing.assert_close(a["lq"], b["lq"], rtol=0, atol=0)
        torch.testing.assert_close(a["gt"], b["gt"], rtol=0, atol=0)


def test_tiny_dual_pixel_restormer_trains_and_validates(tmp_path: Path) -> None:
    """A few iterations through the real trainer: 6 channels in, 3 out, validation PSNR measured."""
    from irframe.options import validate_options
    from irframe.train.build import run_training

    train_root = write_triplets(tmp_path / "train", n=4, h=32, w=32)
    val_root = write_triplets(tmp_path / "val", n=1, h=16, w=24, seed=1)

    def dp(root: Path, **kw) -> dict:
        return {
            "type": "DualPixelDataset", "dataroot_gt": str(root / "target"), "dataroot_lqL": str(root / "inputL"),
            "dataroot_lqR": str(root / "inputR"), **kw,
        }

    opts = validate_options({
        "name": "dp_tiny",
        "model": {
            "type": "Restormer", "inp_channels": 6, "out_channels": 3, "dual_pixel_task": True, "dim": 8,
            "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1, "heads": [1, 1, 1, 1],
        },
        "datasets": {
            "train": {**dp(train_root, gt_size=16, use_flip=True, use_rot=True), "batch_size": 2},
            "val": dp(val_root),
        },
        "train": {"total_iter": 3, "optim": {"type": "AdamW", "lr": 1e-3}, "losses": [{"type": "L1Loss"}]},
        "val": {"freq": 3, "metrics": [{"type": "PSNR", "quantize": False}]},
        "logger": {"print_freq": 1, "checkpoint_freq": 3, "tensorboard": False, "progress_bar": False},
        "path": {"experiments_root": str(tmp_path / "exp")},
    }, source="dp-options")
    result = run_training(opts)
    assert result.iteration == 3 and result.last_checkpoint is not None
    scores = result.val.scores["val"]
    assert np.isfinite(scores["PSNR"]) and scores["PSNR"] > 0
