"""``train.compile`` / ``inference.compile``: torch.compile through accelerate and for inference.

Inductor (the backend the option uses) compiles C++ on the CPU: a cold compile of even a toy net
took 88 s on the project's 2-core machine, so these tests run the same wiring with dynamo's
``aot_eager`` backend (traced and run through AOT autograd, no code generation): ``torch.compile``
is wrapped to swap the backend and record each call. The inductor run itself is a CUDA test
(``tests/gpu/test_cuda_compile.py``) and a figure of ``benchmarks/gpu``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from irframe.train.build import run_training
from irframe.train.checkpoint_folders import latest_checkpoint


@pytest.fixture
def compile_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every ``torch.compile`` call's keyword arguments; the model is compiled with ``aot_eager``."""
    calls: list[dict[str, Any]] = []
    real = torch.compile

    def fake(model: Any = None, **kwargs: Any) -> Any:
        calls.append(dict(kwargs))
        kwargs["backend"] = "aot_eager"
        kwargs.pop("mode", None)  # aot_eager takes no mode
        kwargs.pop("options", None)  # nor inductor's options
        return real(model, **kwargs)

    monkeypatch.setattr(torch, "compile", fake)
    yield calls
    torch._dynamo.reset()


def test_train_compile_trains_like_eager_and_saves_plain_keys(toys, make_options, compile_calls):
    eager = run_training(make_options(name="eager", train={"total_iter": 2}, val=None))
    assert compile_calls == []  # default off
    compiled = run_training(make_options(name="compiled", train={"total_iter": 2, "compile": True}, val=None))
    assert len(compile_calls) == 1 and compile_calls[0]["backend"] == "inductor"
    if not torch.cuda.is_available():  # channels-last backward graphs on the CPU (training_compile_options)
        assert compile_calls[0]["options"] == {"force_layout_optimization": True}
    assert "torch.compile" in (compiled.experiment / "train.log").read_text()
    a, b = eager.last_checkpoint, compiled.last_checkpoint
    assert a is not None and b is not None
    for name in ("model.safetensors", "ema.safetensors"):
        wa, wb = load_file(str(a / name)), load_file(str(b / name))
        assert not any(k.startswith("_orig_mod.") for k in wb), sorted(wb)
        assert wa.keys() == wb.keys()
        for k in wa:  # same data, same steps: the compiled graph computes what eager does
            torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6, msg=f"{name}:{k}")


def test_compiled_checkpoint_loads_and_resumes(toys, make_options, compile_calls):
    first = run_training(make_options(name="c", train={"total_iter": 2, "compile": True}, val=None))
    last = latest_checkpoint(first.experiment / "checkpoints")
    assert last is not None
    resumed = run_training(make_options(name="c", train={"total_iter": 4, "compile": True}, val=None), resume="auto")
    assert resumed.iteration == 4 and resumed.experiment == first.experiment
    # an uncompiled evaluation model loads the compiled run's weights strictly
    from irframe.evaluate.models import load_for_eval

    loaded = load_for_eval(None, resumed.last_checkpoint)
    assert type(loaded.model).__name__ == "ToyNet"


def test_inference_compile_wraps_and_matches(toys, make_options, compile_calls, tmp_path):
    from irframe.evaluate.models import load_for_eval
    from irframe.nn.inference import restore
    from irframe.nn.weights import unwrap_model

    run = run_training(make_options(name="inf", train={"total_iter": 1}, val=None))
    plain = load_for_eval(None, run.last_checkpoint)
    compiled = load_for_eval(None, run.last_checkpoint, compile=True)
    assert len(compile_calls) == 1
    assert isinstance(compiled.model, torch._dynamo.eval_frame.OptimizedModule)
    assert unwrap_model(compiled.model).state_dict().keys() == plain.model.state_dict().keys()
    x = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(restore(compiled.model, x), restore(plain.model, x), rtol=1e-5, atol=1e-6)
    # tile: auto probes the uncompiled module (no compile per probe size)
    from irframe.nn.autotile import probe_memory

    probe_memory(compiled.model, probe_sides=[16, 32], repeats=1)
    assert len(compile_calls) == 1


def test_infer_tool_compile_flag(toys, make_options, compile_calls, tmp_path):
    import cv2
    import numpy as np

    from irframe.evaluate.cli import infer_main

    run = run_training(make_options(name="flag", train={"total_iter": 1}, val=None))
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), (np.random.default_rng(0).random((20, 24, 3)) * 255).astype(np.uint8))
    base = ["--checkpoint", str(run.last_checkpoint), "--input", str(src), "--device", "cpu", "--no-progress"]
    assert infer_main([*base, "--output", str(tmp_path / "plain")]) == 0
    assert compile_calls == []
    assert infer_main([*base, "--output", str(tmp_path / "compiled"), "--compile"]) == 0
    assert len(compile_calls) == 1
    a, b = cv2.imread(str(tmp_path / "plain" / "a.png")), cv2.imread(str(tmp_path / "compiled" / "a.png"))
    assert a is not None and b is not None and np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_inference_compile_option_is_checked():
    from irframe.options import validate_options

    opts = validate_options({"name": "x", "model": {"type": "Restormer"}, "inference": {"compile": True}}, source="t")
    assert opts.inference.compile is True
    from irframe.errors import OptionsError

    with pytest.raises(OptionsError, match="inference.compile"):
        validate_options(
            {"name": "x", "model": {"type": "Restormer"}, "inference": {"compile": "yes please"}}, source="t"
        )


@pytest.mark.skipif(
    os.environ.get("IRFRAME_TEST_INDUCTOR") != "1",
    reason="inductor compiles C++ on the CPU: 88 s cold for a toy net on the 2-core CI machine "
    "(set IRFRAME_TEST_INDUCTOR=1 to run; the CUDA suite runs inductor on the GPU)",
)
def test_train_compile_with_inductor_on_cpu(toys, make_options):
    result = run_training(make_options(name="inductor", train={"total_iter": 2, "compile": True}, val=None))
    assert result.last_checkpoint is not None
    weights = load_file(str(result.last_checkpoint / "model.safetensors"))
    assert not any(k.startswith("_orig_mod.") for k in weights)


def test_compiled_kernels_are_cached_under_irframe_cache(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """inference.compile / train.compile keep inductor's kernels in irframe's cache folder (a later
    process at the same size skips code generation), unless the user chose a folder."""
    import torch._inductor.config as inductor_config

    from irframe.nn.inference import use_compile_cache

    monkeypatch.setenv("IRFRAME_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setattr(inductor_config, "fx_graph_cache", False)
    assert use_compile_cache() == tmp_path / "cache" / "inductor"
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cache" / "inductor")
    assert inductor_config.fx_graph_cache is True
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert use_compile_cache() == tmp_path / "mine"  # the user's setting wins
