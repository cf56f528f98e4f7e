"""tools/test.py with a checkpoint and no ``model:`` section (arch detected), and the choice between
``params`` and ``params_ema`` (``--param-key``, ``test.param_key``) in tools/test.py and tools/infer.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from irframe.data.io import img2tensor, imread
from irframe.errors import OptionsError
from irframe.evaluate.cli import benchmark_main, infer_main
from irframe.nn.inference import restore
from irframe.options import check_components, validate_options
from irframe.registry import ARCHS, METRICS

TINY = {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "heads": [1, 2, 4, 8], "num_refinement_blocks": 1}
PSNR_ID = "PSNR-RGB crop0 8bit"


def tiny(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = ARCHS.build(TINY).eval()
    with torch.no_grad():  # a visible, seed-dependent change of the input (random init alone is tiny)
        model.output.weight.normal_(0, 0.05)
    return model


@pytest.fixture
def both(tmp_path: Path) -> tuple[torch.nn.Module, torch.nn.Module, Path]:
    """A BasicSR-style file holding different ``params`` and ``params_ema`` weights."""
    plain, ema = tiny(0), tiny(1)
    path = tmp_path / "net_g.pth"
    torch.save({"params": plain.state_dict(), "params_ema": ema.state_dict()}, path)
    return plain, ema, path


def expected_psnr(model: torch.nn.Module, root: Path) -> float:
    psnr = METRICS.build({"type": "PSNR"})
    values = []
    for i in range(3):
        lq = img2tensor(imread(root / "lq" / f"im{i}.png"))[None]
        gt = img2tensor(imread(root / "gt" / f"im{i}.png"))[None]
        values.append(float(psnr(restore(model, lq), gt)[0]))
    return float(np.mean(values))


def model_less_options(tmp_path: Path, root: Path, **test) -> Path:
    path = tmp_path / "nomodel.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "detected",
                "test": {
                    "datasets": {
                        "Toy": {
                            "type": "PairedImageDataset",
                            "dataroot_gt": str(root / "gt"),
                            "dataroot_lq": str(root / "lq"),
                        }
                    },
                    "metrics": [{"type": "PSNR"}],
                    **test,
                },
            }
        )
    )
    return path


def bench(out: Path, *argv: str) -> int:
    return benchmark_main([*argv, "--out", str(out), "--device", "cpu", "--no-progress"])


def score(out: Path) -> tuple[str, float]:
    data = json.loads((out / "leaderboard.json").read_text())
    run = data["models"]["detected"]
    return run["arch"], run["datasets"]["Toy"]["scores"][PSNR_ID]


def test_test_py_detects_the_arch_without_a_model_section(both, paired_set: Path, tmp_path: Path, capsys) -> None:
    plain, ema, ckpt = both
    opt = model_less_options(tmp_path, paired_set)
    assert bench(tmp_path / "r1", "-opt", str(opt), "--checkpoint", str(ckpt)) == 0
    arch, value = score(tmp_path / "r1")
    assert arch == "Restormer"
    assert value == pytest.approx(expected_psnr(ema, paired_set), abs=1e-9)  # params_ema by default
    assert value != pytest.approx(expected_psnr(plain, paired_set), abs=1e-3)
    err = capsys.readouterr().err
    assert "holds both 'params' and 'params_ema'; using 'params_ema' (--param-key params for the other)" in err

    assert bench(tmp_path / "r2", "-opt", str(opt), "--checkpoint", str(ckpt), "--param-key", "params") == 0
    assert score(tmp_path / "r2")[1] == pytest.approx(expected_psnr(plain, paired_set), abs=1e-9)
    assert "using 'params' (--param-key params_ema for the other)" in capsys.readouterr().err

    # the option file's test.param_key, and test.checkpoint instead of --checkpoint
    opt2 = model_less_options(tmp_path, paired_set, param_key="params", checkpoint=str(ckpt))
    assert bench(tmp_path / "r3", "-opt", str(opt2)) == 0
    assert score(tmp_path / "r3")[1] == pytest.approx(expected_psnr(plain, paired_set), abs=1e-9)


def test_model_less_options_need_a_checkpoint(paired_set: Path, tmp_path: Path, capsys) -> None:
    opt = model_less_options(tmp_path, paired_set)
    assert bench(tmp_path / "r", "-opt", str(opt)) == 2
    err = capsys.readouterr().err
    assert f"{opt}: no 'model:' section and no checkpoint" in err and "--checkpoint" in err
    assert not (tmp_path / "r").exists()


def test_training_still_requires_a_model_section(tmp_path: Path) -> None:
    opts = validate_options({
        "name": "x",
        "train": {"total_iter": 1, "optim": {"type": "Adam", "lr": 1e-3}, "losses": [{"type": "L1Loss"}]},
    }, source="train.yml")
    with pytest.raises(
        OptionsError, match=r"train.yml.*model: missing required key \(training builds the model from it\)"
    ):
        check_components(opts)


def test_test_py_takes_the_model_from_the_checkpoint_with_set_model_null(
    both, paired_set: Path, tmp_path: Path, capsys
) -> None:
    # a training file whose model: does not fit the checkpoint (dim 16 vs 8): scored with the
    # checkpoint's own config by --set model=null; training the same file still needs model:
    _plain, ema, ckpt = both
    data = yaml.safe_load(model_less_options(tmp_path, paired_set).read_text())
    data["model"] = {**TINY, "dim": 16}
    data["train"] = {"total_iter": 1, "optim": {"type": "Adam", "lr": 1e-3}, "losses": [{"type": "L1Loss"}]}
    opt = tmp_path / "train_and_test.yml"
    opt.write_text(yaml.safe_dump(data))
    assert bench(tmp_path / "bad", "-opt", str(opt), "--checkpoint", str(ckpt)) == 2
    assert "does not fit the model of" in capsys.readouterr().err
    assert bench(tmp_path / "r", "-opt", str(opt), "--checkpoint", str(ckpt), "--set", "model=null") == 0
    assert score(tmp_path / "r") == ("Restormer", pytest.approx(expected_psnr(ema, paired_set), abs=1e-9))
    from irframe.options import TRAIN_PATHS, load_options

    with pytest.raises(OptionsError, match=r"model: missing required key \(training builds the model from it\)"):
        load_options(opt, ["model=null"], check=True, paths=TRAIN_PATHS)


def test_infer_param_key(both, paired_set: Path, tmp_path: Path, capsys) -> None:
    plain, ema, ckpt = both
    src = paired_set / "lq" / "im0.png"
    x = img2tensor(imread(src))[None]

    def saved(out: Path) -> torch.Tensor:
        return img2tensor(imread(out / "im0.png"))

    def as_saved(model: torch.nn.Module) -> torch.Tensor:
        return torch.round(restore(model, x)[0].clamp(0, 1) * 255) / 255

    base = ["--checkpoint", str(ckpt), "--input", str(src), "--device", "cpu", "--no-progress"]
    assert infer_main([*base, "--output", str(tmp_path / "a")]) == 0
    torch.testing.assert_close(saved(tmp_path / "a"), as_saved(ema), rtol=0, atol=1e-6)
    assert "using 'params_ema'" in capsys.readouterr().err
    assert infer_main([*base, "--output", str(tmp_path / "b"), "--param-key", "params"]) == 0
    torch.testing.assert_close(saved(tmp_path / "b"), as_saved(plain), rtol=0, atol=1e-6)
    assert "using 'params'" in capsys.readouterr().err

    only = tmp_path / "only_params.pth"
    torch.save({"params": plain.state_dict()}, only)
    assert (
        infer_main([*base[:1], str(only), *base[2:], "--output", str(tmp_path / "c"), "--param-key", "params_ema"]) == 2
    )
    assert "no key 'params_ema'; top-level keys: params" in capsys.readouterr().err
    assert infer_main([*base[:1], str(only), *base[2:], "--output", str(tmp_path / "d")]) == 0
    assert "params_ema" not in capsys.readouterr().err  # one set of weights: nothing to choose, nothing said


def test_basicsr_param_key_picks_the_file_of_a_checkpoint_folder(tmp_path):
    """SwinIR's and HAT's test files say param_key_g: params_ema; on one of our checkpoint folders that
    means ema.safetensors (and params means model.safetensors), not a wrapper inside the file."""
    import json

    import torch

    from irframe.evaluate.models import load_for_eval
    from irframe.nn.weights import save_weights
    from irframe.registry import ARCHS

    cfg = {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1}
    folder = tmp_path / "iter_000004"
    folder.mkdir()
    meta = {"arch": "Restormer", "config": json.dumps(cfg)}
    raw, ema = ARCHS.build(cfg), ARCHS.build(cfg)
    with torch.no_grad():
        ema.output.weight.add_(1.0)
    save_weights(raw, folder / "model.safetensors", meta)
    save_weights(ema, folder / "ema.safetensors", meta)
    for key, expected in (("params_ema", ema), ("params", raw)):
        loaded = load_for_eval(cfg, folder, key=key).model
        assert torch.equal(loaded.output.weight, expected.output.weight), key


def test_infer_and_test_keep_freed_memory(both, paired_set: Path, tmp_path: Path, monkeypatch) -> None:
    """tools/infer.py and tools/test.py set glibc to keep freed memory (irframe.heap), once per run."""
    import irframe.evaluate.cli as cli

    calls: list[str] = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append("kept") or "kept")
    _plain, _ema, ckpt = both
    src = paired_set / "lq" / "im0.png"
    argv = ["--checkpoint", str(ckpt), "--input", str(src), "--device", "cpu", "--no-progress"]
    assert infer_main([*argv, "--output", str(tmp_path / "a")]) == 0
    assert calls == ["kept"]
    assert bench(tmp_path / "board", "-opt", str(tmp_path / "missing.yml")) == 2  # set before the options are read
    assert calls == ["kept", "kept"]
