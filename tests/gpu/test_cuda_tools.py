"""CUDA cases of the tools' device choices: the default device of test.py/infer.py ("cuda if
available"), fp16 and automatic tiles through ``tools/infer.py``, the leaderboard's device label,
FLOP counting and ONNX export of a model that lives on the GPU.

Marked ``cuda``: skipped where torch sees no GPU (tests/conftest.py), run by benchmarks/gpu/run.sh.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from irframe.registry import ARCHS

pytestmark = pytest.mark.cuda

TINY = {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1, "heads": [1, 2, 4, 8]}


def _checkpoint(tmp_path: Path) -> Path:
    from irframe.nn.weights import save_weights

    torch.manual_seed(0)
    model = ARCHS.build(TINY, path="test")
    return save_weights(model, tmp_path / "tiny.safetensors", {"arch": "Restormer", "config": json.dumps(TINY)})


def test_cuda_infer_tool_defaults_to_the_gpu_with_fp16_and_auto_tiles(tmp_path, capsys):
    import cv2

    from irframe.evaluate.cli import _default_device, infer_main

    assert _default_device() == "cuda"
    ckpt = _checkpoint(tmp_path)
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(src / "a.png"), (rng.random((70, 90, 3)) * 255).astype(np.uint8))
    out = tmp_path / "out"
    argv = ["--checkpoint", str(ckpt), "--input", str(src), "--output", str(out), "--tile", "auto",
            "--max-memory", "64MB", "--precision", "fp16", "--no-progress"]
    assert infer_main(argv) == 0
    err = capsys.readouterr().err
    assert "on cuda" in err  # the automatic tile choice names the device it planned for
    restored = cv2.imread(str(out / "a.png"))
    assert restored is not None and restored.shape == (70, 90, 3)


def test_cuda_device_label_and_flops_on_the_gpu():
    from irframe.evaluate.bench import _device_label
    from irframe.nn.stats import count_flops

    assert _device_label(torch.device("cuda")) == torch.cuda.get_device_name(0)
    torch.manual_seed(0)
    model = ARCHS.build(TINY, path="test")
    on_cpu = count_flops(model, (3, 64, 64))
    on_gpu = count_flops(model.cuda(), (3, 64, 64))
    assert on_gpu.flops == on_cpu.flops > 0


def test_cuda_onnx_export_of_a_gpu_model(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from irframe.nn.export import check_onnx, default_check_inputs, export_onnx

    torch.manual_seed(0)
    model = ARCHS.build(TINY, path="test").cuda().eval()
    export_onnx(model, tmp_path / "m.onnx", optimize=False, dynamic_batch=False)
    inputs = default_check_inputs(model)  # CPU tensors: onnxruntime reads them, the model gets GPU copies
    assert check_onnx(model, tmp_path / "m.onnx", inputs) < 1e-3  # TF32 / cuDNN on the GPU vs onnxruntime's CPU
