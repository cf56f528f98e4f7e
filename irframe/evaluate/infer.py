"""Restore one image or a folder of images (what ``tools/infer.py`` does).

Safety first: an input file is never overwritten. The output folder may not be the input's folder,
and a destination that is an input file (a hard link, a symlinked folder) or a byte-identical copy
of its input (an output folder that is a copy of the inputs) is refused before any work starts.
Outputs keep the input's bit depth and channels (gray stays gray; 16-bit stays 16-bit).

Dual-pixel models (two views of each image stacked on the channel axis, e.g. Restormer's 6-channel
defocus deblurring) get each left view from ``--input`` and its right view from ``--input-right``
(a file, or a folder whose images pair with the inputs by file stem); the output is named and
stored like the left view (a 16-bit view gives a 16-bit output).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from irframe.data.io import img2tensor, imread
from irframe.errors import DataError, OptionsError
from irframe.evaluate.images import list_images, output_suffix, probe_image, save_restored
from irframe.nn.spec import get_spec, resolve_task, spec_for_task

__all__ = ["InferResult", "check_task", "infer_files", "match_right_views", "plan_outputs"]


def _same_content(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(1 << 20), fb.read(1 << 20)
            if ca != cb:
                return False
            if not ca:
                return True


def plan_outputs(input_path: str | os.PathLike[str], output_dir: str | os.PathLike[str]) -> list[tuple[Path, Path]]:
    """``(source, destination)`` pairs for an image or a folder of images, after the safety checks.

    Raises:
        DataError: no input, an output folder equal to the input folder (or holding the input files
            or copies of them), an output path that is a file, or two inputs with the same output name.
    """
    src = Path(input_path)
    out = Path(output_dir)
    if src.is_dir():
        sources = list_images(src)
        if not sources:
            raise DataError(f"{src}: no image files in the input folder")
        input_folder = src
    elif src.is_file():
        sources = [src]
        input_folder = src.parent
    else:
        raise DataError(f"input not found: {src}")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: the output path exists and is not a folder")
    if out.resolve() == input_folder.resolve():
        raise DataError(
            f"{out}: the output folder is the input folder {input_folder}; choose another folder so that "
            "no input image can be overwritten"
        )
    # (device, inode) catches hard links and symlinked folders that path comparison misses
    input_ids = {(st.st_dev, st.st_ino) for st in (s.stat() for s in sources)}
    pairs: list[tuple[Path, Path]] = []
    taken: dict[Path, Path] = {}
    for s in sources:
        dest = out / f"{s.stem}{output_suffix(s)}"
        if dest in taken:
            raise DataError(f"{s} and {taken[dest]} would both be written to {dest}; rename one of them")
        taken[dest] = s
        if dest.exists():
            st = dest.stat()
            if (st.st_dev, st.st_ino) in input_ids:
                raise DataError(f"{dest}: is an input file; refusing to overwrite it (choose another output folder)")
            if _same_content(dest, s):
                raise DataError(
                    f"{out}: holds the same files as the input folder ({dest.name} is a copy of {s}); refusing "
                    "to overwrite what looks like the inputs; choose an empty output folder"
                )
        pairs.append((s, dest))
    return pairs


def match_right_views(
    pairs: list[tuple[Path, Path]], input_right: str | os.PathLike[str], output_dir: str | os.PathLike[str]
) -> dict[Path, Path]:
    """The right view of each input (left view) of ``pairs``: ``{left: right}``.

    ``input_right`` is a file (for a single input image) or a folder whose images pair with the
    inputs by file stem; an input without a right view, or a right view without an input, is an
    error listing them. The right views are inputs too: an output that would overwrite one (the
    output folder is the right-view folder, or a destination is a right-view file) is refused.

    Raises:
        DataError: a missing path, unpaired images, or an output that would overwrite a right view.
    """
    right = Path(input_right)
    out = Path(output_dir)
    lefts = [src for src, _dest in pairs]
    if right.is_dir():
        if out.resolve() == right.resolve():
            raise DataError(
                f"{out}: the output folder is the right-view folder {right}; choose another folder so that "
                "no input image can be overwritten"
            )
        views: dict[str, Path] = {}
        for f in list_images(right):
            if f.stem in views:
                raise DataError(f"{right}: {views[f.stem].name} and {f.name} are both right views of {f.stem!r}")
            views[f.stem] = f
        missing = [str(s) for s in lefts if s.stem not in views]
        orphans = sorted(set(views) - {s.stem for s in lefts})
        if missing or orphans:
            parts = [f"--input and --input-right {right} do not pair up by file name"]
            if missing:
                parts.append(f"{len(missing)} input(s) without a right view: {', '.join(missing[:10])}")
            if orphans:
                parts.append(f"{len(orphans)} right view(s) without an input: {', '.join(orphans[:10])}")
            raise DataError("; ".join(parts))
        matched = {s: views[s.stem] for s in lefts}
    elif right.is_file():
        if len(lefts) != 1:
            raise DataError(
                f"--input-right {right} is one file but --input holds {len(lefts)} images; give a folder of right "
                "views named like the inputs"
            )
        matched = {lefts[0]: right}
    else:
        raise DataError(f"right-view input not found: {right}")
    right_ids = {(st.st_dev, st.st_ino) for st in (r.stat() for r in matched.values())}
    for _src, dest in pairs:
        if dest.exists():
            st = dest.stat()
            if (st.st_dev, st.st_ino) in right_ids:
                raise DataError(
                    f"{dest}: is a right-view input file; refusing to overwrite it (choose another output folder)"
                )
    return matched


def check_task(model: torch.nn.Module, task: str | int | None) -> str | int | None:
    """The task to run, selected on the model: required for multi-task models, refused for models
    without tasks. A name the model accepts in another spelling (IPT: ``sr2``) becomes its own name
    (:func:`~irframe.nn.spec.resolve_task`); a number is an index into the model's tasks."""
    tasks = get_spec(model).tasks
    if task is None:
        if len(tasks) > 1:
            raise OptionsError(f"this model is multi-task: choose one with --task ({', '.join(tasks)})")
        return None
    if not tasks:
        raise OptionsError(f"--task {task!r}: this model has no tasks to choose from")
    if isinstance(task, str) and task not in tasks and task.isdigit() and int(task) < len(tasks):
        return tasks[int(task)]
    try:
        resolved = resolve_task(model, task)
        tasks = spec_for_task(model, resolved).tasks  # selects it (a single-task model may take the name)
    except ValueError as exc:
        raise OptionsError(f"--task {task!r}: {exc}") from None
    if isinstance(resolved, str) and resolved not in tasks:
        raise OptionsError(f"--task {task!r}: unknown task; the model's tasks are {', '.join(tasks)}")
    return resolved


@dataclass
class InferResult:
    """Files written and files that could not be read (with the reason)."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def infer_files(
    model: torch.nn.Module,
    pairs: list[tuple[Path, Path]],
    *,
    tile: int | Literal["auto"] | None = None,
    tile_overlap: int | None = None,
    self_ensemble: bool = False,
    task: str | int | None = None,
    device: str | torch.device = "cpu",
    max_memory: int | None = None,
    precision: Literal["fp32", "bf16", "fp16"] = "fp32",
    progress: bool = True,
    log: Callable[[str], Any] = print,
    right_views: Mapping[Path, Path] | None = None,
) -> InferResult:
    """Restore each ``(source, destination)`` pair.

    Args:
        tile: tile side, ``"auto"`` (per image, the largest tile whose estimated peak memory fits
            ``max_memory``; the choice is logged when it changes) or ``None`` (whole images).
        max_memory: budget in bytes of ``tile="auto"`` (default: the device's free memory).
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (see :func:`~irframe.nn.inference.restore`).
        log: receives error lines and the automatic tile choices.
        right_views: ``{source: right view}`` (:func:`match_right_views`) for a dual-pixel model,
            whose input is the two views stacked on the channel axis (left first); ``None`` for a
            model that takes one gray or RGB image.

    An unreadable image is reported (naming the file) and skipped; the others are still written.
    """
    from tqdm import tqdm

    from irframe.nn.autotile import AutoTiler, MemoryBudgetError
    from irframe.nn.inference import autocast_context, restore

    if tile is not None and tile != "auto" and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise OptionsError(f"tile {tile!r}: expected a positive tile size or 'auto'")
    device = torch.device(device)
    try:
        autocast_context(device, precision)  # fp16 on the CPU, or an unknown name: refused before any work
    except ValueError as exc:
        raise OptionsError(str(exc)) from None
    spec = get_spec(model)
    view_channels = _view_channels(spec.in_channels, right_views is not None)
    tiler = (
        AutoTiler(model, max_memory, overlap=tile_overlap, precision=precision, self_ensemble=self_ensemble, log=log)
        if tile == "auto"
        else None
    )
    result = InferResult()
    for src, dest in tqdm(pairs, desc="infer", unit="img", disable=not progress):
        try:
            fmt = probe_image(src)
            image = imread(src, channels=view_channels)
            if right_views is not None:
                image = _stack_views(image, src, right_views[src], view_channels)
        except DataError as exc:
            result.failed.append((src, str(exc)))
            log(f"error: {exc}")
            continue
        x = img2tensor(image).unsqueeze(0).to(device)
        try:
            kw = tiler(x, task=task).restore_kwargs() if tiler else {"tile": tile, "tile_overlap": tile_overlap}
            y = restore(model, x, self_ensemble=self_ensemble, task=task, precision=precision, **kw)
        except MemoryBudgetError as exc:
            raise MemoryBudgetError(f"{src}: {exc}") from None
        except ValueError as exc:  # restore's checks: a tile that does not fit the model's spec, ...
            raise OptionsError(f"{src}: cannot restore: {exc}") from None
        save_restored(dest, y[0].cpu(), fmt)
        result.written.append(dest)
    return result


def _view_channels(in_channels: int, dual: bool) -> Literal[1, 3]:
    """Channels read from each input file: the model's, or half of them for two stacked views."""
    if not dual:
        if in_channels in (1, 3):
            return 1 if in_channels == 1 else 3
        if in_channels in (2, 6):
            raise OptionsError(
                f"this model takes {in_channels} channels: two views of each image (dual-pixel left and right); "
                "give the right views with --input-right FILE_OR_DIR (the left views are --input)"
            )
        raise OptionsError(
            f"infer works on gray or RGB images (or dual-pixel view pairs); this model takes {in_channels} "
            "channels: run it from Python with irframe.nn.inference.restore"
        )
    if in_channels not in (2, 6):
        raise OptionsError(
            f"--input-right: this model takes {in_channels}-channel images, not two stacked views; --input-right "
            "is for dual-pixel models (6 channels: left and right RGB views)"
        )
    return 1 if in_channels == 2 else 3


def _stack_views(left: np.ndarray, left_path: Path, right_path: Path, channels: Literal[1, 3]) -> np.ndarray:
    """The left and right views stacked on the channel axis (left first), after a size check."""
    right = imread(right_path, channels=channels)
    if right.shape != left.shape:
        raise DataError(
            f"{right_path} is {right.shape[0]}x{right.shape[1]} but its left view {left_path} is "
            f"{left.shape[0]}x{left.shape[1]}; the two views must have the same size"
        )
    return np.concatenate([left, right], axis=2)
