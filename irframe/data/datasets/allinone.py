"""All-in-one (multi-degradation) training data: one dataset per task, mixed, each sample tagged.

PromptIR's three-task setting, written in YAML::

    type: AllInOneDataset
    de_type: [denoise_15, denoise_25, denoise_50, derain, dehaze]
    repeats: {denoise_15: 3, denoise_25: 3, denoise_50: 3, derain: 120}   # PromptIR's balancing
    defaults: {gt_size: 128, use_flip: true, use_rot: true}
    sources:
      denoise: {type: OnlineDegradationDataset, dataroot_gt: data/BSD400_WED}
      derain: {type: PairedImageDataset, dataroot_gt: data/Rain100L/norain, dataroot_lq: data/Rain100L/rainy}
      dehaze: {type: PairedImageDataset, dataroot_gt: data/SOTS/clear, dataroot_lq: data/SOTS/hazy}

A task ``denoise_<sigma>`` without a source of its own uses the ``denoise`` source (which must be an
online-degradation dataset without a ``degradation``) with ``GaussianNoise(sigma=<sigma>)`` added
(clipped to [0, 1]; give an explicit ``denoise_<sigma>`` source for other noise options). IPT's
multi-task pre-training is the same with SR/denoise/derain tasks; pair it with
:class:`~irframe.data.samplers.TaskBatchSampler` (``task_indices``) so a batch holds one task.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from irframe.data.datasets.base import SkippedSample, parse_key, sample_or_skip
from irframe.data.samplers import SampleKey, derive_seed
from irframe.errors import OptionsError
from irframe.registry import DATASETS

PROMPTIR_TASKS = ("denoise_15", "denoise_25", "denoise_50", "derain", "dehaze")
_DENOISE = re.compile(r"^denoise_(\d+(?:\.\d+)?)$")


def _source_config(task: str, sources: dict[str, Any], owner: str) -> dict[str, Any]:
    """The dataset options of one task (explicit source, or the shared ``denoise`` + noise level)."""
    if task in sources:
        cfg = sources[task]
        if not isinstance(cfg, dict):
            raise OptionsError(f"{owner}.sources.{task}: expected a dataset mapping {{type: ..., ...}}, got {cfg!r}")
        return dict(cfg)
    m = _DENOISE.match(task)
    if m and "denoise" in sources:
        cfg = dict(sources["denoise"])
        if "degradation" in cfg:
            raise OptionsError(
                f"{owner}.sources.denoise: must not set 'degradation' (the noise level comes from de_type "
                f"{task!r}); give an explicit sources.{task} for a custom pipeline"
            )
        cfg["degradation"] = {"type": "GaussianNoise", "sigma": float(m.group(1))}
        return cfg
    hint = " (or a shared 'denoise' source)" if m else ""
    raise OptionsError(f"{owner}.sources: no source for task {task!r}{hint}; sources given: {sorted(sources)}")


@DATASETS.register()
class AllInOneDataset(Dataset):
    """Concatenation of per-task datasets; each sample carries ``"task"`` (its ``de_type`` name).

    Args:
        de_type: the tasks to train on (PromptIR names: denoise_15, denoise_25, denoise_50,
            derain, dehaze; any names work, e.g. IPT's sr_x2 / denoise_30 / derain).
        sources: task name -> dataset options (``{type: PairedImageDataset, ...}``); see the module
            doc for the shared ``denoise`` source.
        repeats: task name -> how many times its images are repeated in one pass (default 1).
        defaults: options added to every source unless it sets them (``gt_size``, ``use_flip``...).
        seed: per-sample seed for plain int indices (as in the other datasets).
    """

    def __init__(
        self,
        de_type: list[str],
        sources: dict[str, dict[str, Any]],
        repeats: dict[str, int] | None = None,
        defaults: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> None:
        owner = type(self).__name__
        if not de_type:
            raise OptionsError(f"{owner}.de_type: at least one task is required")
        dupes = sorted({t for t in de_type if de_type.count(t) > 1})
        if dupes:
            raise OptionsError(f"{owner}.de_type: task(s) listed twice: {dupes}")
        repeats = dict(repeats or {})
        unknown = sorted(set(repeats) - set(de_type))
        if unknown:
            raise OptionsError(f"{owner}.repeats: task(s) {unknown} are not in de_type {list(de_type)}")
        bad = {t: r for t, r in repeats.items() if not isinstance(r, int) or r < 1}
        if bad:
            raise OptionsError(f"{owner}.repeats: counts must be positive integers, got {bad}")
        if seed is not None and seed < 0:
            raise OptionsError(f"{owner}.seed: expected a non-negative integer, got {seed!r}")
        self.tasks = list(de_type)
        self.seed = seed
        self.datasets: list[Any] = []
        self.repeats = [repeats.get(t, 1) for t in self.tasks]
        for task in self.tasks:
            cfg = {**(defaults or {}), **_source_config(task, sources, owner)}
            self.datasets.append(DATASETS.build(cfg, path=f"{owner}.sources.{task}"))
        sizes = [len(d) * r for d, r in zip(self.datasets, self.repeats)]
        self._ends = np.cumsum(sizes)

    @classmethod
    def option_children(cls, kwargs: dict[str, Any]) -> list[tuple[str, str, Any]]:
        """The dataset options of every task, as the checker sees them (before anything is built):
        ``(sources.<source>, "dataset", options with defaults)``; a ``denoise_<sigma>`` task that
        uses the shared ``denoise`` source is checked with its noise added."""
        sources, defaults = kwargs.get("sources") or {}, kwargs.get("defaults") or {}
        out = []
        for task in kwargs.get("de_type") or []:
            source = task if task in sources else "denoise"
            out.append((f"sources.{source}", "dataset", {**defaults, **_source_config(task, sources, cls.__name__)}))
        return out

    def __len__(self) -> int:
        return int(self._ends[-1])

    @property
    def task_indices(self) -> dict[str, list[int]]:
        """Task name -> the indices of this dataset that belong to it (for TaskBatchSampler)."""
        starts = [0, *self._ends[:-1].tolist()]
        return {t: list(range(int(s), int(e))) for t, s, e in zip(self.tasks, starts, self._ends)}

    def locate(self, index: int) -> tuple[int, int]:
        """``(task position, index in that task's dataset)`` of a global index."""
        t = int(np.searchsorted(self._ends, index, side="right"))
        start = 0 if t == 0 else int(self._ends[t - 1])
        return t, (index - start) % len(self.datasets[t])

    def __getitem__(self, key: Any) -> dict[str, Any]:
        t, inner = self._inner_key(key)
        sample = self.datasets[t][inner]
        sample["task"] = self.tasks[t]
        return sample

    def sample_or_skip(self, key: Any) -> dict[str, Any] | SkippedSample:
        """Exactly sample ``key`` (see :class:`~irframe.data.datasets.base.EvalSamples`): a bad one
        under its source's ``skip_bad`` is a :class:`SkippedSample`, never replaced."""
        t, inner = self._inner_key(key)
        sample = sample_or_skip(self.datasets[t], inner)
        if isinstance(sample, SkippedSample):
            return SkippedSample(int(parse_key(key, len(self), type(self).__name__).index), sample.reason)
        sample["task"] = self.tasks[t]
        return sample

    def _inner_key(self, key: Any) -> tuple[int, SampleKey]:
        """``(task position, key of that task's dataset)`` of a key of this dataset."""
        key = parse_key(key, len(self), type(self).__name__)
        t, inner = self.locate(key.index)
        seed = key.seed
        if seed is None and self.seed is not None:
            seed = derive_seed(self.seed, key.index)
        return t, SampleKey(inner, key.patch_size, seed)
