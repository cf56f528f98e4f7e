"""tools/dirty_documents.py split: pairing, honest hold-out (no validation text in training), the
option file's folders, reuse without overwriting."""

from __future__ import annotations

from pathlib import Path

import pytest

from irframe.errors import DataError, OptionsError
from tests.recipes.documents import TINY_OPTIONS, clean_page, fast_overrides, stain, write_gray


def run_split(tool, tmp_path: Path, data: Path, *extra: str) -> int:
    return tool.main(["split", "-opt", str(TINY_OPTIONS), "--data", str(data), *extra,
                      "--set", *fast_overrides(tmp_path)])


def test_split_fills_the_option_files_folders(tool, documents: Path, tmp_path: Path, capsys) -> None:
    assert run_split(tool, tmp_path, documents, "--val-ids", "4") == 0
    split = tmp_path / "split"
    for part, ids in (("train", ["1", "2", "3"]), ("val", ["4"])):
        for side in ("noisy", "clean"):
            folder = split / part / side
            assert sorted(p.stem for p in folder.iterdir()) == ids
            for i in ids:
                assert (folder / f"{i}.png").read_bytes() == (documents / side / f"{i}.png").read_bytes()
    out = capsys.readouterr().out
    assert "3 page(s) written (1, 2, 3)" in out and "1 page(s) written (4)" in out
    # the same split again reuses the folders; another split is refused and touches nothing
    assert run_split(tool, tmp_path, documents, "--val-ids", "4") == 0
    assert "reused" in capsys.readouterr().out
    assert run_split(tool, tmp_path, documents, "--val-ids", "2") == 2
    err = capsys.readouterr().err
    assert "does not hold exactly the planned pages" in err and str(split / "train" / "noisy") in err
    assert sorted(p.stem for p in (split / "val" / "noisy").iterdir()) == ["4"]


def test_validation_text_seen_in_training_is_refused(tool, documents: Path, tmp_path: Path) -> None:
    pairs = tool.find_pairs(documents / "noisy", documents / "clean")
    assert list(pairs) == ["1", "2", "3", "4"]
    # pages 1 and 3 share their clean page: holding out 3 alone validates on memorised text
    with pytest.raises(DataError, match=r"clean 3 == clean 1.*--val-ids 1 3"):
        tool.plan_split(pairs, ["3"])
    honest = tool.plan_split(pairs, ["1", "3"])
    assert [p.id for p in honest.train] == ["2", "4"] and [p.id for p in honest.val] == ["1", "3"]
    assert honest.seen_text == ()
    optimistic = tool.plan_split(pairs, ["3"], allow_seen_text=True)
    assert optimistic.seen_text == (("3", "1"),)


def test_bad_inputs_are_named(tool, documents: Path, tmp_path: Path) -> None:
    pairs = tool.find_pairs(documents / "noisy", documents / "clean")
    with pytest.raises(OptionsError, match="no page 9"):
        tool.plan_split(pairs, ["9"])
    with pytest.raises(OptionsError, match="nothing is left for training"):
        tool.plan_split(pairs, ["1", "2", "3", "4"])
    with pytest.raises(OptionsError, match="repeated id"):
        tool.plan_split(pairs, ["4", "4"])
    write_gray(documents / "noisy" / "5.png", stain(clean_page(3), 5))
    with pytest.raises(DataError, match=r"5 \(only in .*noisy\)"):
        tool.find_pairs(documents / "noisy", documents / "clean")
    write_gray(documents / "clean" / "5.png", clean_page(3, 48, 56))
    with pytest.raises(DataError, match="page 5: .* is 56x40 .* but .* is 56x48"):
        tool.plan_split(tool.find_pairs(documents / "noisy", documents / "clean"), ["4"])
    with pytest.raises(DataError, match="expected sub-folders noisy/ \\+ clean/ or train/ \\+ train_cleaned/"):
        tool.resolve_inputs(str(tmp_path), None, None)
    with pytest.raises(OptionsError, match="not both"):
        tool.resolve_inputs(str(documents), str(documents / "noisy"), None)


def test_kaggle_folder_names(tool, tmp_path: Path) -> None:
    kaggle = tmp_path / "kaggle"
    for page_id in (2, 3):
        write_gray(kaggle / "train_cleaned" / f"{page_id}.png", clean_page(page_id))
        write_gray(kaggle / "train" / f"{page_id}.png", stain(clean_page(page_id), page_id))
    assert tool.resolve_inputs(str(kaggle), None, None) == (kaggle / "train", kaggle / "train_cleaned")


def test_real_dirty_documents_hold_out_a_whole_text(tool, shared_dir: Path) -> None:
    data = shared_dir / "data" / "DirtyDocuments"
    if not (data / "noisy").is_dir():
        pytest.skip(f"{data} not present")
    pairs = tool.find_pairs(*tool.resolve_inputs(str(data), None, None))
    assert list(pairs) == ["2", "3", "5", "6"]
    with pytest.raises(DataError, match="clean 6 == clean 3"):
        tool.plan_split(pairs, ["6"])
    split = tool.plan_split(pairs, ["3", "6"])  # the tiny recipe's hold-out
    assert [p.id for p in split.train] == ["2", "5"] and split.seen_text == ()


def test_split_folders_must_differ(tool, documents: Path, tmp_path: Path, capsys) -> None:
    same = tmp_path / "split" / "train" / "noisy"
    status = tool.main(["split", "-opt", str(TINY_OPTIONS), "--data", str(documents), "--val-ids", "4",
                        "--set", *fast_overrides(tmp_path), f"datasets.val.dataroot_lq={same}"])
    assert status == 2 and "four different folders" in capsys.readouterr().err
    assert not same.exists()
