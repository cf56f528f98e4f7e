"""``tools/demo.py`` removes only what the demo itself wrote.

A rerun of the demo replaces the previous demo run's folder (it carries the ``.irframe-demo``
marker) instead of piling up ``demo_1``, ``demo_2``, ... But a demo run the user continued with
the README's own ``tools/train.py -opt options/demo.yml --resume auto`` holds checkpoints the demo
did not write: the marker lists the checkpoints the demo's run left, so that folder is kept (and
the rerun says so and uses ``demo_1``). ``--set name=../x`` is refused before anything is written.
"""

from __future__ import annotations

from pathlib import Path

from irframe.options import load_options
from irframe.train import demo
from irframe.train.build import run_training

OPTIONS = Path(__file__).resolve().parents[2] / "options" / "demo.yml"
SHORT = ["train.total_iter=2", "train.warmup_iter=0", "val.freq=2", "logger.checkpoint_freq=2",
         "logger.progress_bar=false", "logger.tensorboard=false", "datasets.train.batch_size=2",
         "datasets.train.gt_size=32"]


def run_demo(tmp_path: Path, *extra: str) -> int:
    return demo.main(["--data", str(tmp_path / "data"), "-opt", str(OPTIONS), "--threads", "1", "--set", *SHORT,
                      f"path.experiments_root={tmp_path / 'exp'}", *extra])


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_demo_run_the_user_continued_is_never_removed(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(demo, "TRAIN_IMAGES", 4)
    assert run_demo(tmp_path) == 0
    folder = tmp_path / "exp" / "demo"
    # the README's command to continue the demo's run
    data = tmp_path / "data"
    opts = load_options(OPTIONS, [
        f"datasets.train.dataroot_gt={data / 'train'}", f"datasets.val.dataroot_gt={data / 'val'}", *SHORT,
        "train.total_iter=4", f"path.experiments_root={tmp_path / 'exp'}",
    ])
    assert run_training(opts, resume="auto").iteration == 4
    continued = contents(folder / "checkpoints")
    capsys.readouterr()

    assert run_demo(tmp_path) == 0
    out = capsys.readouterr().out
    assert "has checkpoints the demo did not write" in out and "is kept" in out, out
    assert contents(folder / "checkpoints") == continued, "the continued run's checkpoints were touched"
    assert (tmp_path / "exp" / "demo_1" / demo.DEMO_MARKER).is_file()

    # the demo's own folder (demo_1, not continued) is replaced by the next rerun, not piled up
    assert run_demo(tmp_path) == 0
    out = capsys.readouterr().out
    assert "demo_1: the previous demo run there was removed" in out, out
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == ["demo", "demo_1"]


def test_a_demo_name_outside_experiments_root_is_refused_before_writing(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(demo, "TRAIN_IMAGES", 4)
    assert run_demo(tmp_path, "name=../escaped") == 2
    err = capsys.readouterr().err
    assert "name: '../escaped'" in err and "path separator" in err
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "exp").exists()
