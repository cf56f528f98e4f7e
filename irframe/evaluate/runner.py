"""Run one model over one benchmark set: restore, time, save, measure, crop for the report.

Everything model-specific (padding to a size multiple, IPT's fixed patch, value range) happens in
:func:`irframe.nn.inference.restore`, driven by the model's spec; this module only feeds it the
data set's samples and records what came out.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

import torch
from torch.utils.data import DataLoader, Dataset

from irframe.data.datasets.base import EvalSamples, collate_good
from irframe.evaluate.images import ImageFormat, detail_box, output_suffix, probe_bytes, probe_image, save_restored
from irframe.evaluate.leaderboard import DatasetResult, ImageResult, MetricInfo
from irframe.evaluate.models import LoadedModel, slugify
from irframe.evaluate.report import crop_rel_path, image_entry
from irframe.nn.spec import get_spec

__all__ = ["IMAGES_DIR", "EvalSettings", "evaluate_dataset", "log_line"]

IMAGES_DIR = "images"


@dataclass(frozen=True)
class EvalSettings:
    """How a data set is evaluated (from the options' ``inference:`` and ``test:`` sections).

    Attributes:
        tile, tile_overlap, self_ensemble, task, precision: passed to
            :func:`~irframe.nn.inference.restore` (a sample's own ``task`` key wins over ``task``).
            ``tile="auto"``: per batch, the largest tile whose estimated peak memory fits
            ``max_memory`` bytes (default: the device's free memory), see :class:`~irframe.nn.autotile.AutoTiler`.
        save_images: write every restored image under ``images/<model>/<set>/`` (names through
            :func:`~irframe.evaluate.models.slugify`: distinct names, distinct folders).
        report_images: how many images per set get crops in the HTML report.
        report_crop: crop side in output pixels.
        batch_size, num_workers: DataLoader settings of the set.
    """

    tile: int | Literal["auto"] | None = None
    tile_overlap: int | None = None
    self_ensemble: bool = False
    task: str | int | None = None
    max_memory: int | None = None
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    save_images: bool = True
    report_images: int = 3
    report_crop: int = 128
    batch_size: int = 1
    num_workers: int = 0


def log_line(message: str, file: TextIO | None = None) -> None:
    """Print a message line through ``tqdm.write``, so an open progress bar stays intact (the tools'
    tile choices and errors on stderr, the default; the thread choice on stdout)."""
    from tqdm import tqdm

    tqdm.write(message, file=file or sys.stderr)


def _sync(device: torch.device) -> None:
    # CUDA calls are asynchronous: wait, or the timer stops before the model has finished.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _source_format(path: Any, channels: int) -> ImageFormat:
    """The stored format of a sample's source: a file, or an LMDB record (``<db>.lmdb:<key>``, as
    the LMDB backend names them), so 16-bit sources give 16-bit outputs; else 8-bit ``channels``."""
    if isinstance(path, str) and Path(path).is_file():
        return probe_image(path)
    db, sep, key = path.rpartition(".lmdb:") if isinstance(path, str) else ("", "", "")
    if sep and Path(db + ".lmdb").is_dir():
        from irframe.data.backends import LMDBBackend

        return probe_bytes(LMDBBackend(db + ".lmdb").get(key), path)
    return ImageFormat(8, 1 if channels == 1 else 3)


def _viewable_input(lq: torch.Tensor, out_channels: int) -> torch.Tensor:
    """The input as an image to look at: a dual-pixel input (two views stacked on the channel axis,
    ``2 * out_channels`` channels) is shown as the mean of its two views; others as they are."""
    if lq.shape[0] == 2 * out_channels:
        return 0.5 * (lq[:out_channels] + lq[out_channels:])
    return lq


def _sample_task(batch: Mapping[str, Any], default: str | int | None) -> str | int | None:
    tasks = batch.get("task")
    if tasks is None:
        return default
    distinct = set(tasks)
    if len(distinct) != 1:  # restore() runs one task per call
        raise ValueError(f"a batch mixes tasks {sorted(distinct)}; use batch_size 1 for mixed-task sets")
    return next(iter(distinct))


class _Recorder:
    """Measures, saves and crops the outputs of one model on one set (state shared by all images)."""

    def __init__(
        self,
        out_root: Path,
        set_name: str,
        model_name: str,
        metrics: Sequence[Any],
        settings: EvalSettings,
        device: torch.device,
    ) -> None:
        self.root, self.set_name, self.model_name = out_root, set_name, model_name
        self.metrics, self.infos = list(metrics), [MetricInfo.of(m) for m in metrics]
        self.settings, self.device = settings, device
        self.image_dir = Path(IMAGES_DIR) / slugify(model_name) / slugify(set_name)
        self.images: list[ImageResult] = []
        self.inputs: list[dict[str, float]] = []  # the degraded inputs' own metrics (LQ vs GT, same size)
        self.report: dict[str, dict[str, Any]] = {}
        self.channels: set[int] = set()  # of the images scored against a ground truth

    def measure(self, pred: torch.Tensor, gt: torch.Tensor) -> dict[str, float]:
        """Every metric on one ``[1,C,H,W]`` pair, by metric id."""
        a, b = pred.to(self.device), gt.to(self.device)
        return {info.id: float(metric(a, b)[0]) for info, metric in zip(self.infos, self.metrics)}

    def add(
        self,
        name: str,
        lq: torch.Tensor,
        out: torch.Tensor,
        gt: torch.Tensor | None,
        source: Any,
        scale: int,
        runtime: float,
    ) -> None:
        """Record one image (``[C,H,W]`` tensors): metrics, saved output, report crops."""
        values: dict[str, float] = {}
        if gt is not None:
            if gt.shape != out.shape:
                raise ValueError(
                    f"{self.set_name}/{name}: output {tuple(out.shape)} and ground truth {tuple(gt.shape)} differ "
                    f"(model scale {scale}); check the set's scale and channels"
                )
            values = self.measure(out[None], gt[None])
            self.channels.add(int(out.shape[0]))
        # the input's own score (e.g. noisy PSNR): the leaderboard's baseline row; only at equal size
        input_values = self.measure(lq[None], gt[None]) if gt is not None and lq.shape == gt.shape else {}
        self.inputs.append(input_values)
        fmt = _source_format(source, out.shape[0])
        rel_output = None
        if self.settings.save_images:
            suffix = output_suffix(source) if isinstance(source, str) else ".png"
            rel_output = (self.image_dir / f"{name}{suffix}").as_posix()
            save_restored(self.root / rel_output, out.cpu(), fmt)
        result = ImageResult(name, values, runtime, int(out.shape[-1] * out.shape[-2]), rel_output)
        if len(self.images) < self.settings.report_images:
            result.crop, result.crop_box = self._crops(
                name, lq.cpu(), out.cpu(), None if gt is None else gt.cpu(), scale, fmt.channels, input_values
            )
        self.images.append(result)

    def _crops(
        self,
        name: str,
        lq: torch.Tensor,
        out: torch.Tensor,
        gt: torch.Tensor | None,
        scale: int,
        channels: int,
        input_metrics: dict[str, float],
    ) -> tuple[str, list[int]]:
        """Save the model's crop and the input/GT crops of one image; return the model crop's path and box."""
        size = self.settings.report_crop
        display = ImageFormat(8, 1 if channels == 1 else 3)  # crops are for viewing: 8-bit is enough
        shown = _viewable_input(lq, out.shape[0])  # dual-pixel views: their mean (scored only when lq is an image)
        if gt is not None:
            box = detail_box(gt, size, multiple=scale)
        else:  # no GT: pick the place on the input (the same for every model), in output pixels
            top, left, h, w = detail_box(shown, max(1, size // scale))
            box = (top * scale, left * scale, h * scale, w * scale)
        top, left, h, w = box
        model_rel = crop_rel_path(self.set_name, name, f"model-{self.model_name}")
        save_restored(self.root / model_rel, out[:, top : top + h, left : left + w], display)
        input_rel = crop_rel_path(self.set_name, name, "input")
        save_restored(
            self.root / input_rel,
            shown[:, top // scale : (top + h) // scale, left // scale : (left + w) // scale],
            display,
        )
        gt_rel = None
        if gt is not None:
            gt_rel = crop_rel_path(self.set_name, name, "gt")
            save_restored(self.root / gt_rel, gt[:, top : top + h, left : left + w], display)
        self.report[name] = image_entry(box, input_rel, gt_rel, input_metrics)
        return model_rel, list(box)

    def result(self, tasks: set[str]) -> DatasetResult:
        """The set's result: data-set scores through each metric's ``reduce`` (RMSE pools pixels)."""
        pixels = torch.tensor([img.pixels for img in self.images], dtype=torch.float64)
        scores = self._reduce([img.metrics for img in self.images], pixels)
        baseline = self._reduce(self.inputs, pixels)
        return DatasetResult(
            self.set_name, scores=scores, images=self.images, task=", ".join(sorted(tasks)) or None, baseline=baseline,
            channels=next(iter(self.channels)) if len(self.channels) == 1 else None,
        )

    def _reduce(self, per_image: list[dict[str, float]], pixels: torch.Tensor) -> dict[str, float]:
        """Data-set scores from per-image values (empty unless every image has them)."""
        scores: dict[str, float] = {}
        if per_image and all(per_image):
            for info, metric in zip(self.infos, self.metrics):
                values = torch.tensor([v[info.id] for v in per_image], dtype=torch.float64)
                scores[info.id] = float(metric.reduce(values, num_pixels=pixels))
        return scores


def evaluate_dataset(
    loaded: LoadedModel,
    set_name: str,
    dataset: Dataset,
    metrics: Sequence[Any],
    out_root: str | Path,
    settings: EvalSettings,
    *,
    device: torch.device | str = "cpu",
    progress: bool = True,
    log: Callable[[str], object] | None = log_line,
) -> tuple[DatasetResult, dict[str, dict[str, Any]]]:
    """Restore every sample of ``dataset`` with ``loaded.model`` and measure it.

    Args:
        loaded: the model (on ``device``) and its leaderboard name.
        set_name: the benchmark's name (``test.datasets`` key).
        dataset: yields ``{"lq", "gt"?, "lq_path", "name", "task"?}`` samples.
        metrics: built metric objects (``__call__(pred, gt) -> Tensor[N]``, ``reduce``).
        out_root: the leaderboard folder; images and crops go below it.
        settings: see :class:`EvalSettings`.
        device: where the model runs (and the metrics are computed).
        progress: show a tqdm bar.
        log: receives the automatic tile choices (``settings.tile="auto"``) when they change.

    Returns:
        The data set's result (scores via each metric's ``reduce``, per-image values, runtimes,
        output paths relative to ``out_root``) and the report records of the cropped images.
    """
    from tqdm import tqdm

    from irframe.nn.autotile import AutoTiler
    from irframe.nn.inference import restore

    device = torch.device(device)
    model = loaded.model
    tiler = (
        AutoTiler(
            model, settings.max_memory, overlap=settings.tile_overlap, precision=settings.precision,
            self_ensemble=settings.self_ensemble, log=log,
        )
        if settings.tile == "auto"
        else None
    )
    recorder = _Recorder(Path(out_root), set_name, loaded.name, metrics, settings, device)
    # EvalSamples: a bad sample under skip_bad is left out, not replaced by its neighbour (scored twice).
    loader = DataLoader(
        EvalSamples(dataset), batch_size=settings.batch_size, shuffle=False, num_workers=settings.num_workers,
        collate_fn=collate_good,
    )
    tasks_seen: set[str] = set()
    for batch in tqdm(loader, desc=f"{loaded.name} | {set_name}", unit="batch", disable=not progress, leave=False):
        if batch is None:  # every sample of the batch skipped under skip_bad (the dataset warned)
            continue
        lq = batch["lq"]
        task = _sample_task(batch, settings.task)
        if task is not None:
            tasks_seen.add(str(task))
        # a blind model (PromptIR) on a set whose samples name their task: the task is a label only
        run_task = task if get_spec(model).tasks else None
        # planned outside the timed part (the first call measures the model's memory); by shape, since
        # the batch is moved to the model's device below and its buffers count there
        kw = (
            tiler(tuple(lq.shape), task=run_task).restore_kwargs() if tiler
            else {"tile": settings.tile, "tile_overlap": settings.tile_overlap}
        )
        _sync(device)
        start = time.perf_counter()
        pred = restore(
            model, lq.to(device), self_ensemble=settings.self_ensemble, task=run_task, precision=settings.precision,
            **kw,
        )
        _sync(device)
        scale = get_spec(model).scale  # after restore() selected the task: IPT's scale depends on it
        runtime = (time.perf_counter() - start) / lq.shape[0]
        gt = batch.get("gt")
        sources = batch.get("lq_path", [None] * lq.shape[0])
        for i in range(lq.shape[0]):
            recorder.add(
                str(batch["name"][i]), lq[i], pred[i], None if gt is None else gt[i], sources[i], scale, runtime
            )
    return recorder.result(tasks_seen), recorder.report
