"""Everything a training run can check before its first iteration is checked then.

Each case runs the real ``tools/train.py`` on a tiny Restormer (input size multiple 8) with one
bad value (all cases at once, to keep the wall time low) and expects exactly one ``error:`` line
naming the key (or the file), exit status 2, and no experiment folder. Before, these failed with
a traceback: at the first step (``gt_size``, ``seed``, ``betas``, ``enlarge_ratio`` after trying to
allocate 36 TiB), or only at the first validation, after training and without the checkpoint due
then (``inference.tile``, a validation pair whose sizes do not fit the model's scale).

Also in-process: a validation that fails anyway (nothing checkable predicted it) still leaves the
checkpoint due at that iteration; a run refused after its folder was made removes that folder
(the fixed rerun gets the name, not ``name_1``); ``--threads 3000`` is capped and says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from irframe.errors import OptionsError
from irframe.options import validate_options
from irframe.registry import ARCHS
from irframe.train import validation
from irframe.train.build import run_training

TINY_RESTORMER = {"type": "Restormer", "dim": 4, "num_blocks": [1, 1, 1, 1], "heads": [1, 1, 1, 1],
                  "num_refinement_blocks": 1}
ROOT = Path(__file__).resolve().parents[2]

# case -> (--set overrides, words the error line must contain)
CASES: dict[str, tuple[list[str], list[str]]] = {
    "inference_tile_3": (["inference.tile=3"], ["inference.tile", "tile 3", "size_multiple=8"]),
    "val_scale_mismatch": (
        ["datasets.val={type: PairedImageDataset, dataroot_gt: VAL_GT, dataroot_lq: VAL_LQ_HALF, scale: 2}"],
        ["datasets.val", "the GT is 32x32", "scale 1", "validation would fail"],
    ),
    "val_pair_mismatch": (
        ["datasets.val={type: PairedImageDataset, dataroot_gt: VAL_GT, dataroot_lq: VAL_LQ_ODD}"],
        ["is 32x32 but", "24x24"],
    ),
    "gt_size_12": (["datasets.train.gt_size=12"], ["datasets.train.gt_size", "multiples of 8"]),
    "gt_size_1": (["datasets.train.gt_size=1"], ["datasets.train.gt_size", "multiples of 8"]),
    "seed_negative": (["seed=-1"], ["seed: -1", "out of range"]),
    "seed_huge": ([f"seed={2**70}"], [f"seed: {2**70}", "out of range"]),
    "adam_betas": (["train.optim={type: Adam, lr: 1.0e-3, betas: [2, 3]}"], ["train.optim", "beta"]),
    "weight_decay": (["train.optim={type: Adam, lr: 1.0e-3, weight_decay: -1}"], ["train.optim", "weight_decay"]),
    "enlarge_ratio": (["datasets.train.enlarge_ratio=1e12"], ["datasets.train.enlarge_ratio", "at most"]),
    "long_name": ([f"name={'n' * 300}"], ["name:", "300 bytes", "at most 200"]),
    "root_is_a_file": (["path.experiments_root=A_FILE"], ["path.experiments_root", "is a file"]),
    "root_under_a_file": (["path.experiments_root=A_FILE/sub"], ["path.experiments_root", "is a file"]),
    "root_cannot_be_created": (["path.experiments_root=/proc/irframe/experiments"],
                               ["path.experiments_root", "/proc/irframe/experiments"]),
}


def good_options(root: Path, data: Path) -> dict:
    return {
        "name": "late",
        "model": TINY_RESTORMER,
        "datasets": {
            "train": {"type": "OnlineDegradationDataset", "dataroot_gt": str(data / "train"),
                      "degradation": {"type": "GaussianNoise", "sigma": 25}, "gt_size": 16, "batch_size": 2},
            "val": {"type": "OnlineDegradationDataset", "dataroot_gt": str(data / "gt"),
                    "degradation": {"type": "GaussianNoise", "sigma": 25}, "seed": 0},
        },
        "train": {"total_iter": 2, "optim": {"type": "AdamW", "lr": 1e-3}, "losses": [{"type": "L1Loss"}]},
        "val": {"freq": 2, "metrics": [{"type": "PSNR"}]},
        "logger": {"tensorboard": False, "progress_bar": False},
        "path": {"experiments_root": str(root)},
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from irframe.data.io import imwrite
    from irframe.train.synthetic import write_textured_images

    base = tmp_path_factory.mktemp("late_data")
    write_textured_images(base / "train", 2, 32, seed=0)
    write_textured_images(base / "gt", 2, 32, seed=1)
    rng = np.random.default_rng(0)
    for gt in sorted((base / "gt").iterdir()):  # LQ files of the same names, of the wrong sizes
        imwrite(base / "lq_half" / gt.name, rng.random((16, 16, 3), dtype=np.float32))
        imwrite(base / "lq_odd" / gt.name, rng.random((24, 24, 3), dtype=np.float32))
    (base / "a_file").write_text("not a folder")
    return base


def substitute(text: str, data: Path) -> str:
    return (text.replace("VAL_GT", str(data / "gt")).replace("VAL_LQ_HALF", str(data / "lq_half"))
            .replace("VAL_LQ_ODD", str(data / "lq_odd")).replace("A_FILE", str(data / "a_file")))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, data) -> dict[str, tuple[subprocess.CompletedProcess[str], Path]]:
    """Run tools/train.py once per case, all concurrently."""
    if "Restormer" not in ARCHS:
        pytest.skip("the Restormer plugin is not installed")
    base = tmp_path_factory.mktemp("late_checks")
    procs = {}
    for name, (overrides, _words) in CASES.items():
        folder = base / name
        folder.mkdir()
        (folder / "case.yml").write_text(yaml.safe_dump(good_options(folder / "experiments", data)))
        cmd = [sys.executable, str(ROOT / "tools" / "train.py"), "-opt", str(folder / "case.yml"), "--threads", "1",
               "--set", *(substitute(o, data) for o in overrides)]
        procs[name] = (
            subprocess.Popen(cmd, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"}),
            folder,
        )
    results = {}
    for name, (proc, folder) in procs.items():
        out, err = proc.communicate(timeout=300)
        results[name] = (subprocess.CompletedProcess(proc.args, proc.returncode, out, err), folder)
    return results


@pytest.mark.parametrize("case", list(CASES))
def test_a_value_that_would_fail_later_is_one_line_before_training(case: str, outcomes) -> None:
    proc, folder = outcomes[case]
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    for words in CASES[case][1]:
        assert words in lines[0], lines[0]
    assert "iter 1/" not in proc.stdout, "training started before the error"
    assert not (folder / "experiments").exists(), "an experiment folder was created before the error"


def relnet_options(images, tools, tmp_path: Path, **changes):
    return validate_options(tools.train_options(images, tmp_path / "experiments", "run", **changes), source="t.yml")


def test_a_failing_validation_still_leaves_the_checkpoint_due_then(relnet, images, tools, tmp_path, monkeypatch):
    real_run = validation.Validator.run

    def failing(self, model, iteration, **kwargs):
        if iteration == 4:
            raise RuntimeError("out of memory (simulated) in validation")
        return real_run(self, model, iteration, **kwargs)

    monkeypatch.setattr(validation.Validator, "run", failing)
    opts = relnet_options(images, tools, tmp_path, train={"total_iter": 6}, logger={"checkpoint_freq": 2})
    with pytest.raises(RuntimeError, match="simulated"):
        run_training(opts)
    ckpts = tmp_path / "experiments" / "run" / "checkpoints"
    assert (ckpts / "iter_000004" / "trainer_state.pt").is_file(), sorted(p.name for p in ckpts.iterdir())


def test_a_run_refused_after_its_folder_was_made_removes_it(relnet, images, tools, tmp_path) -> None:
    val = {"freq": 2, "metrics": [{"type": "PSNR"}], "best_metric": "PSNRR"}
    bad = relnet_options(images, tools, tmp_path, val=val)
    with pytest.raises(OptionsError, match="val.best_metric: 'PSNRR' is not a validated metric"):
        run_training(bad)
    assert not (tmp_path / "experiments" / "run").exists(), "the refused run left its folder"
    fixed = run_training(relnet_options(images, tools, tmp_path, train={"total_iter": 2}))
    assert fixed.experiment.name == "run"  # not run_1


def test_a_thread_count_far_beyond_the_cores_is_capped_and_said() -> None:
    from irframe.threads import MAX_THREADS_PER_CORE, choose_threads

    choice = choose_threads(3000, env={}, cores=2, machine_cores=2, load=0.0)
    assert choice.threads == 2 * MAX_THREADS_PER_CORE and "asked for 3000; capped at" in choice.line()
