"""Real-ESRGAN's batched path (``RealESRGANDataset.degrade_on: device``): the batch operation equals
the per-sample path for the same draws, a fixed seed gives a fixed batch, the pair pool swaps and
restores exactly, and bad keys are one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from irframe.data.degradations import realesrgan_ops as ops
from irframe.data.degradations.realesrgan import BATCH_CHOICES, degrade_batch
from irframe.data.degradations.realesrgan_batch import PairPool, has_draws, synthesize
from irframe.errors import OptionsError
from irframe.registry import DATASETS, DEGRADATIONS

from .test_realesrgan_degradations import photo, write_images


def draws_of(deg, seeds: list[int]) -> list[dict]:
    return [deg.draw(np.random.default_rng(s)) for s in seeds]


def test_filter2d_cpu_and_conv_implementations_agree() -> None:
    x = ops.to_batch(photo(40, 48)).repeat(3, 1, 1, 1) * torch.tensor([1.0, 0.8, 0.6])[:, None, None, None]
    deg = DEGRADATIONS.build({"type": "RealESRGANDegradation", "scale": 4})
    kernels = torch.from_numpy(np.stack([d["kernel1"] for d in draws_of(deg, [1, 2, 3])]))
    assert kernels.shape == (3, 21, 21)  # padded to blur_kernel_size so that a batch stacks
    cpu = ops.filter2d(x, kernels)  # OpenCV per image (the CPU implementation)
    conv = ops.filter2d_conv(x, kernels)  # grouped conv2d (the device implementation, Real-ESRGAN's filter2D)
    torch.testing.assert_close(cpu, conv, atol=2e-6, rtol=0)


@pytest.mark.parametrize("scale", [4, 2])
def test_batched_equals_per_sample_for_the_same_draws(scale: int) -> None:
    """Exact equality, not a statistical match: both paths run the same operations on the same
    draws, each image's noise from its own seeded generator, JPEG per image; only the batch-level
    choices (resize, noise kind, order) must be the same, so they are copied from the first image."""
    deg = DEGRADATIONS.build({"type": "RealESRGANDegradation", "scale": scale})
    seeds = [11, 12, 13, 14, 15, 16]
    draws = draws_of(deg, seeds)
    for d in draws[1:]:
        d.update({k: draws[0][k] for k in BATCH_CHOICES})
    imgs = [photo(48, 64, 3, seed=s) for s in seeds]
    batch = torch.stack([ops.to_batch(i)[0] for i in imgs])
    together = degrade_batch(batch, default_collate(draws))
    assert together.shape == (6, 3, 48 // scale, 64 // scale)
    for i, (img, d) in enumerate(zip(imgs, draws, strict=True)):
        alone = degrade_batch(ops.to_batch(img), default_collate([d]))
        assert torch.equal(together[i : i + 1], alone), i
    # the registered degradation (the workers' path) is this batch operation on a batch of one
    first = deg(imgs[0], np.random.default_rng(seeds[0]))
    np.testing.assert_array_equal(first, ops.from_batch(together[0:1]))
    # every kind of batch-level choice occurs across seeds (both noise kinds, both orders, blur2 on/off)
    many = draws_of(deg, list(range(60)))
    for key in ("noise1_gaussian", "noise2_gaussian", "sinc_first", "blur2", "sinc"):
        assert {bool(d[key]) for d in many} == {False, True}, key


def test_batched_path_draws_per_image_and_one_choice_per_batch() -> None:
    deg = DEGRADATIONS.build({"type": "RealESRGANDegradation", "scale": 2})
    draws = default_collate(draws_of(deg, [1, 2, 3, 4]))
    for key in ("kernel1", "noise1_sigma", "noise1_seed", "jpeg1", "jpeg2", "sinc_kernel"):
        values = draws[key]
        assert len({tuple(np.asarray(v).ravel().tolist()) for v in values}) == 4, key  # per image
    x = torch.from_numpy(np.stack([photo(32, 32, 3, seed=1)] * 4)).permute(0, 3, 1, 2).contiguous()
    out = degrade_batch(x, draws)
    assert out.shape == (4, 3, 16, 16)
    assert len({out[i].numpy().tobytes() for i in range(4)}) == 4  # the same image degraded four ways
    assert torch.equal(out, torch.round(out * 255) / 255) and out.min() >= 0 and out.max() <= 1


def device_dataset(tmp_path: Path, **extra):
    write_images(tmp_path / "gt", n=4, h=40, w=44)
    cfg = {
        "type": "RealESRGANDataset",
        "dataroot_gt": str(tmp_path / "gt"),
        "gt_size": 16,
        "crop_pad_size": 32,
        "scale": 4,
        "degrade_on": "device",
        **extra,
    }
    return DATASETS.build(cfg, path="datasets.train")


def collated(ds, keys) -> dict:
    return default_collate([ds[k] for k in keys])


def test_dataset_leaves_the_degradation_to_the_step_and_a_seed_fixes_the_batch(tmp_path: Path) -> None:
    ds = device_dataset(tmp_path)
    keys = [(i, 16, 100 + i) for i in range(4)]
    raw = collated(ds, keys)
    assert has_draws(raw) and "lq" not in raw
    assert raw["gt"].shape == (4, 3, 32, 32) and raw["gt_usm"].shape == (4, 3, 32, 32)  # the regions, uncut
    a, b = synthesize(raw), synthesize(collated(ds, keys))
    for key in ("lq", "gt", "gt_usm"):
        assert torch.equal(a[key], b[key]), key  # a fixed seed gives a fixed batch
    assert a["lq"].shape == (4, 3, 4, 4) and a["gt"].shape == (4, 3, 16, 16) and "degradation" not in a
    # the LQ patch lies under its GT patch: the GT region degraded alone, then cut at the same place
    d = raw["degradation"]
    full = degrade_batch(raw["gt_usm"][:1], {k: v[:1] for k, v in d.items()})
    t, left = int(d["crop_top"][0]), int(d["crop_left"][0])
    assert torch.equal(a["lq"][0], full[0, :, t : t + 4, left : left + 4])
    assert torch.equal(a["gt"][0], raw["gt"][0, :, 4 * t : 4 * t + 16, 4 * left : 4 * left + 16])
    other = synthesize(collated(ds, [(i, 16, 200 + i) for i in range(4)]))
    assert not torch.equal(other["lq"], a["lq"])  # other seeds, other draws


def test_pair_pool_fills_then_swaps_and_restores_exactly() -> None:
    def batch(k: int) -> dict:
        g = torch.Generator().manual_seed(k)
        return {
            "lq": torch.rand(2, 3, 4, 4, generator=g),
            "gt": torch.rand(2, 3, 8, 8, generator=g),
            "pair_seed": torch.tensor([k, k + 1]),
            "name": [f"a{k}", f"b{k}"],
        }

    pool = PairPool(4)
    first, second = batch(0), batch(1)
    assert torch.equal(pool(first)["lq"], first["lq"]) and torch.equal(pool(second)["lq"], second["lq"])  # filling
    assert pool.filled == 4
    state = pool.state_dict()
    third = pool(batch(2))
    seen = torch.cat([first["lq"], second["lq"]])
    for lq in third["lq"]:  # two pairs out of the pool, in place of the new ones
        assert any(torch.equal(lq, s) for s in seen)
    assert "name" not in third  # names no longer match the swapped pairs
    later = [pool(batch(k)) for k in range(3, 6)]
    restored = PairPool(4)
    restored.load_state_dict(state)
    assert torch.equal(restored(batch(2))["lq"], third["lq"])
    for k, expected in zip(range(3, 6), later, strict=True):
        out = restored(batch(k))
        assert torch.equal(out["lq"], expected["lq"]) and torch.equal(out["gt"], expected["gt"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"degrade_on": "gpu"}, r"degrade_on"),
        ({"gt_size": None}, r"RealESRGANDataset\.degrade_on: device degrades batches of equal patches; set gt_size"),
        (
            {"degradation": {"type": "JPEGCompression", "quality": 30}},
            r"RealESRGANDataset\.degrade_on: device batches RealESRGANDegradation only",
        ),
    ],
)
def test_bad_dataset_keys_are_one_line(tmp_path: Path, extra: dict, message: str) -> None:
    with pytest.raises(OptionsError, match=message) as exc:
        device_dataset(tmp_path, **extra)
    assert "\n" not in str(exc.value)


def test_bad_pool_sizes_are_one_line() -> None:
    with pytest.raises(OptionsError, match=r"queue_size: expected a number of pairs >= 0") as exc:
        PairPool(-2, "train.step.queue_size")
    assert "\n" not in str(exc.value)
    with pytest.raises(OptionsError, match=r"queue_size: 5 is not a multiple of the batch size 2") as exc:
        PairPool(5, "train.step.queue_size")({"lq": torch.zeros(2, 3, 4, 4), "gt": torch.zeros(2, 3, 4, 4)})
    assert "\n" not in str(exc.value)
