"""load_for_eval: options + checkpoint, checkpoint alone, checkpoint folders, mismatches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from irframe.errors import CheckpointError, OptionsError
from irframe.evaluate.models import load_for_eval, slugify
from irframe.nn.spec import spec_for_task
from irframe.nn.weights import save_weights


def test_options_with_and_without_checkpoint(toy_arch, tmp_path: Path) -> None:
    ckpt = tmp_path / "w.pth"
    torch.save({"params": {"offset": torch.tensor(0.25)}}, ckpt)  # a BasicSR-style official file
    loaded = load_for_eval({"type": "EvalToyNet"}, ckpt, device="cpu")
    assert loaded.name == "w" and loaded.arch == "EvalToyNet" and loaded.checkpoint == str(ckpt)
    assert loaded.model.offset.item() == 0.25 and not loaded.model.training
    fresh = load_for_eval({"type": "EvalToyNet", "offset": 0.5}, None, name="row")
    assert fresh.name == "row" and fresh.checkpoint is None and fresh.model.offset.item() == 0.5
    with pytest.raises(OptionsError, match="no model to evaluate"):
        load_for_eval(None, None)


def test_checkpoint_folder_prefers_ema_and_metadata_builds_the_arch(toy_arch, tmp_path: Path) -> None:
    folder = tmp_path / "iter_000010"
    meta = {"arch": "EvalToyNet", "config": {"type": "EvalToyNet", "scale": 2}}
    save_weights(toy_arch(offset=0.1), folder / "model.safetensors", meta)
    save_weights(toy_arch(offset=0.2), folder / "ema.safetensors", meta)
    loaded = load_for_eval(None, folder)
    assert loaded.name == "iter_000010" and loaded.checkpoint == str(folder / "ema.safetensors")
    assert loaded.model.offset.item() == pytest.approx(0.2) and loaded.model.spec.scale == 2
    assert loaded.config == {"type": "EvalToyNet", "scale": 2}


def test_arch_mismatch_and_bad_weights_are_clear(toy_arch, tmp_path: Path) -> None:
    ckpt = tmp_path / "r.safetensors"
    save_weights({"offset": torch.tensor(0.0)}, ckpt, {"arch": "Restormer", "config": {"type": "Restormer"}})
    with pytest.raises(OptionsError, match="saved from 'Restormer'"):
        load_for_eval({"type": "EvalToyNet"}, ckpt, source="a.yml")
    wrong = tmp_path / "wrong.pth"
    torch.save({"other": torch.zeros(2)}, wrong)
    with pytest.raises(CheckpointError, match="wrong.pth"):
        load_for_eval({"type": "EvalToyNet"}, wrong)
    loaded = load_for_eval({"type": "EvalToyNet"}, wrong, strict=False)
    assert loaded.missing == ["offset"] and loaded.unexpected == ["other"]


def test_a_shape_mismatch_names_the_config_the_checkpoint_was_saved_with(tmp_path: Path) -> None:
    from irframe.evaluate.models import config_difference
    from irframe.registry import ARCHS

    saved = {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
             "heads": [1, 1, 1, 1], "bias": True}  # fmt: skip
    ckpt = tmp_path / "r.safetensors"
    save_weights(ARCHS.build(saved), ckpt, {"arch": "Restormer", "config": saved})
    options = {**saved, "dim": 16}
    del options["bias"]  # left at the arch's default (False): differs from the file's True
    with pytest.raises(CheckpointError) as err:
        load_for_eval(options, ckpt)
    text = str(err.value)
    assert text.startswith(f"{ckpt}: does not fit the model of options: fix: --set model=null (the checkpoint's ")
    assert "set in 'model:' what it was saved with: bias=True (options: False), dim=8 (options: 16); " in text
    assert "tensor shape(s) differ (e.g. " in text and len(text) - len(str(ckpt)) < 300
    # keys the options leave at the arch's default, equal to the file's, are not listed
    assert config_difference({**saved, "ffn_expansion_factor": 2.66}, saved) == ""
    # the options match: no hint, the plain message
    assert config_difference(saved, dict(saved)) == ""


def test_select_task_and_slugify(toy_arch) -> None:
    class Switchable(toy_arch):
        def set_task(self, task: str) -> None:
            self.chosen = task

    model = Switchable(tasks=["a", "b"])
    spec_for_task(model, "b")
    assert model.chosen == "b"
    spec_for_task(toy_arch(), "a")  # models without set_task are left alone
    # a name that had to change gets a short hash of itself (distinct names never share a folder)
    assert re.fullmatch(r"Restormer_x4_EMA-[0-9a-f]{8}", slugify("Restormer (x4) / EMA"))
    assert re.fullmatch(r"[0-9a-f]{8}", slugify("..")) and slugify("Restormer") == "Restormer"
