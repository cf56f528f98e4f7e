"""Leaderboards: results of many models on many benchmark sets, merged across runs.

The JSON file (``leaderboard.json``) is the source of truth; the Markdown table, the CSV files and
the HTML report are rendered from it after every merge::

    {"format": 1,
     "metrics": {metric_id: {"name", "protocol", "higher_is_better"}},
     "models": {model_name: {"arch", "checkpoint", "params", "device", "options", "inference",
                             "updated", "datasets": {set_name: DatasetResult}}},
     "report": {set_name: {image_name: {"box", "input", "gt", "input_metrics"}}}}

A metric is identified by its protocol string (``"PSNR-Y crop4 8bit"``), so PSNR on RGB and PSNR on
Y never share a column. Merging replaces, for each model in the new run, the data sets it was run
on; other models, and other data sets of the same model, are kept. The five files are replaced
as one unit, under an exclusive lock (two runs finishing together both land), by the crash-safe
store of :mod:`irframe.evaluate.leaderboard_store`; ``report.html`` is rendered by
:mod:`irframe.evaluate.report` from the board.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from irframe.errors import DataError
from irframe.evaluate.leaderboard_store import atomic_write_text, locked, write_board_files
from irframe.evaluate.report import render_report

__all__ = [
    "FORMAT",
    "MetricInfo",
    "ImageResult",
    "DatasetResult",
    "ModelRun",
    "Leaderboard",
    "atomic_write_text",
    "format_value",
    "locked",
    "update_leaderboard",
    "write_board_files",
]

FORMAT = 1
JSON_NAME = "leaderboard.json"
MD_NAME = "leaderboard.md"
CSV_NAME = "leaderboard.csv"
PER_IMAGE_CSV_NAME = "per_image.csv"
REPORT_NAME = "report.html"  # rendered by irframe.evaluate.report
_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
BASELINE_ROW = "degraded input"  # the row of the inputs' own scores


@dataclass(frozen=True)
class MetricInfo:
    """A metric column's identity: its protocol (the id), short name and direction."""

    name: str
    protocol: str
    higher_is_better: bool

    @property
    def id(self) -> str:
        return self.protocol

    @classmethod
    def of(cls, metric: Any) -> MetricInfo:
        """From a built metric object (``name``, ``higher_is_better``, ``protocol``)."""
        return cls(str(metric.name), str(getattr(metric, "protocol", metric.name)), bool(metric.higher_is_better))


@dataclass
class ImageResult:
    """One image of one data set: per-image metric values (by metric id) and runtime."""

    name: str
    metrics: dict[str, float] = field(default_factory=dict)
    runtime_s: float = 0.0
    pixels: int = 0
    output: str | None = None  # saved image, relative to the leaderboard folder
    crop: str | None = None  # report crop, relative to the leaderboard folder
    crop_box: list[int] | None = None  # (top, left, height, width) of the crop, in output pixels


@dataclass
class DatasetResult:
    """One model on one data set: data-set scores (by metric id), per-image results, runtime."""

    name: str
    scores: dict[str, float] = field(default_factory=dict)
    images: list[ImageResult] = field(default_factory=list)
    task: str | None = None
    baseline: dict[str, float] = field(default_factory=dict)  # the degraded inputs' own scores (no model)
    channels: int | None = None  # channels of the images scored (1: gray), for the protocol's label

    @property
    def runtime_s(self) -> float | None:
        """Median seconds per image (robust to the first call's warm-up)."""
        times = [i.runtime_s for i in self.images]
        return statistics.median(times) if times else None


@dataclass
class ModelRun:
    """What one ``tools/test.py`` run measured for one model."""

    name: str
    arch: str
    checkpoint: str | None = None
    params: int | None = None
    device: str = "cpu"
    options: str | None = None
    inference: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, DatasetResult] = field(default_factory=dict)
    updated: str = ""


# -- JSON helpers: metric values may be inf (PSNR of a perfect image); JSON has no inf ---------
def _encode(value: float | None) -> float | str | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _decode(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)  # float("inf") / float("nan") read the encoded strings back


def _encode_metrics(values: Mapping[str, float]) -> dict[str, Any]:
    return {k: _encode(v) for k, v in values.items()}


def _decode_metrics(values: Mapping[str, Any]) -> dict[str, float]:
    return {k: _decode(v) for k, v in values.items() if v is not None}  # type: ignore[misc]


def _dataset_to_json(result: DatasetResult) -> dict[str, Any]:
    images = []
    for img in result.images:
        entry = asdict(img)
        entry["metrics"] = _encode_metrics(img.metrics)
        images.append(entry)
    data = {
        "scores": _encode_metrics(result.scores),
        "runtime_s": result.runtime_s,
        "num_images": len(result.images),
        "task": result.task,
        "images": images,
    }
    if result.channels is not None:
        data["channels"] = result.channels
    return data


_SPACE = re.compile(r"^(\w+)-(RGB|Y|all-channels)\b")


def gray_protocol(protocol: str) -> str:
    """The label of a protocol measured on 1-channel images: ``PSNR-RGB crop0 8bit`` (or ``-Y``,
    which keeps a gray image as it is) reads ``PSNR-gray crop0 8bit``; the metric id is unchanged."""
    return _SPACE.sub(r"\1-gray", protocol, count=1)


# -- the board ---------------------------------------------------------------------------------
class Leaderboard:
    """The merged results (see the module docstring for the layout)."""

    def __init__(self, data: Mapping[str, Any] | None = None, source: str = JSON_NAME) -> None:
        data = dict(data or {})
        if data and data.get("format") != FORMAT:
            raise DataError(f"{source}: unknown leaderboard format {data.get('format')!r} (expected {FORMAT})")
        self.source = source
        self.metrics: dict[str, dict[str, Any]] = dict(data.get("metrics", {}))
        self.models: dict[str, dict[str, Any]] = dict(data.get("models", {}))
        self.report: dict[str, dict[str, Any]] = dict(data.get("report", {}))
        # {set: {metric id: score}} of the degraded inputs themselves: the "degraded input" row
        self.baseline: dict[str, dict[str, Any]] = dict(data.get("baseline", {}))

    # -- reading / writing -----------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Leaderboard:
        """Read ``leaderboard.json``; a missing file is an empty board, a corrupt one an error."""
        p = Path(path)
        if not p.exists():
            return cls(source=str(p))
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{p}: cannot read the leaderboard ({exc}); move it away to start a new one") from None
        if not isinstance(data, dict):
            raise DataError(f"{p}: a leaderboard must be a JSON object, got {type(data).__name__}")
        return cls(data, source=str(p))

    def to_json(self) -> str:
        """The board as JSON text (non-finite values as strings)."""
        data = {"format": FORMAT, "metrics": self.metrics, "models": self.models, "report": self.report}
        if self.baseline:
            data["baseline"] = self.baseline
        return json.dumps(data, indent=1, allow_nan=False) + "\n"

    # -- merging -------------------------------------------------------------------------------
    def merge(self, run: ModelRun, metrics: Sequence[MetricInfo]) -> None:
        """Add ``run``: its data sets replace the same model's earlier results on those sets."""
        for info in metrics:
            self.metrics[info.id] = {
                "name": info.name,
                "protocol": info.protocol,
                "higher_is_better": info.higher_is_better,
            }
        entry = self.models.get(run.name, {})
        datasets = dict(entry.get("datasets", {}))
        for set_name, result in run.datasets.items():
            datasets[set_name] = _dataset_to_json(result)
            if result.baseline:  # the same inputs for every model (seeded): the latest run's figures
                self.baseline.setdefault(set_name, {}).update(_encode_metrics(result.baseline))
        self.models[run.name] = {
            "arch": run.arch,
            "checkpoint": run.checkpoint,
            "params": run.params,
            "device": run.device,
            "options": run.options,
            "inference": dict(run.inference),
            "updated": run.updated,
            "datasets": datasets,
        }

    def set_report_image(self, dataset: str, image: str, entry: Mapping[str, Any]) -> None:
        """Record the input/GT crops (and input metrics) shown for ``image`` of ``dataset``."""
        record = dict(entry)
        if "input_metrics" in record:
            record["input_metrics"] = _encode_metrics(record["input_metrics"])
        self.report.setdefault(dataset, {})[image] = record

    # -- queries -------------------------------------------------------------------------------
    def columns(self) -> list[tuple[str, str]]:
        """``(dataset, metric id)`` pairs with at least one value, in first-seen order."""
        cols: list[tuple[str, str]] = []
        for model in self.models.values():
            for set_name, result in model.get("datasets", {}).items():
                for metric_id in result.get("scores", {}):
                    if (set_name, metric_id) not in cols:
                        cols.append((set_name, metric_id))
        return cols

    def score(self, model: str, dataset: str, metric_id: str) -> float | None:
        """A model's data-set score, or ``None`` if it was not measured."""
        value = self.models.get(model, {}).get("datasets", {}).get(dataset, {}).get("scores", {}).get(metric_id)
        return _decode(value)

    def image_metrics(self, model: str, dataset: str) -> dict[str, dict[str, float]]:
        """``{image name: {metric id: value}}`` of a model on a data set."""
        images = self.models.get(model, {}).get("datasets", {}).get(dataset, {}).get("images", [])
        return {img["name"]: _decode_metrics(img.get("metrics", {})) for img in images}

    def runtime(self, model: str) -> float | None:
        """Median seconds per image over every data set the model ran on."""
        times = [
            img.get("runtime_s")
            for result in self.models.get(model, {}).get("datasets", {}).values()
            for img in result.get("images", [])
            if img.get("runtime_s") is not None
        ]
        return statistics.median(times) if times else None

    def protocol(self, dataset: str, metric_id: str) -> str:
        """The protocol of a column as it was scored: the metric's own, labelled by the channels
        actually compared (``PSNR-gray ...`` on a 1-channel set, not ``PSNR-RGB ...``)."""
        protocol = str(self.metrics.get(metric_id, {}).get("protocol", metric_id))
        channels = {
            result.get("channels")
            for model in self.models.values()
            if (result := model.get("datasets", {}).get(dataset)) is not None and metric_id in result.get("scores", {})
        }
        return gray_protocol(protocol) if channels == {1} else protocol

    def footnotes(self) -> dict[tuple[str, str], int]:
        """``(metric id, protocol as scored)`` -> footnote number, for the columns of the table (a
        metric scored on RGB sets and on gray sets gets one note of each)."""
        keys: list[tuple[str, str]] = []
        for dataset, metric_id in self.columns():
            key = (metric_id, self.protocol(dataset, metric_id))
            if key not in keys:
                keys.append(key)
        return {key: i + 1 for i, key in enumerate(keys)}

    def bold_note(self, bold: str = "**bold**") -> str:
        """What the bold means, true of this table: with one model per column nothing is bold."""
        if self.bolded():
            return (
                f"Best value per column in {bold} (each metric's own direction; ties share it; a column with one "
                "model's value has none)."
            )
        return "No value is bold: each column has one model's value (bold marks the best of several models)."

    def bolded(self) -> bool:
        """Whether any column has values of two models or more (bold marks the best of several)."""
        return any(sum(self.score(m, *col) is not None for m in self.models) > 1 for col in self.columns())

    def best(self, dataset: str, metric_id: str) -> set[str]:
        """Models holding the best displayed value of a column (ties share it)."""
        higher = bool(self.metrics.get(metric_id, {}).get("higher_is_better", True))
        shown: dict[str, float] = {}
        for model in self.models:
            value = self.score(model, dataset, metric_id)
            if value is not None and not math.isnan(value):
                shown[model] = float(format_value(metric_id, value, self.metrics)) if math.isfinite(value) else value
        if not shown:
            return set()
        target = max(shown.values()) if higher else min(shown.values())
        return {m for m, v in shown.items() if v == target}

    def format(self, metric_id: str, value: float) -> str:
        """``value`` of the metric ``metric_id`` as the tables show it (:func:`format_value`)."""
        return format_value(metric_id, value, self.metrics)

    # -- rendering -----------------------------------------------------------------------------
    def summary_rows(self) -> tuple[list[str], list[list[str]], list[list[bool]]]:
        """Header, formatted cells and bold flags of the summary table (one row per model)."""
        cols = self.columns()
        notes = self.footnotes()
        header = ["Model", "Arch"]
        header += [
            f"{dataset} {self.metrics.get(mid, {}).get('name', mid)}"
            f"{str(notes[(mid, self.protocol(dataset, mid))]).translate(_SUPERSCRIPTS)}"
            for dataset, mid in cols
        ]
        header += ["Params (M)", "Runtime (s/img)", "Device"]
        best = {col: self.best(*col) for col in cols}
        filled = {col: sum(self.score(m, *col) is not None for m in self.models) for col in cols}
        rows: list[list[str]] = []
        bold: list[list[bool]] = []
        for model, entry in self.models.items():
            cells = [model, str(entry.get("arch", ""))]
            flags = [False, False]
            for dataset, mid in cols:
                value = self.score(model, dataset, mid)
                cells.append("–" if value is None else format_value(mid, value, self.metrics))
                # bold marks a winner: meaningless with a single entry in the column
                flags.append(value is not None and model in best[(dataset, mid)] and filled[(dataset, mid)] > 1)
            params = entry.get("params")
            runtime = self.runtime(model)
            cells += [
                "–" if params is None else f"{params / 1e6:.2f}",
                "–" if runtime is None else f"{runtime:.3f}",
                str(entry.get("device", "")),
            ]
            flags += [False, False, False]
            rows.append(cells)
            bold.append(flags)
        baseline = [self.baseline_score(dataset, mid) for dataset, mid in cols]
        if rows and any(v is not None for v in baseline):  # a reference row, never bold
            rows.append(
                [BASELINE_ROW, "–"]
                + ["–" if v is None else format_value(mid, v, self.metrics) for (_, mid), v in zip(cols, baseline)]
                + ["–", "–", "–"]
            )
            bold.append([False] * len(header))
        return header, rows, bold

    def baseline_score(self, dataset: str, metric_id: str) -> float | None:
        """The degraded inputs' own score on a set (no model), or ``None`` if not measured."""
        return _decode(self.baseline.get(dataset, {}).get(metric_id))

    def to_markdown(self) -> str:
        """The paper-style table: rows = models, columns = data set x metric, best in bold."""
        header, rows, bold = self.summary_rows()
        lines = ["# Leaderboard", ""]
        if not rows:
            return "\n".join([*lines, "(no results yet)", ""])
        lines.append("| " + " | ".join(_md_escape(h) for h in header) + " |")
        lines.append("|" + "|".join([":---", ":---"] + ["---:"] * (len(header) - 3) + [":---"]) + "|")
        for cells, flags in zip(rows, bold):
            shown = [f"**{_md_escape(c)}**" if b else _md_escape(c) for c, b in zip(cells, flags)]
            if cells[0] == BASELINE_ROW:
                shown[0] = f"*{BASELINE_ROW}*"
            lines.append("| " + " | ".join(shown) + " |")
        lines.append("")
        for (mid, protocol), number in self.footnotes().items():
            info = self.metrics.get(mid, {})
            direction = "higher is better" if info.get("higher_is_better", True) else "lower is better"
            lines.append(f"{number}. {info.get('name', mid)} protocol: `{protocol}` ({direction}).")
        lines.append("")
        if self.baseline:
            lines.append(
                f"*{BASELINE_ROW}*: the metrics of the inputs themselves, no model (sets whose input and ground "
                "truth have the same size); the gain of a model is its row minus this one."
            )
            lines.append("")
        lines.append(
            self.bold_note() + " Runtime: median "
            "wall time per image (inference incl. padding/tiling/self-ensemble, excl. I/O) on the listed device. "
            "Params: parameter count in millions. Per-image values: `per_image.csv`, `leaderboard.json`."
        )
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        """Summary CSV: one row per model, raw (unrounded) data-set scores."""
        cols = self.columns()
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(
            ["model", "arch", "checkpoint", "params", "runtime_s", "device"]
            + [f"{dataset}/{mid}" for dataset, mid in cols]
        )
        for model, entry in self.models.items():
            values = [self.score(model, dataset, mid) for dataset, mid in cols]
            writer.writerow(
                [
                    model,
                    entry.get("arch", ""),
                    entry.get("checkpoint") or "",
                    entry.get("params", ""),
                    _csv_num(self.runtime(model)),
                    entry.get("device", ""),
                ]
                + [_csv_num(v) for v in values]
            )
        baseline = [self.baseline_score(dataset, mid) for dataset, mid in cols]
        if self.models and any(v is not None for v in baseline):
            writer.writerow([BASELINE_ROW, "", "", "", "", ""] + [_csv_num(v) for v in baseline])
        return buf.getvalue()

    def per_image_csv(self) -> str:
        """Per-image CSV: one row per (model, data set, image) with every metric and the runtime."""
        metric_ids = list(self.metrics)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["model", "dataset", "image", "runtime_s", *metric_ids, "output"])
        for model, entry in self.models.items():
            for set_name, result in entry.get("datasets", {}).items():
                for img in result.get("images", []):
                    values = _decode_metrics(img.get("metrics", {}))
                    writer.writerow(
                        [model, set_name, img.get("name"), _csv_num(img.get("runtime_s"))]
                        + [_csv_num(values.get(mid)) for mid in metric_ids]
                        + [img.get("output") or ""]
                    )
        return buf.getvalue()


def format_value(metric_id: str, value: float, metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """Table formatting: dB values (PSNR) with 2 decimals, everything else with 4."""
    if not math.isfinite(value):
        return str(value)
    name = str(metrics.get(metric_id, {}).get("name", metric_id)).upper()
    return f"{value:.2f}" if name.startswith("PSNR") else f"{value:.4f}"


def _csv_num(value: Any) -> str:
    if value is None or value == "":
        return ""
    return repr(float(value)) if isinstance(value, (int, float)) else str(value)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def update_leaderboard(
    folder: str | os.PathLike[str],
    runs: Sequence[ModelRun],
    metrics: Sequence[MetricInfo],
    report_images: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
) -> dict[str, Path]:
    """Merge ``runs`` into ``folder``'s leaderboard and rewrite every rendered file.

    Args:
        folder: where ``leaderboard.json/.md/.csv``, ``per_image.csv`` and ``report.html`` live.
        runs: the models measured by this run.
        metrics: the metrics they were measured with.
        report_images: ``{dataset: {image: {"box", "input", "gt", "input_metrics"}}}`` crops for
            the HTML report.
    Returns:
        The written files by kind (``json``, ``md``, ``csv``, ``per_image``, ``html``).
    """
    out = Path(folder)
    with locked(out):
        board = Leaderboard.load(out / JSON_NAME)
        for run in runs:
            board.merge(run, metrics)
        for dataset, images in (report_images or {}).items():
            for image, entry in images.items():
                board.set_report_image(dataset, image, entry)
        texts = {
            JSON_NAME: board.to_json(),
            MD_NAME: board.to_markdown(),
            CSV_NAME: board.to_csv(),
            PER_IMAGE_CSV_NAME: board.per_image_csv(),
            REPORT_NAME: render_report(board, out),
        }
        write_board_files(out, texts)
    return {kind: out / name for kind, name in zip(("json", "md", "csv", "per_image", "html"), texts)}
