"""Experiment trackers through accelerate, read back for real with no network: TensorBoard event
files, a wandb offline run folder, an MLflow file store. Each run is 2 + 2 iterations (a run, then
its resume), so a resumed run is seen continuing the same tracker run."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest
import yaml

from irframe.errors import OptionsError
from irframe.train import trackers
from irframe.train.build import run_training

IMAGE_ROLES = ("input", "output", "target")


def _run(make_options: Any, total: int, resume: str | None = None, **logger: Any) -> Any:
    """The toy run to ``total`` iterations: a report every iteration, validation and a checkpoint every 2."""
    opts = make_options(
        train={"total_iter": total},
        val={"freq": 2},
        logger={"print_freq": 1, "checkpoint_freq": 2, "tensorboard": False, **logger},
    )
    return run_training(opts, resume=resume)


def test_tensorboard_gets_scalars_images_and_config_and_a_resume_continues_its_folder(toys, make_options):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    first = _run(make_options, 2, tensorboard=True)
    resumed = _run(make_options, 4, resume="auto", tensorboard=True)
    assert resumed.experiment == first.experiment
    folder = first.experiment / "tensorboard" / "irframe"  # <logger.project>, the same for the resumed run
    assert len(list(folder.glob("events.out.tfevents.*"))) == 2
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert {"train/lr", "train/iter_time", "val/val/PSNR"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("val/val/PSNR")] == [2, 4]
    for role in IMAGE_ROLES:  # the first two validation images (logger.val_images: 2), each as itself
        for name in ("toy000", "toy001"):
            shown = events.Images(f"val_images/val/{name}/{role}")
            assert [e.step for e in shown] == [2, 4] and (shown[0].width, shown[0].height) == (16, 16)
    assert not any("toy002" in tag for tag in tags["images"])
    # the run's configuration: the resolved options, one level of dotted keys (one per start)
    configs = sorted(folder.glob("*/hparams.yml"))
    assert len(configs) == 2
    config = yaml.safe_load(configs[0].read_text())
    assert config["train.optim.lr"] == 0.002 and config["model.type"] == "ToyNet" and config["name"] == "toy"
    assert config["train.losses.0.type"] == "L1Loss"


def _wandb_records(run_file: Path) -> list[Any]:
    """The records of a wandb run file (a LevelDB-style log of protobuf records, 32 KiB blocks,
    after a 7-byte header), parsed with wandb's own message types."""
    from wandb.proto import wandb_internal_pb2

    data = run_file.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, chunk, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            break
        chunk += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            records.append(record)
            chunk = b""
    return records


def test_wandb_offline_run_has_the_config_scalars_and_images_and_a_resume_continues_it(
    toys, make_options, tmp_path, monkeypatch
):
    wandb = pytest.importorskip("wandb", reason="wandb is not installed (pip install 'irframe[wandb]')")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home" / var.lower()))
    first = _run(make_options, 2, trackers=["wandb"], project="toyproject")
    run_id = json.loads((first.experiment / "trackers.json").read_text())["wandb"]["id"]
    _run(make_options, 4, resume="auto", trackers=["wandb"], project="toyproject")
    wandb.teardown()  # wandb's service writes the run files on its own: wait until it has written all
    runs = sorted((first.experiment / "wandb").glob("offline-run-*"))
    # one run, continued: both folders carry its id (wandb adds "-1" when the second started in the same second)
    assert len(runs) == 2 and all(re.fullmatch(rf"offline-run-\d{{8}}_\d{{6}}-{run_id}(-\d+)?", r.name) for r in runs)
    history: dict[int, set[str]] = {}
    config: dict[str, Any] = {}
    for folder in runs:
        for record in _wandb_records(next(folder.glob("run-*.wandb"))):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                assert record.run.run_id == run_id and record.run.project == "toyproject"
                assert record.run.display_name == "toy"
            elif kind == "config":
                config.update({u.key: json.loads(u.value_json) for u in record.config.update})
            elif kind == "history":
                items = {"/".join(i.nested_key) or i.key: i.value_json for i in record.history.item}
                history.setdefault(int(items["_step"]), set()).update(items)
    assert config["train.optim.lr"] == 0.002 and config["model.type"] == "ToyNet" and config["train.total_iter"] == 4
    assert sorted(history) == [1, 2, 3, 4]
    assert {"train/loss", "train/lr"} <= history[1] and "train/iter_time" in history[4]  # not at a (re)start
    for step in (2, 4):
        assert "val/val/PSNR" in history[step]
        assert {f"val_images/val/toy000/{role}/_type" for role in IMAGE_ROLES} <= history[step]
    images = {p.name.split("_")[0] for p in runs[0].glob("files/media/images/val_images/val/toy000/*.png")}
    assert images == set(IMAGE_ROLES)


def test_mlflow_file_store_gets_metrics_params_images_and_a_resume_continues_the_run(
    toys, make_options, tmp_path, monkeypatch
):
    pytest.importorskip("mlflow", reason="mlflow is not installed (pip install 'irframe[mlflow]')")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # what irframe sets for a file store, undone after
    first = _run(make_options, 2, trackers=["mlflow"])
    recorded = json.loads((first.experiment / "trackers.json").read_text())["mlflow"]
    store = (tmp_path / "experiments" / "mlruns").as_uri()  # the default: <experiments_root>/mlruns
    assert recorded["tracking_uri"] == store
    # resumed with another total_iter: a parameter MLflow cannot change; the run goes on
    _run(make_options, 4, resume="auto", trackers=["mlflow"])
    client = MlflowClient(tracking_uri=store)
    (experiment,) = [e for e in client.search_experiments() if e.name == "irframe"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == recorded["run_id"] and run.info.run_name == "toy"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1, 2, 3, 4]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val/val/PSNR")] == [2, 4]
    assert {"train/lr", "train/iter_time"} <= set(run.data.metrics)
    assert run.data.params["train.optim.lr"] == "0.002" and run.data.params["train.total_iter"] == "2"
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"options.yml", "options_iter_000002.yml"} <= files
    images = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
    for role in IMAGE_ROLES:
        assert sum(f"val_images~val~toy000~{role}+step+" in p and p.endswith(".png") for p in images) == 2, images


def test_a_missing_or_unknown_tracker_is_one_line_before_any_folder_is_made(toys, make_options, tmp_path, monkeypatch):
    monkeypatch.setattr(trackers, "available_trackers", lambda: {"tensorboard"})
    cases = {
        "wandb": "logger.trackers: wandb is not installed: pip install 'irframe[wandb]' (or leave it out of "
        "logger.trackers)",
        "mlflow": "pip install 'irframe[mlflow]'",
        "tensorbord": "logger.trackers: 'tensorbord' is not a tracker accelerate supports; did you mean 'tensorboard'?",
    }
    for name, expected in cases.items():
        with pytest.raises(OptionsError) as caught:
            run_training(make_options(logger={"trackers": [name]}))
        assert expected in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(OptionsError, match="lists tensorboard but logger.tensorboard is false"):
        run_training(make_options(logger={"trackers": ["tensorboard"], "tensorboard": False}))
    monkeypatch.setattr(trackers, "available_trackers", lambda: set())
    missing = r"logger.tensorboard: tensorboard is not installed: .*set logger.tensorboard"
    with pytest.raises(OptionsError, match=missing):
        run_training(make_options(logger={"tensorboard": True}))
    assert not (tmp_path / "experiments").exists()


def test_tracker_names_and_options():
    from irframe.options_schema import LoggerOptions as logger

    assert trackers.tracker_names(logger()) == ["tensorboard"]  # logger.tensorboard: true, as before
    assert trackers.tracker_names(logger(tensorboard=False)) == []
    assert trackers.tracker_names(logger(trackers=["wandb", "tensorboard", "wandb"])) == ["tensorboard", "wandb"]
    assert trackers.tracker_names(logger(tensorboard=False, trackers=["mlflow"])) == ["mlflow"]
    assert trackers.flat_config({"a": {"b": [1, 2], "c": [{"type": "L1"}], "d": None, "e": {}}}) == {
        "a.b": "[1, 2]", "a.c.0.type": "L1", "a.d": None, "a.e": "{}",
    }


def test_only_the_main_process_sends_anything():
    class Accel:
        is_main_process = False

        @property
        def trackers(self) -> list[Any]:
            raise AssertionError("a process other than the main one touched the trackers")

        def log(self, *args: Any, **kwargs: Any) -> None:
            raise AssertionError("a process other than the main one logged")

    other = trackers.Trackers(Accel(), ["tensorboard"])
    other.log({"train/loss": 1.0}, 1)
    import numpy as np

    other.images(1, {"val_images/v/a/input": np.zeros((2, 2, 3), np.uint8)})
    assert other.get("tensorboard") is None


def test_basicsr_logger_wandb_and_use_tb_logger_translate_to_trackers():
    from irframe.compat.basicsr.translator import translate
    from tests.helpers import FIXTURES

    raw = yaml.safe_load((FIXTURES / "basicsr_options" / "Deraining_Restormer.yml").read_text())
    assert raw["logger"]["wandb"] == {"project": None, "resume_id": None} and raw["logger"]["use_tb_logger"]
    without = translate(raw, "d.yml")
    assert without.native["logger"]["tensorboard"] and "trackers" not in without.native["logger"]
    assert any(n.startswith("logger.wandb: dropped: no project set") for n in without.notes)
    raw["logger"].update(use_tb_logger=False, wandb={"project": "derain", "resume_id": "abc123"})
    t = translate(raw, "d.yml")
    logger = {k: v for k, v in t.native["logger"].items() if k in ("tensorboard", "trackers", "project", "wandb")}
    assert logger == {
        "tensorboard": False, "trackers": ["wandb"], "project": "derain", "wandb": {"resume_id": "abc123"},
    }
    assert ("logger.wandb.project", "logger.project") in t.mapped
    raw["logger"]["wandb"]["projekt"] = "x"
    problems = translate(raw, "d.yml", collect=True).problems
    assert problems == ["logger.wandb.projekt: unknown BasicSR key; did you mean 'project'?"]


def test_a_tracker_that_cannot_start_is_one_line_and_leaves_no_folder(toys, make_options, tmp_path, monkeypatch):
    from accelerate.tracking import TensorBoardTracker

    from irframe.errors import IrframeError

    def refuse(self: Any) -> None:
        raise RuntimeError("no account configured\nsecond line")

    monkeypatch.setattr(TensorBoardTracker, "start", refuse)
    with pytest.raises(IrframeError) as caught:
        run_training(make_options(logger={"tensorboard": True}))
    assert str(caught.value) == (
        "toy-options: logger.trackers: tensorboard could not start: RuntimeError: no account configured"
    )
    assert list((tmp_path / "experiments").iterdir()) == []  # the run's folder is not kept


@pytest.mark.slow
def test_two_processes_write_one_tracker_run(toys, tmp_path, monkeypatch):
    """Under torchrun with 2 processes only the main one writes: one TensorBoard event file, one
    configuration, one wandb run and one MLflow run (those installed), each with every step once."""
    import importlib.util
    import os
    import subprocess
    import sys

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    extra = [n for n in ("wandb", "mlflow") if importlib.util.find_spec(n) is not None]
    opts = toys.toy_options(
        tmp_path / "experiments", name="ddp", datasets={"train": {"type": "ToyPairs", "batch_size": 2}},
        train={"total_iter": 2}, val={"freq": 2}, logger={"print_freq": 1, "checkpoint_freq": 2, "tensorboard": True,
                                                           "trackers": extra},
    )
    path = tmp_path / "ddp.yml"
    path.write_text(yaml.safe_dump(opts))
    env = {
        **os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "WANDB_MODE": "offline",
        "WANDB_SILENT": "true", "WANDB_CONFIG_DIR": str(tmp_path / "wandb_config"),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    torchrun = Path(sys.executable).with_name("torchrun")
    script = Path(__file__).resolve().parent / "toy_train.py"
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", str(script), "-opt", str(path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    exp = tmp_path / "experiments" / "ddp"
    folder = exp / "tensorboard" / "irframe"
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1 and len(list(folder.glob("*/hparams.yml"))) == 1
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]
    if "wandb" in extra:
        assert len(list((exp / "wandb").glob("offline-run-*"))) == 1
    if "mlflow" in extra:
        from mlflow.tracking import MlflowClient

        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # (the run set it for itself)
        client = MlflowClient(tracking_uri=(tmp_path / "experiments" / "mlruns").as_uri())
        (experiment,) = [e for e in client.search_experiments() if e.name == "irframe"]
        (run,) = client.search_runs([experiment.experiment_id])
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1, 2]
