"""Resumable, seeded batch samplers: progressive patch sizes (Restormer) and one task per batch (IPT).

Both samplers are *batch samplers* for ``DataLoader(dataset, batch_sampler=...)``. They yield lists
of :class:`SampleKey` ``(index, patch_size, seed)`` that irframe datasets accept in
``__getitem__`` (besides plain integers):

* ``index``: the sample;
* ``patch_size``: the GT patch side to crop for this batch (``None``: the dataset's ``gt_size``),
  which is how the patch size changes between stages without rebuilding the workers;
* ``seed``: the seed of this draw's randomness (crop position, flips, online degradation), so a
  run's data - order *and* augmentations - is a pure function of the sampler seed and the iteration.

Determinism and resume: iteration ``i`` always gets the same batch, whatever iteration the sampler
started from (``start_iter``), so a resumed run continues exactly the sequence of an uninterrupted
one. The samples form one endless global stream (reshuffled every pass over the data); each
iteration takes ``num_replicas * batch_size`` consecutive samples and rank ``r`` gets the ``r``-th
slice, so the global data of an iteration does not depend on how many processes share it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from torch.utils.data import Sampler

from irframe.errors import OptionsError

# Stream tags keep the seeds of different random uses independent of each other.
_TAG_ORDER, _TAG_SAMPLE, _TAG_TASK = 0, 1, 2
_TASK_BLOCK = 1024  # task choices are drawn in blocks so resuming at iteration i costs i / 1024 draws


class SampleKey(NamedTuple):
    """What a batch sampler passes to ``dataset[key]``: see the module doc."""

    index: int  # type: ignore[assignment]  # the field shadows tuple.index on purpose
    patch_size: int | None = None
    seed: int | None = None


def derive_seed(*entropy: int) -> int:
    """A 63-bit seed derived from non-negative integers (``numpy.random.SeedSequence`` hashing)."""
    state = np.random.SeedSequence(list(entropy)).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


@dataclass(frozen=True)
class Stage:
    """One stage of a schedule: ``iters`` iterations of ``batch_size`` samples (per process) of
    ``patch_size`` GT patches (``None``: the dataset's own ``gt_size``)."""

    iters: int
    batch_size: int
    patch_size: int | None = None


def _check_common(seed: int, start_iter: int, num_replicas: int, rank: int, owner: str) -> None:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise OptionsError(f"{owner}.seed: expected a non-negative integer, got {seed!r}")
    if num_replicas < 1:
        raise OptionsError(f"{owner}.num_replicas: must be at least 1, got {num_replicas!r}")
    if not 0 <= rank < num_replicas:
        raise OptionsError(f"{owner}.rank: must be in [0, {num_replicas}), got {rank!r}")
    if start_iter < 0:
        raise OptionsError(f"{owner}.start_iter: must be >= 0, got {start_iter!r}")


def _as_stage(item: Any, i: int) -> Stage:
    where = f"ProgressiveBatchSampler.stages[{i}]"
    if isinstance(item, Stage):
        stage = item
    elif isinstance(item, Mapping):
        unknown = set(item) - {"iters", "batch_size", "patch_size"}
        if unknown or "iters" not in item or "batch_size" not in item:
            raise OptionsError(f"{where}: expected keys iters, batch_size[, patch_size], got {sorted(item)}")
        stage = Stage(int(item["iters"]), int(item["batch_size"]), item.get("patch_size"))
    elif isinstance(item, (list, tuple)) and len(item) in (2, 3):
        stage = Stage(int(item[0]), int(item[1]), item[2] if len(item) == 3 else None)
    else:
        raise OptionsError(f"{where}: expected (iters, batch_size, patch_size), got {item!r}")
    if stage.iters < 1 or stage.batch_size < 1 or (stage.patch_size is not None and int(stage.patch_size) < 1):
        raise OptionsError(f"{where}: iters, batch_size and patch_size must be positive, got {item!r}")
    return Stage(stage.iters, stage.batch_size, None if stage.patch_size is None else int(stage.patch_size))


class _Permutations:
    """Pass ``e`` over ``n`` items in a seeded order; the last two passes are cached.

    With ``enlarge_ratio`` r a pass holds every item r times in one shuffled order of ``n * r``
    (BasicSR's ``EnlargedSampler``), not r passes shuffled apart.
    """

    def __init__(self, n: int, entropy: tuple[int, ...], shuffle: bool, enlarge_ratio: int = 1) -> None:
        self.items, self.entropy, self.shuffle = n, entropy, shuffle
        self.n = n * enlarge_ratio  # positions per pass
        self._cache: dict[int, np.ndarray] = {}

    def __call__(self, epoch: int) -> np.ndarray:
        perm = self._cache.get(epoch)
        if perm is None:
            if self.shuffle:
                perm = np.random.default_rng([*self.entropy, epoch]).permutation(self.n)
            else:
                perm = np.arange(self.n)
            if self.n != self.items:
                perm = perm % self.items
            if len(self._cache) >= 2:
                self._cache.pop(min(self._cache))
            self._cache[epoch] = perm
        return perm

    def at(self, position: int) -> int:
        return int(self(position // self.n)[position % self.n])


class ProgressiveBatchSampler(Sampler[list[SampleKey]]):
    """Batch sampler whose batch size and patch size follow a schedule of stages.

    Restormer's progressive learning (``iters: [92000, 64000, 48000, 36000, 36000, 24000]``,
    ``mini_batch_sizes: [8, 5, 4, 2, 1, 1]``, ``gt_sizes: [128, 160, 192, 256, 320, 384]``) is
    ``ProgressiveBatchSampler.from_lists(len(ds), iters, mini_batch_sizes, gt_sizes, seed=...)``.
    A single stage ``[(total_iters, batch_size, None)]`` is a plain resumable infinite sampler.

    Args:
        dataset_len: number of samples in the dataset.
        stages: ``(iters, batch_size, patch_size)`` tuples (or mappings / :class:`Stage`);
            ``batch_size`` is per process, ``patch_size`` the GT patch side (``None``: dataset's).
        seed: the data seed (non-negative).
        start_iter: first iteration to yield (the iteration a resumed run continues from).
        num_replicas: number of processes sharing the stream (``accelerator.num_processes``).
        rank: this process (``accelerator.process_index``).
        shuffle: reshuffle every pass over the data (``False``: sequential order).
        enlarge_ratio: a pass shows every sample this many times (BasicSR's ``dataset_enlarge_ratio``).

    Use with accelerate: the sampler shards by ``rank`` itself, so with several processes the loader
    must **not** go through ``accelerator.prepare`` (it would shard the batches a second time, handing
    whole batches to processes in turn); on a single process ``prepare`` is harmless (it only moves
    batches to the device)::

        sampler = ProgressiveBatchSampler(len(ds), stages, seed=seed, start_iter=state.iter,
                                          num_replicas=accelerator.num_processes,
                                          rank=accelerator.process_index)
        loader = DataLoader(ds, batch_sampler=sampler, num_workers=4, pin_memory=True)
        for it, batch in zip(range(sampler.start_iter, sampler.total_iters), loader):
            batch = {k: v.to(accelerator.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            ...

    ``len(sampler)`` is the number of iterations left; :meth:`stage_at` tells the trainer which
    stage an iteration belongs to (for logging).
    """

    def __init__(
        self,
        dataset_len: int,
        stages: Sequence[Any],
        seed: int = 0,
        start_iter: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        enlarge_ratio: int = 1,
    ) -> None:
        owner = "ProgressiveBatchSampler"
        if dataset_len < 1:
            raise OptionsError(f"{owner}: the dataset is empty (dataset_len={dataset_len})")
        if enlarge_ratio < 1:
            raise OptionsError(f"{owner}.enlarge_ratio: must be at least 1, got {enlarge_ratio!r}")
        if not stages:
            raise OptionsError(f"{owner}.stages: at least one stage is required")
        _check_common(seed, start_iter, num_replicas, rank, owner)
        self.dataset_len = int(dataset_len)
        self.stages = [_as_stage(s, i) for i, s in enumerate(stages)]
        self.seed, self.num_replicas, self.rank = int(seed), int(num_replicas), int(rank)
        self.total_iters = sum(s.iters for s in self.stages)
        if start_iter > self.total_iters:
            raise OptionsError(
                f"{owner}.start_iter: {start_iter} is past the schedule's end ({self.total_iters} iterations)"
            )
        self.start_iter = int(start_iter)
        self._order = _Permutations(self.dataset_len, (self.seed, _TAG_ORDER), shuffle, int(enlarge_ratio))

    @classmethod
    def from_lists(
        cls,
        dataset_len: int,
        iters: Sequence[int],
        batch_sizes: Sequence[int],
        patch_sizes: Sequence[int | None],
        **kwargs: Any,
    ) -> ProgressiveBatchSampler:
        """Build from Restormer-style parallel lists (``iters``, ``mini_batch_sizes``, ``gt_sizes``)."""
        if not len(iters) == len(batch_sizes) == len(patch_sizes):
            raise OptionsError(
                f"ProgressiveBatchSampler: iters, batch sizes and patch sizes must have the same length, "
                f"got {len(iters)}, {len(batch_sizes)} and {len(patch_sizes)}"
            )
        return cls(dataset_len, list(zip(iters, batch_sizes, patch_sizes)), **kwargs)

    def set_start_iter(self, start_iter: int) -> None:
        """Resume from ``start_iter`` on the next ``iter()`` (equivalent to rebuilding the sampler)."""
        if not 0 <= start_iter <= self.total_iters:
            raise OptionsError(f"ProgressiveBatchSampler.start_iter: {start_iter} is outside [0, {self.total_iters}]")
        self.start_iter = int(start_iter)

    def stage_at(self, iteration: int) -> Stage:
        """The stage iteration ``iteration`` (0-based) belongs to."""
        return self.stages[self._stage_index(iteration)]

    def _stage_index(self, iteration: int) -> int:
        if not 0 <= iteration < self.total_iters:
            raise IndexError(f"iteration {iteration} is outside the schedule [0, {self.total_iters})")
        end = 0
        for i, stage in enumerate(self.stages):
            end += stage.iters
            if iteration < end:
                return i
        raise AssertionError("unreachable")

    def stream_position(self, iteration: int) -> int:
        """Global samples consumed (all ranks) before ``iteration``."""
        pos, begin = 0, 0
        for stage in self.stages:
            n = min(stage.iters, max(iteration - begin, 0))
            pos += n * stage.batch_size * self.num_replicas
            begin += stage.iters
        return pos

    def batch_at(self, iteration: int) -> list[SampleKey]:
        """This rank's batch at ``iteration`` (a pure function of seed, schedule and iteration)."""
        stage = self.stage_at(iteration)
        first = self.stream_position(iteration) + self.rank * stage.batch_size
        return [
            SampleKey(self._order.at(p), stage.patch_size, derive_seed(self.seed, _TAG_SAMPLE, p))
            for p in range(first, first + stage.batch_size)
        ]

    def __iter__(self) -> Iterator[list[SampleKey]]:
        for iteration in range(self.start_iter, self.total_iters):
            yield self.batch_at(iteration)

    def __len__(self) -> int:
        return self.total_iters - self.start_iter


class TaskBatchSampler(Sampler[list[SampleKey]]):
    """IPT-style batch sampler: every batch (on every rank) holds samples of one task only.

    The task of iteration ``i`` is drawn from the seed (uniformly, or by ``weights``), the same on
    all ranks, so multi-task heads see whole batches and DDP ranks agree on the active head. Within
    each task the samples follow an endless reshuffled stream, as in
    :class:`ProgressiveBatchSampler`; resuming at ``start_iter`` continues the same sequence.

    Args:
        task_indices: task name -> dataset indices of that task (``AllInOneDataset.task_indices``).
        batch_size: samples per batch and process.
        total_iters: iterations in the whole run (``len`` is ``total_iters - start_iter``).
        seed: the data seed (non-negative).
        start_iter: first iteration to yield.
        num_replicas: number of processes; rank: this process (see ProgressiveBatchSampler for
            the accelerate recipe: do not pass the loader through ``accelerator.prepare``).
        weights: task name -> relative probability (default: uniform over tasks, as IPT does).
        patch_size: GT patch side for every batch (``None``: each dataset's ``gt_size``).
    """

    def __init__(
        self,
        task_indices: Mapping[str, Sequence[int]],
        batch_size: int,
        total_iters: int,
        seed: int = 0,
        start_iter: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        weights: Mapping[str, float] | None = None,
        patch_size: int | None = None,
    ) -> None:
        owner = "TaskBatchSampler"
        _check_common(seed, start_iter, num_replicas, rank, owner)
        if not task_indices:
            raise OptionsError(f"{owner}.task_indices: no tasks given")
        empty = [t for t, idx in task_indices.items() if len(idx) == 0]
        if empty:
            raise OptionsError(f"{owner}.task_indices: task(s) {', '.join(map(repr, empty))} have no samples")
        if batch_size < 1 or total_iters < 1:
            raise OptionsError(
                f"{owner}: batch_size and total_iters must be positive, got {batch_size} and {total_iters}"
            )
        if start_iter > total_iters:
            raise OptionsError(f"{owner}.start_iter: {start_iter} is past total_iters {total_iters}")
        self.tasks = sorted(task_indices)  # sorted: the draw must not depend on mapping order
        self.indices = [np.asarray(task_indices[t], dtype=np.int64) for t in self.tasks]
        if weights is None:
            probs = np.full(len(self.tasks), 1.0 / len(self.tasks))
        else:
            unknown = set(weights) - set(self.tasks)
            if unknown:
                raise OptionsError(f"{owner}.weights: unknown task(s) {sorted(unknown)}; tasks are {self.tasks}")
            probs = np.array([float(weights.get(t, 0.0)) for t in self.tasks])
            if (probs < 0).any() or probs.sum() <= 0:
                raise OptionsError(f"{owner}.weights: must be non-negative and not all zero, got {dict(weights)}")
            probs = probs / probs.sum()
        self.probs = probs
        self.batch_size, self.total_iters = int(batch_size), int(total_iters)
        self.seed, self.start_iter = int(seed), int(start_iter)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.patch_size = patch_size
        self._orders = [_Permutations(len(idx), (self.seed, _TAG_ORDER, t), True) for t, idx in enumerate(self.indices)]

    @classmethod
    def from_dataset(cls, dataset: Any, batch_size: int, total_iters: int, **kwargs: Any) -> TaskBatchSampler:
        """Build from a dataset exposing ``task_indices`` (e.g. :class:`AllInOneDataset`)."""
        task_indices = getattr(dataset, "task_indices", None)
        if task_indices is None:
            raise OptionsError(f"TaskBatchSampler: {type(dataset).__name__} has no task_indices (use AllInOneDataset)")
        return cls(task_indices, batch_size, total_iters, **kwargs)

    def set_start_iter(self, start_iter: int) -> None:
        """Resume from ``start_iter`` on the next ``iter()``."""
        if not 0 <= start_iter <= self.total_iters:
            raise OptionsError(f"TaskBatchSampler.start_iter: {start_iter} is outside [0, {self.total_iters}]")
        self.start_iter = int(start_iter)

    def _block(self, block: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, _TAG_TASK, block])
        return rng.choice(len(self.tasks), size=_TASK_BLOCK, p=self.probs)

    def task_at(self, iteration: int) -> str:
        """The task of iteration ``iteration``."""
        return self.tasks[int(self._block(iteration // _TASK_BLOCK)[iteration % _TASK_BLOCK])]

    def _counts_before(self, iteration: int) -> np.ndarray:
        """How many of the iterations before ``iteration`` chose each task."""
        counts = np.zeros(len(self.tasks), dtype=np.int64)
        full, rest = divmod(iteration, _TASK_BLOCK)
        for b in range(full):
            counts += np.bincount(self._block(b), minlength=len(self.tasks))
        if rest:
            counts += np.bincount(self._block(full)[:rest], minlength=len(self.tasks))
        return counts

    def __iter__(self) -> Iterator[list[SampleKey]]:
        counts = self._counts_before(self.start_iter)
        global_batch = self.batch_size * self.num_replicas
        block_id, block = -1, np.empty(0)
        for iteration in range(self.start_iter, self.total_iters):
            if iteration // _TASK_BLOCK != block_id:
                block_id = iteration // _TASK_BLOCK
                block = self._block(block_id)
            t = int(block[iteration % _TASK_BLOCK])
            first = int(counts[t]) * global_batch + self.rank * self.batch_size
            counts[t] += 1
            yield [
                SampleKey(
                    int(self.indices[t][self._orders[t].at(p)]),
                    self.patch_size,
                    derive_seed(self.seed, _TAG_SAMPLE, iteration, p - first + self.rank * self.batch_size),
                )
                for p in range(first, first + self.batch_size)
            ]

    def __len__(self) -> int:
        return self.total_iters - self.start_iter
