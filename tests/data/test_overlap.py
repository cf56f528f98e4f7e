"""irframe.data.overlap: the same photo found by content across sets (resized, flipped, gray/color)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from irframe.data.overlap import find_copies, main


def _photo(seed: int, h: int = 96, w: int = 128) -> np.ndarray:
    """A smooth random 'photo' (blurred noise): structure at thumbnail scale and channels that follow
    one another, like a real image."""
    rng = np.random.default_rng(seed)
    luma = rng.random((h, w, 1)).astype(np.float32)
    img = cv2.GaussianBlur(luma + 0.2 * rng.random((h, w, 3)).astype(np.float32), (0, 0), 6)
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 255).astype(np.uint8)


def test_a_resized_flipped_dimmed_gray_copy_is_found_and_other_photos_are_not(tmp_path: Path) -> None:
    train, test = tmp_path / "train", tmp_path / "test"
    train.mkdir()
    test.mkdir()
    original = _photo(0)
    copy = cv2.resize(original, (200, 150), interpolation=cv2.INTER_CUBIC)[:, ::-1]  # larger, mirrored
    copy = cv2.cvtColor((copy * 0.7 + 20).astype(np.uint8), cv2.COLOR_RGB2GRAY)  # dimmer, gray
    cv2.imwrite(str(train / "a.png"), copy)
    cv2.imwrite(str(train / "b.png"), _photo(1))
    cv2.imwrite(str(test / "x.png"), original)
    cv2.imwrite(str(test / "y.png"), _photo(2))
    copies, n_train, n_test = find_copies([train], [test])
    assert (n_train, n_test) == (2, 2)
    assert [(c.train.name, c.test.name) for c in copies] == [("a.png", "x.png")]
    assert copies[0].correlation > 0.99 and copies[0].transform == 1  # found as the mirror image
    assert main(["--train", str(train), "--test", str(test)]) == 1  # a copy: non-zero exit for scripts


def test_a_missing_folder_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--train", str(tmp_path / "nope"), "--test", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope'}: not a folder"


def test_the_zoo_denoisers_never_trained_on_their_test_photos(shared_dir: Path) -> None:
    """The claim of zoo/README.md: no training or validation image of the NAFNet denoisers shows a
    test photo; and the check does see the Rain100H backgrounds that are BSD68 photos."""
    d = shared_dir / "data"
    gray = find_copies([d / "Kodak24/clean", d / "McMaster18/clean", d / "Set14/HR", d / "Set5/HR"],
                       [d / "BSD68/clean", d / "Rain100H/clean"])
    color = find_copies([d / "CBSD68/clean", d / "McMaster18/clean", d / "Set14/HR", d / "Rain100H/clean",
                         d / "Set5/HR"], [d / "Kodak24/clean"])
    assert gray[0] == [] and color[0] == []
    shared, _, _ = find_copies([d / "Rain100H/clean"], [d / "BSD68/clean"])
    assert ("90.png", "test054.png") in {(c.train.name, c.test.name) for c in shared}
