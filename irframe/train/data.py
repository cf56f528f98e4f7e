"""Training and validation data from the options: datasets through the registry, the batch sampler,
and an endless stream of micro-batches positioned where a resumed run left off.

Every process builds the same datasets and the same batch sampler (same seed); the sampler hands
each process its slice of the same global batch, so a 1-process run with batch ``N*b`` sees exactly
the data of an ``N``-process run with batch ``b``, and their gradients (means over the global batch)
agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from irframe.data.samplers import ProgressiveBatchSampler, TaskBatchSampler, derive_seed
from irframe.errors import OptionsError
from irframe.options import LoaderOptions, Options
from irframe.registry import DATASETS
from irframe.utils import seed_worker

TRAIN_KEY = "train"
_LOADER_TAG = 7  # keeps the loader's seed apart from the samplers' streams (they use tags 0-2)


@dataclass(frozen=True)
class Shard:
    """This process's place among all processes."""

    rank: int = 0
    world_size: int = 1


def build_dataset(loader: LoaderOptions, name: str) -> Dataset:
    """Build ``datasets.<name>`` through the ``DATASETS`` registry."""
    return DATASETS.build(loader.dataset_cfg(), path=f"datasets.{name}")


def validation_options(opts: Options) -> dict[str, LoaderOptions]:
    """Every ``datasets`` entry except ``train`` is a validation set."""
    return {name: loader for name, loader in opts.datasets.items() if name != TRAIN_KEY}


def build_val_datasets(opts: Options) -> dict[str, Dataset]:
    """The validation datasets, by name."""
    return {name: build_dataset(loader, name) for name, loader in validation_options(opts).items()}


def build_batch_sampler(
    dataset: Dataset, loader: LoaderOptions, opts: Options, shard: Shard, start: int, multitask: bool = False
) -> Any:
    """The training batch sampler of :mod:`irframe.data.samplers` for this process.

    It yields :class:`~irframe.data.samplers.SampleKey` lists (index, patch size, per-draw seed),
    so data order *and* augmentations depend only on the seed and the iteration: the same on 1 or
    N processes, and after a resume. ``start`` counts micro-batches already consumed.

    * ``train.progressive``: Restormer's stages of patch and batch sizes;
    * a multi-task model (several ``spec.tasks``): one task per batch (the dataset must expose
      ``task_indices``, like ``AllInOneDataset``);
    * otherwise one stage of ``datasets.train.batch_size`` for the whole run.
    """
    assert opts.train is not None
    accum = opts.train.grad_accum
    micro_total = opts.train.total_iter * accum  # the samplers count micro-batches
    common = {"seed": opts.seed, "start_iter": start, "num_replicas": shard.world_size, "rank": shard.rank}
    enlarge = {"enlarge_ratio": loader.enlarge_ratio}
    prog = opts.train.progressive
    if prog is not None:
        if sum(prog.iters) < opts.train.total_iter:
            raise OptionsError(
                f"{opts.source}: train.progressive.iters sum to {sum(prog.iters)}, fewer than "
                f"train.total_iter {opts.train.total_iter}"
            )
        return ProgressiveBatchSampler.from_lists(
            len(dataset),  # type: ignore[arg-type]
            [n * accum for n in prog.iters],
            prog.batch_sizes,
            prog.patch_sizes,
            shuffle=loader.shuffle is not False,
            **common,
            **enlarge,
        )
    if multitask:
        if loader.enlarge_ratio != 1:
            raise OptionsError(f"{opts.source}: datasets.train.enlarge_ratio: not supported with multi-task batches")
        return TaskBatchSampler.from_dataset(dataset, loader.batch_size, micro_total, **common)
    return ProgressiveBatchSampler(
        len(dataset),  # type: ignore[arg-type]
        [(micro_total, loader.batch_size, None)],
        shuffle=loader.shuffle is not False,
        **common,
        **enlarge,
    )


def build_train_dataset(opts: Options) -> Dataset:
    """The training dataset ``datasets.train`` (an error if it is missing or empty)."""
    if TRAIN_KEY not in opts.datasets:
        raise OptionsError(f"{opts.source}: datasets.train is missing (the training dataset)")
    dataset = build_dataset(opts.datasets[TRAIN_KEY], TRAIN_KEY)
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise OptionsError(f"{opts.source}: datasets.train is empty")
    return dataset


def train_batches(
    opts: Options, shard: Shard, start: int = 0, multitask: bool = False, dataset: Dataset | None = None
) -> Iterator[Mapping[str, Any]]:
    """Endless training micro-batches for this process, starting after ``start`` consumed ones.

    ``dataset``: the already built :func:`build_train_dataset` (built here when ``None``).
    """
    if dataset is None:
        dataset = build_train_dataset(opts)
    loader_opts = opts.datasets[TRAIN_KEY]
    sampler = build_batch_sampler(dataset, loader_opts, opts, shard, start, multitask)
    workers = loader_opts.num_workers
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=loader_opts.pin_memory,
        persistent_workers=loader_opts.persistent_workers and workers > 0,
        prefetch_factor=loader_opts.prefetch_factor if workers > 0 else None,
        worker_init_fn=seed_worker,
        # Worker seeds come from this generator, not from the global RNG, so building the loader
        # neither depends on nor disturbs the run's random stream.
        generator=torch.Generator().manual_seed(derive_seed(opts.seed, _LOADER_TAG, start)),
    )
    return iter(loader)
