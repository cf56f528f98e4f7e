"""irframe convert-options / show-options on BasicSR-style files."""

from __future__ import annotations

import pytest

from irframe.cli import main
from irframe.options import load_options, load_yaml

from .conftest import FIXTURES


@pytest.mark.parametrize(
    "name", ["Deraining_Restormer.yml", "GaussianGrayDenoising_Restormer.yml", "test_EDSR_Mx2.yml"]
)
def test_round_trip_gives_the_same_options(name, tmp_path, capsys):
    out = tmp_path / "native.yml"
    assert main(["convert-options", str(FIXTURES / name), str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    text = out.read_text()
    assert text.startswith(f"# Converted from the BasicSR-style option file {FIXTURES / name}")
    assert "#   num_gpu: " in text  # a dropped key, with why
    assert "# from BasicSR:" in text and "#   network_g -> model" in text  # a mapped key, with where
    native = load_options(out)
    assert "BasicSR-style" not in capsys.readouterr().err  # the written file is native: nothing to translate
    assert native.to_dict() == {**load_options(FIXTURES / name).to_dict(), "name": native.name}
    assert "network_g" not in load_yaml(out)


def test_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "native.yml"
    out.write_text("keep me\n")
    assert main(["convert-options", str(FIXTURES / "train_EDSR_Mx2.yml"), str(out)]) == 1
    assert "already exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == "keep me\n"
    assert main(["convert-options", str(FIXTURES / "train_EDSR_Mx2.yml"), str(out), "--force"]) == 0
    assert load_options(out).datasets["train"].enlarge_ratio == 100


def test_native_input_and_untranslatable_input_are_refused(tmp_path, capsys):
    native = FIXTURES.parents[2] / "options" / "demo.yml"
    assert main(["convert-options", str(native), str(tmp_path / "a.yml")]) == 1
    assert "not a BasicSR-style option file" in capsys.readouterr().err
    bad = tmp_path / "bad.yml"
    bad.write_text((FIXTURES / "train_EDSR_Mx2.yml").read_text() + "unknown_top: 1\n")
    assert main(["convert-options", str(bad), str(tmp_path / "b.yml")]) == 1
    assert "unknown_top: unknown BasicSR key" in capsys.readouterr().err
    assert not (tmp_path / "a.yml").exists() and not (tmp_path / "b.yml").exists()


def test_show_options_prints_the_translation_and_notes(capsys):
    assert main(["show-options", str(FIXTURES / "Deraining_Restormer.yml"), "--no-check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# {FIXTURES / 'Deraining_Restormer.yml'}: translated from BasicSR's layout;")
    assert "#   num_gpu: 8 dropped" in out and "#   train.use_grad_clip: true = clip the gradient norm at 0.01" in out
    body = "".join(line + "\n" for line in out.splitlines() if not line.startswith("#"))
    assert "progressive:" in body and "grad_clip: 0.01" in body and "network_g" not in body
