"""IPT task names as users type them (sr2, x2, dn30, rain ...), and single-task checkpoints that take
the task name the user asks for (tools/infer.py --task derain on a detected IPT_derain-like file)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from irframe_ipt.ipt_arch import IPT
from irframe_ipt.tasks import normalize_task, task_scale

from irframe.errors import OptionsError
from irframe.evaluate.cli import infer_main
from irframe.evaluate.infer import check_task
from irframe.nn.inference import restore
from irframe.nn.spec import resolve_task

TINY = {"n_feats": 16, "num_heads": 2, "num_layers": 1}


def tiny(**options: object) -> IPT:
    torch.manual_seed(0)
    return IPT(**{**TINY, **options}).eval()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("sr_x2", "sr_x2"), ("sr2", "sr_x2"), ("SR2", "sr_x2"), ("srx3", "sr_x3"), ("sr_4", "sr_x4"), ("x2", "sr_x2"),
        ("X4", "sr_x4"), ("sr-x2", "sr_x2"), ("SRx3", "sr_x3"), ("super_resolution_x2", "sr_x2"),
        ("denoise30", "denoise30"), ("dn30", "denoise30"), ("DN50", "denoise50"), ("noise30", "denoise30"),
        ("denoise_50", "denoise50"), ("denoising30", "denoise30"), ("sigma50", "denoise50"), ("n30", "denoise30"),
        ("derain", "derain"), ("deraining", "derain"), ("De-Rain", "derain"), ("rain", "derain"),
        # not spellings of an IPT task: unchanged (user-named tasks, indices)
        ("restore3", "restore3"), ("deblur", "deblur"), ("0", "0"), ("30", "30"), ("sr", "sr"),
    ],
)
def test_alias_table(typed: str, canonical: str) -> None:
    assert normalize_task(typed) == canonical


def test_task_scale() -> None:
    assert [task_scale(n) for n in ("sr_x2", "sr_x3", "sr_x4", "denoise30", "denoise50", "derain", "restore3")] == [
        2, 3, 4, 1, 1, 1, None,
    ]


def test_multitask_model_takes_every_spelling() -> None:
    model = tiny(scale=[2, 1, 1], num_queries=3)  # sr_x2, denoise30, denoise50
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        ref = model(x, task="sr_x2")
        torch.testing.assert_close(model(x, task="sr2"), ref, rtol=0, atol=0)
        torch.testing.assert_close(restore(model, x, task="x2"), restore(model, x, task="sr_x2"), rtol=0, atol=0)
        torch.testing.assert_close(model(x, task="dn50"), model(x, task="denoise50"), rtol=0, atol=0)
    assert resolve_task(model, "SRx2") == "sr_x2" and check_task(model, "dn30") == "denoise30"
    assert model.spec.scale == 1 and model.tasks == ["sr_x2", "denoise30", "denoise50"]  # nothing renamed
    with pytest.raises(OptionsError, match=r"--task 'rain': IPT: unknown task 'rain' \(derain\); tasks are "
                       r"\['sr_x2', 'denoise30', 'denoise50'\]"):
        check_task(model, "rain")


def test_single_task_model_takes_the_asked_name_of_its_scale() -> None:
    model = tiny(scale=[1])
    assert model.tasks == ["denoise30"]  # what the weights alone give a scale-1 model
    assert check_task(model, "derain") == "derain"
    assert model.tasks == ["derain"] and model.config["tasks"] == ["derain"] and model.spec.tasks == ("derain",)
    out = restore(model, torch.rand(1, 3, 48, 48), task="rain")  # and any spelling of it afterwards
    assert out.shape == (1, 3, 48, 48)
    with pytest.raises(OptionsError, match=r"unknown task 'sr2' \(sr_x2\); tasks are \['derain'\] \(scale 1\)"):
        check_task(model, "sr2")

    sr = tiny(scale=[2])
    assert check_task(sr, "sr2") == "sr_x2" and sr.spec.scale == 2
    with pytest.raises(OptionsError, match=r"unknown task 'x3' \(sr_x3\); tasks are \['sr_x2'\] \(scale 2\)"):
        check_task(sr, "x3")
    with pytest.raises(OptionsError, match=r"unknown task 'denoise30'; tasks are \['sr_x2'\] \(scale 2\)"):
        check_task(sr, "denoise30")


def test_infer_tool_with_a_detected_single_task_checkpoint(tmp_path: Path, capsys) -> None:
    """A plain IPT state_dict of scale 1 (like IPT_derain.pt) is detected as 'denoise30'; --task derain works."""
    model = tiny(scale=[1])
    ckpt = tmp_path / "IPT_derain.pt"
    torch.save(model.state_dict(), ckpt)
    img = tmp_path / "in" / "rainy.png"
    img.parent.mkdir()
    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8))
    base = ["--checkpoint", str(ckpt), "--input", str(img), "--device", "cpu", "--no-progress"]
    assert infer_main([*base, "--output", str(tmp_path / "out"), "--task", "derain"]) == 0
    assert cv2.imread(str(tmp_path / "out" / "rainy.png")).shape == (48, 48, 3)
    assert infer_main([*base, "--output", str(tmp_path / "out2"), "--task", "sr2"]) == 2
    err = capsys.readouterr().err
    assert "--task 'sr2': IPT: unknown task 'sr2' (sr_x2); tasks are ['denoise30'] (scale 1)" in err


def test_export_resolves_the_task_before_tracing(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from irframe.nn.export import ExportError, export_onnx

    with pytest.raises(ExportError, match=r"IPT: unknown task 'x3' \(sr_x3\); tasks are \['sr_x2'\] \(scale 2\)"):
        export_onnx(tiny(scale=[2]), tmp_path / "ipt.onnx", task="x3")
    assert not (tmp_path / "ipt.onnx").exists()
