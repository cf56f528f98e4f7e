"""The HTML report beside a leaderboard: the summary table and side-by-side crops per data set.

For a few images of each data set the report shows the input crop, every model's crop and the
ground-truth crop, with the per-image metrics under each. Crops are PNG files saved by
``tools/test.py`` under ``crops/`` and linked relatively, so the report folder can be zipped or
served as is; one file, no scripts, no network.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the board is rendered through its own methods: no import at run time
    from irframe.evaluate.leaderboard import Leaderboard

__all__ = ["CROPS_DIR", "crop_rel_path", "image_entry", "render_report"]

CROPS_DIR = "crops"
# Crops are small; show them larger with sharp pixels so artefacts stay visible.
DISPLAY_PX = 192

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table.board { border-collapse: collapse; margin-bottom: 1em; }
table.board th, table.board td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
table.board td:first-child, table.board td:nth-child(2) { text-align: left; }
.row { display: flex; flex-wrap: wrap; gap: 10px; margin: 0.5em 0 1.5em; }
figure { margin: 0; text-align: center; }
figure img { image-rendering: pixelated; border: 1px solid #999; }
figcaption { font-size: 12px; max-width: %dpx; }
.missing { width: %dpx; height: %dpx; border: 1px dashed #aaa; display: flex; align-items: center;
           justify-content: center; color: #888; font-size: 12px; }
.notes { font-size: 12px; color: #555; }
""" % (DISPLAY_PX, DISPLAY_PX, DISPLAY_PX)  # noqa: UP031 (CSS braces would all need doubling)


def _metric_text(values: Mapping[str, float], board: Leaderboard) -> str:
    parts = []
    for mid, value in values.items():
        name = board.metrics.get(mid, {}).get("name", mid)
        parts.append(f"{name} {board.format(mid, value)}")
    return " · ".join(parts)


def _figure(rel: str | None, root: Path, title: str, caption: str, absent: str = "not run") -> str:
    title_html = f"<b>{html.escape(title)}</b>"
    cap = (
        f"<figcaption>{title_html}<br>{html.escape(caption)}</figcaption>"
        if caption
        else f"<figcaption>{title_html}</figcaption>"
    )
    if rel and (root / rel).is_file():
        src = html.escape(Path(rel).as_posix(), quote=True)
        alt = html.escape(title, quote=True)
        img = f'<img src="{src}" width="{DISPLAY_PX}" height="{DISPLAY_PX}" style="object-fit: contain" alt="{alt}">'
    else:
        img = f'<div class="missing">{"crop file missing" if rel else html.escape(absent)}</div>'
    return f"<figure>{img}{cap}</figure>"


def _table(board: Leaderboard) -> str:
    header, rows, bold = board.summary_rows()
    if not rows:
        return "<p>(no results yet)</p>"
    out = ['<table class="board"><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    for cells, flags in zip(rows, bold):
        tds = "".join(
            f"<td>{'<b>' if b else ''}{html.escape(c)}{'</b>' if b else ''}</td>" for c, b in zip(cells, flags)
        )
        out.append(f"<tr>{tds}</tr>")
    out.append("</table>")
    notes = []
    for (mid, protocol), number in board.footnotes().items():
        info = board.metrics.get(mid, {})
        direction = "higher is better" if info.get("higher_is_better", True) else "lower is better"
        notes.append(f"{number}. {html.escape(protocol)} ({direction})")
    out.append(
        '<p class="notes">' + "<br>".join(notes) + f"<br>{html.escape(board.bold_note('bold'))} Runtime = median "
        "s/image. Metrics under each crop are those of the whole image.</p>"
    )
    return "\n".join(out)


def render_report(board: Leaderboard, root: str | os.PathLike[str]) -> str:
    """The report's HTML for ``board``; crop paths are relative to ``root`` (the report's folder)."""
    root = Path(root)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>irframe report</title>',
        f"<style>{_STYLE}</style></head><body>",
        "<h1>irframe evaluation report</h1>",
        _table(board),
    ]
    for dataset, images in board.report.items():
        parts.append(f"<h2>{html.escape(dataset)}</h2>")
        per_model = {model: board.image_metrics(model, dataset) for model in board.models}
        crops = {
            model: {img.get("name"): img for img in entry.get("datasets", {}).get(dataset, {}).get("images", [])}
            for model, entry in board.models.items()
        }
        for image, entry in images.items():
            box = entry.get("box")
            where = f" — crop {box[3]}x{box[2]} at (x={box[1]}, y={box[0]})" if box else ""
            parts.append(f"<h3>{html.escape(str(image))}{html.escape(where)}</h3>")
            input_metrics = {k: float(v) for k, v in (entry.get("input_metrics") or {}).items()}
            figures = [_figure(entry.get("input"), root, "Input", _metric_text(input_metrics, board))]
            for model in board.models:
                if dataset not in board.models[model].get("datasets", {}):
                    continue
                values = per_model[model].get(image)
                record = crops[model].get(image, {})
                crop = record.get("crop")
                absent = "no crop saved" if values is not None else "image not in this run"
                if crop and box and record.get("crop_box") not in (None, list(box)):
                    # another run cropped elsewhere (other report_crop): a side-by-side would mislead
                    crop, absent = None, "cropped elsewhere: rerun this model"
                figures.append(_figure(crop, root, model, _metric_text(values or {}, board), absent))
            if entry.get("gt"):
                figures.append(_figure(entry.get("gt"), root, "Ground truth", ""))
            parts.append('<div class="row">' + "".join(figures) + "</div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def crop_rel_path(dataset: str, image: str, who: str) -> str:
    """Where a crop lives, relative to the report folder (``crops/<set>/<image>/<who>.png``, each
    part a :func:`~irframe.evaluate.models.slugify` of the real name, so two names never share a crop)."""
    from irframe.evaluate.models import slugify

    return f"{CROPS_DIR}/{slugify(dataset)}/{slugify(image)}/{slugify(who)}.png"


def image_entry(
    box: tuple[int, int, int, int], input_rel: str, gt_rel: str | None, input_metrics: Mapping[str, Any]
) -> dict[str, Any]:
    """The report record of one image (see :meth:`Leaderboard.set_report_image`)."""
    return {"box": list(box), "input": input_rel, "gt": gt_rel, "input_metrics": dict(input_metrics)}
