"""What ``tools/test.py`` does: models x benchmark sets -> images, metrics, leaderboard, report.

Everything is built through the registries from validated options (no object is made by hand
from a dict): ``model:`` (+ a checkpoint), ``test.datasets``, ``test.metrics``, ``inference:``.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from irframe.errors import OptionsError
from irframe.evaluate.leaderboard import MetricInfo, ModelRun, update_leaderboard
from irframe.evaluate.models import backend_model, default_device, load_for_eval
from irframe.evaluate.runner import EvalSettings, evaluate_dataset, log_line
from irframe.options import TEST_PATHS, Flag, Options, check_components, load_options

__all__ = ["Job", "build_metrics", "build_test_sets", "check_precision", "plan_jobs", "run_benchmarks", "run_job"]


@dataclass(frozen=True)
class Job:
    """One model to evaluate: its options, checkpoint and leaderboard row name."""

    opts: Options
    checkpoint: str | None
    name: str


def plan_jobs(opts_list: Sequence[Options], checkpoints: Sequence[str]) -> list[Job]:
    """Pair option files with checkpoints.

    * no ``--checkpoint``: each option file with its own ``test.checkpoint``;
    * as many checkpoints as option files: pairwise;
    * one option file and several checkpoints: that model with each checkpoint (rows are named
      ``name@checkpoint``).
    """
    if not opts_list:
        raise OptionsError("no option file given (-opt FILE)")
    for opts in opts_list:
        if opts.test is None:
            raise OptionsError(
                f"{opts.source}: no 'test:' section (test.datasets names the benchmark sets; test.metrics defaults "
                "to val.metrics, else PSNR/SSIM)"
            )
        if not opts.test.datasets:
            raise OptionsError(f"{opts.source}: test.datasets is empty: name at least one benchmark set")
    if not checkpoints:
        return [Job(o, o.test.checkpoint, o.test.model_name or o.name) for o in opts_list]  # type: ignore[union-attr]
    if len(checkpoints) == len(opts_list):
        return [Job(o, c, o.test.model_name or o.name) for o, c in zip(opts_list, checkpoints)]  # type: ignore[union-attr]
    if len(opts_list) == 1:
        o = opts_list[0]
        base = o.test.model_name or o.name  # type: ignore[union-attr]
        return [Job(o, c, f"{base}@{_checkpoint_label(c)}") for c in checkpoints]
    raise OptionsError(
        f"{len(checkpoints)} checkpoints for {len(opts_list)} option files: give one checkpoint per option "
        "file, or several checkpoints with a single option file"
    )


def _checkpoint_label(path: str) -> str:
    p = Path(path)
    return p.name if p.is_dir() else p.stem


# What an option file without test.metrics is scored with (when it has no val.metrics either).
DEFAULT_METRICS = (
    {"type": "PSNR", "crop_border": 0, "test_y_channel": False},
    {"type": "SSIM", "crop_border": 0, "test_y_channel": False},
)


def metric_configs(opts: Options) -> tuple[str, list[Any], str | None]:
    """The metrics ``tools/test.py`` scores with: (option key, configurations, note).

    ``test.metrics`` when given; else the file's ``val.metrics`` (the protocol it validates with);
    else PSNR and SSIM with BasicSR's protocol on RGB. The note (``None`` for ``test.metrics``)
    says which was used, so a leaderboard row is never blank without a word.
    """
    assert opts.test is not None
    if opts.test.metrics:
        return "test.metrics", list(opts.test.metrics), None
    if opts.val is not None and opts.val.metrics:
        names = ", ".join(str(m["type"]) for m in opts.val.metrics)
        return "val.metrics", list(opts.val.metrics), (
            f"{opts.source}: test.metrics is empty; scoring with the file's val.metrics ({names})"
        )
    return "test.metrics (default)", list(DEFAULT_METRICS), (
        f"{opts.source}: test.metrics is empty; scoring with PSNR and SSIM, BasicSR's protocol on RGB "
        "(8-bit, crop_border 0, no Y channel); set test.metrics to choose another"
    )


def build_metrics(opts: Options, log: Callable[[str], object] | None = None) -> list[Any]:
    """The metric objects of :func:`metric_configs` (its note goes to ``log``)."""
    from irframe.registry import METRICS

    key, configs, note = metric_configs(opts)
    if note is not None and log is not None:
        log(note)
    return [METRICS.build(cfg, path=f"{opts.source}: {key}.{i}") for i, cfg in enumerate(configs)]


def build_test_sets(opts: Options) -> dict[str, tuple[Any, EvalSettings]]:
    """The ``test.datasets`` (name -> (dataset, settings)), seeded with the options' seed.

    Sets degraded on the fly get ``seed`` from the options unless they set their own, so every
    run (and every model) sees the very same degraded inputs.
    """
    from irframe.registry import DATASETS

    assert opts.test is not None
    out: dict[str, tuple[Any, EvalSettings]] = {}
    for name, loader in opts.test.datasets.items():
        cfg = loader.dataset_cfg()
        cls = DATASETS.get(cfg["type"])
        if "seed" not in cfg and "seed" in inspect.signature(cls).parameters:
            cfg["seed"] = opts.seed
        dataset = DATASETS.build(cfg, path=f"{opts.source}: test.datasets.{name}")
        settings = EvalSettings(
            tile=opts.inference.tile,
            tile_overlap=opts.inference.tile_overlap,
            self_ensemble=opts.inference.self_ensemble,
            task=opts.inference.task,
            max_memory=opts.inference.max_memory_bytes,
            precision=opts.inference.precision,
            save_images=opts.test.save_images,
            report_images=opts.test.report_images,
            report_crop=opts.test.report_crop,
            batch_size=loader.batch_size,
            num_workers=loader.num_workers,
        )
        out[name] = (dataset, settings)
    return out


def check_precision(opts: Options, device: str | torch.device) -> None:
    """Refuse an ``inference.precision`` the device cannot run (fp16 on the CPU) before any work."""
    from irframe.nn.inference import autocast_context

    try:
        autocast_context(torch.device(device), opts.inference.precision)
    except ValueError as exc:
        raise OptionsError(f"{opts.source}: inference.precision: {exc}") from None


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def run_job(
    job: Job,
    out_dir: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict[str, Path]:
    """Evaluate one model on its option file's sets and merge the results into ``out_dir``."""
    from irframe.nn.stats import count_params

    opts = job.opts
    check_components(opts, paths=TEST_PATHS)
    check_precision(opts, device)
    metrics = build_metrics(opts, log=log_line)
    sets = build_test_sets(opts)
    key = opts.test.param_key if opts.test else "auto"
    loaded = load_for_eval(
        opts.model, job.checkpoint, name=job.name, device=device, source=opts.source, compile=opts.inference.compile,
        key=key, log=_note,
    )
    params = count_params(loaded.model)
    if opts.inference.backend == "onnxruntime":  # the cached graph runs, wrapped like the model (same spec)
        from irframe.nn.spec import resolve_task

        task = resolve_task(loaded.model, opts.inference.task)
        loaded.model = backend_model(loaded, "onnxruntime", device=device, task=task, weights_key=key, log=_note)
    else:
        _note(f"backend: torch ({device})")
    run = ModelRun(
        name=loaded.name,
        arch=loaded.arch,
        checkpoint=loaded.checkpoint,
        params=params,
        device=_device_label(torch.device(device)),
        options=opts.source,
        inference=opts.inference.model_dump(mode="json"),
        updated=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    report: dict[str, dict[str, Any]] = {}
    for set_name, (dataset, settings) in sets.items():
        adapt = getattr(loaded.model, "adapt_to_test_set", None)
        if callable(adapt):  # a classical method told the set's true degradation (BM3D sigma: auto)
            adapt(set_name, dataset)
        result, crops = evaluate_dataset(
            loaded, set_name, dataset, metrics, Path(out_dir), settings, device=device, progress=progress
        )
        run.datasets[set_name] = result
        report[set_name] = crops
        log_line(result_line(loaded.name, result, [MetricInfo.of(m) for m in metrics]))  # as soon as a set is done
    return update_leaderboard(out_dir, [run], [MetricInfo.of(m) for m in metrics], report)


def result_line(model: str, result: Any, infos: Sequence[MetricInfo]) -> str:
    """One line per finished set: scores, the degraded inputs' scores, images and median runtime."""
    def scores(values: dict[str, float]) -> str:
        return ", ".join(f"{i.name} {values[i.id]:.4f}" for i in infos if i.id in values)

    text = f"{model} | {result.name}: {scores(result.scores) or 'no scores (no ground truth)'}"
    if result.baseline:
        text += f" (degraded input: {scores(result.baseline)})"
    runtime = result.runtime_s
    return text + f" [{len(result.images)} images" + (f", {runtime:.3f} s/image]" if runtime is not None else "]")


def _device_label(device: torch.device) -> str:
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    return device.type


def run_benchmarks(
    option_files: Sequence[str],
    checkpoints: Sequence[str] = (),
    overrides: Sequence[str] = (),
    out_dir: str | None = None,
    *,
    device: str | torch.device | None = "cpu",
    progress: bool = True,
    precision: str | None = None,
    max_memory: int | str | None = None,
    param_key: str | None = None,
    threads: int | str | None = None,
    backend: str | None = None,
) -> dict[str, Path]:
    """Load the option files, evaluate every model and return the leaderboard files written.

    Each model's results are merged as soon as it finishes, so an interrupted run keeps the models
    already measured. Without ``out_dir`` each option file's ``test.results_root`` is used.
    ``param_key``, ``precision``, ``max_memory`` and ``threads`` (``--param-key``, ``--precision``,
    ``--max-memory``, ``--threads``) replace every file's ``test.param_key``,
    ``inference.precision``, ``inference.max_memory`` and ``threads`` when given (command-line
    flags, :class:`irframe.options.Flag`). An option file without ``model:`` is evaluated with the
    arch detected from its checkpoint. The first option file's ``threads`` sets torch's CPU
    threads (:func:`irframe.threads.configure_threads`, which prints its choice). ``backend``
    (``--backend``) replaces ``inference.backend``; ``device=None``: the CPU for the onnxruntime
    backend, else cuda if available.
    """
    from irframe.threads import configure_threads

    # the command line's settings are overrides of every file: validated by the schema, recorded in the leaderboard
    flags = [
        Flag("--precision", "inference.precision", precision),
        Flag("--max-memory", "inference.max_memory", max_memory),
        Flag("--param-key", "test.param_key", param_key),
        Flag("--threads", "threads", threads),
        Flag("--backend", "inference.backend", backend),
    ]
    opts_list = [
        load_options(path, overrides, flags=flags, check=True, paths=TEST_PATHS) for path in option_files
    ]  # all problems at once
    jobs = plan_jobs(opts_list, checkpoints)
    for job in jobs:  # without model: the checkpoint says which arch it is
        if job.opts.model is None and job.checkpoint is None:
            raise OptionsError(
                f"{job.opts.source}: no 'model:' section and no checkpoint: give --checkpoint (or test.checkpoint), "
                "whose arch is then detected, or add 'model:'"
            )
    for opts in opts_list:  # a problem in the last file fails before the first model runs
        check_precision(opts, _job_device(opts, device))
    workers = max((d.num_workers for o in opts_list for d in (o.test.datasets if o.test else {}).values()), default=0)
    configure_threads(opts_list[0].threads if opts_list else threads, workers=workers)
    paths: dict[str, Path] = {}
    for job in jobs:
        assert job.opts.test is not None
        paths = run_job(
            job, out_dir or job.opts.test.results_root, device=_job_device(job.opts, device), progress=progress
        )
    return paths


def _job_device(opts: Options, device: str | torch.device | None) -> str | torch.device:
    """The device given, else the default for the job's backend (:func:`~irframe.evaluate.models.default_device`)."""
    return device if device is not None else default_device(opts.inference.backend)
