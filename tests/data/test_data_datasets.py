"""Datasets: pairing, SR-aware crops, bad files, LMDB parity, online degradation, all-in-one mixing."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from irframe.data.datasets import OnlineDegradationDataset, PairedImageDataset
from irframe.data.lmdb_pack import create_lmdb
from irframe.data.samplers import ProgressiveBatchSampler, SampleKey
from irframe.errors import DataError, OptionsError
from irframe.registry import DATASETS


def upscale(t: torch.Tensor, scale: int) -> torch.Tensor:
    return t.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)


def noise_only(sigma: float) -> dict:
    return {"type": "GaussianNoise", "sigma": sigma, "clip": False}


# -- pairing -------------------------------------------------------------------------------------
def test_unmatched_files_are_listed(image_folder, tmp_path: Path) -> None:
    gt = image_folder("gt", n=4)
    lq = image_folder("lq", n=3)
    (gt / "002.png").rename(gt / "extra_gt.png")
    with pytest.raises(DataError) as info:
        PairedImageDataset(str(gt), str(lq))
    msg = str(info.value)
    assert "2 GT images without LQ" in msg and "extra_gt" in msg and "003" in msg
    assert "1 LQ images without GT" in msg and "002" in msg


def test_duplicate_stems_and_missing_folders(image_folder, tmp_path: Path) -> None:
    gt = image_folder("gt", n=2)
    (gt / "000.jpg").write_bytes((gt / "000.png").read_bytes())
    with pytest.raises(DataError, match="share the key '000'"):
        PairedImageDataset(str(gt), str(gt))
    with pytest.raises(DataError, match=r"dataroot_lq.*not found"):
        DATASETS.build(
            {
                "type": "PairedImageDataset",
                "dataroot_gt": str(image_folder("ok")),
                "dataroot_lq": str(tmp_path / "nope"),
            }
        )
    with pytest.raises(OptionsError, match="did you mean 'gt_size'"):
        DATASETS.build({"type": "PairedImageDataset", "dataroot_gt": "a", "dataroot_lq": "b", "gt_sise": 64})
    with pytest.raises(OptionsError, match="filename_tmpl"):
        PairedImageDataset(str(gt), str(gt), filename_tmpl="x4")


def test_filename_template_on_set5(shared_dir: Path) -> None:
    ds = DATASETS.build(
        {
            "type": "PairedImageDataset",
            "dataroot_gt": str(shared_dir / "data/Set5/HR"),
            "dataroot_lq": str(shared_dir / "data/Set5/LR_bicubic/X3"),
            "filename_tmpl": "{}x3",
            "scale": 3,
        }
    )
    assert len(ds) == 5
    sample = ds[0]
    assert sample["name"] == "baby" and sample["lq_path"].endswith("babyx3.png")
    _, h, w = sample["lq"].shape
    assert sample["gt"].shape == (3, h * 3, w * 3)  # 512x512 GT cropped to 510x510 for 170x170 LQ


# -- crops and augmentation ----------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1, 2, 4])
def test_sr_crops_and_flips_stay_aligned(sr_pair_folders, scale: int) -> None:
    gt, lq = sr_pair_folders(scale=scale)
    ds = PairedImageDataset(str(gt), str(lq), scale=scale, gt_size=8 * scale, use_flip=True, use_rot=True)
    for i in range(12):
        s = ds[i % len(ds)]
        assert s["lq"].shape == (3, 8, 8) and s["gt"].shape == (3, 8 * scale, 8 * scale)
        assert s["lq"].dtype == torch.float32 and s["lq"].min() >= 0 and s["lq"].max() <= 1
        torch.testing.assert_close(s["gt"], upscale(s["lq"], scale), rtol=0, atol=0)


def test_full_images_for_validation_and_size_mismatch(sr_pair_folders, helpers, tmp_path: Path) -> None:
    gt, lq = sr_pair_folders(scale=2, n=1, lq_h=10, lq_w=12)
    ds = PairedImageDataset(str(gt), str(lq), scale=2)
    s = ds[0]
    assert s["lq"].shape == (3, 10, 12) and s["gt"].shape == (3, 20, 24)
    # GT one pixel larger than 2x LQ (odd HR size): cropped, like BasicSR's validation
    big = np.zeros((21, 25, 3), np.uint8)
    helpers.write_png(gt / "img0.png", big)
    assert ds[0]["gt"].shape == (3, 20, 24)
    helpers.write_png(gt / "img0.png", np.zeros((30, 24, 3), np.uint8))
    with pytest.raises(DataError, match=r"img0\.png is 30x24 but .*img0\.png is 10x12"):
        ds[0]


def test_sample_keys_from_samplers(sr_pair_folders) -> None:
    gt, lq = sr_pair_folders(scale=2, n=3)
    ds = PairedImageDataset(str(gt), str(lq), scale=2, gt_size=16)
    assert ds[SampleKey(1, 8, 5)]["gt"].shape == (3, 8, 8)  # the key's patch size wins over gt_size
    a, b = ds[(1, 12, 99)], ds[(1, 12, 99)]
    torch.testing.assert_close(a["gt"], b["gt"])  # seeded key: same crop
    assert ds[-1]["name"] == "img2"
    with pytest.raises(IndexError):
        ds[3]
    with pytest.raises(TypeError, match="index"):
        ds["img0"]
    with pytest.raises(DataError, match="multiple of scale"):
        ds[(0, 9)]


# -- bad files -----------------------------------------------------------------------------------
def test_bad_files_raise_or_are_skipped(image_folder) -> None:
    gt = image_folder("gt", n=3)
    lq = image_folder("lq", n=3, seed=1)
    (lq / "001.png").write_bytes(b"")
    strict = PairedImageDataset(str(gt), str(lq))
    with pytest.raises(DataError, match=r"001\.png.*empty"):
        strict[1]
    lenient = PairedImageDataset(str(gt), str(lq), skip_bad=True)
    with pytest.warns(RuntimeWarning, match=r"skipping sample 1.*001\.png"):
        sample = lenient[1]
    assert sample["name"] == "002"
    assert len(lenient) == 3
    for name in ("000", "002"):
        (lq / f"{name}.png").write_bytes(b"not a png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="every sample is unreadable"):
            PairedImageDataset(str(gt), str(lq), skip_bad=True)[0]


# -- backends ------------------------------------------------------------------------------------
def test_lmdb_and_disk_give_identical_samples(sr_pair_folders, tmp_path: Path) -> None:
    gt, lq = sr_pair_folders(scale=2, n=4)
    create_lmdb(gt, tmp_path / "gt.lmdb", progress=False)
    create_lmdb(lq, tmp_path / "lq.lmdb", progress=False)
    opts = {"scale": 2, "gt_size": 16, "use_flip": True, "use_rot": True}
    disk = PairedImageDataset(str(gt), str(lq), **opts)
    db = PairedImageDataset(str(tmp_path / "gt.lmdb"), str(tmp_path / "lq.lmdb"), io_backend={"type": "lmdb"}, **opts)
    assert len(db) == len(disk) == 4
    for i in range(4):
        a, b = disk[SampleKey(i, None, 7 + i)], db[SampleKey(i, None, 7 + i)]
        torch.testing.assert_close(a["gt"], b["gt"], rtol=0, atol=0)
        torch.testing.assert_close(a["lq"], b["lq"], rtol=0, atol=0)
        assert a["name"] == b["name"] and b["gt_path"].endswith(f"gt.lmdb:{b['name']}")


def test_dataloader_workers_with_lmdb_opened_in_the_parent(sr_pair_folders, tmp_path: Path) -> None:
    """The parent reads first (opens its LMDB handle), then forked workers read with their own."""
    gt, lq = sr_pair_folders(scale=2, n=5)
    create_lmdb(gt, tmp_path / "gt.lmdb", progress=False)
    create_lmdb(lq, tmp_path / "lq.lmdb", progress=False)
    ds = PairedImageDataset(
        str(tmp_path / "gt.lmdb"), str(tmp_path / "lq.lmdb"), io_backend={"type": "lmdb"}, scale=2, gt_size=8
    )
    ds[0]
    sampler = ProgressiveBatchSampler(len(ds), [(2, 3, 8), (2, 2, 16)], seed=0)
    batches = list(DataLoader(ds, batch_sampler=sampler, num_workers=2))
    assert [tuple(b["gt"].shape) for b in batches] == [(3, 3, 8, 8)] * 2 + [(2, 3, 16, 16)] * 2
    assert [tuple(b["lq"].shape) for b in batches][-1] == (2, 3, 8, 8)
    for b in batches:
        torch.testing.assert_close(b["gt"], b["lq"].repeat_interleave(2, 2).repeat_interleave(2, 3))


# -- single and online datasets ------------------------------------------------------------------
def test_single_image_dataset_has_no_gt(image_folder) -> None:
    ds = DATASETS.build({"type": "SingleImageDataset", "dataroot_lq": str(image_folder("in", n=2)), "task": "denoise"})
    s = ds[1]
    assert set(s) == {"lq", "lq_path", "name", "task"} and s["name"] == "001" and s["task"] == "denoise"


def test_online_degradation_is_reproducible_per_index(image_folder) -> None:
    folder = image_folder("clean", n=3, h=32, w=32)
    val = OnlineDegradationDataset(str(folder), noise_only(25), seed=10)
    a, b = val[1], val[1]
    torch.testing.assert_close(a["lq"], b["lq"], rtol=0, atol=0)  # seed + index: same noise every time
    assert not torch.equal(val[1]["lq"] - val[1]["gt"], val[2]["lq"] - val[2]["gt"])
    other_seed = OnlineDegradationDataset(str(folder), noise_only(25), seed=11)
    assert not torch.equal(other_seed[1]["lq"], a["lq"])
    unseeded = OnlineDegradationDataset(str(folder), noise_only(25))
    assert not torch.equal(unseeded[1]["lq"], unseeded[1]["lq"])  # training: fresh noise per draw
    residual = (a["lq"] - a["gt"]) * 255
    assert abs(residual.std().item() - 25) < 2.5
    assert a["gt_path"] == a["lq_path"] and a["name"] == "001"


def test_online_sr_pipeline_mod_crops_and_checks_scale(image_folder) -> None:
    folder = image_folder("hr", n=2, h=33, w=47)
    ds = DATASETS.build(
        {
            "type": "OnlineDegradationDataset",
            "dataroot_gt": str(folder),
            "degradation": [{"type": "BicubicDownsample", "scale": 4}, {"type": "JPEGCompression", "quality": 80}],
            "scale": 4,
            "seed": 0,
        }
    )
    s = ds[0]
    assert s["gt"].shape == (3, 32, 44) and s["lq"].shape == (3, 8, 11)
    patches = DATASETS.build(
        {
            "type": "OnlineDegradationDataset",
            "dataroot_gt": str(folder),
            "degradation": {"type": "BicubicDownsample", "scale": 2},
            "scale": 2,
            "gt_size": 16,
            "use_rot": True,
        }
    )
    assert patches[1]["lq"].shape == (3, 8, 8)
    wrong = OnlineDegradationDataset(str(folder), {"type": "BicubicDownsample", "scale": 2}, skip_bad=True)
    with pytest.raises(OptionsError, match=r"degradation failed on .*000\.png.*multiple of the scale"):
        wrong[0]  # a misconfigured pipeline is not a bad file: skip_bad does not hide it
    even = image_folder("even", n=1, h=32, w=32)
    shrinking = OnlineDegradationDataset(str(even), {"type": "BicubicDownsample", "scale": 2})
    with pytest.raises(OptionsError, match="expected 32x32x3 for scale 1"):
        shrinking[0]
    with pytest.raises(OptionsError, match=r"OnlineDegradationDataset\.degradation.*Noize"):
        OnlineDegradationDataset(str(folder), {"type": "GaussianNoize"})


# -- all-in-one ----------------------------------------------------------------------------------
@pytest.fixture
def promptir_like(image_folder):
    clean = image_folder("clean", n=4, h=24, w=24)
    rain_gt, rain_lq = image_folder("norain", n=3, seed=1), image_folder("rainy", n=3, seed=2)
    haze_gt, haze_lq = image_folder("clear", n=2, seed=3), image_folder("hazy", n=2, seed=4)
    return {
        "type": "AllInOneDataset",
        "de_type": ["denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"],
        "repeats": {"denoise_15": 3, "denoise_25": 3, "denoise_50": 3, "derain": 2},
        "defaults": {"gt_size": 16, "use_flip": True},
        "sources": {
            "denoise": {"type": "OnlineDegradationDataset", "dataroot_gt": str(clean)},
            "derain": {"type": "PairedImageDataset", "dataroot_gt": str(rain_gt), "dataroot_lq": str(rain_lq)},
            "dehaze": {"type": "PairedImageDataset", "dataroot_gt": str(haze_gt), "dataroot_lq": str(haze_lq)},
        },
        "seed": 3,
    }


def test_all_in_one_layout_tasks_and_noise_levels(promptir_like) -> None:
    ds = DATASETS.build(promptir_like)
    sizes = {t: len(v) for t, v in ds.task_indices.items()}
    assert sizes == {"denoise_15": 12, "denoise_25": 12, "denoise_50": 12, "derain": 6, "dehaze": 2}
    assert len(ds) == 44
    for task, indices in ds.task_indices.items():
        s = ds[indices[-1]]
        assert s["task"] == task and s["gt"].shape == (3, 16, 16)
    for task, sigma in (("denoise_15", 15), ("denoise_50", 50)):
        s = ds[ds.task_indices[task][0]]
        measured = ((s["lq"] - s["gt"]) * 255).std().item()
        assert abs(measured - sigma) < 0.35 * sigma  # clipped noise on a 16x16 patch: loose
    torch.testing.assert_close(ds[5]["lq"], ds[5]["lq"])  # seeded mixer: reproducible per index


def test_all_in_one_option_errors(promptir_like) -> None:
    no_source = {**promptir_like, "de_type": ["derain", "deblur"], "repeats": {}}
    with pytest.raises(OptionsError, match="no source for task 'deblur'"):
        DATASETS.build(no_source)
    with_deg = {**promptir_like, "sources": {**promptir_like["sources"]}}
    with_deg["sources"]["denoise"] = {**with_deg["sources"]["denoise"], "degradation": {"type": "Haze"}}
    with pytest.raises(OptionsError, match="must not set 'degradation'"):
        DATASETS.build(with_deg)
    with pytest.raises(OptionsError, match="listed twice"):
        DATASETS.build({**promptir_like, "de_type": ["derain", "derain"]})
    with pytest.raises(OptionsError, match="not in de_type"):
        DATASETS.build({**promptir_like, "de_type": ["derain"], "repeats": {"dehaze": 2}})
    bad_child = {**promptir_like, "defaults": {"gt_sise": 16}}
    with pytest.raises(OptionsError, match=r"AllInOneDataset\.sources\.denoise_15\.gt_sise"):
        DATASETS.build(bad_child)
