"""Option files that cannot be read, or hold characters YAML refuses: one line naming the file.

* an option or ``_base_`` file that exists but cannot be read (``/proc/self/mem`` reads fail with
  EIO; no permission) raised a bare ``OSError`` traceback;
* a NUL, ESC or BEL in an option file or a ``--set`` value raised PyYAML's ``ReaderError`` (two
  lines naming ``<unicode string>``), in every tool and in ``irframe show-options``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from irframe.cli import main as cli_main
from irframe.errors import OptionsError
from irframe.options import load_options

UNREADABLE = Path("/proc/self/mem")  # a regular file whose first bytes cannot be read (EIO)
needs_proc = pytest.mark.skipif(not UNREADABLE.is_file(), reason="needs Linux /proc/self/mem")


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@needs_proc
def test_unreadable_option_file_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(OptionsError, match=r"/mem: cannot read the option file \(Input/output error\)"):
        load_options(UNREADABLE, check=False)
    assert cli_main(["show-options", str(UNREADABLE), "--no-check"]) == 1
    assert "cannot read the option file" in _one_error_line(capsys)

    child = tmp_path / "child.yml"
    child.write_text(f"_base_: {UNREADABLE}\nname: x\n", encoding="utf-8")
    assert cli_main(["show-options", str(child), "--no-check"]) == 1
    assert "/mem: cannot read the option file" in _one_error_line(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_option_file_without_read_permission_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "secret.yml"
    path.write_text("name: x\n", encoding="utf-8")
    path.chmod(0)
    with pytest.raises(OptionsError, match=r"secret\.yml: cannot read the option file \(Permission denied\)"):
        load_options(path, check=False)


def test_a_folder_given_as_option_file_is_named_as_a_folder(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match=r"is a folder, not an option file"):
        load_options(tmp_path, check=False)


@pytest.mark.parametrize(("char", "shown"), [("\x00", r"'\x00' (U+0000, NUL)"), ("\x1b", r"'\x1b' (U+001B, ESC)"),
                                             ("\x07", r"'\x07' (U+0007, BEL)")])
def test_control_character_in_an_option_file_names_file_line_and_character(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], char: str, shown: str
) -> None:
    path = tmp_path / "opt.yml"
    path.write_text(f"name: demo\nmodel:\n  type: Re{char}stormer\n", encoding="utf-8")
    with pytest.raises(OptionsError) as info:
        load_options(path, check=False)
    message = str(info.value)
    assert message.startswith(f"{path}:3:11: invalid YAML: character {shown} is not allowed") and "\n" not in message
    assert cli_main(["show-options", str(path), "--no-check"]) == 1
    assert f"{path}:3:11: invalid YAML: character {shown}" in _one_error_line(capsys)

    base = tmp_path / "base.yml"  # also in a _base_ file: that file is named
    base.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    child = tmp_path / "child.yml"
    child.write_text("_base_: base.yml\nname: other\n", encoding="utf-8")
    with pytest.raises(OptionsError, match=r"base\.yml:3:11: invalid YAML: character"):
        load_options(child, check=False)


@pytest.mark.parametrize("char", ["\x07", "\x1b"])
def test_control_character_in_a_set_value_names_the_key_and_character(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], char: str
) -> None:
    path = tmp_path / "opt.yml"
    path.write_text("name: demo\n", encoding="utf-8")
    with pytest.raises(OptionsError) as info:
        load_options(path, [f"train.optim.lr=1e-4{char}"], check=False)
    message = str(info.value)
    assert "the value of train.optim.lr holds the character" in message and f"(U+{ord(char):04X}" in message
    assert "\n" not in message and char not in message  # shown escaped: a BEL is not rung, an ESC not sent
    assert cli_main(["show-options", str(path), "--no-check", "--set", f"name=a{char}b"]) == 1
    assert "the value of name holds the character" in _one_error_line(capsys)
    # an escape inside double quotes is the way to write one on purpose
    opts = load_options(path, ['name="a\\x07b"'], check=False)
    assert opts.name == "a\x07b"


def test_train_tool_prints_one_line_for_a_nul_in_its_option_file(tmp_path: Path, tools) -> None:
    path = tmp_path / "opt.yml"
    path.write_bytes(b"name: demo\x00\n")
    result = tools.run(tools.TRAIN, ["-opt", str(path)], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {path}:1:11: invalid YAML: character '\\x00' (U+0000, NUL) is not allowed in YAML text "
        '(remove it, or write it as the escape "\\x00" inside a double-quoted string)'
    ]
