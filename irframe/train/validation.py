"""Validation during training: restore every validation image, score it, save a few.

Each process restores its own share of every validation set (images ``rank::world``), the
per-image metric values of all processes are gathered, and every process computes the same
dataset scores with the metric's own reduction, so no rank waits on another's validation alone
and all agree on the best checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from irframe.data.datasets.base import EvalSamples, collate_good
from irframe.errors import OptionsError
from irframe.nn.modes import eval_mode
from irframe.train.trackers import preview

# (per-process list of records) -> records of all processes
Gather = Callable[[list[Any]], list[Any]]
# (total, description) -> a progress bar with update(n) and close() (TrainLogger.progress)
Progress = Callable[[int, str], Any]


@dataclass
class ValResult:
    """Scores of one validation round.

    Attributes:
        scores: ``{dataset: {metric: score}}`` of the restored images.
        baseline: the same metrics for the degraded inputs (when LQ and GT have the same size).
        images: number of images scored per dataset.
        samples: a few images of this process per dataset for the experiment trackers,
            ``[(name, {"input": ..., "output": ..., "target": ...})]`` as ``HWC`` ``uint8`` RGB
            (``Validator(keep_samples=...)``; empty by default).
    """

    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    baseline: dict[str, dict[str, float]] = field(default_factory=dict)
    images: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)

    def mean(self, metric: str) -> float:
        """The metric averaged over the validation sets (what the best checkpoint tracks)."""
        values = [s[metric] for s in self.scores.values() if metric in s]
        if not values:
            raise KeyError(metric)
        return sum(values) / len(values)

    def line(self, name: str) -> str:
        """A human-readable line for one dataset: restored scores and, if known, the inputs'."""
        text = ", ".join(f"{k} {v:.4f}" for k, v in self.scores[name].items())
        base = self.baseline.get(name)
        if base:
            text += " (degraded input: " + ", ".join(f"{k} {v:.4f}" for k, v in base.items()) + ")"
        return f"{name} [{self.images.get(name, 0)} images]: {text}"

    def lines(self) -> list[str]:
        """One line per dataset (:meth:`line`)."""
        return [self.line(name) for name in self.scores]

    def best_text(self, metric: str) -> str:
        """What the tracked score is: ``"on val"`` for one set, else ``"mean over 2 sets: a 28.1, b 30.2"``."""
        values = {name: s[metric] for name, s in self.scores.items() if metric in s}
        if len(values) == 1:
            return f"on {next(iter(values))}"
        return f"mean over {len(values)} sets: " + ", ".join(f"{n} {v:.4f}" for n, v in values.items())


def metric_keys(metrics: Sequence[Any]) -> list[str]:
    """Unique names for the metrics (``PSNR``, ``PSNR_1`` if two PSNR protocols are validated)."""
    keys: list[str] = []
    seen: dict[str, int] = {}
    for m in metrics:
        n = seen.get(m.name, 0)
        seen[m.name] = n + 1
        keys.append(m.name if n == 0 else f"{m.name}_{n}")
    return keys


class Validator:
    """Runs the validation sets through the model and scores them.

    Args:
        datasets: validation datasets by name (samples with ``lq``, ``gt``, ``name``, opt. ``task``).
        metrics: built metric objects (``name``, ``higher_is_better``, ``__call__``, ``reduce``).
        restore: ``restore(model, lq, task)`` -> prediction (the inference helper with the
            options' tiling / self-ensemble settings bound).
        rank, world_size: this process's share of every dataset.
        gather: collects per-process record lists from all processes.
        save_dir: where restored images are written (``None``: not saved).
        max_images: save at most this many images per dataset and round.
        num_workers: DataLoader workers.
        keep_samples: keep this many of this process's images per dataset (input, output, target)
            in :attr:`ValResult.samples`, for the experiment trackers.
    """

    def __init__(
        self,
        datasets: Mapping[str, Dataset],
        metrics: Sequence[Any],
        restore: Callable[[nn.Module, torch.Tensor, Any], torch.Tensor],
        *,
        rank: int = 0,
        world_size: int = 1,
        gather: Gather = lambda records: records,
        save_dir: Path | None = None,
        max_images: int | None = None,
        num_workers: int = 0,
        device: torch.device | str = "cpu",
        keep_samples: int = 0,
    ) -> None:
        if not metrics:
            raise OptionsError("val.metrics: validation needs at least one metric (e.g. {type: PSNR})")
        self.datasets = dict(datasets)
        self.metrics = list(metrics)
        self.keys = metric_keys(self.metrics)
        self.restore = restore
        self.rank = rank
        self.world_size = world_size
        self.gather = gather
        self.save_dir = save_dir
        self.max_images = max_images
        self.num_workers = num_workers
        self.device = torch.device(device)
        self.keep_samples = keep_samples
        self._samples: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self._baseline: dict[str, dict[str, float]] = {}

    def higher_is_better(self, key: str) -> bool:
        """Direction of the metric called ``key``."""
        if key not in self.keys:
            raise OptionsError(f"val.best_metric: {key!r} is not a validated metric; choose one of {self.keys}")
        return bool(self.metrics[self.keys.index(key)].higher_is_better)

    @torch.no_grad()
    def run(
        self,
        model: nn.Module,
        iteration: int,
        *,
        progress: Progress | None = None,
        on_dataset: Callable[[str, ValResult], object] | None = None,
    ) -> ValResult:
        """Validate ``model`` (unwrapped; switched to eval mode and back).

        Args:
            progress: ``progress(total, desc)`` -> a bar (``update``, ``close``) for each set.
            on_dataset: called with ``(name, result so far)`` as soon as a set is scored.
        """
        result = ValResult()
        with eval_mode(model):
            for name, dataset in self.datasets.items():
                records = self._run_dataset(model, name, dataset, iteration, progress)
                records = sorted(self.gather(records), key=lambda r: r["index"])
                result.images[name] = len(records)
                result.scores[name] = self._reduce(records, "pred")
                if name in self._samples:
                    result.samples[name] = self._samples.pop(name)
                if name not in self._baseline and records and all("input" in r for r in records):
                    self._baseline[name] = self._reduce(records, "input")
                if name in self._baseline:
                    result.baseline[name] = self._baseline[name]
                if on_dataset is not None:
                    on_dataset(name, result)
        return result

    def _run_dataset(
        self, model: nn.Module, name: str, dataset: Dataset, iteration: int, progress: Progress | None = None
    ) -> list[dict[str, Any]]:
        indices = list(range(self.rank, len(dataset), self.world_size))  # type: ignore[arg-type]
        # A private generator: creating the loader must not draw from the training's random stream.
        # EvalSamples: a bad sample under skip_bad is left out (None), not replaced by its neighbour.
        loader = DataLoader(
            EvalSamples(dataset, indices), batch_size=1, shuffle=False, num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(0), collate_fn=collate_good,
        )
        records = []
        kept = self._samples[name] = []  # images for the trackers
        need_baseline = name not in self._baseline
        bar = progress(len(indices), f"val {name}") if progress is not None else tqdm(disable=True)
        with bar:  # closed (and removed from the screen) even when a sample fails
            for index, sample in zip(indices, loader):
                if sample is None:  # skipped under skip_bad (the dataset warned): not scored
                    bar.update(1)
                    continue
                if "gt" not in sample:
                    raise OptionsError(f"datasets.{name}: validation needs ground truth ('gt'), the dataset gives none")
                lq = sample["lq"].to(self.device)
                gt = sample["gt"].to(self.device)
                task = sample["task"][0] if "task" in sample else None
                pred = self.restore(model, lq, task)
                record: dict[str, Any] = {"index": index, "pixels": int(gt[0, 0].numel())}
                record["pred"] = [float(m(pred, gt)[0]) for m in self.metrics]
                if need_baseline and lq.shape == gt.shape:
                    record["input"] = [float(m(lq, gt)[0]) for m in self.metrics]
                records.append(record)
                if len(kept) < self.keep_samples:
                    kept.append(
                        (str(sample["name"][0]), {"input": preview(lq), "output": preview(pred), "target": preview(gt)})
                    )
                if self.save_dir is not None and (self.max_images is None or index < self.max_images):
                    self._save(pred, name, str(sample["name"][0]), iteration)
                bar.update(1)
        return records

    def _reduce(self, records: list[dict[str, Any]], field_name: str) -> dict[str, float]:
        if not records:
            return {}
        pixels = torch.tensor([r["pixels"] for r in records], dtype=torch.float64)
        out = {}
        for j, (key, metric) in enumerate(zip(self.keys, self.metrics)):
            values = torch.tensor([r[field_name][j] for r in records], dtype=torch.float64)
            score = float(metric.reduce(values, pixels))
            out[key] = score if math.isfinite(score) else float("nan")
        return out

    def _save(self, pred: torch.Tensor, dataset: str, name: str, iteration: int) -> None:
        from irframe.data.io import imwrite, tensor2img

        assert self.save_dir is not None
        # Saving quantises to 8 bit and clips there, warning if the output is far outside [0, 1].
        imwrite(self.save_dir / dataset / f"{name}_{iteration:06d}.png", tensor2img(pred[0]))
