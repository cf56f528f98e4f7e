"""Help texts and hints a new user reads in the first hour: they name what exists and work as said."""

from __future__ import annotations

import numpy as np
import pytest

from irframe import cli
from irframe.data.io import imwrite
from irframe.errors import DataError
from irframe.evaluate.cli import benchmark_main, infer_main, stats_main
from irframe.train.cli import parse_args as train_args


def _help(main, capsys) -> str:
    with pytest.raises(SystemExit):
        main(["--help"])
    return capsys.readouterr().out


def test_irframe_help_is_plain_text_with_examples(capsys):
    text = _help(cli.main, capsys)
    assert "``" not in text  # no raw reStructuredText
    assert "irframe list archs" in text and "show-options" in text


@pytest.mark.parametrize("kind", ["arch", "archs", "ARCHS"])
def test_irframe_list_accepts_the_plural_headings_it_prints(kind, capsys):
    assert cli.main(["list", kind]) == 0
    out = capsys.readouterr().out
    assert out.startswith("archs (") and "Restormer" in out


def test_irframe_list_losses_plural(capsys):
    assert cli.main(["list", "losses"]) == 0
    assert capsys.readouterr().out.startswith("losses (")


def test_infer_help_documents_every_option(capsys):
    text = _help(infer_main, capsys).split("options:", 1)[1]
    for flag, words in {"--input": "folder", "--output": "input folder", "--no-progress": "progress bar",
                        "--threads": "auto"}.items():
        block = text.split(f"\n  {flag} ", 1)[1].split("\n  -", 1)[0]
        assert words in block, (flag, block)


def test_set_examples_name_keys_the_tool_uses(capsys):
    infer = _help(infer_main, capsys)
    assert "test.report_images" not in infer and "inference.self_ensemble" in infer
    assert "test.report_images" in _help(benchmark_main, capsys)
    assert "model.dim" in _help(stats_main, capsys)


def test_tools_take_threads():
    assert train_args(["-opt", "x.yml", "--threads", "3"]).threads == 3
    assert train_args(["-opt", "x.yml"]).threads is None
    with pytest.raises(SystemExit):
        train_args(["-opt", "x.yml", "--threads", "0"])


def test_create_lmdb_suggests_recursive_for_a_folder_of_folders(tmp_path):
    from irframe.data.lmdb_pack import create_lmdb

    imwrite(tmp_path / "in" / "scene1" / "a.png", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(DataError, match="pass --recursive"):
        create_lmdb(tmp_path / "in", tmp_path / "out.lmdb", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found$"):  # nothing anywhere: no misleading hint
        create_lmdb(tmp_path / "empty", tmp_path / "out2.lmdb", progress=False)
    assert create_lmdb(tmp_path / "in", tmp_path / "out.lmdb", recursive=True, progress=False).total == 1


def test_export_hint_works_from_a_checkout(monkeypatch):
    from irframe.nn import export

    assert 'pip install -e ".[export]"' in export._INSTALL_HINT
