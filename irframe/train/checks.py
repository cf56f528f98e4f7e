"""Everything about a training run that can be checked before its first iteration, checked then.

A value that only fails at the first validation (``inference.tile: 3`` on a model whose input must
be a multiple of 8, a validation pair whose sizes do not fit the model's scale) or deep inside the
first step (``gt_size: 12`` for a Restormer, ``betas: [2, 3]``, ``seed: -1``) costs the training
done until then, and the checkpoint due at that moment. :func:`check_option_values` runs on the
option values alone, before any data is read (the component mappings and paths are checked before
it, by :func:`irframe.options_checks.check_options`); :func:`check_model_and_data` once the model
and the datasets are built; both before the experiment folder is made. Every problem is one :class:`OptionsError` or
:class:`DataError` line naming the key or the file.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from irframe.errors import DataError, OptionsError

SEED_MAX = 2**63 - 1
"""Largest ``seed``: torch's generators take 64-bit seeds (``2**70`` overflowed inside torch)."""
MAX_SAMPLES_PER_PASS = 2**27
"""Most samples in one shuffled pass over the training data (``len(dataset) * enlarge_ratio``):
the sampler holds the pass's order in memory, 8 bytes a sample (1 GiB here)."""


def check_option_values(opts: Any, resume: str | None = None) -> None:
    """Checks on the option values alone: ``seed``, ``name``, ``path.experiments_root`` (writable
    unless the run resumes an existing experiment), and the optimizer and scheduler built once on a
    dummy parameter (their own range checks, e.g. Adam's ``betas`` in [0, 1) and ``weight_decay``
    >= 0, as one line naming ``train.optim``), and the experiment trackers (each known to accelerate
    and installed: :func:`~.trackers.check_trackers`)."""
    from irframe.train.experiment import check_experiments_root, check_name
    from irframe.train.trackers import check_trackers

    source = opts.source
    if not 0 <= opts.seed <= SEED_MAX:
        raise OptionsError(f"{source}: seed: {opts.seed} is out of range; expected 0 <= seed <= 2**63 - 1")
    check_name(opts.name, source)
    root = Path(opts.path.experiments_root)
    resumes_in_place = resume is not None and (resume != "auto" or (root / opts.name).is_dir())
    check_experiments_root(root, source, writable=not resumes_in_place)
    if opts.train is not None:
        check_optimizer(opts.train, source)
    check_trackers(opts)


def check_optimizer(train: Any, source: str) -> None:
    """Build ``train.optim`` and ``train.scheduler`` over one dummy parameter: a value the
    optimizer or scheduler refuses fails now, naming the section."""
    from irframe.train.optim import build_optimizer, build_scheduler

    dummy = nn.Linear(1, 1, bias=False)
    try:
        optimizer = build_optimizer(dummy, train.optim)
    except OptionsError:
        raise
    except (ValueError, TypeError) as exc:
        raise OptionsError(f"{source}: train.optim: {exc}") from None
    try:
        build_scheduler(optimizer, train.scheduler, train.warmup_iter, train.warmup_schedule)
    except OptionsError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise OptionsError(f"{source}: train.scheduler: {exc}") from None


def check_model_and_data(
    opts: Any, model: nn.Module, train_set: Dataset, val_sets: Mapping[str, Dataset], metrics: list[Any]
) -> None:
    """Checks that need the built model, datasets and validation metrics (see the module doc): the
    training patch sizes against the model's size multiple, the size of one shuffled pass, the
    ``inference:`` options against the model, and every validation sample against the model's
    channels and scale (each metric is tried on the first). Every process checks every sample, so
    all of them agree on the outcome. The global random streams are left as they were (a dataset
    may draw from them), so the checks never change what the run trains on."""
    from irframe.utils import get_rng_state, set_rng_state

    check_patch_sizes(opts, model)
    check_pass_size(opts, train_set)
    if opts.val is not None and val_sets:
        rng = get_rng_state()
        try:
            check_inference(opts, model)
            check_val_samples(opts, model, val_sets, metrics)
        finally:
            set_rng_state(rng)


def check_patch_sizes(opts: Any, model: nn.Module) -> None:
    """``datasets.train.gt_size`` (and ``train.progressive.patch_sizes``) must give LQ patches the
    model accepts: a multiple of ``spec.size_multiple`` after dividing by ``spec.scale``."""
    from irframe.nn.spec import get_spec

    spec = get_spec(model)
    loader = opts.datasets.get("train")
    if spec.tasks or loader is None:  # a multi-task model's scale depends on the task
        return
    sizes: list[tuple[str, Any]] = [("datasets.train.gt_size", (loader.model_extra or {}).get("gt_size"))]
    if opts.train is not None and opts.train.progressive is not None:
        sizes += [(f"train.progressive.patch_sizes.{i}", p) for i, p in enumerate(opts.train.progressive.patch_sizes)]
    step = spec.size_multiple * spec.scale
    for key, size in sizes:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            continue  # absent (whole images) or refused by the dataset itself
        if size % step:
            lq = f"{size}/{spec.scale} = {size / spec.scale:g}" if spec.scale != 1 else f"{size}"
            fits = max(step, round(size / step) * step)
            raise OptionsError(
                f"{opts.source}: {key}: {size} gives input patches of {lq} pixels, but {type(model).__name__} takes "
                f"multiples of {spec.size_multiple} (spec.size_multiple, scale {spec.scale}); use a multiple of "
                f"{step}, e.g. {fits}"
            )


def check_pass_size(opts: Any, train_set: Dataset) -> None:
    """``len(dataset) * enlarge_ratio`` must stay within :data:`MAX_SAMPLES_PER_PASS`."""
    loader = opts.datasets.get("train")
    if loader is None:
        return
    n = len(train_set) * loader.enlarge_ratio  # type: ignore[arg-type]
    if n > MAX_SAMPLES_PER_PASS:
        raise OptionsError(
            f"{opts.source}: datasets.train.enlarge_ratio: {loader.enlarge_ratio} x {len(train_set)} samples "  # type: ignore[arg-type]
            f"= {n:.3g} per shuffled pass, more than the {MAX_SAMPLES_PER_PASS} the sampler can hold "
            f"(8 bytes each); use an enlarge_ratio of at most {max(1, MAX_SAMPLES_PER_PASS // len(train_set))}"  # type: ignore[arg-type]
        )


class _Probe(nn.Module):
    """Stands in for the model in :func:`~irframe.nn.inference.restore`: the same spec, tasks,
    channels and scale, no computation (so the ``inference:`` options meet restore's own checks)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_real", model)  # not a sub-module
        self.anchor = nn.Parameter(torch.zeros(1))

    @property
    def spec(self) -> Any:
        from irframe.nn.spec import get_spec

        real: nn.Module = self.__dict__["_real"]
        return get_spec(real)

    def resolve_task(self, task: Any) -> Any:
        resolver = getattr(self.__dict__["_real"], "resolve_task", None)
        return resolver(task) if callable(resolver) else task

    def set_task(self, task: Any) -> None:
        setter = getattr(self.__dict__["_real"], "set_task", None)
        if callable(setter):
            setter(task)

    def forward(self, x: torch.Tensor, task: Any = None) -> torch.Tensor:
        spec = self.spec
        y = x[:, :1].expand(-1, spec.out_channels, -1, -1)
        return torch.nn.functional.interpolate(y, scale_factor=spec.scale) if spec.scale != 1 else y


def check_inference(opts: Any, model: nn.Module, task: Any = None) -> None:
    """``inference.tile``, ``tile_overlap`` and ``task`` against the model, as validation will use them."""
    from irframe.nn.inference import restore
    from irframe.nn.spec import get_spec

    inf = opts.inference
    probe = _Probe(model)
    spec = get_spec(model)
    side = max(8, spec.size_multiple)
    tile = inf.tile if isinstance(inf.tile, int) else None  # "auto" is planned per image from memory
    task = task if task is not None else inf.task
    try:
        restore(probe, torch.zeros(1, spec.in_channels, side, side), tile=tile, tile_overlap=inf.tile_overlap,
                task=task, self_ensemble=False)
    except (ValueError, TypeError, KeyError) as exc:
        text = str(exc).removeprefix("restore: ")
        key = "tile_overlap" if "overlap" in text else "tile" if "tile" in text else "task" if "task" in text else ""
        raise OptionsError(
            f"{opts.source}: inference{'.' + key if key else ''}: {text} (validation restores with the inference: "
            "options; refused before training)"
        ) from None


def check_val_samples(opts: Any, model: nn.Module, val_sets: Mapping[str, Dataset], metrics: list[Any]) -> float:
    """Read every validation sample once (the dataset's own checks: files, pairs) and check it
    against the model: input channels, and a GT of ``scale`` times the input size. Each of the
    built ``metrics`` (``val.metrics``) is tried on the first sample. Returns the seconds it took."""
    from irframe.nn.spec import get_spec, spec_for_task

    start = time.perf_counter()
    tried = False
    for name, dataset in val_sets.items():
        for index in range(len(dataset)):  # type: ignore[arg-type]
            sample = _exact(dataset, index)
            if sample is None:
                continue  # skipped under skip_bad (the dataset warned)
            if "gt" not in sample:
                raise OptionsError(f"datasets.{name}: validation needs ground truth ('gt'), the dataset gives none")
            lq, gt = sample["lq"], sample["gt"]
            task = sample.get("task")
            if task is not None:
                check_inference(opts, model, task)
            spec = spec_for_task(model, task) if task is not None else get_spec(model)
            where = f"datasets.{name}: sample {index} ({sample.get('name', '?')})"
            if lq.shape[-3] != spec.in_channels:
                raise DataError(
                    f"{where}: the input has {lq.shape[-3]} channels, the model takes {spec.in_channels}"
                )
            want = (lq.shape[-2] * spec.scale, lq.shape[-1] * spec.scale)
            if tuple(gt.shape[-2:]) != want:
                raise DataError(
                    f"{where}: the GT is {gt.shape[-2]}x{gt.shape[-1]}, but the model (scale {spec.scale}) restores "
                    f"the {lq.shape[-2]}x{lq.shape[-1]} input to {want[0]}x{want[1]}; validation would fail at its "
                    "first round"
                )
            if not tried:
                _try_metrics(opts, metrics, gt)
                tried = True
    return time.perf_counter() - start


def _exact(dataset: Dataset, index: int) -> Mapping[str, Any] | None:
    """Sample ``index`` exactly (never a neighbour in a bad one's place); ``None`` when skipped."""
    exact = getattr(dataset, "sample_or_skip", None)
    sample = exact(index) if callable(exact) else dataset[index]
    return sample if isinstance(sample, Mapping) else None


def _try_metrics(opts: Any, metrics: list[Any], gt: torch.Tensor) -> None:
    batch = gt[None].float().clamp(0, 1)
    for i, metric in enumerate(metrics):
        try:
            metric(batch, batch)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise OptionsError(
                f"{opts.source}: val.metrics.{i}: {exc} (tried on the first validation image, "
                f"{gt.shape[-2]}x{gt.shape[-1]})"
            ) from None
