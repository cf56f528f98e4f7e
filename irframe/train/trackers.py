"""Experiment trackers (TensorBoard, wandb, MLflow, ...) through accelerate's tracking API.

``logger.tensorboard`` and ``logger.trackers`` name them (:func:`tracker_names`). :func:`check_trackers`
refuses an unknown or uninstalled one, naming what installs it, before anything is built (accelerate
itself would leave it out without a word); the names go to ``Accelerator(log_with=...)``
(:func:`accelerator_kwargs`); :func:`start_trackers` opens the run with ``accelerator.init_trackers``
once the experiment folder exists, with the resolved options as the run's configuration;
:class:`Trackers` sends scalars (``accelerator.log``) and validation images; ``accelerator.end_training()``
(at the end of every run) closes them. Only the main process writes.

A resumed run continues the same tracker run: TensorBoard writes into the same folder
(``<experiment>/tensorboard/<logger.project>``; events past the resumed iteration are purged),
wandb and MLflow reuse the run ids recorded in ``<experiment>/trackers.json`` (``logger.wandb.resume_id``
names a wandb run explicitly, as BasicSR's option does). A branch (``--resume`` of an older
checkpoint, a new folder) is a new run.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from irframe.errors import IrframeError, OptionsError
from irframe.text import suggest

TRACKERS_FILE = "trackers.json"
"""Where an experiment records the ids of its wandb and MLflow runs (a resumed run continues them)."""

INSTALL: dict[str, str] = {
    "tensorboard": "pip install tensorboard",
    "wandb": "pip install 'irframe[wandb]'",
    "mlflow": "pip install 'irframe[mlflow]'",
    "comet_ml": "pip install comet_ml",
    "aim": "pip install aim",
    "clearml": "pip install clearml",
    "dvclive": "pip install dvclive",
    "swanlab": "pip install swanlab",
    "trackio": "pip install trackio",
}
"""What installs each of accelerate's trackers."""

IMAGE_TRACKERS = ("tensorboard", "wandb", "mlflow")
"""Trackers that get the validation images (the others get scalars and the configuration)."""

_DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def tracker_names(logger: Any) -> list[str]:
    """The trackers of the ``logger`` options: TensorBoard when ``logger.tensorboard``, then
    ``logger.trackers`` (each once)."""
    names = ["tensorboard"] if logger.tensorboard else []
    return names + [n for n in dict.fromkeys(logger.trackers) if n not in names]


def known_trackers() -> list[str]:
    """The trackers this accelerate version supports (``all`` left out: a run names its own)."""
    from accelerate.utils import LoggerType

    return [str(t.value) for t in LoggerType if t.value != "all"]


def available_trackers() -> set[str]:
    """The trackers whose package is installed (accelerate's own test)."""
    from accelerate.tracking import get_available_trackers

    return {str(getattr(t, "value", t)) for t in get_available_trackers()}


def check_trackers(opts: Any) -> None:
    """Refuse, in one line naming the key, a tracker accelerate does not know, one that is not
    installed (with what installs it), ``logger.tensorboard: false`` beside ``tensorboard`` in
    ``logger.trackers``, and an MLflow database store without the full MLflow package."""
    logger, source = opts.logger, opts.source
    if not logger.tensorboard and "tensorboard" in logger.trackers:
        raise OptionsError(
            f"{source}: logger.trackers lists tensorboard but logger.tensorboard is false; keep one of them"
        )
    names = tracker_names(logger)
    if not names:
        return
    known = known_trackers()
    for name in names:
        if name not in known:
            hint = suggest(name, known)
            raise OptionsError(
                f"{source}: logger.trackers: {name!r} is not a tracker accelerate supports"
                + (f"; did you mean {hint!r}?" if hint else f"; choose from {', '.join(known)}")
            )
    installed = available_trackers()
    for name in names:
        if name not in installed:
            key = "logger.tensorboard" if name == "tensorboard" and name not in logger.trackers else "logger.trackers"
            undo = "set logger.tensorboard: false" if key == "logger.tensorboard" else "leave it out of logger.trackers"
            raise OptionsError(f"{source}: {key}: {name} is not installed: {INSTALL.get(name, f'pip install {name}')} "
                               f"(or {undo})")
    if "mlflow" in names:
        uri = mlflow_uri(opts)
        scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
        import importlib.util

        if scheme in _DATABASE_SCHEMES and importlib.util.find_spec("sqlalchemy") is None:
            raise OptionsError(
                f"{source}: logger.mlflow.tracking_uri: {uri} is a database store, which needs the full MLflow "
                "package: pip install mlflow (irframe[mlflow] installs the client only), or use a server URL or a "
                "file store (file:///...)"
            )


def accelerator_kwargs(opts: Any) -> dict[str, Any]:
    """``Accelerator(...)`` arguments for the trackers: ``log_with`` and, for TensorBoard, a logging
    folder (the experiment's own is set by :func:`start_trackers` once it exists)."""
    names = tracker_names(opts.logger)
    if not names:
        return {}
    return {"log_with": names, "project_dir": str(opts.path.experiments_root)}


def mlflow_uri(opts: Any) -> str:
    """Where MLflow runs go: ``logger.mlflow.tracking_uri``, else ``MLFLOW_TRACKING_URI``, else the
    file store ``<path.experiments_root>/mlruns``."""
    uri = opts.logger.mlflow.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return str(uri)
    return (Path(opts.path.experiments_root).resolve() / "mlruns").as_uri()


def flat_config(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options as one level of ``dotted.keys`` (what every tracker's configuration takes):
    mappings and lists of mappings are opened (``train.losses.0.type``), lists of values kept as
    one JSON string (``model.num_blocks: "[4, 6, 6, 8]"``)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value):
            for i, v in enumerate(value):
                walk(f"{prefix}.{i}", v)
        elif isinstance(value, (list, tuple, Mapping)):
            out[prefix] = json.dumps(value)
        else:
            out[prefix] = value

    walk("", options)
    return out


def read_ids(root: Path) -> dict[str, Any]:
    """The tracker run ids an experiment recorded (empty when none, or unreadable)."""
    try:
        data = json.loads((root / TRACKERS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def start_trackers(accelerator: Any, opts: Any, exp: Any, start_iter: int = 0) -> Trackers | None:
    """Open the run's trackers (``accelerator.init_trackers``) in the experiment ``exp``; a run
    resumed at ``start_iter`` continues the tracker runs the experiment recorded. ``None`` when the
    options name no tracker."""
    names = tracker_names(opts.logger)
    if not names:
        return None
    resumed = exp.resume_from is not None
    saved = read_ids(exp.root) if resumed else {}
    ids: dict[str, Any] = {}
    init: dict[str, dict[str, Any]] = {}
    if "tensorboard" in names:
        # <experiment>/tensorboard/<project>: accelerate's TensorBoard writes into <logging_dir>/<project>
        accelerator.project_configuration.logging_dir = str(exp.tensorboard)
        if resumed and start_iter > 0:  # events logged after the resumed checkpoint are hidden
            init["tensorboard"] = {"purge_step": start_iter + 1}
    if "wandb" in names:
        wb = opts.logger.wandb
        run_id = wb.resume_id or (saved.get("wandb") or {}).get("id") or uuid.uuid4().hex[:12]
        init["wandb"] = {"name": exp.name, "dir": str(exp.root), "id": run_id, "resume": "allow"}
        if wb.entity:
            init["wandb"]["entity"] = wb.entity
        ids["wandb"] = {"id": run_id}
    if "mlflow" in names and accelerator.is_main_process:
        uri = mlflow_uri(opts)
        _use_mlflow_store(uri)
        init["mlflow"] = {"run_name": exp.name}
        previous = saved.get("mlflow") or {}
        if previous.get("run_id") and previous.get("tracking_uri") == uri:
            init["mlflow"]["run_id"] = previous["run_id"]
    config = flat_config({**opts.to_dict(), "name": exp.name})
    # A new run gets its configuration with its start; a resumed one below, tracker by tracker
    # (MLflow refuses to change a parameter a run has).
    try:
        accelerator.init_trackers(opts.logger.project, config=None if resumed else config, init_kwargs=init)
    except Exception as exc:  # a tracker that cannot start (no account, no server): one line, before training
        _drop_trackers(accelerator)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise IrframeError(
            f"{opts.source}: logger.trackers: {', '.join(names)} could not start: {type(exc).__name__}: {reason}"
            + (" (WANDB_MODE=offline logs without an account)" if "wandb" in names else "")
        ) from exc
    trackers = Trackers(accelerator, names)
    if accelerator.is_main_process:
        if resumed:
            trackers.update_config(config)
        mlflow_run = trackers.get("mlflow")
        if mlflow_run is not None:
            ids["mlflow"] = {"run_id": mlflow_run.tracker.info.run_id, "tracking_uri": mlflow_uri(opts)}
            trackers.mlflow_options(opts.to_dict(), start_iter)
        if ids:
            (exp.root / TRACKERS_FILE).write_text(json.dumps({**saved, **ids}, indent=2) + "\n", encoding="utf-8")
    return trackers


def _drop_trackers(accelerator: Any) -> None:
    """Close the trackers that started and forget them all (``end_training`` then has none to close)."""
    for tracker in accelerator.trackers:
        with contextlib.suppress(Exception):  # one that never started has nothing to close
            tracker.finish()
    accelerator.trackers.clear()


def _use_mlflow_store(uri: str) -> None:
    """Point MLflow at ``uri``; a file store is allowed explicitly (MLflow 3 refuses it unless
    ``MLFLOW_ALLOW_FILE_STORE`` is set)."""
    mlflow = _mlflow()
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)


class Trackers:
    """The trackers of a run, started (:func:`start_trackers`). Every process may call every
    method; only the main process sends anything."""

    def __init__(self, accelerator: Any, names: Sequence[str]) -> None:
        self.accelerator = accelerator
        self.names = list(names)
        self.is_main = bool(accelerator.is_main_process)

    def get(self, name: str) -> Any:
        """accelerate's tracker object of ``name`` (``None`` when the run has none, or off the main process)."""
        if not self.is_main:
            return None
        return next((t for t in self.accelerator.trackers if t.name == name), None)

    def log(self, values: Mapping[str, float], step: int) -> None:
        """Scalars at iteration ``step`` (``accelerator.log``)."""
        if self.is_main and values:
            self.accelerator.log({k: float(v) for k, v in values.items()}, step=step)

    def images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
        """``HWC`` ``uint8`` RGB images by key at iteration ``step``, to TensorBoard and wandb
        (their ``log_images``) and MLflow (``mlflow.log_image``)."""
        if not self.is_main or not images:
            return
        for tracker in self.accelerator.trackers:
            if tracker.name == "tensorboard":
                tracker.log_images({k: v[None] for k, v in images.items()}, step=step, dataformats="NHWC")
            elif tracker.name == "wandb":
                tracker.log_images({k: [v] for k, v in images.items()}, step=step)
            elif tracker.name == "mlflow":
                mlflow = _mlflow()
                for key, image in images.items():
                    mlflow.log_image(image, key=key, step=step)

    def update_config(self, config: Mapping[str, Any]) -> None:
        """The configuration of a resumed run: MLflow gets the keys its run lacks (its parameters
        cannot change; :meth:`mlflow_options` keeps the new options file), the others all of them."""
        for tracker in self.accelerator.trackers:
            if tracker.name != "mlflow":
                tracker.store_init_configuration(dict(config))
                continue
            run = _mlflow().get_run(tracker.tracker.info.run_id)
            new = {k: v for k, v in config.items() if k not in run.data.params}
            if new:
                tracker.store_init_configuration(new)

    def mlflow_options(self, options: Mapping[str, Any], start_iter: int) -> None:
        """The resolved options file as an MLflow artifact (``options.yml``; a resumed run adds
        ``options_iter_<N>.yml``)."""
        name = "options.yml" if start_iter == 0 else f"options_iter_{start_iter:06d}.yml"
        _mlflow().log_dict(dict(options), name)


def _mlflow() -> Any:
    """The ``mlflow`` module (an extra: imported when a run uses it, untyped for the type checker
    whether installed or not)."""
    import importlib

    return importlib.import_module("mlflow")


def preview(tensor: Any) -> np.ndarray:
    """A ``CHW`` / ``1CHW`` image tensor in ``[0, 1]`` -> ``HWC`` ``uint8`` RGB for a tracker: gray is
    repeated, a stacked input (dual-pixel views) shows its first three channels, NaN shows black."""
    t = tensor.detach()
    t = t[0] if t.ndim == 4 else t
    arr = t.float().cpu().numpy().transpose(1, 2, 0)
    channels = arr.shape[2]
    if channels in (1, 2):
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    elif channels > 3:
        arr = arr[:, :, :3]
    arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
    return np.ascontiguousarray(np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8))


def image_key(dataset: str, name: str, role: str) -> str:
    """``val_images/<dataset>/<image>/<role>`` (``role``: input, output or target)."""
    return f"val_images/{dataset}/{name}/{role}"

