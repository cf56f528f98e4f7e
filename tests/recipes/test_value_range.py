"""Value ranges never clip silently on the document-denoising path.

A known failure of the field: inputs normalised to [-1, 1], outputs clamped to [0, 1], and every
pixel darker than mid-gray came out black. Here the engine moves [0, 1] everywhere; a model that
computes in [-1, 1] converts at its own borders. These tests feed such a model through training,
inference and the Kaggle writer and check the values that come out, and check that a model which
forgets to convert back is loud at the writer (a warning when saving pages, an error when a float
prediction goes into a submission) instead of silently clipped.
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from irframe.errors import DataError
from irframe.evaluate.cli import infer_main, submission_main
from irframe.evaluate.images import ImageFormat, save_restored
from irframe.evaluate.submission import write_submission
from irframe.nn.spec import ModelSpec
from irframe.nn.weights import save_weights
from tests.recipes.documents import TINY_OPTIONS, clean_page, fast_overrides, write_gray

FAR_OUTSIDE = r"outside \[0, 1\]; they are clipped"


class SignedRangeNet(nn.Module):
    """A gray model computing in [-1, 1]: ``z = 2x - 1``, ``y = scale * z + shift`` (learnable,
    initialised to the identity), and back with ``(y + 1) / 2``, so the engine feeds and receives
    [0, 1]. ``convert_back=False`` is the bug: the [-1, 1] result is returned as it is."""

    internal_range = (-1.0, 1.0)  # what it normalises to; the engine side stays [0, 1]

    def __init__(self, convert_back: bool = True) -> None:
        super().__init__()
        self.convert_back = convert_back
        self.scale = nn.Parameter(torch.ones(1))
        self.shift = nn.Parameter(torch.zeros(1))
        self.spec = ModelSpec(in_channels=1, out_channels=1, value_range=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.scale * (2.0 * x - 1.0) + self.shift
        return (y + 1.0) / 2.0 if self.convert_back else y


@pytest.fixture
def signed_net(registry_sandbox) -> type[SignedRangeNet]:
    from irframe.registry import ARCHS

    ARCHS.register("SignedRangeNet", SignedRangeNet)
    return SignedRangeNet


@pytest.fixture
def clean_pages(tmp_path: Path) -> Path:
    """Pages whose noisy side equals the clean side (the identity is the right answer), with
    black, dark, mid-gray (below 0.5: what a [-1, 1] clamp blacks out) and white pixels."""
    root = tmp_path / "pages"
    for page_id in (1, 2, 3):
        page = clean_page(page_id)
        write_gray(root / "clean" / f"{page_id}.png", page)
        write_gray(root / "noisy" / f"{page_id}.png", page)
    write_gray(root / "test" / "5.png", clean_page(5))
    return root


def page_values(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float64) / 255.0


def range_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if re.search(FAR_OUTSIDE, str(w.message))]


def test_a_model_computing_in_minus_one_one_keeps_every_value(
    signed_net, tool, clean_pages: Path, tmp_path: Path, capsys
) -> None:
    page = clean_page(5)
    assert {0, 90, 140, 255} <= set(np.unique(page).tolist())  # the tones the known bug ruins

    # training: the recipe's tool and options with the model swapped in (lr tiny: the identity is optimal)
    status = tool.main(["train", "-opt", str(TINY_OPTIONS), "--data", str(clean_pages), "--val-ids", "3", "--set",
                        *fast_overrides(tmp_path, 3), "model={type: SignedRangeNet}", "train.optim.lr=1e-5",
                        "train.optim.weight_decay=0"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "RMSE noisy input 0.0000 -> restored 0.0000" in out  # validation saw [0, 1] outputs

    # inference through tools/infer.py, then the Kaggle writer
    checkpoint = tmp_path / "experiments" / "DirtyDocuments_Restormer_tiny" / "checkpoints" / "best"
    restored = tmp_path / "restored"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert infer_main(["--checkpoint", str(checkpoint), "--input", str(clean_pages / "test"), "--output",
                           str(restored), "--device", "cpu", "--no-progress"]) == 0
    assert range_warnings(caught) == []
    np.testing.assert_array_equal(cv2.imread(str(restored / "5.png"), cv2.IMREAD_UNCHANGED), page)

    sub = tmp_path / "submission.csv"
    assert submission_main(["--pred", str(restored), "--input", str(clean_pages / "test"), "--out", str(sub)]) == 0
    with open(sub, newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    values = np.array([float(v) for _id, v in rows]).reshape(page.shape[1], page.shape[0]).T  # column-major
    np.testing.assert_allclose(values, page / 255.0, atol=1e-6)  # dark and mid-gray text intact, nothing black
    assert values.min() >= 0.0 and values.max() <= 1.0


def test_a_model_returning_its_internal_range_is_loud(signed_net, clean_pages: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "broken.safetensors"
    cfg = {"type": "SignedRangeNet", "convert_back": False}
    save_weights(SignedRangeNet(convert_back=False), checkpoint, {"arch": "SignedRangeNet", "config": cfg})
    test_pages, restored = clean_pages / "test", tmp_path / "restored"

    # saving pages: the output [-1, 1] is clipped to [0, 1] (that is what a PNG can hold) but not silently
    with pytest.warns(RuntimeWarning, match=FAR_OUTSIDE) as caught:
        assert infer_main(["--checkpoint", str(checkpoint), "--input", str(test_pages), "--output", str(restored),
                           "--device", "cpu", "--no-progress"]) == 0
    message = range_warnings(list(caught))[0]
    assert str(restored / "5.png") in message and "span [-1, 1]" in message
    saved = cv2.imread(str(restored / "5.png"), cv2.IMREAD_UNCHANGED)
    page = clean_page(5)
    assert (saved[page == 90] == 0).all()  # the damage the warning is about: mid-gray text went black

    # a float prediction (no quantisation in between) is refused by the writer, naming the page
    floats = tmp_path / "float_pred"
    floats.mkdir()
    raw = SignedRangeNet(convert_back=False)(torch.from_numpy(page / 255.0).float()[None, None])
    assert cv2.imwrite(str(floats / "5.tif"), raw[0, 0].detach().numpy().astype(np.float32))
    # (the image reader refuses it first, naming the file and the range; the writer adds the page)
    with pytest.raises(DataError, match=r"image 5: .*5\.tif: float image values span \[-1, 1\].*outside \[0, 1\]"):
        write_submission(floats, test_pages, tmp_path / "sub.csv")
    assert not (tmp_path / "sub.csv").exists()

    # tiny float overshoot (a white page just above 1) is clipped without fuss
    near = np.clip(page / 255.0, 0, 1).astype(np.float32) + np.float32(0.01)
    assert cv2.imwrite(str(floats / "5.tif"), near)
    info = write_submission(floats, test_pages, tmp_path / "sub.csv")
    with open(info.path) as fh:
        values = [float(line.split(",")[1]) for line in fh.read().splitlines()[1:]]
    assert max(values) == 1.0 and min(values) == pytest.approx(0.01, abs=1e-6)


def test_overshoot_of_a_trained_denoiser_is_quiet_a_wrong_range_is_not(tmp_path: Path) -> None:
    page = clean_page(5) / 255.0
    # what a trained page denoiser returns: background just above white, text pushed below black
    overshoot = np.where(page == 1.0, 1.02, np.where(page == 0.0, -0.35, page))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_restored(tmp_path / "ok.png", torch.from_numpy(overshoot)[None].float(), ImageFormat(8, 1))
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "ok.png"), cv2.IMREAD_UNCHANGED), clean_page(5))
    for name, wrong in (("signed", 2.0 * page - 1.0), ("255", page * 255.0)):
        with pytest.warns(RuntimeWarning, match=FAR_OUTSIDE):
            save_restored(tmp_path / f"{name}.png", torch.from_numpy(wrong)[None].float(), ImageFormat(8, 1))
