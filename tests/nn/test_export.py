"""ONNX export (``irframe.nn.export`` and ``tools/export_onnx.py``) of tiny Restormer, PromptIR and IPT.

Tolerance: onnxruntime and torch run the same fp32 graph with different kernels, so outputs agree
to rounding; we require ``max |onnxruntime - torch| <= ATOL = 1e-4`` in [0,1] units (1/40 of an
8-bit level). Observed: ~3e-7 for Restormer/PromptIR, ~1e-6 for IPT (which computes in [0,255]).

Each export takes a few seconds (``torch.export`` + conversion), so every model is exported once
per module and the file is checked at several sizes.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from irframe.nn.inference import restore, tiled_forward
from irframe.nn.weights import save_weights
from irframe.registry import ARCHS

pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")
pytest.importorskip("onnxscript", reason="the [export] extra is not installed")

from irframe.nn.export import (  # after the skips
    ExportDependencyError,
    ExportError,
    OnnxModel,
    check_onnx,
    default_check_inputs,
    export_onnx,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
ATOL = 1e-4
ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {
    "Restormer": {"dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1, "heads": [1, 2, 4, 8]},
    "PromptIR": {"decoder": True, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1},
    "IPT": {"n_feats": 16, "patch_size": 48, "patch_dim": 3, "num_heads": 2, "num_layers": 1,
            "num_queries": 1, "scale": [2, 1], "rgb_range": 255},
}


def _build(name: str) -> torch.nn.Module:
    if name not in ARCHS:
        pytest.skip(f"arch {name} is not registered (plugin not installed)")
    torch.manual_seed(0)
    return ARCHS.build({"type": name, **CONFIGS[name]}, path=f"test.{name}").eval()


def _tool():
    spec = importlib.util.spec_from_file_location("export_onnx_tool", ROOT / "tools" / "export_onnx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rand(*shape: int, seed: int = 3) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def restormer_cli(tmp_path_factory):
    """A tiny Restormer saved as our safetensors checkpoint and exported by the tool (check passes)."""
    model = _build("Restormer")
    tmp = tmp_path_factory.mktemp("restormer")
    ckpt = save_weights(model, tmp / "tiny.safetensors",
                        {"arch": "Restormer", "config": {"type": "Restormer", **CONFIGS["Restormer"]}})
    out = tmp / "sub" / "tiny.onnx"
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = _tool().main(["--checkpoint", str(ckpt), "--out", str(out)])
    return model, out, rc, stdout.getvalue()


def test_tool_exports_restormer_and_reports_the_check(restormer_cli) -> None:
    _, out, rc, printed = restormer_cli
    assert rc == 0, printed
    assert out.is_file()
    assert "onnxruntime vs torch on 40x24, 64x56: max abs diff" in printed
    diff = float(printed.split("max abs diff ")[1].split()[0])
    assert diff <= ATOL


def test_restormer_graph_has_dynamic_size_and_matches_torch(restormer_cli) -> None:
    model, out, rc, _ = restormer_cli
    assert rc == 0
    onnx_model = OnnxModel(out)
    shape = onnx_model.session.get_inputs()[0].shape
    assert shape == ["batch", 3, "height", "width"]
    assert onnx_model.spec.size_multiple == 8 and onnx_model.spec.fixed_size is None
    # two sizes other than the tool's own check sizes, a batch of 2 and a non-square image
    inputs = [_rand(1, 3, 32, 32), _rand(2, 3, 72, 48, seed=4)]
    assert check_onnx(model, out, inputs) <= ATOL


def test_restormer_graph_keeps_the_value_range_contract(restormer_cli) -> None:
    """[0,1] in, [0,1]-space out: the graph gives what ``restore`` gives on a legal size."""
    model, out, _, _ = restormer_cli
    x = _rand(1, 3, 48, 40)
    got = OnnxModel(out)(x)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, restore(model, x), atol=ATOL, rtol=0)


def test_promptir_export_dynamic_two_sizes(tmp_path: Path) -> None:
    model = _build("PromptIR")
    # batch 1 and no graph optimizer: twice as fast to export (the Restormer test covers both)
    result = export_onnx(model, tmp_path / "promptir.onnx", optimize=False, dynamic_batch=False)
    assert not result.dynamic_batch and result.input_shape == (1, 3, "height", "width")
    assert result.metadata["irframe.arch"] == "PromptIR"
    assert result.metadata["irframe.size_multiple"] == "8"
    for x in (_rand(1, 3, 32, 48), _rand(1, 3, 64, 24, seed=5)):
        diff = check_onnx(model, result.path, x)
        assert diff <= ATOL, f"PromptIR at {tuple(x.shape)}: {diff:.3e}"
    assert not model.training  # export and check restore the model's mode (it was eval)


def test_ipt_export_fixed_size_one_task_tiled_by_the_caller(tmp_path: Path) -> None:
    model = _build("IPT")
    with pytest.raises(ExportError, match="several tasks.*sr_x2, denoise30.*task="):
        export_onnx(model, tmp_path / "ipt.onnx")
    result = export_onnx(model, tmp_path / "ipt.onnx", task="sr_x2")
    assert result.input_shape[1:] == (3, 48, 48)
    assert result.metadata["irframe.scale"] == "2" and result.metadata["irframe.model_value_range"] == "255.0"
    onnx_model = OnnxModel(result.path)
    assert onnx_model.task == "sr_x2" and onnx_model.spec.fixed_size == 48 and onnx_model.spec.scale == 2
    # the graph converts to [0,255] inside: [0,1] in, the model's [0,1]-space output out
    assert check_onnx(model, onnx_model, [_rand(2, 3, 48, 48)]) <= ATOL
    with pytest.raises(ExportError, match="only takes 48x48"):
        onnx_model(_rand(1, 3, 40, 48))
    # the caller tiles a whole image with the spec from the file; same tiles as restore()
    x = _rand(1, 3, 61, 70, seed=6)
    spec = onnx_model.spec
    tiled = tiled_forward(onnx_model, x, spec.fixed_size, spec.tile_overlap, spec=spec)
    want = restore(model, x, task="sr_x2")
    assert tiled.shape == (1, 3, 122, 140)
    torch.testing.assert_close(tiled, want, atol=ATOL, rtol=0)


def test_tool_fails_loudly_beyond_the_tolerance(tmp_path: Path, monkeypatch, capsys) -> None:
    """-opt path with an IPT checkpoint; the check is made to report a large difference."""
    model = _build("IPT")
    ckpt = save_weights(model, tmp_path / "ipt.safetensors")
    opt = tmp_path / "ipt.yml"
    opt.write_text(json.dumps({"name": "ipt", "model": {"type": "IPT", **CONFIGS["IPT"]},
                               "inference": {"task": "denoise30"}, "test": {"checkpoint": str(ckpt)}}))
    import irframe.nn.export as export

    monkeypatch.setattr(export, "check_onnx", lambda *a, **k: 0.5)
    rc = _tool().main(["-opt", str(opt), "--out", str(tmp_path / "ipt.onnx"), "--atol", "1e-4"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "max abs diff 5.000e-01" in captured.out
    assert "differs from the torch model by 5.000e-01 > 0.0001" in captured.err
    assert json.loads(OnnxModel(tmp_path / "ipt.onnx").metadata["irframe.task"]) == "denoise30"


def test_tool_errors_name_the_problem(tmp_path: Path, capsys) -> None:
    rc = _tool().main(["--checkpoint", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "m.onnx")])
    assert rc == 2 and "missing.safetensors" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _tool().main(["--out", str(tmp_path / "m.onnx")])  # neither --checkpoint nor -opt


def test_bad_arguments_are_clear_errors(tmp_path: Path, restormer_cli) -> None:
    model, out, _, _ = restormer_cli
    with pytest.raises(ExportError, match="not a multiple of spec.size_multiple=8"):
        OnnxModel(out)(_rand(1, 3, 30, 32))
    with pytest.raises(ExportError, match=r"\*\.onnx"):
        export_onnx(model, tmp_path / "model.pt")
    with pytest.raises(ExportError, match="takes no task"):
        export_onnx(model, tmp_path / "m.onnx", task="derain")
    with pytest.raises(ExportError, match="sample_size: 30x32"):
        export_onnx(model, tmp_path / "m.onnx", sample_size=(30, 32))
    with pytest.raises(ExportError, match="not found"):
        OnnxModel(tmp_path / "absent.onnx")
    assert [tuple(x.shape[-2:]) for x in default_check_inputs(model)] == [(40, 24), (64, 56)]


@pytest.mark.parametrize("missing", ["onnxruntime", "onnxscript"])
def test_missing_optional_dependency_names_the_extra(tmp_path: Path, monkeypatch, missing: str) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import missing` raise ImportError
    model = _build("Restormer")
    with pytest.raises(ExportDependencyError, match=rf"'{missing}'.*pip install -e \"\.\[export\]\""):
        if missing == "onnxruntime":
            OnnxModel(tmp_path / "m.onnx")
        else:
            export_onnx(model, tmp_path / "m.onnx")


def test_requested_opset_is_honoured_or_refused_clearly(tmp_path: Path) -> None:
    """The exporter works at opset 18; older opsets go through ONNX's version converter, which may fail."""
    import onnx

    model = _build("IPT")
    try:
        result = export_onnx(model, tmp_path / "ipt17.onnx", task="sr_x2", opset=17, dynamic_batch=False)
    except ExportError as exc:
        assert "could not be converted to opset 17 (it stays at 18)" in str(exc)
        assert not (tmp_path / "ipt17.onnx").exists()  # nothing half-right is left behind
    else:
        assert result.opset == 17
        assert {o.domain: o.version for o in onnx.load(result.path).opset_import}[""] == 17


SWIN_CONFIGS = {
    "SwinIR": {"type": "SwinIR", "upscale": 2, "img_size": 8, "window_size": 4, "depths": [2], "embed_dim": 12,
               "num_heads": [2], "mlp_ratio": 2.0, "upsampler": "pixelshuffle"},
    "HAT": {"type": "HAT", "img_size": 16, "window_size": 4, "embed_dim": 12, "depths": [2], "num_heads": [2],
            "compress_ratio": 3, "squeeze_factor": 4, "mlp_ratio": 2.0, "upscale": 2, "upsampler": "pixelshuffle"},
}


def test_tool_exports_swinir_with_dynamic_size_and_batch(tmp_path: Path) -> None:
    """Window attention: the shifted-window mask is computed in the graph for each input size (it
    used to be built from Python ints, which torch.export refused with dynamic height/width)."""
    if "SwinIR" not in ARCHS:
        pytest.skip("arch SwinIR is not registered (plugin not installed)")
    torch.manual_seed(0)
    model = ARCHS.build(dict(SWIN_CONFIGS["SwinIR"])).eval()
    ckpt = save_weights(model, tmp_path / "swinir.safetensors")  # the arch is detected from the tensors
    out = tmp_path / "swinir.onnx"
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), pytest.warns(UserWarning, match="img_range is not recorded"):
        rc = _tool().main(["--checkpoint", str(ckpt), "--out", str(out)])
    assert rc == 0, stdout.getvalue()
    assert "exported SwinIR" in stdout.getvalue()
    onnx_model = OnnxModel(out)
    assert onnx_model.session.get_inputs()[0].shape == ["batch", 3, "height", "width"]
    assert onnx_model.spec.size_multiple == 4 and onnx_model.spec.scale == 2
    # sizes whose window count differs from the traced one, a batch of 2, a non-square image
    assert check_onnx(model, out, [_rand(2, 3, 12, 20), _rand(1, 3, 36, 8, seed=4)]) <= ATOL


def test_hat_export_and_tiled_run_through_onnx(tmp_path: Path) -> None:
    """HAT (OCAB's unfold, channel attention, shifted windows): dynamic size; an odd-sized image is run
    through the graph by ``tiled_forward`` with the file's spec, as for any ONNX model."""
    if "HAT" not in ARCHS:
        pytest.skip("arch HAT is not registered (plugin not installed)")
    torch.manual_seed(0)
    model = ARCHS.build(dict(SWIN_CONFIGS["HAT"])).eval()
    result = export_onnx(model, tmp_path / "hat.onnx", optimize=False, dynamic_batch=False)
    assert result.input_shape == (1, 3, "height", "width") and result.metadata["irframe.arch"] == "HAT"
    onnx_model = OnnxModel(result.path)
    assert check_onnx(model, onnx_model, [_rand(1, 3, 20, 28), _rand(1, 3, 8, 44, seed=5)]) <= ATOL
    x = _rand(1, 3, 37, 30, seed=6)
    spec = onnx_model.spec
    got = tiled_forward(onnx_model, x, 16, 8, spec=spec)
    want = tiled_forward(model, x, 16, 8)
    assert got.shape == (1, 3, 74, 60)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
