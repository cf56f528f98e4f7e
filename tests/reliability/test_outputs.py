"""Outputs: readable by others, replaced as one unit, never written over an input, and a full disk
or a folder in the way is one clear error naming the file and what is intact.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from irframe.data.io import imwrite
from irframe.errors import CheckpointError, DataError
from irframe.evaluate.leaderboard import (
    DatasetResult,
    ImageResult,
    Leaderboard,
    MetricInfo,
    ModelRun,
    update_leaderboard,
)
from irframe.train import checkpoint_folders as train_checkpoint
from irframe.train.checkpoint_folders import list_checkpoints
from irframe.train.training_state import Checkpointer

PSNR = MetricInfo("PSNR", "PSNR-Y crop4 8bit", True)
BOARD_FILES = ("leaderboard.json", "leaderboard.md", "leaderboard.csv", "per_image.csv", "report.html")


def make_run(name: str, psnr: float) -> ModelRun:
    run = ModelRun(name=name, arch="Toy", params=1000, device="cpu")
    image = ImageResult("a", {PSNR.id: psnr}, runtime_s=0.5, pixels=16)
    run.datasets["Set5"] = DatasetResult("Set5", {PSNR.id: psnr}, [image])
    return run


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield 0o644
    os.umask(old)


def test_checkpoint_and_leaderboard_files_get_the_umask_mode(relnet, tmp_path: Path, umask_022: int) -> None:
    from irframe.train.ema import ModelEMA

    model = relnet()
    ckpt = Checkpointer(tmp_path / "checkpoints", 2, {"type": "RelNet"})
    folder = ckpt.save(1, model, ModelEMA(model, 0.9), {"iteration": 1})
    best = ckpt.save_best(1, model, None, {"metric": "PSNR", "value": 30.0})
    for path in [*folder.iterdir(), *best.iterdir()]:
        assert mode(path) == umask_022, f"{path.name} is {oct(mode(path))}"
    paths = update_leaderboard(tmp_path / "results", [make_run("A", 30.0)], [PSNR])
    for path in paths.values():
        assert mode(path) == umask_022, f"{path.name} is {oct(mode(path))}"


def kill_script(results: Path, kill_at: int) -> str:
    """Python code: update the leaderboard with model B, SIGKILLed at the ``kill_at``-th rename."""
    return textwrap.dedent(f"""
        import os, signal
        from irframe.evaluate.leaderboard import DatasetResult, ImageResult, MetricInfo, ModelRun, update_leaderboard
        PSNR = MetricInfo("PSNR", "PSNR-Y crop4 8bit", True)
        def make_run(name, psnr):  # as in the test module, without importing its torch-heavy imports
            run = ModelRun(name=name, arch="Toy", params=1000, device="cpu")
            image = ImageResult("a", {{PSNR.id: psnr}}, runtime_s=0.5, pixels=16)
            run.datasets["Set5"] = DatasetResult("Set5", {{PSNR.id: psnr}}, [image])
            return run
        calls = [0]
        real = os.replace
        def replace(src, dst):
            calls[0] += 1
            if calls[0] == {kill_at}:
                os.kill(os.getpid(), signal.SIGKILL)
            real(src, dst)
        os.replace = replace
        update_leaderboard({str(results)!r}, [make_run("B", 31.0)], [PSNR])
        print("finished", calls[0])
    """)


def assert_consistent(results: Path) -> set[str]:
    """The rendered files all describe the JSON (the source of truth); returns its models."""
    board = Leaderboard.load(results / "leaderboard.json")
    assert (results / "leaderboard.md").read_text(encoding="utf-8") == board.to_markdown()
    assert (results / "leaderboard.csv").read_text(encoding="utf-8") == board.to_csv()
    assert (results / "per_image.csv").read_text(encoding="utf-8") == board.per_image_csv()
    return set(board.models)


def test_a_kill_between_leaderboard_renames_never_mixes_old_and_new_files(tmp_path: Path) -> None:
    results = tmp_path / "results"
    update_leaderboard(results, [make_run("A", 30.0)], [PSNR])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for kill_at in range(1, 8):
        proc = subprocess.run([sys.executable, "-c", kill_script(results, kill_at)], env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode == 0:
            assert kill_at > 1 and "finished" in proc.stdout
            break
        assert proc.returncode == -9, proc.stderr
        models = assert_consistent(results)
        assert models in ({"A"}, {"A", "B"}), f"kill at rename {kill_at}: {models}"
    assert assert_consistent(results) == {"A", "B"}
    assert len(list((results / ".board").glob("g_*"))) == 1  # the debris of killed updates is gone


def test_full_disk_while_saving_a_checkpoint_names_the_file_and_keeps_the_previous(
    relnet, tmp_path, monkeypatch
) -> None:
    model = relnet()
    ckpt = Checkpointer(tmp_path / "checkpoints", 3, {"type": "RelNet"})
    ckpt.save(1, model, None, {"iteration": 1})

    def full(obj, fh, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), getattr(fh, "name", None))

    monkeypatch.setattr(train_checkpoint.torch, "save", full)
    with pytest.raises(CheckpointError) as info:
        ckpt.save(2, model, None, {"iteration": 2})
    message = str(info.value)
    assert "iter_000002: not saved" in message and "No space left on device" in message
    assert "trainer_state.pt" in message and "earlier checkpoints" in message and "intact" in message
    assert [p.name for _, p in list_checkpoints(tmp_path / "checkpoints")] == ["iter_000001"]
    assert not list((tmp_path / "checkpoints").glob(".tmp_*"))


def test_full_disk_and_folder_in_the_way_while_writing_an_image(tmp_path, monkeypatch) -> None:
    img = np.full((4, 4, 3), 0.5, dtype=np.float32)
    (tmp_path / "out.png").mkdir()
    with pytest.raises(DataError, match=r"out\.png: is a folder"):
        imwrite(tmp_path / "out.png", img)
    target = tmp_path / "kept.png"
    imwrite(target, img)
    before = target.read_bytes()

    real_fdopen = os.fdopen

    class FullFile:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FullFile(real_fdopen(fd, *a, **k)))
    with pytest.raises(
        DataError, match=r"kept\.png: not written \(No space left on device\); any earlier file of that name is intact"
    ):
        imwrite(target, 1.0 - img)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.png", "out.png"]


def test_make_submission_never_overwrites_an_input_page(tmp_path: Path, capsys) -> None:
    from irframe.evaluate.cli import submission_main

    pred, inputs = tmp_path / "pred", tmp_path / "inputs"
    page = np.full((6, 5, 1), 0.75, dtype=np.float32)
    for folder in (pred, inputs):
        imwrite(folder / "1.png", page)
    before = (inputs / "1.png").read_bytes()
    link = tmp_path / "page.csv"
    os.symlink(inputs / "1.png", link)
    for out in (inputs / "1.png", pred / "1.png", link, tmp_path):
        assert submission_main(["--pred", str(pred), "--input", str(inputs), "--out", str(out)]) != 0
        err = capsys.readouterr().err
        assert str(out) in err and ("refusing" in err or "is a folder" in err), err
    assert (inputs / "1.png").read_bytes() == before and (pred / "1.png").is_file()
    assert submission_main(["--pred", str(pred), "--input", str(inputs), "--out", str(tmp_path / "sub.csv")]) == 0
    assert (tmp_path / "sub.csv").read_text().startswith("id,value")
