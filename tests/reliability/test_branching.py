"""Resuming an older checkpoint never overwrites newer ones: the run branches into a new experiment.

``--resume <exp>/checkpoints/iter_2`` while ``iter_4``, ``iter_6`` (or a later ``best/``) exist
used to continue in the same folder and replace them with other data, after which ``--resume auto``
continued a mix of both runs. Now the run says so and branches into ``<exp>_from_iter_000002``
(holding a copy of the checkpoint it starts from); the original's checkpoints stay byte for byte,
``--resume auto`` with the original name continues the original, and the branch continues with
its own name.
"""

from __future__ import annotations

from pathlib import Path

from irframe.options import validate_options
from irframe.train.build import run_training


def options(images, tools, tmp_path: Path, name: str = "run", total: int = 6, **changes):
    changes.setdefault("val", None)
    opts = tools.train_options(images, tmp_path / "experiments", name, **changes)
    opts["train"]["total_iter"] = total
    opts["logger"].update(checkpoint_freq=2, keep_checkpoints=3)
    return validate_options(opts, source="test.yml")


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resuming_an_older_checkpoint_branches_and_keeps_the_newer_ones(relnet, images, tools, tmp_path) -> None:
    experiments = tmp_path / "experiments"
    run_training(options(images, tools, tmp_path))
    ckpts = experiments / "run" / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("iter_*")) == ["iter_000002", "iter_000004", "iter_000006"]
    original = contents(ckpts)

    branch = run_training(options(images, tools, tmp_path, total=8, seed=5), resume=str(ckpts / "iter_000002"))
    assert branch.experiment == experiments / "run_from_iter_000002" and branch.iteration == 8
    assert contents(ckpts) == original, "checkpoints newer than the resumed one were overwritten"
    first = (branch.experiment / "train.log").read_text().splitlines()[0]
    assert "newer checkpoints (iter_000004, iter_000006)" in first and "branches into a new experiment" in first
    assert f"--resume {branch.experiment}" in first

    # --resume auto on the original name continues the original, from its newest checkpoint
    again = run_training(options(images, tools, tmp_path, total=8), resume="auto")
    assert again.experiment == experiments / "run" and again.iteration == 8
    assert f"resuming {experiments / 'run'} from iter_000006" in (experiments / "run" / "train.log").read_text()
    # ... and the branch continues under its own name
    more = run_training(options(images, tools, tmp_path, name="run_from_iter_000002", total=10), resume="auto")
    assert more.experiment == branch.experiment and more.iteration == 10
    assert "from iter_000008" in (branch.experiment / "train.log").read_text()


def test_resuming_the_newest_checkpoint_continues_in_place(relnet, images, tools, tmp_path) -> None:
    run_training(options(images, tools, tmp_path, total=4))
    ckpts = tmp_path / "experiments" / "run" / "checkpoints"
    result = run_training(options(images, tools, tmp_path, total=6), resume=str(ckpts / "iter_000004"))
    assert result.experiment == tmp_path / "experiments" / "run" and result.iteration == 6
    assert sorted(p.name for p in (tmp_path / "experiments").iterdir()) == ["run"]


def test_a_later_best_also_makes_a_branch(relnet, images, tools, tmp_path) -> None:
    val = {"freq": 2, "metrics": [{"type": "PSNR"}]}
    run_training(options(images, tools, tmp_path, total=4, val=val))
    ckpts = tmp_path / "experiments" / "run" / "checkpoints"
    (ckpts / "iter_000004").rename(ckpts / ".gone")  # only best/ (iteration 4) is newer than iter_000002
    best = contents(ckpts / "best")
    result = run_training(options(images, tools, tmp_path, total=6, val=val), resume=str(ckpts / "iter_000002"))
    assert result.experiment.name == "run_from_iter_000002"
    assert contents(ckpts / "best") == best
