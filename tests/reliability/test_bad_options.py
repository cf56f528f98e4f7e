"""Bad option files given to ``tools/train.py``: one clear line, exit status 2, nothing created.

Each case runs the real script in a subprocess (all cases at once, to keep the wall time low) and
checks that stderr is exactly one ``error: ...`` line naming the faulty key or path, and that no
experiment folder was made: the error comes before any work starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from irframe.registry import ARCHS

TINY_RESTORMER = "{type: Restormer, dim: 4, num_blocks: [1, 1, 1, 1], heads: [1, 1, 1, 1], num_refinement_blocks: 1}"


def good_options(root: Path, data: Path) -> str:
    """A valid option file (as text) whose ``experiments_root`` is ``root``."""
    return f"""\
name: bad_options_case
model: {TINY_RESTORMER}
datasets:
  train:
    type: OnlineDegradationDataset
    dataroot_gt: {data}
    degradation: {{type: GaussianNoise, sigma: 25}}
    gt_size: 16
    batch_size: 2
train:
  total_iter: 2
  optim: {{type: AdamW, lr: 1.0e-3}}
  losses: [{{type: L1Loss}}]
logger: {{tensorboard: false, progress_bar: false}}
path: {{experiments_root: {root}}}
"""


# case -> (how the good file is changed, extra files, words the error line must contain)
CASES = {
    "unknown_key": (lambda t: t.replace("  total_iter: 2", "  total_iter: 2\n  grad_clipp: 0.1"), {},
                    ["train.grad_clipp", "unknown key", "did you mean 'grad_clip'"]),
    "wrong_type": (lambda t: t.replace("total_iter: 2", "total_iter: lots"), {},
                   ["train.total_iter", "'lots'"]),
    "missing_required_key": (lambda t: t.replace("name: bad_options_case\n", ""), {},
                             ["name: missing required key"]),
    "base_cycle": (lambda t: "_base_: other.yml\n" + t, {"other.yml": "_base_: case.yml\n"},
                   ["_base_ cycle", "case.yml -> ", "other.yml -> "]),
    "unknown_component_key": (lambda t: t.replace("dim: 4", "dimm: 4"), {},
                              ["model", "dimm"]),
    "dataset_path_missing": (lambda t: t.replace("/train_images", "/no_such_folder"), {},
                             ["dataroot_gt", "no_such_folder"]),
    "pretrain_missing": (lambda t: t.replace("  losses:", "  pretrain: {path: gone/pretrained.pth}\n  losses:"), {},
                         ["train.pretrain.path", "gone/pretrained.pth"]),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess[str], Path]]:
    """Run tools/train.py once per case, all concurrently."""
    if "Restormer" not in ARCHS:
        pytest.skip("the Restormer plugin is not installed")
    from irframe.train.synthetic import write_textured_images

    base = tmp_path_factory.mktemp("bad_options")
    data = base / "train_images"
    write_textured_images(data, 2, 24, seed=0)
    root = Path(__file__).resolve().parents[2]
    procs = {}
    for name, (change, extra, _words) in CASES.items():
        folder = base / name
        folder.mkdir()
        for filename, text in extra.items():
            (folder / filename).write_text(text)
        (folder / "case.yml").write_text(change(good_options(folder / "experiments", data)))
        procs[name] = (
            subprocess.Popen(
                [sys.executable, str(root / "tools" / "train.py"), "-opt", str(folder / "case.yml")],
                cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            ),
            folder,
        )
    results = {}
    for name, (proc, folder) in procs.items():
        out, err = proc.communicate(timeout=300)
        results[name] = (subprocess.CompletedProcess(proc.args, proc.returncode, out, err), folder)
    return results


@pytest.mark.parametrize("case", list(CASES))
def test_bad_option_file_is_one_line_before_any_work(case: str, outcomes) -> None:
    proc, folder = outcomes[case]
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for words in CASES[case][2]:
        assert words in lines[0], lines[0]
    assert not (folder / "experiments").exists(), "an experiment folder was created before the error"
