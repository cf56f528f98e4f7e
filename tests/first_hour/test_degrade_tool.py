"""``tools/degrade.py``: degraded copies of clean images, exactly the inputs a data set with the same
degradation and seed gives a model (so the first hour restores what ``tools/test.py`` scored)."""

from __future__ import annotations

import numpy as np
import pytest

from irframe.data.cli import degrade_images, degrade_main
from irframe.data.io import imread, imwrite, quantize
from irframe.registry import DATASETS


@pytest.fixture
def clean(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "clean"
    for i in range(3):
        imwrite(folder / f"im{i}.png", rng.random((24, 20, 3)).astype(np.float32))
    return folder


def test_a_folder_is_degraded_as_its_data_set_degrades_it(clean, tmp_path, capsys):
    assert degrade_main([str(clean), str(tmp_path / "noisy"), "--noise", "25"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'noisy'} (3 images)"
    dataset = DATASETS.build({"type": "OnlineDegradationDataset", "dataroot_gt": str(clean),
                              "degradation": {"type": "GaussianNoise", "sigma": 25}, "seed": 0})
    for i in range(len(dataset)):
        sample = dataset[i]
        expected = quantize(sample["lq"].numpy().transpose(1, 2, 0)) / 255.0
        assert np.array_equal(imread(tmp_path / "noisy" / f"{sample['name']}.png"), expected.astype(np.float32))
    # another seed, other noise; the same seed, the same files
    degrade_images(clean, tmp_path / "seed1", {"type": "GaussianNoise", "sigma": 25}, seed=1)
    assert not np.array_equal(imread(tmp_path / "seed1" / "im0.png"), imread(tmp_path / "noisy" / "im0.png"))


def test_one_image_to_a_file_downscaled_or_any_degradation(clean, tmp_path, capsys):
    assert degrade_main([str(clean / "im1.png"), str(tmp_path / "lr.png"), "--downscale", "2"]) == 0
    assert imread(tmp_path / "lr.png").shape == (12, 10, 3)
    assert degrade_main([str(clean / "im1.png"), str(tmp_path / "out"), "--degradation", "{type: JPEGCompression, "
                         "quality: 20}"]) == 0
    assert (tmp_path / "out" / "im1.png").is_file()
    capsys.readouterr()


@pytest.mark.parametrize("out, args, message", [
    ("clean", ["--noise", "25"], "is the input folder; write the degraded images elsewhere"),
    ("x", ["--degradation", "{type: Blurr}"], "Blurr"),
    ("x", ["--degradation", "{type: [unclosed"], "--degradation: not YAML"),
])
def test_refusals_are_one_line(clean, capsys, out, args, message):
    assert degrade_main([str(clean), str(clean.parent / out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
