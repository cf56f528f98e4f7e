"""The onnxruntime backend (``irframe.nn.ort``, ``--backend onnxruntime``) and ``tools/infer.py --fast``.

A tiny conv net (two 3x3 convolutions, size multiple 4) is exported once per module into a
module-wide cache folder; tests that need a fresh export count the calls of the export function.
Tolerance as in ``test_export.py``: ``max |onnxruntime - torch| <= 1e-4`` in [0,1] units.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn

from irframe.nn.inference import restore
from irframe.nn.spec import ModelSpec
from irframe.nn.weights import save_weights

pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")
pytest.importorskip("onnxscript", reason="the [export] extra is not installed")

import irframe.nn.ort as ort  # after the skips
from irframe.evaluate.cli import infer_main
from irframe.nn.export import ExportError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ATOL = 1e-4
CONFIG = {"type": "OrtTinyNet", "width": 6}


class OrtTinyNet(nn.Module):
    """Two 3x3 convolutions around a 2x2 average pool (hence size multiple 4), plus the input."""

    def __init__(self, width: int = 6, tasks: list[str] | None = None) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.GELU(), nn.Conv2d(width, 3, 3, padding=1))
        self.tasks = list(tasks or [])
        self.spec = ModelSpec(size_multiple=4, tile_overlap=8, tasks=tuple(self.tasks))

    def forward(self, x: torch.Tensor, task: str | None = None) -> torch.Tensor:
        pooled = nn.functional.avg_pool2d(x, 2)
        up = nn.functional.interpolate(pooled, scale_factor=2.0, mode="nearest")
        y = x + 0.1 * self.body(x) + 0.05 * up
        if task is not None:
            y = y + 0.01 * (self.tasks.index(task) + 1)
        return y


def _model(seed: int = 0, **kw) -> OrtTinyNet:
    torch.manual_seed(seed)
    return OrtTinyNet(**kw).eval()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx_cache")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_weights(_model(), path, {"arch": "OrtTinyNet", "config": CONFIG})
    return path


@pytest.fixture
def exports(monkeypatch) -> list[Path]:
    """Counts the exports the backend runs (the real export still runs)."""
    calls: list[Path] = []
    real = ort.export_onnx

    def counted(model, path, **kw):
        calls.append(Path(path))
        return real(model, path, **kw)

    monkeypatch.setattr(ort, "export_onnx", counted)
    return calls


def _rand(*shape: int, seed: int = 3) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_equal_to_torch_through_restore_and_cache_hit(ckpt: Path, cache: Path, exports: list[Path]) -> None:
    model = _model()
    first = ort.onnxruntime_model(model, checkpoint=ckpt, config=CONFIG, folder=cache)
    assert len(exports) == 1 and first.path.parent == cache
    assert first.spec == model.spec  # restore() sees the torch model's spec
    x = _rand(1, 3, 37, 45)  # odd size: padded to the multiple of 4, cropped back
    for kw in ({}, {"tile": 16, "tile_overlap": 8}, {"self_ensemble": True}):
        want = restore(model, x, **kw)
        got = restore(first, x, **kw)
        assert got.shape == want.shape == x.shape, kw
        assert (got - want).abs().max().item() <= ATOL, kw
    notes: list[str] = []
    second = ort.onnxruntime_model(_model(), checkpoint=ckpt, config=CONFIG, folder=cache, log=notes.append)
    assert len(exports) == 1  # the cached graph: no second export
    assert second.path == first.path and "from the cache" in notes[0]


def test_changed_checkpoint_or_config_exports_again(ckpt: Path, cache: Path, exports: list[Path], tmp_path) -> None:
    other = tmp_path / "other.safetensors"
    save_weights(_model(seed=1), other, {"arch": "OrtTinyNet", "config": CONFIG})
    a = ort.cache_key(_model(), ckpt, CONFIG)
    b = ort.cache_key(_model(seed=1), other, CONFIG)
    assert a != b
    assert ort.cache_key(_model(), ckpt, {**CONFIG, "width": 6, "x": 1}) != a
    assert ort.cache_key(_model(), ckpt, CONFIG, opset=17) != a
    model = _model(seed=1)
    run = ort.onnxruntime_model(model, checkpoint=other, config=CONFIG, folder=cache)
    assert len(exports) == 1 and exports[0].name.endswith(f"{b[:20]}.onnx")
    x = _rand(1, 3, 24, 28)
    assert (restore(run, x) - restore(model, x)).abs().max().item() <= ATOL


def test_corrupt_cache_file_is_exported_again(ckpt: Path, cache: Path, exports: list[Path]) -> None:
    model = _model()
    path = ort.onnxruntime_model(model, checkpoint=ckpt, config=CONFIG, folder=cache).path
    path.write_bytes(b"not an onnx file")
    notes: list[str] = []
    run = ort.onnxruntime_model(model, checkpoint=ckpt, config=CONFIG, folder=cache, log=notes.append)
    assert exports == [path]  # the first call was a cache hit, the second re-exported
    assert any("unreadable" in n and "exporting it again" in n for n in notes)
    x = _rand(1, 3, 16, 20)
    assert (restore(run, x) - restore(model, x)).abs().max().item() <= ATOL


def test_multi_task_model_needs_its_task(cache: Path) -> None:
    model = _model(tasks=["a", "b"])
    with pytest.raises(ExportError, match="several tasks .*--task NAME, tools/test.py --set inference.task=NAME"):
        ort.onnxruntime_model(model, checkpoint=None, config={"type": "OrtTinyNet"}, folder=cache)
    run = ort.onnxruntime_model(model, checkpoint=None, config={"type": "OrtTinyNet"}, task="b", folder=cache)
    x = _rand(1, 3, 16, 16)
    assert (restore(run, x, task="b") - restore(model, x, task="b")).abs().max().item() <= ATOL
    with pytest.raises(ValueError, match="exported for task 'b', not 'a'"):
        restore(run, x, task="a")


def test_missing_onnxruntime_names_the_extra(monkeypatch, cache: Path) -> None:
    def missing(module: str):
        raise ort.ExportDependencyError(f"no {module}")

    monkeypatch.setattr(ort, "_require", missing)
    with pytest.raises(ExportError, match=r"needs the optional package 'onnxruntime'.*\[export\] extra"):
        ort.onnxruntime_model(_model(), checkpoint=None, config=CONFIG, folder=cache)


@pytest.fixture
def probe(monkeypatch):
    """Stubs the capability probe and the timer: ``probe(flags, ort, {candidate: seconds})``."""

    def setup(flags: set[str], has_ort: bool, seconds: dict[str, float]) -> list[str]:
        timed: list[str] = []
        monkeypatch.setattr(ort, "cpu_bf16_flags", lambda: set(flags))
        monkeypatch.setattr(ort, "onnxruntime_available", lambda: has_ort)

        def fake_time(name: str, run) -> float:
            timed.append(name)
            return seconds[name]

        monkeypatch.setattr(ort, "_time_candidate", fake_time)
        return timed

    return setup


def test_fast_choice_is_the_fastest_allowed_candidate(ckpt: Path, cache: Path, probe) -> None:
    model = _model()
    kw = {"checkpoint": ckpt, "config": CONFIG, "folder": cache}
    timed = probe({"avx512_bf16"}, True, {"torch fp32": 1.0, "onnxruntime fp32": 0.8, "torch bf16": 0.5})
    choice = ort.choose_fast(model, allow_bf16=True, **kw)
    assert (choice.backend, choice.precision) == ("torch", "bf16") and choice.model is model
    assert "bf16 0.50x" in choice.line() and "-0.003 dB" in choice.line()  # the PSNR cost is stated
    assert set(timed) == {"torch fp32", "onnxruntime fp32", "torch bf16"}
    # without --allow-bf16, bf16 is never tried, even where it would win
    timed = probe({"amx_bf16"}, True, {"torch fp32": 1.0, "onnxruntime fp32": 0.8})
    choice = ort.choose_fast(model, **kw)
    assert choice.backend == "onnxruntime" and isinstance(choice.model, ort.OrtModule)
    assert "torch bf16" not in timed and "add --allow-bf16" in choice.line()
    # onnxruntime slower (as for NAFNet in bench_fast): torch stays
    probe(set(), True, {"torch fp32": 1.0, "onnxruntime fp32": 1.4})
    choice = ort.choose_fast(model, allow_bf16=True, **kw)
    assert (choice.backend, choice.precision) == ("torch", "fp32") and "no avx512_bf16/amx_bf16" in choice.line()
    # nothing to compare: no timing at all
    timed = probe(set(), False, {})
    choice = ort.choose_fast(model, **kw)
    assert choice.backend == "torch" and not timed and "onnxruntime not installed" in choice.line()


# -- tools/infer.py ----------------------------------------------------------------------------
@pytest.fixture
def tiny_arch(registry_sandbox):
    from irframe.registry import ARCHS

    ARCHS.register("OrtTinyNet", OrtTinyNet)
    return OrtTinyNet


@pytest.fixture
def image(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "a.png"), rng.integers(0, 255, (21, 30, 3), dtype=np.uint8))
    return folder


def _infer(*argv: str) -> int:
    return infer_main([*argv, "--device", "cpu", "--no-progress"])


def test_cli_backend_onnxruntime_matches_torch(
    tiny_arch, ckpt: Path, cache: Path, image: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("IRFRAME_CACHE", str(cache.parent / "root"))
    base = ["--checkpoint", str(ckpt), "--input", str(image)]
    assert _infer(*base, "--output", str(tmp_path / "torch")) == 0
    assert "backend: torch" in capsys.readouterr().err
    assert _infer(*base, "--output", str(tmp_path / "ort"), "--backend", "onnxruntime", "--tile", "16") == 0
    err = capsys.readouterr().err
    assert "backend: onnxruntime, exported OrtTinyNet" in err
    assert list((cache.parent / "root" / "onnx").glob("OrtTinyNet-*.onnx"))
    a = cv2.imread(str(tmp_path / "torch" / "a.png")).astype(int)
    b = cv2.imread(str(tmp_path / "ort" / "a.png")).astype(int)
    assert np.abs(a - b).max() <= 1  # tiled vs whole, 8-bit rounding
    assert _infer(*base, "--output", str(tmp_path / "ort2"), "--backend", "onnxruntime") == 0
    assert "graph from the cache" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--backend", "onnxruntime", "--precision", "bf16"], "backend onnxruntime with precision bf16: refused"),
        (["--backend", "onnxruntime", "--compile"], "backend onnxruntime with compile: refused"),
        (["--fast", "--backend", "torch"], "--fast chooses the backend and precision itself: drop --backend"),
        (["--fast", "--precision", "bf16"], "drop --precision"),
        (["--allow-bf16"], "--allow-bf16 only applies with --fast"),
    ],
)
def test_cli_bad_combinations_one_line(
    tiny_arch, ckpt: Path, image: Path, tmp_path: Path, capsys, flags: list[str], message: str
) -> None:
    code = _infer("--checkpoint", str(ckpt), "--input", str(image), "--output", str(tmp_path / "o"), *flags)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_cli_fast_picks_with_stubbed_probe(
    tiny_arch, ckpt: Path, cache: Path, image: Path, tmp_path: Path, monkeypatch, probe, capsys
) -> None:
    monkeypatch.setenv("IRFRAME_CACHE", str(cache.parent / "root"))
    base = ["--checkpoint", str(ckpt), "--input", str(image)]
    probe({"avx512_bf16"}, True, {"torch fp32": 1.0, "onnxruntime fp32": 0.9, "torch bf16": 0.5})
    assert _infer(*base, "--output", str(tmp_path / "f1"), "--fast", "--allow-bf16") == 0
    err = capsys.readouterr().err
    assert "--fast: torch bf16 (fastest" in err and "backend: torch bf16" in err
    probe({"avx512_bf16"}, True, {"torch fp32": 1.0, "onnxruntime fp32": 0.9})
    assert _infer(*base, "--output", str(tmp_path / "f2"), "--fast") == 0
    err = capsys.readouterr().err
    assert "--fast: onnxruntime (fastest" in err and "add --allow-bf16" in err and "backend: torch" not in err
    a = cv2.imread(str(tmp_path / "f1" / "a.png")).astype(int)
    b = cv2.imread(str(tmp_path / "f2" / "a.png")).astype(int)
    assert 0 < np.abs(a - b).max() <= 3  # bf16 did run, and stays close
    probe(set(), False, {})
    assert _infer(*base, "--output", str(tmp_path / "f3"), "--fast", "--allow-bf16") == 0
    err = capsys.readouterr().err
    assert "--fast: torch (the only candidate; onnxruntime not installed" in err and "backend: torch fp32" in err


# -- tools/test.py -----------------------------------------------------------------------------
def test_test_tool_backend_onnxruntime_same_scores(
    tiny_arch, ckpt: Path, cache: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    import json

    import yaml

    from irframe.evaluate.cli import benchmark_main

    monkeypatch.setenv("IRFRAME_CACHE", str(cache.parent / "root"))
    rng = np.random.default_rng(1)
    for i in range(2):
        gt = rng.integers(0, 255, (18, 22, 3), dtype=np.uint8)
        lq = np.clip(gt + rng.normal(0, 10, gt.shape), 0, 255).astype(np.uint8)
        for kind, img in (("gt", gt), ("lq", lq)):
            (tmp_path / kind).mkdir(exist_ok=True)
            cv2.imwrite(str(tmp_path / kind / f"im{i}.png"), img)
    opt = tmp_path / "tiny.yml"
    opt.write_text(yaml.safe_dump({
        "name": "tiny", "model": CONFIG,
        "test": {"datasets": {"Toy": {"type": "PairedImageDataset", "dataroot_gt": str(tmp_path / "gt"),
                                      "dataroot_lq": str(tmp_path / "lq")}},
                 "metrics": [{"type": "PSNR"}], "report_images": 0, "save_images": False},
    }))
    scores = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / backend
        argv = ["-opt", str(opt), "--checkpoint", str(ckpt), "--out", str(out), "--no-progress", "--backend", backend]
        assert benchmark_main(argv) == 0
        assert f"backend: {backend}" in capsys.readouterr().err
        row = json.loads((out / "leaderboard.json").read_text())["models"]["tiny"]
        assert row["inference"]["backend"] == backend and row["params"] > 0
        scores[backend] = next(iter(row["datasets"]["Toy"]["scores"].values()))
    assert scores["torch"] == pytest.approx(scores["onnxruntime"], abs=1e-3)


class _Unexportable(OrtTinyNet):
    """Branches on a tensor's value: torch.export cannot trace it with dynamic sizes."""

    def forward(self, x: torch.Tensor, task: str | None = None) -> torch.Tensor:
        if x.mean() > 0.5:
            return x + 0.1 * self.body(x)
        return x


def test_unexportable_arch_is_one_clear_line_and_fast_falls_back(cache: Path, probe) -> None:
    torch.manual_seed(0)
    model = _Unexportable().eval()
    cfg = {"type": "Unexportable"}
    with pytest.raises(ExportError) as info:
        ort.onnxruntime_model(model, checkpoint=None, config=cfg, folder=cache)
    message = str(info.value)
    assert "\n" not in message and message.startswith("--backend onnxruntime: Unexportable cannot be exported")
    probe(set(), True, {"torch fp32": 1.0})
    choice = ort.choose_fast(model, checkpoint=None, config=cfg, folder=cache)
    assert choice.backend == "torch" and "onnxruntime skipped" in choice.line()


@pytest.mark.slow
def test_ipt_one_graph_per_task_tiled_like_torch(cache: Path) -> None:
    """IPT: multi-task and fixed-size (48x48): the graph holds one task, restore tiles it as torch."""
    from irframe.registry import ARCHS

    if "IPT" not in ARCHS:
        pytest.skip("arch IPT is not registered (plugin not installed)")
    cfg = {"type": "IPT", "n_feats": 16, "patch_size": 48, "patch_dim": 3, "num_heads": 2, "num_layers": 1,
           "num_queries": 1, "scale": [2, 1], "rgb_range": 255}
    torch.manual_seed(0)
    model = ARCHS.build(cfg, path="test.IPT").eval()
    with pytest.raises(ExportError, match="several tasks .*--task NAME, tools/test.py --set inference.task=NAME"):
        ort.onnxruntime_model(model, checkpoint=None, config=cfg, folder=cache)
    run = ort.onnxruntime_model(model, checkpoint=None, config=cfg, task="sr2", folder=cache)  # IPT's spelling
    assert run.task == "sr_x2" and run.spec.scale == 2 and run.spec.fixed_size == 48
    x = _rand(1, 3, 61, 50)
    want, got = restore(model, x, task="sr2"), restore(run, x, task="sr2")
    assert got.shape == want.shape == (1, 3, 122, 100)
    assert (got - want).abs().max().item() <= ATOL
    with pytest.raises(ValueError, match="exported for task 'sr_x2', not 'denoise30'"):
        restore(run, x, task="denoise30")
