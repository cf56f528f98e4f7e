"""``--tile auto``, ``--max-memory`` and ``--precision`` in tools/infer.py, tools/test.py and validation."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from irframe.errors import OptionsError
from irframe.evaluate.cli import benchmark_main, infer_main
from irframe.nn.autotile import MemoryProbeError, measure_peak
from irframe.nn.inference import restore
from irframe.nn.spec import ModelSpec
from irframe.nn.weights import save_weights
from irframe.options import validate_options


class ConvToyNet(nn.Module):
    """3x3 conv -> ReLU -> 1x1 conv, plus the input: a receptive-field radius of 1 pixel.

    Wide hidden features make the per-pixel memory large (so a small budget forces tiling) while
    the compute stays small. With the default tile overlap (32, guard margin 8 > radius 1) tiled
    and whole-image outputs agree up to float rounding.
    """

    def __init__(self, channels: int = 3, hidden: int = 48) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, channels, 1)
        self.spec = ModelSpec(in_channels=channels, out_channels=channels, size_multiple=8)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():  # small weights: outputs stay near the input, inside [0, 1]
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


@pytest.fixture
def conv_ckpt(registry_sandbox, tmp_path: Path) -> Path:
    from irframe.registry import ARCHS

    ARCHS.register("ConvToyNet", ConvToyNet)
    path = tmp_path / "conv.safetensors"
    save_weights(ConvToyNet(), path, {"arch": "ConvToyNet", "config": {"type": "ConvToyNet"}})
    return path


@pytest.fixture
def cpu_probe_works() -> None:
    try:
        measure_peak(lambda: None, "cpu")
    except MemoryProbeError as exc:
        pytest.skip(str(exc))


def _image16(path: Path, size: tuple[int, int], png) -> Path:
    """A smooth 16-bit RGB image (16 bits: rounding differences stay visible in the comparison)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 60 % 65536, yy * 45 % 65536, (xx + yy) * 20 % 65536], -1)
    img = (0.2 + 0.6 * img / 65535) * 65535  # away from 0 and 1: no clipping hides a difference
    return png(path, img.astype(np.uint16))


def infer(*argv: str) -> int:
    return infer_main([*argv, "--device", "cpu", "--no-progress"])


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img.astype(np.float64) / 65535


def test_infer_tile_auto_tiles_under_a_small_budget(conv_ckpt, cpu_probe_works, png, tmp_path, capsys) -> None:
    src = _image16(tmp_path / "in" / "big.png", (640, 640), png)
    ckpt = str(conv_ckpt)
    assert infer("--checkpoint", ckpt, "--input", str(src), "--output", str(tmp_path / "whole")) == 0
    capsys.readouterr()
    assert infer("--checkpoint", ckpt, "--input", str(src), "--output", str(tmp_path / "auto"),
                 "--tile", "auto", "--max-memory", "64MB") == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("auto tile")]
    assert len(lines) == 1, lines  # one image: the choice is printed once
    assert "640x640" in lines[0] and "64.00 MiB budget" in lines[0]
    assert "whole image" not in lines[0] and " tile " in lines[0], lines[0]
    whole, tiled = _read(tmp_path / "whole" / "big.png"), _read(tmp_path / "auto" / "big.png")
    assert tiled.shape == whole.shape == (640, 640, 3)
    # radius-1 model, guard margin 8: identical up to float rounding (at most one 16-bit level)
    assert np.abs(tiled - whole).max() <= 1 / 65535 + 1e-12


def test_infer_tile_auto_with_room_runs_the_whole_image(conv_ckpt, cpu_probe_works, png, tmp_path, capsys) -> None:
    src = _image16(tmp_path / "in" / "small.png", (40, 48), png)
    assert infer("--checkpoint", str(conv_ckpt), "--input", str(src), "--output", str(tmp_path / "o"),
                 "--tile", "auto", "--max-memory", "2GB") == 0
    assert "whole image" in capsys.readouterr().err


def test_infer_precision_bf16_close_to_fp32_and_fp16_refused_on_cpu(conv_ckpt, png, tmp_path, capsys) -> None:
    src = _image16(tmp_path / "in" / "im.png", (48, 56), png)
    ckpt = str(conv_ckpt)
    assert infer("--checkpoint", ckpt, "--input", str(src), "--output", str(tmp_path / "fp32")) == 0
    assert (
        infer("--checkpoint", ckpt, "--input", str(src), "--output", str(tmp_path / "bf16"), "--precision", "bf16") == 0
    )
    raw = cv2.imread(str(tmp_path / "bf16" / "im.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16  # the output is float internally, saved at the input's 16 bits
    fp32, bf16 = _read(tmp_path / "fp32" / "im.png"), _read(tmp_path / "bf16" / "im.png")
    diff = np.abs(bf16 - fp32)
    assert 0 < diff.max() < 0.02  # bf16 did run (8-bit mantissa), and stays close
    capsys.readouterr()
    assert (
        infer("--checkpoint", ckpt, "--input", str(src), "--output", str(tmp_path / "fp16"), "--precision", "fp16") == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "fp16" in err and "CPU" in err
    assert not (tmp_path / "fp16" / "im.png").exists()


def test_infer_bad_tile_and_memory_arguments(conv_ckpt, png, tmp_path, capsys) -> None:
    src = _image16(tmp_path / "in" / "im.png", (16, 16), png)
    base = ["--checkpoint", str(conv_ckpt), "--input", str(src), "--output", str(tmp_path / "o")]
    with pytest.raises(SystemExit):
        infer(*base, "--tile", "big")
    assert "expected a positive tile size or 'auto'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        infer(*base, "--max-memory", "lots")
    assert "memory size 'lots'" in capsys.readouterr().err
    assert infer(*base, "--tile", "0") == 2  # a size: refused with one line naming the tile
    assert "tile 0" in capsys.readouterr().err


def _options(tmp_path: Path, paired_set: Path, inference: dict) -> Path:
    import yaml

    data = {
        "name": "conv",
        "model": {"type": "ConvToyNet"},
        "inference": inference,
        "test": {
            "datasets": {"Toy": {"type": "PairedImageDataset", "dataroot_gt": str(paired_set / "gt"),
                                 "dataroot_lq": str(paired_set / "lq")}},
            "metrics": [{"type": "PSNR"}],
            "report_images": 1,
        },
    }
    path = tmp_path / "conv.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_test_tool_tile_auto_and_bf16(conv_ckpt, cpu_probe_works, paired_set, tmp_path, capsys) -> None:
    opt = _options(tmp_path, paired_set, {})
    out = tmp_path / "results"
    argv = ["-opt", str(opt), "--checkpoint", str(conv_ckpt), "--out", str(out), "--device", "cpu", "--no-progress"]
    assert benchmark_main([*argv, "--set", "inference.tile=auto", "inference.precision=bf16"]) == 0
    assert "auto tile for 20x24" in capsys.readouterr().err
    board = json.loads((out / "leaderboard.json").read_text())
    row = board["models"]["conv"]
    assert row["inference"]["tile"] == "auto" and row["inference"]["precision"] == "bf16"
    assert len(row["datasets"]["Toy"]["images"]) == 3
    # the command line wins over the options
    assert (
        benchmark_main([*argv, "--set", "inference.precision=bf16", "--precision", "fp32", "--max-memory", "1GB"]) == 0
    )
    row = json.loads((out / "leaderboard.json").read_text())["models"]["conv"]
    assert row["inference"]["precision"] == "fp32" and row["inference"]["max_memory"] == 2**30


def test_test_tool_option_errors_are_one_line(conv_ckpt, paired_set, tmp_path, capsys) -> None:
    opt = _options(tmp_path, paired_set, {"max_memory": "lots"})
    out = tmp_path / "results"
    argv = ["-opt", str(opt), "--checkpoint", str(conv_ckpt), "--out", str(out), "--device", "cpu", "--no-progress"]
    assert benchmark_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "inference.max_memory" in err and "'lots'" in err
    assert benchmark_main([*argv, "--set", "inference.max_memory=null", "inference.precision=fp16"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "inference.precision" in err and "CPU" in err
    assert not (out / "leaderboard.json").exists()


def test_inference_options_schema() -> None:
    base = {"name": "x", "model": {"type": "ConvToyNet"}}
    inf = validate_options(
        {**base, "inference": {"tile": "Auto", "max_memory": "512MB", "precision": "bf16"}}
    ).inference
    assert (inf.tile, inf.max_memory, inf.max_memory_bytes, inf.precision) == ("auto", "512MB", 512 * 2**20, "bf16")
    assert validate_options(base).inference.max_memory_bytes is None
    for bad, key in (({"tile": 0}, "inference.tile"), ({"tile": "big"}, "inference.tile"),
                     ({"max_memory": -1}, "inference.max_memory"), ({"precision": "int8"}, "inference.precision")):
        with pytest.raises(OptionsError, match=key):
            validate_options({**base, "inference": bad})


def test_validation_during_training_uses_tile_auto_and_precision(conv_ckpt, cpu_probe_works, tmp_path) -> None:
    from irframe.train.build import build_validator

    gen = torch.Generator().manual_seed(1)
    gt = torch.rand(3, 32, 40, generator=gen)
    dataset = [{"lq": gt, "gt": gt, "name": "v0"}]
    opts = validate_options({
        "name": "val", "model": {"type": "ConvToyNet"},
        "datasets": {"val": {"type": "PairedImageDataset", "dataroot_gt": "unused", "dataroot_lq": "unused"}},
        "val": {"metrics": [{"type": "PSNR"}]},
        "inference": {"tile": "auto", "max_memory": "1GB", "precision": "bf16"},
    })
    accelerator = SimpleNamespace(device=torch.device("cpu"), process_index=0, num_processes=1, is_main_process=True)
    exp = SimpleNamespace(visualization=tmp_path / "vis")
    validator = build_validator(opts, accelerator, exp, {"val": dataset})
    assert validator is not None
    model = ConvToyNet()
    score = validator.run(model, iteration=1).scores["val"]["PSNR"]
    fp32 = float(validator.metrics[0](restore(model, gt[None]), gt[None])[0])
    assert score != fp32 and score == pytest.approx(fp32, abs=0.5)  # bf16 ran, and is close
    # fp16 on the CPU is refused when the validator is built, not at the first validation
    opts.inference.precision = "fp16"
    with pytest.raises(OptionsError, match="inference.precision"):
        build_validator(opts, accelerator, exp, {"val": dataset})
