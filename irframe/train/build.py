"""From validated options to a running :class:`~irframe.train.trainer.Trainer`.

:func:`run_training` is what ``tools/train.py`` (and ``irframe.train.cli``) call, under plain
``python`` or ``accelerate launch`` / ``torchrun``. Everything is built through the registries:
the arch, losses, optimizer, scheduler, datasets and metrics.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from irframe.errors import CheckpointError, DataError, DistributedError, IrframeError, OptionsError, error_message
from irframe.nn.spec import get_spec
from irframe.nn.weights import unwrap_model
from irframe.options import TRAIN_PATHS, Options, check_components, dump_options, save_options
from irframe.options_checks import checkpoint_path_problem
from irframe.registry import ARCHS, METRICS
from irframe.train.checks import check_model_and_data, check_option_values
from irframe.train.data import (
    Shard,
    build_train_dataset,
    build_val_datasets,
    train_batches,
    validation_options,
)
from irframe.train.experiment import Experiment, claim_experiment, discard_unused, release
from irframe.train.finetune import PretrainReport, load_pretrained
from irframe.train.logger import LOGGER_NAME, TrainLogger
from irframe.train.mixing import MixingAugment
from irframe.train.resume import Change, check_changes, diff_options, saved_options
from irframe.train.step import TrainStep, build_step
from irframe.train.trackers import accelerator_kwargs, start_trackers, tracker_names
from irframe.train.trainer import LoopSettings, Trainer, TrainingInterrupted
from irframe.train.training_state import Checkpointer
from irframe.train.validation import Validator, ValResult
from irframe.utils import seed_everything


@dataclass
class TrainResult:
    """What a finished run leaves behind."""

    experiment: Path
    iteration: int
    last_checkpoint: Path | None
    val: ValResult | None
    is_main: bool = True  # whether this process is the one that reports


@dataclass
class RunData:
    """The datasets (and validation metrics) of a run, built before anything is written."""

    train: Dataset
    val: dict[str, Dataset]
    metrics: list[Any] | None = None


def build_model(opts: Options) -> nn.Module:
    """The arch of ``opts.model``, seeded so that every process starts from the same weights."""
    seed_everything(opts.seed, deterministic=opts.deterministic)
    return ARCHS.build(_model_options(opts), path="model")


def _model_options(opts: Options) -> dict[str, Any]:
    """``opts.model``, which training needs (tools/test.py and tools/infer.py may go without)."""
    if opts.model is None:
        raise OptionsError(f"{opts.source}: model: missing required key (training builds the arch from it)")
    return opts.model


def needs_unused_parameters(model: nn.Module, opts: Options, step: TrainStep | None = None) -> bool:
    """Whether DDP must allow parameters that get no gradient in a step.

    The option ``train.find_unused_parameters`` decides when set; otherwise the model does: a true
    ``has_unused_parameters`` attribute or a non-empty ``unused_parameter_prefixes`` (PromptIR keeps
    layers its forward never uses), or several ``spec.tasks`` (IPT: the other tasks' heads and
    tails are idle in a one-task batch); and the training step does (``has_unused_parameters``:
    one of its other networks has such parameters).
    """
    assert opts.train is not None
    if opts.train.find_unused_parameters is not None:
        return opts.train.find_unused_parameters
    if step is not None and step.has_unused_parameters:
        return True
    declared = bool(getattr(model, "has_unused_parameters", False)) or bool(
        getattr(model, "unused_parameter_prefixes", ())
    )
    return declared or len(get_spec(model).tasks) > 1


def training_compile_options(on_cpu: bool) -> dict[str, Any] | None:
    """Inductor options for ``train.compile`` (``torch.compile(options=...)``), ``None`` for its defaults.

    On the CPU, channels-last layouts in the backward graph too: inductor decides its layout
    optimisation per graph from the ``convolution`` nodes it holds, and a backward graph holds only
    ``convolution_backward``, so its gradients of the depth-wise convolutions were laid out NCHW and
    oneDNN's backward ran 3.6x slower on them (45 ms against 12.6 ms per call in a PromptIR step,
    which made the compiled step slower than eager: ``benchmarks/RESULTS.md``). GPUs keep inductor's
    own heuristics (not measured there).
    """
    return {"force_layout_optimization": True} if on_cpu else None


def make_accelerator(opts: Options, find_unused: bool) -> Any:
    """The :class:`accelerate.Accelerator` for this run (device, DDP settings, mixed precision)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs

    assert opts.train is not None
    extra: dict[str, Any] = {}
    if opts.train.compile:
        from accelerate.utils import TorchDynamoPlugin

        from irframe.nn.inference import use_compile_cache

        use_compile_cache()  # a resumed or repeated run reuses the kernels compiled before
        # prepare() wraps the (DDP) model in torch.compile; without the option, accelerate's own
        # configuration (`accelerate launch --dynamo_backend ...`) still decides.
        on_cpu = _cpu_only_distributed() or not torch.cuda.is_available()
        extra["dynamo_plugin"] = TorchDynamoPlugin(backend="inductor", options=training_compile_options(on_cpu))
    timeout = datetime.timedelta(seconds=opts.dist.timeout_s)
    init_elastic_process_group(timeout)
    return Accelerator(
        cpu=_cpu_only_distributed(),
        mixed_precision=opts.train.mixed_precision,
        kwargs_handlers=[
            DistributedDataParallelKwargs(find_unused_parameters=find_unused),
            # how long a process waits for the others before a collective fails (a hung rank)
            InitProcessGroupKwargs(timeout=timeout),
        ],
        # The trainer steps the scheduler itself, once per optimizer step.
        step_scheduler_with_optimizer=False,
        **accelerator_kwargs(opts),  # the experiment trackers (logger.tensorboard, logger.trackers)
        **extra,
    )


def elastic_store_prefix(env: Mapping[str, str] | None = None) -> str | None:
    """The key namespace of this torchrun attempt in the agent's store, or ``None`` when there is
    no shared agent store (plain ``python``, ``accelerate launch``, one process).

    Since torch 2.5 the elastic agent hosts the store the workers rendezvous in
    (``TORCHELASTIC_USE_AGENT_STORE=True``) and keeps that one store across restarts
    (``--max-restarts``), while ``init_process_group(env://)`` uses the same keys in every attempt
    (pytorch/pytorch#135712). A restarted worker can then read the address its peer published in
    the attempt before, whenever it gets there first (a 50 ms head start is enough): gloo connects
    to a socket that died with the old process ("connectFullMesh failed ... Connection refused")
    or waits on it. Keys under ``<run id>/attempt_<TORCHELASTIC_RESTART_COUNT>`` are fresh in
    every attempt. (The count is the agent's own: consistent on one node; nodes of a multi-node
    job that restarted for different reasons could disagree, which the shared keys break too.)
    """
    env = os.environ if env is None else env
    if env.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or int(env.get("WORLD_SIZE", "1") or 1) < 2:
        return None
    return f"irframe/{env.get('TORCHELASTIC_RUN_ID', 'none')}/attempt_{env.get('TORCHELASTIC_RESTART_COUNT', '0')}"


def init_elastic_process_group(timeout: datetime.timedelta) -> bool:
    """Under torchrun, set up the default process group in this attempt's own namespace of the
    agent's store (see :func:`elastic_store_prefix`), before accelerate would set it up in the
    shared one; accelerate then uses the group as it is. Returns whether it did anything (not
    under torchrun's agent store, or a group exists already: nothing)."""
    prefix = elastic_store_prefix()
    if prefix is None or not torch.distributed.is_available() or torch.distributed.is_initialized():
        return False
    store, rank, world_size = next(torch.distributed.rendezvous("env://", timeout=timeout))
    backend = "gloo" if _cpu_only_distributed() else "nccl"  # what accelerate picks for CPU / CUDA
    torch.distributed.init_process_group(
        backend, store=torch.distributed.PrefixStore(prefix, store), rank=rank, world_size=world_size, timeout=timeout
    )
    return True


def _cpu_only_distributed() -> bool:
    """A multi-process launch (torchrun / accelerate launch) on a machine without CUDA.

    accelerate only sets up its CPU (gloo) process group when asked for the CPU explicitly.
    """
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    return world > 1 and not torch.cuda.is_available()


def prepare_experiment(opts: Options, resume: str | None, accelerator: Any) -> Experiment:
    """Decide, create and lock the experiment folder on the main process; every process learns it.

    Only the main process holds the folder's lock (:mod:`.lock`); when it cannot claim the folder
    (in use by another run, not writable), every process raises the same error instead of waiting.
    """
    from accelerate.utils import broadcast_object_list

    holder: list[Any] = [None]
    if accelerator.is_main_process:
        try:
            exp = claim_experiment(opts.path.experiments_root, opts.name, resume)
            try:
                if not (exp.root / "options.yml").exists():
                    record_options(opts, exp)
            except OSError as exc:
                release(exp)
                raise OptionsError(f"{exp.root}: cannot write options.yml ({exc.strerror or exc})") from None
            holder[0] = exp
        except IrframeError as exc:
            holder[0] = exc
    if accelerator.num_processes > 1:
        broadcast_object_list(holder)
    if isinstance(holder[0], BaseException):
        raise holder[0]
    return holder[0]


def record_options(opts: Options, exp: Experiment) -> None:
    """Keep the options a run uses: ``options.yml`` in a new folder; a resumed run whose options
    differ from the newest saved ones adds ``options_<time>.yml`` (identical ones add nothing;
    ``path.resume``, which ``--resume`` sets, says how the run started, not what it trains)."""
    saved = opts.model_copy(deep=True)
    saved.name = exp.name
    target = exp.root / "options.yml"
    if not target.exists():
        save_options(saved, target)
        return
    newest = max([target, *exp.root.glob("options_*.yml")], key=lambda p: (p != target, p.name))
    text = newest.read_text(encoding="utf-8")
    same = saved.model_copy(deep=True)
    same.path.resume = _saved_resume(text)
    if text != dump_options(same):
        stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S_%f")
        save_options(saved, exp.root / f"options_{stamp}.yml")


def _saved_resume(text: str) -> str | None:
    """The ``path.resume`` of a saved options file (``None`` when it has none or cannot be read)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    path = data.get("path") if isinstance(data, dict) else None
    resume = path.get("resume") if isinstance(path, dict) else None
    return resume if isinstance(resume, str) else None


def check_val_precision(opts: Options, device: torch.device | str) -> None:
    """Refuse an ``inference.precision`` that validation cannot run on ``device`` (fp16 on the CPU)
    now, rather than at the first validation after hours of training."""
    from irframe.nn.inference import autocast_context

    try:
        autocast_context(torch.device(device), opts.inference.precision)
    except ValueError as exc:
        raise OptionsError(f"{opts.source}: inference.precision: {exc}") from None


def build_val_metrics(opts: Options) -> list[Any]:
    """The metrics of ``val.metrics``, built (none without a ``val`` section)."""
    if opts.val is None:
        return []
    return [METRICS.build(cfg, path=f"val.metrics.{i}") for i, cfg in enumerate(opts.val.metrics)]


def build_validator(
    opts: Options, accelerator: Any, exp: Experiment, datasets: dict[str, Dataset] | None = None,
    metrics: list[Any] | None = None,
) -> Validator | None:
    """The validator, if the options ask for validation (``val`` and a validation dataset).

    Validation restores with the ``inference:`` options: ``tile`` (a size, or ``auto``: the largest
    tile that fits ``max_memory``, planned per image from a memory probe made once per model),
    ``tile_overlap``, ``self_ensemble``, ``task`` and ``precision``.

    ``datasets``, ``metrics``: the already built validation datasets and metrics (built here when ``None``).
    """
    if opts.val is None or not validation_options(opts):
        return None
    from accelerate.utils import gather_object

    from irframe.nn.autotile import AutoTiler
    from irframe.nn.inference import restore

    check_val_precision(opts, accelerator.device)
    metrics = metrics if metrics is not None else build_val_metrics(opts)
    inf = opts.inference
    log = logging.getLogger(LOGGER_NAME).info if accelerator.is_main_process else None
    # One tiler per validated model (the trained weights, the EMA copy): each probes its own model once.
    tilers: dict[int, AutoTiler] = {}

    def run(model: nn.Module, lq: torch.Tensor, task: Any) -> torch.Tensor:
        task = task if task is not None else inf.task
        kw: dict[str, Any] = {"tile": inf.tile, "tile_overlap": inf.tile_overlap}
        if inf.tile == "auto":
            tiler = tilers.get(id(model))
            if tiler is None:  # the tiler keeps the model alive, so its id is never reused
                tiler = tilers[id(model)] = AutoTiler(
                    model, inf.max_memory_bytes, overlap=inf.tile_overlap, precision=inf.precision,
                    self_ensemble=inf.self_ensemble, log=log,
                )
            kw = tiler(lq, task=task).restore_kwargs()
        return restore(model, lq, self_ensemble=inf.self_ensemble, task=task, precision=inf.precision, **kw)

    workers = max((loader.num_workers for loader in validation_options(opts).values()), default=0)
    return Validator(
        datasets if datasets is not None else build_val_datasets(opts),
        metrics,
        run,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
        gather=gather_object if accelerator.num_processes > 1 else (lambda records: records),
        save_dir=exp.visualization if opts.val.save_images else None,
        max_images=opts.val.max_images,
        num_workers=workers,
        device=accelerator.device,
        # a few images for the experiment trackers (the main process sends them)
        keep_samples=opts.logger.val_images if accelerator.is_main_process and tracker_names(opts.logger) else 0,
    )


def loop_settings(opts: Options) -> LoopSettings:
    """The loop's numbers from the ``train``, ``val`` and ``logger`` sections."""
    train, val = opts.train, opts.val
    assert train is not None
    return LoopSettings(
        total_iter=train.total_iter,
        grad_accum=train.grad_accum,
        print_freq=opts.logger.print_freq,
        val_freq=val.freq if val is not None else None,
        checkpoint_freq=opts.logger.checkpoint_freq,
        best_metric=val.best_metric if val is not None else None,
        val_use_ema=val.use_ema if val is not None else True,
    )


def build_trainer(
    opts: Options,
    accelerator: Any,
    model: nn.Module,
    exp: Experiment,
    data: RunData | None = None,
    pretrained: PretrainReport | None = None,
    step: TrainStep | None = None,
) -> Trainer:
    """Build every collaborator and the trainer (resuming from ``exp.resume_from`` if set).

    ``data``: the already built datasets (built here when ``None``). ``pretrained``: the report of
    ``train.pretrain`` already loaded into ``model`` (loaded here when ``None``). ``step``: the
    training step of ``train.step`` over ``model`` (:func:`~.step.build_step`; built here when
    ``None``), not yet prepared.
    """
    train = opts.train
    assert train is not None
    step = step if step is not None else build_step(opts, model)
    ema = step.ema
    checkpointer = Checkpointer(
        exp.checkpoints,
        opts.logger.keep_checkpoints,
        _model_options(opts),
        is_main=accelerator.is_main_process,
        gather=_gather_one if accelerator.num_processes > 1 else (lambda obj: [obj]),
        barrier=accelerator.wait_for_everyone,
        options=opts.to_dict(),
    )
    notes = [exp.message]
    state: dict[str, Any] | None = None
    if exp.resume_from is not None:
        changes: list[Change] = []

        def check(state: dict[str, Any], folder: Path) -> None:  # before any weights are loaded
            changes[:] = _check_resume_options(opts, exp, state, folder, notes, get_spec(model).in_channels)

        state = _restore_newest_intact(exp, checkpointer, model, step, notes, check)
        _apply_resume_changes(opts, exp, state, changes, step, notes)
        if state.get("world_size") != accelerator.num_processes:
            notes.append(
                f"the checkpoint was written by {state.get('world_size')} processes, this run has "
                f"{accelerator.num_processes}: the global batch and the random streams differ from the original run"
            )
    elif train.pretrain is not None:
        notes.append((pretrained or load_pretrained(model, train.pretrain, config=opts.model)).summary())
        if ema is not None:
            ema.model.load_state_dict(model.state_dict())
    notes.extend(step.notes)
    step.prepare(accelerator)  # the networks and optimizers go to accelerate (DDP, mixed precision)
    model = step.model
    if state is not None and state.get("scaler") is not None and getattr(accelerator, "scaler", None) is not None:
        accelerator.scaler.load_state_dict(state["scaler"])

    multitask = len(get_spec(unwrap_model(model)).tasks) > 1
    shard = Shard(accelerator.process_index, accelerator.num_processes)
    if state is not None and int(state["iteration"]) >= train.total_iter:
        batches: Iterator[Mapping[str, Any]] = iter(())  # nothing to train (the trainer says so): no sampler
    else:
        batches = train_batches(
            opts, shard, start=int(state["micro_step"]) if state else 0, multitask=multitask,
            dataset=data.train if data is not None else None,
        )
    validator = build_validator(
        opts, accelerator, exp, data.val if data is not None else None, data.metrics if data is not None else None
    )
    settings = loop_settings(opts)
    if validator is not None and settings.best_metric is not None:
        validator.higher_is_better(settings.best_metric)  # an unknown name fails now, not at the first validation
    if validator is not None and state is not None and state.get("best"):
        _check_best_metric(opts, exp, state["best"], settings.best_metric or validator.keys[0])
    logger = TrainLogger(
        exp.root / "train.log",
        start_trackers(accelerator, opts, exp, int(state["iteration"]) if state else 0),
        train.total_iter,
        int(state["iteration"]) if state else 0,
        accelerator.is_main_process,
        progress_bar=opts.logger.progress_bar,
    )
    for note in [*notes, _batch_note(opts, accelerator)]:
        logger.info(note)
    trainer = Trainer(
        accelerator, step, batches, settings, checkpointer, logger, validator=validator, state=state,
        mixing=MixingAugment.from_options(train.mixing_augs, opts.seed, accelerator.process_index),
    )
    # Last, so that nothing built above consumes random numbers of the restored streams.
    if state is not None and not Checkpointer.apply_rng(state, accelerator.process_index):
        logger.warning(
            f"{exp.resume_from}: no RNG state for process {accelerator.process_index}; "
            "its random stream restarts from the seed"
        )
    return trainer


def _restore_newest_intact(
    exp: Experiment, checkpointer: Checkpointer, model: nn.Module, step: TrainStep, notes: list[str],
    check: Callable[[dict[str, Any], Path], None] | None = None,
) -> dict[str, Any]:
    """Restore ``exp.resume_from`` into ``model``, the EMA and the step's further networks,
    optimizers and schedules; one that cannot be read (or lacks its EMA weights) falls back to
    the next older complete checkpoint in ``exp.fallbacks``, with a note naming both.
    ``check(state, folder)`` sees each state before its weights are loaded; its
    :class:`OptionsError` (options a resume may not change) ends the resume at once."""
    assert exp.resume_from is not None  # called only when resuming
    candidates = [exp.resume_from, *exp.fallbacks]
    for i, folder in enumerate(candidates):
        try:
            # Order matters: the scheduler was built (it set the initial rate); now both get their state.
            state = checkpointer.restore(folder, model, step.ema, check=check, networks=step.networks())
            step.load_state_dict(state)
            return state
        except OptionsError:
            raise  # the options, not the checkpoint: an older one would be refused alike
        except (CheckpointError, KeyError, ValueError, RuntimeError) as exc:
            reason = str(exc) if isinstance(exc, CheckpointError) else f"{folder}: {type(exc).__name__}: {exc}"
            if i + 1 == len(candidates):
                raise CheckpointError(f"cannot resume: {reason}") from None
            notes.append(f"{reason}; falling back to the older complete checkpoint {candidates[i + 1]}")
    raise AssertionError("unreachable")


def _check_resume_options(
    opts: Options, exp: Experiment, state: dict[str, Any], folder: Path, notes: list[str], channels: int | None = None
) -> list[Change]:
    """Compare the options with those ``folder`` was trained with: refuse the changes a resume may
    not make (one line naming the keys, :mod:`.resume`; ``channels``: the built model's input
    channels, to name a gray or RGB checkpoint); return the others."""
    old = saved_options(state, exp.source or exp.root)
    if old is None:
        notes.append(
            f"{folder}: the options it was trained with are not known (no saved options); changed options are "
            "not checked"
        )
        return []
    changes = diff_options(old, opts.to_dict())
    check_changes(changes, opts.source, folder, channels=channels)
    return changes


def _apply_resume_changes(
    opts: Options, exp: Experiment, state: dict[str, Any], changes: list[Change], step: TrainStep, notes: list[str]
) -> None:
    """Apply the accepted option changes to the restored optimizers and schedules (a schedule is
    rebuilt at the resumed iteration) and note them; also say how EMA weights were restored."""
    assert opts.train is not None and exp.resume_from is not None
    ema = step.ema
    line = step.apply_resume_changes(changes)
    if line is not None:
        notes.append(line)
    if ema is not None and state.get("ema") is None:
        notes.append(
            f"train.ema_decay {opts.train.ema_decay}: the resumed checkpoint has no EMA weights (saved without "
            "EMA); the average starts from its weights"
        )
    elif ema is None and state.get("ema") is not None:
        notes.append("train.ema_decay 0: the EMA weights of the resumed checkpoint are not used by this run")


def _check_best_metric(opts: Options, exp: Experiment, best: dict[str, Any], key: str) -> None:
    """A resumed run keeps tracking the metric its ``best/`` was chosen by."""
    if best.get("metric") != key:
        raise OptionsError(
            f"{opts.source}: val.best_metric: the resumed run chose its best checkpoint by {best.get('metric')!r} "
            f"({exp.checkpoints / 'best'}); tracking {key!r} instead would replace it by another measure. Keep "
            f"val.best_metric: {best.get('metric')} (and val.metrics), or start a new experiment with train.pretrain"
        )


def _gather_one(obj: Any) -> list[Any]:
    from accelerate.utils import gather_object

    return gather_object([obj])


def _batch_note(opts: Options, accelerator: Any) -> str:
    """The global batch: per-process batch x processes x accumulation steps (per stage if progressive)."""
    assert opts.train is not None
    n, accum = accelerator.num_processes, opts.train.grad_accum
    prog = opts.train.progressive
    per_process = prog.batch_sizes if prog is not None else [opts.datasets["train"].batch_size]
    stages = ", ".join(f"{b * n * accum} = {b} x {n} x {accum}" for b in per_process)
    return (
        f"global batch (per process x processes x accumulation): {stages}"
        + (" (per progressive stage)" if prog is not None else "")
        + f"; device {accelerator.device}, mixed precision {opts.train.mixed_precision}"
        + (", torch.compile" if opts.train.compile else "")
        + (f", DDP find_unused_parameters {_ddp_find_unused(accelerator)}" if n > 1 else "")
    )


def _ddp_find_unused(accelerator: Any) -> bool:
    handler = getattr(accelerator, "ddp_handler", None)
    return bool(getattr(handler, "find_unused_parameters", False))


def run_training(opts: Options, resume: str | None = None) -> TrainResult:
    """Train with ``opts`` (validated); ``resume`` is ``None``, ``"auto"`` or a checkpoint folder.

    Everything that can be checked before training is checked before the experiment folder is
    made (:mod:`.checks`); a run that fails before its first iteration (an unreadable training file
    in the first batch too; Ctrl-C once training started excepted) removes the folder it made when
    nothing but its own start-up files is in it. A training file that cannot be read is refused
    naming ``datasets.train.skip_bad`` (:func:`skip_bad_hint`). The main process holds the folder's lock
    until the run ends. Ctrl-C ends the run with one line (:class:`~.trainer.TrainingInterrupted`).
    Ends the distributed process group (``accelerator.end_training``) whatever happens, since a
    process group left open makes some runs abort at exit.
    """
    if opts.train is None:
        raise OptionsError(f"{opts.source}: no train section; nothing to train")
    check_components(opts, paths=TRAIN_PATHS)
    resume = resume if resume is not None else opts.path.resume
    if resume is None and int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0") or 0) > 0:
        resume = "auto"  # torchrun --max-restarts: a restarted worker continues the last checkpoint
    check_option_values(opts, resume)  # seed, name, experiments_root, optimizer and scheduler values
    pretrain = opts.train.pretrain
    problem = checkpoint_path_problem(pretrain.path) if pretrain is not None else None
    if problem is not None:  # before any folder is made; a file, a checkpoint folder or zoo:NAME
        raise OptionsError(f"{opts.source}: train.pretrain.path: {problem}")
    with _restored_torch_flags():
        # Data first: a wrong data path or an unreadable database fails before the experiment
        # folder exists (and before the model is seeded, so this draws nothing from its streams).
        data = RunData(build_train_dataset(opts), build_val_datasets(opts))
        model = build_model(opts)
        # The step's own parts (a discriminator, the losses, the optimizers) are built and checked
        # now, before the experiment folder exists.
        step = build_step(opts, model)
        accelerator = make_accelerator(opts, needs_unused_parameters(model, opts, step))
        trainer = None
        exp: Experiment | None = None
        started = False
        try:
            if opts.val is not None and data.val:  # before the experiment folder exists
                check_val_precision(opts, accelerator.device)
                data.metrics = build_val_metrics(opts)
            check_model_and_data(opts, model, data.train, data.val, data.metrics or [])
            # A pretrain file that exists but is refused fails here, before the folder is made.
            pretrained = load_pretrained(model, pretrain, config=opts.model) if pretrain is not None else None
            exp = prepare_experiment(opts, resume, accelerator)
            trainer = build_trainer(opts, accelerator, model, exp, data, pretrained, step)
            if accelerator.is_main_process:
                record_options(opts, exp)  # a resumed run with changed options: after it could resume
            started = True
            try:
                val = trainer.fit()
            except KeyboardInterrupt:
                raise TrainingInterrupted(trainer.interruption()) from None
            except DataError as exc:  # a training file that cannot be read: say how to go on without it
                hinted = skip_bad_hint(exc, opts, data.train)
                if hinted is None:
                    raise
                raise hinted from None
            except RuntimeError as exc:
                if accelerator.num_processes > 1 and "timed out" in str(exc).lower():
                    raise DistributedError(
                        f"process {accelerator.process_index}: another process did not answer within "
                        f"dist.timeout_s={opts.dist.timeout_s} s (hung, stopped or dead); stopping. The last "
                        f"complete checkpoint in {exp.checkpoints} resumes with --resume auto"
                    ) from None
                raise
            return TrainResult(exp.root, trainer.iteration, trainer.last_checkpoint, val, accelerator.is_main_process)
        except BaseException as exc:
            # a folder made for nothing: options or data refused while building, or an error (a training
            # file that cannot be read) before the first iteration; Ctrl-C once started keeps it
            first = trainer is not None and trainer.iteration == 0 and not isinstance(exc, KeyboardInterrupt)
            if exp is not None and (not started or first) and accelerator.is_main_process:
                if trainer is not None:
                    trainer.logger.close()
                discard_unused(exp)  # only a folder this run made, holding nothing but its start-up files
            raise
        finally:
            if trainer is not None:
                trainer.logger.close()
            if exp is not None and accelerator.is_main_process:
                release(exp)
            _shutdown(accelerator)


def skip_bad_hint(exc: DataError, opts: Options, dataset: Dataset) -> DataError | None:
    """``exc`` (a training file that cannot be read) with the way to train on without it:
    ``datasets.train.skip_bad: true`` (as the option file spells it); ``None`` when the dataset
    has no such switch or has it on already."""
    if getattr(dataset, "skip_bad", None) is not False:
        return None
    message = error_message(exc)
    key = opts.spelled("datasets.train.skip_bad: true")
    return DataError(f"{message}; fix: replace or remove the file, or set {key} to skip unreadable files (warned)")


@contextlib.contextmanager
def _restored_torch_flags() -> Iterator[None]:
    """Put back the process-wide determinism flags a run changed (``deterministic: true``), so
    training from a notebook or a test leaves torch as it found it."""
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2], saved[3]


def _shutdown(accelerator: Any) -> None:
    accelerator.end_training()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    # Forget accelerate's process-wide singletons so another run in this process (tests, notebooks)
    # can choose other settings (mixed precision, DDP kwargs).
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
