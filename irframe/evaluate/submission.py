"""Kaggle-style pixel submissions (the "Denoising Dirty Documents" format).

The competition scores the RMSE of gray intensities in [0, 1] and wants one CSV row per pixel::

    id,value
    1_1_1,1
    1_2_1,1
    1_3_1,0.984314
    ...

``id`` is ``image_row_col`` with 1-based rows and columns. In the competition's sample file the row
index varies fastest (``1_1_1, 1_2_1, 1_3_1, ...``), i.e. pixels are listed column by column
(column-major), and images come in increasing numeric id. :func:`write_submission` writes that
order by default (``order="row"`` gives row-major for other competitions), or exactly the order of
a given sample file. Rows are streamed to disk one image column at a time; the file is written
under a temporary name and renamed only when complete, so a refused page leaves no half file.

A prediction whose size differs from its input page is refused (a resized output would be scored
against the wrong pixels), naming the image. Values are written in [0, 1]: 8/16-bit pages are in
range by construction; a float page (32-bit TIFF) slightly outside is clipped, and one far outside
(a [-1, 1] or [0, 255] output) or not finite is refused, naming the image.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import tempfile
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import numpy as np

from irframe.data.io import give_default_permissions, imread, wrong_value_range
from irframe.errors import DataError
from irframe.text import clip, short

__all__ = ["Page", "SubmissionInfo", "pair_pages", "pixel_rows", "write_submission"]

Order = Literal["column", "row"]
HEADER = "id,value"


@dataclass(frozen=True)
class Page:
    """One test image: its numeric id, the prediction file and the input (noisy) file."""

    id: int
    pred: Path
    input: Path


@dataclass(frozen=True)
class SubmissionInfo:
    """What was written: the file, the number of pixel rows and of images."""

    path: Path
    rows: int
    images: int


def _numeric_id(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        raise DataError(
            f"{path}: image names must be the competition's numeric ids (e.g. 101.png), got {path.stem!r}"
        ) from None


def _images_by_id(folder: Path, what: str) -> dict[int, Path]:
    from irframe.evaluate.images import list_images

    if not folder.is_dir():
        raise DataError(f"{what} folder not found: {folder}")
    found: dict[int, Path] = {}
    for path in list_images(folder):
        image_id = _numeric_id(path)
        if image_id in found:
            raise DataError(f"{folder}: two files for image {image_id}: {found[image_id].name} and {path.name}")
        found[image_id] = path
    if not found:
        raise DataError(f"{folder}: no {what} images")
    return found


def pair_pages(pred_dir: str | os.PathLike[str], input_dir: str | os.PathLike[str]) -> list[Page]:
    """Predictions matched to input pages by numeric id, in increasing id order.

    Raises:
        DataError: a page without a prediction, a prediction without a page, or a non-numeric name.
    """
    preds = _images_by_id(Path(pred_dir), "prediction")
    inputs = _images_by_id(Path(input_dir), "input")
    missing = sorted(set(inputs) - set(preds))
    extra = sorted(set(preds) - set(inputs))
    if missing:
        raise DataError(f"{pred_dir}: no prediction for input image(s) {', '.join(map(str, missing[:10]))}")
    if extra:
        raise DataError(
            f"{pred_dir}: prediction(s) {', '.join(map(str, extra[:10]))} have no input page in {input_dir}"
        )
    return [Page(i, preds[i], inputs[i]) for i in sorted(inputs)]


def _page_values(page: Page) -> np.ndarray:
    """The prediction as an ``H x W`` float array in [0, 1], checked against its input's size."""
    try:
        pred = imread(page.pred, channels=1)[:, :, 0]
    except DataError as exc:  # the reader's own checks (e.g. float values far outside [0, 1]): say which page
        raise DataError(f"image {page.id}: {exc}") from None
    in_h, in_w = _image_size(page.input)
    if pred.shape != (in_h, in_w):
        raise DataError(
            f"image {page.id}: prediction {page.pred} is {pred.shape[1]}x{pred.shape[0]} (WxH) but its input "
            f"{page.input} is {in_w}x{in_h}; refusing to write a page whose output size differs from its input"
        )
    values = pred.astype(np.float64)
    # 8/16-bit files are in [0, 1] by construction; a float file (32-bit TIFF) may not be. Overshoot
    # is clipped (the score wants [0, 1]); a wrong value range (a [-1, 1] or [0, 255] output) is
    # refused, since clipping it would submit a wrong page without a word.
    if not np.isfinite(values).all():
        raise DataError(f"image {page.id}: prediction {page.pred} contains NaN or infinite values")
    if wrong_value_range(values):
        raise DataError(
            f"image {page.id}: prediction {page.pred} has values in [{values.min():.4g}, {values.max():.4g}], far "
            "outside [0, 1]; refusing to clip them into a submission (is the model's output range [0, 1]?)"
        )
    return np.clip(values, 0.0, 1.0)


def _image_size(path: Path) -> tuple[int, int]:
    return imread(path, channels=None).shape[:2]


def _fmt(values: list[float]) -> list[str]:
    # 6 significant digits: an 8-bit value k/255 is off by < 1e-6, far below the score's resolution
    return [f"{v:.6g}" for v in values]


def pixel_rows(image_id: int, values: np.ndarray, order: Order = "column") -> Iterator[str]:
    """CSV text of one image, one chunk per column (``"column"``) or per row (``"row"``)."""
    h, w = values.shape
    if order == "column":
        for c in range(w):
            col = _fmt(values[:, c].tolist())
            yield "".join(f"{image_id}_{r + 1}_{c + 1},{v}\n" for r, v in enumerate(col))
    elif order == "row":
        for r in range(h):
            row = _fmt(values[r, :].tolist())
            yield "".join(f"{image_id}_{r + 1}_{c + 1},{v}\n" for c, v in enumerate(row))
    else:
        raise ValueError(f"order must be 'column' or 'row', got {order!r}")


def _open_text(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, mode.replace("t", "") + "b"), encoding="utf-8", newline="")  # type: ignore[type-var]  # GzipFile is a binary buffer
    return open(path, mode, encoding="utf-8", newline="")


def write_submission(
    pred_dir: str | os.PathLike[str],
    input_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    order: Order = "column",
    sample: str | os.PathLike[str] | None = None,
) -> SubmissionInfo:
    """Write the pixel submission for the predictions in ``pred_dir``.

    Args:
        pred_dir: restored pages named ``<id>.png`` (gray, or colour reduced to luma).
        input_dir: the competition's test pages (same names), used to check sizes.
        out: the CSV to write (``.csv`` or ``.csv.gz``); replaced atomically.
        order: pixel order within an image when no sample file is given: ``"column"`` (the Dirty
            Documents sample's order, row index fastest) or ``"row"``.
        sample: a sample submission whose ids give the exact row order (and the set of pixels).

    Raises:
        DataError: missing/extra pages, non-numeric names, a size mismatch, or a sample file that
            does not match the predictions (unknown image, pixel outside the page, pixels missing).
    """
    pages = pair_pages(pred_dir, input_dir)
    dest = Path(out)
    if sample is not None:
        _check_sample(Path(sample))
    check_destination(dest, [*(p.pred for p in pages), *(p.input for p in pages), *([Path(sample)] if sample else [])])
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{dest.name}.", suffix=".tmp" + (".gz" if dest.suffix == ".gz" else ""), dir=dest.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with _open_text(tmp, "wt") as fh:
            fh.write(HEADER + "\n")
            if sample is None:
                rows = 0
                for page in pages:
                    values = _page_values(page)
                    for chunk in pixel_rows(page.id, values, order):
                        fh.write(chunk)
                    rows += values.size
            else:
                rows = _write_in_sample_order(fh, pages, Path(sample))
        give_default_permissions(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return SubmissionInfo(dest, rows, len(pages))


def check_destination(dest: Path, sources: list[Path]) -> None:
    """The guards ``tools/infer.py`` applies to its outputs, for the submission file: it must be a
    ``.csv``/``.csv.gz`` file name (not a folder), and not one of ``sources`` (same file, also
    through a hard or symbolic link).

    Raises:
        DataError: naming ``dest`` and the input it would overwrite.
    """
    if dest.is_dir():
        raise DataError(f"{dest}: is a folder; --out names the submission file (.csv or .csv.gz)")
    if not (dest.name.endswith(".csv") or dest.name.endswith(".csv.gz")):
        raise DataError(f"{dest}: a submission is written as .csv or .csv.gz; refusing another name (an input page?)")
    if dest.exists():
        st = dest.stat()
        for src in sources:
            other = src.stat()
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                raise DataError(f"{dest}: is the input {src}; refusing to overwrite it (choose another --out)")


def _check_sample(sample: Path) -> None:
    """``--sample`` names a readable file (not a folder, not missing), before anything is written."""
    if sample.is_dir():
        raise DataError(f"{sample}: is a folder; --sample names the sample submission file (.csv or .csv.gz)")
    if not sample.is_file():
        raise DataError(f"{sample}: sample submission not found")


def _sample_records(sample: Path) -> Iterator[list[str]]:
    """The CSV records of the sample submission; a file that cannot be read as CSV text (binary,
    not UTF-8, a broken gzip stream, unreadable) is a :class:`DataError` naming it."""
    try:
        with _open_text(sample, "rt") as src:
            yield from csv.reader(src)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{sample}: not a sample submission: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); is it a CSV file?"
        ) from None
    except (OSError, EOFError, zlib.error, csv.Error) as exc:  # BadGzipFile is an OSError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise DataError(f"{sample}: cannot read the sample submission ({clip(reason, 120)})") from None


def _write_in_sample_order(fh: IO[str], pages: list[Page], sample: Path) -> int:
    """Stream ``sample``'s ids and write each with its predicted value; returns the row count."""
    by_id = {p.id: p for p in pages}
    cache: OrderedDict[int, np.ndarray] = OrderedDict()  # a few pages: samples list pages in blocks
    counts: dict[int, int] = {}
    rows = 0
    reader = _sample_records(sample)
    header = next(reader, None)
    if header is None or [h.strip() for h in header[:1]] != ["id"]:
        raise DataError(
            f"{sample}: not a sample submission (first line should be {HEADER!r}, got {short(header, 80)})"
        )
    buf: list[str] = []
    for line_no, record in enumerate(reader, start=2):
        if not record:
            continue
        pixel_id = record[0].strip()
        try:
            image_s, row_s, col_s = pixel_id.split("_")
            image_id, row, col = int(image_s), int(row_s), int(col_s)
        except ValueError:
            raise DataError(f"{sample}:{line_no}: id {short(pixel_id, 80)} is not image_row_col") from None
        values = cache.get(image_id)
        if values is None:
            if image_id not in by_id:
                raise DataError(f"{sample}:{line_no}: image {image_id} has no prediction")
            values = cache[image_id] = _page_values(by_id[image_id])
            if len(cache) > 4:
                cache.popitem(last=False)
        else:
            cache.move_to_end(image_id)
        h, w = values.shape
        if not (1 <= row <= h and 1 <= col <= w):
            raise DataError(f"{sample}:{line_no}: pixel {pixel_id} is outside image {image_id} ({w}x{h} WxH)")
        buf.append(f"{pixel_id},{values[row - 1, col - 1]:.6g}\n")
        counts[image_id] = counts.get(image_id, 0) + 1
        rows += 1
        if len(buf) >= 65536:
            fh.write("".join(buf))
            buf.clear()
    fh.write("".join(buf))
    for image_id, page in by_id.items():
        n = counts.get(image_id, 0)
        if n == 0:
            raise DataError(f"{sample}: lists no pixel of image {image_id} ({page.pred})")
        h, w = _image_size(page.input)
        if n != h * w:
            raise DataError(f"{sample}: lists {n} pixels of image {image_id}, which has {h * w} ({w}x{h})")
    return rows
