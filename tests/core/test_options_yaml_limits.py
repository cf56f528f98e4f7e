"""Hostile or broken YAML: alias bombs, deep nesting, recursive aliases and non-UTF-8 files give one
bounded OptionsError naming the file, never a traceback, a hang or a huge message."""

from __future__ import annotations

import time

import pytest

from irframe.cli import main as cli_main
from irframe.errors import OptionsError
from irframe.options import MAX_YAML_DEPTH, MAX_YAML_NODES, apply_overrides, load_options, load_yaml
from irframe.registry import MAX_VALUE_CHARS


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The classic "billion laughs": each level repeats the previous one ``width`` times."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + f"\nname: *l{levels - 1}\n"


def test_alias_bomb_is_refused_quickly(tmp_path, capsys):
    f = tmp_path / "bomb.yml"
    f.write_text(alias_bomb())
    assert len(f.read_bytes()) < 600  # the reported file was 532 bytes
    start = time.perf_counter()
    with pytest.raises(
        OptionsError, match=rf"^{f}: refused: its aliases expand to more than {MAX_YAML_NODES:,} values"
    ):
        load_options(f)
    assert time.perf_counter() - start < 5
    assert cli_main(["show-options", str(f)]) == 1
    assert len(capsys.readouterr().err) < 400


def test_bomb_in_a_set_override_is_refused():
    with pytest.raises(OptionsError, match=r"--set .*refused: its aliases expand"):
        apply_overrides({}, ["name=" + "{" + alias_bomb().replace("\n", ", ").rstrip(", ") + "}"])


def test_errors_never_print_a_huge_value(tmp_path):
    # a document below the limit whose wrongly typed field holds 100k values, and a 50k-character string
    f = tmp_path / "big.yml"
    f.write_text(alias_bomb(levels=5, width=10) + "model: {type: X}\nseed: " + "7" * 50_000 + "x\n")
    with pytest.raises(OptionsError) as exc:
        load_options(f)
    text = str(exc.value)
    assert "name:" in text and "seed:" in text
    assert all(len(line) < 2 * MAX_VALUE_CHARS + 100 for line in text.splitlines()), text


def test_deep_nesting_is_refused(tmp_path):
    for depth in (MAX_YAML_DEPTH + 5, 50_000):
        f = tmp_path / f"deep{depth}.yml"
        f.write_text("name: " + "[" * depth + "]" * depth + "\n")
        with pytest.raises(OptionsError, match=rf"^{f}: refused: nested more than {MAX_YAML_DEPTH} levels deep$"):
            load_yaml(f)
    ok = tmp_path / "ok.yml"
    ok.write_text("a: " + "[" * 50 + "]" * 50 + "\n")
    assert isinstance(load_yaml(ok)["a"], list)


def test_recursive_alias_is_refused(tmp_path):
    f = tmp_path / "loop.yml"
    f.write_text("name: &a [1, *a]\n")
    with pytest.raises(OptionsError, match=rf"^{f}:1: refused: an alias refers to itself"):
        load_yaml(f)


def test_non_utf8_file_is_one_error(tmp_path, capsys):
    f = tmp_path / "latin1.yml"
    f.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(OptionsError, match=rf"^{f}: not UTF-8 text \(byte 0xe9 at offset 9\)$"):
        load_yaml(f)
    assert cli_main(["show-options", str(f)]) == 1
    assert capsys.readouterr().err.strip().endswith("not UTF-8 text (byte 0xe9 at offset 9)")
    bom = tmp_path / "bom.yml"
    bom.write_bytes(b"\xef\xbb\xbfname: x\n")
    assert load_yaml(bom) == {"name": "x"}
