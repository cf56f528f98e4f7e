"""``skip_bad: true`` leaves a bad sample out of an evaluation instead of scoring its neighbour twice,
and a folder full of bad files prints a summary, not one warning per file.

Five GT/LQ pairs, the LQ of the second truncated: validation (``Validator``) and ``tools/test.py``'s
runner (``evaluate_dataset``) score the four good pairs once each (4 rows, the mean of those 4),
while training (``dataset[i]``) still uses the next good sample in the bad one's place.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from irframe.data.datasets.base import SHOW_BAD, EvalSamples, SkippedSample
from irframe.data.datasets.paired import PairedImageDataset
from irframe.data.io import imread, imwrite
from irframe.train.synthetic import write_textured_images


@pytest.fixture
def pairs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """``gt/`` and ``lq/`` (noisy copies, each with its own noise level) of 5 images; ``lq/img_0001``
    truncated."""
    gt, lq = tmp_path / "gt", tmp_path / "lq"
    write_textured_images(gt, 5, 16, seed=3)
    rng = np.random.default_rng(0)
    for i, path in enumerate(sorted(gt.iterdir())):
        noisy = imread(path) + rng.normal(0, 0.02 * (i + 1), (16, 16, 3)).astype(np.float32)
        imwrite(lq / path.name, np.clip(noisy, 0, 1))
    bad = lq / "img_0001.png"
    bad.write_bytes(bad.read_bytes()[:60])
    return gt, lq, bad


def _psnr(gt_dir: Path, lq_dir: Path, name: str) -> float:
    from irframe.registry import METRICS

    metric = METRICS.build({"type": "PSNR"})
    pred = torch.from_numpy(imread(lq_dir / name).transpose(2, 0, 1))[None]
    target = torch.from_numpy(imread(gt_dir / name).transpose(2, 0, 1))[None]
    return float(metric(pred, target)[0])


def test_validation_scores_each_good_sample_once(pairs: tuple[Path, Path, Path]) -> None:
    from irframe.registry import METRICS
    from irframe.train.validation import Validator

    gt, lq, bad = pairs
    dataset = PairedImageDataset(str(gt), str(lq), skip_bad=True)
    validator = Validator({"val": dataset}, [METRICS.build({"type": "PSNR"})], lambda model, x, task: x)
    with pytest.warns(RuntimeWarning, match=rf"skipping sample 1: {bad}"):
        result = validator.run(torch.nn.Identity(), 1)
    good = [_psnr(gt, lq, f"img_000{i}.png") for i in (0, 2, 3, 4)]
    assert result.images["val"] == 4
    assert result.scores["val"]["PSNR"] == pytest.approx(float(np.mean(good)), abs=1e-9)


def test_test_runner_writes_one_row_per_good_image(pairs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    from irframe.evaluate.models import LoadedModel
    from irframe.evaluate.runner import EvalSettings, evaluate_dataset
    from irframe.registry import METRICS

    gt, lq, bad = pairs
    dataset = PairedImageDataset(str(gt), str(lq), skip_bad=True)
    loaded = LoadedModel(torch.nn.Identity(), "identity", "Identity", {})
    settings = EvalSettings(save_images=False, report_images=0, batch_size=2)
    with pytest.warns(RuntimeWarning, match=rf"skipping sample 1: {bad}"):
        result, _ = evaluate_dataset(
            loaded, "set", dataset, [METRICS.build({"type": "PSNR"})], tmp_path / "board", settings, progress=False
        )
    assert [image.name for image in result.images] == ["img_0000", "img_0002", "img_0003", "img_0004"]
    good = [_psnr(gt, lq, f"img_000{i}.png") for i in (0, 2, 3, 4)]
    (score,) = result.scores.values()  # keyed by the metric's protocol id
    assert score == pytest.approx(float(np.mean(good)), abs=1e-9)


def test_training_still_replaces_a_bad_sample_and_evaluation_never_does(pairs: tuple[Path, Path, Path]) -> None:
    gt, lq, _bad = pairs
    dataset = PairedImageDataset(str(gt), str(lq), skip_bad=True)
    with pytest.warns(RuntimeWarning, match="skipping sample 1"):
        assert dataset[1]["name"] == "img_0002"  # training: batches stay full
    view = EvalSamples(dataset)
    got = [view[i] for i in range(len(view))]
    assert isinstance(got[1], SkippedSample) and got[1].index == 1
    assert [s["name"] for s in got if isinstance(s, dict)] == ["img_0000", "img_0002", "img_0003", "img_0004"]


def test_a_folder_of_empty_files_prints_a_summary_not_a_warning_per_file(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    write_textured_images(folder, 1, 16, seed=0)
    (folder / "img_0000.png").rename(folder / "z_good.png")  # sorted last: every other file is read first
    for i in range(150):
        (folder / f"empty_{i:04d}.png").write_bytes(b"")
    dataset = PairedImageDataset(str(folder), str(folder), skip_bad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert dataset[0]["name"] == "z_good"
    lines = [str(w.message) for w in caught]
    assert len(lines) == SHOW_BAD + 2, lines  # the first 5 named, then the counts at 10 and 100
    assert "skipping sample 0" in lines[0] and "empty_0000.png" in lines[0]
    assert "further bad samples are counted, not named" in lines[SHOW_BAD - 1]
    assert lines[-1].startswith("PairedImageDataset: 100 bad samples skipped so far")


def test_all_in_one_evaluation_leaves_a_bad_sample_out_too(pairs: tuple[Path, Path, Path]) -> None:
    from irframe.data.datasets.allinone import AllInOneDataset

    gt, lq, _bad = pairs
    source = {"type": "PairedImageDataset", "dataroot_gt": str(gt), "dataroot_lq": str(lq), "skip_bad": True}
    dataset = AllInOneDataset(["derain"], {"derain": source})
    with pytest.warns(RuntimeWarning, match="skipping sample 1"):
        got = [EvalSamples(dataset)[i] for i in range(len(dataset))]
    assert isinstance(got[1], SkippedSample)
    assert [s["name"] for s in got if isinstance(s, dict)] == ["img_0000", "img_0002", "img_0003", "img_0004"]
    assert all(s["task"] == "derain" for s in got if isinstance(s, dict))
