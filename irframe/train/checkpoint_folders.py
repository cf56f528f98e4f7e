"""Training checkpoints: one folder per save, written whole or not at all.

Layout of an experiment's ``checkpoints/`` folder::

    iter_000100/  model.safetensors  [ema.safetensors]  trainer_state.pt
    iter_000200/  ...
    best/         model.safetensors  [ema.safetensors]  best.json

A checkpoint is written under a hidden temporary name in the same folder and renamed with
``os.replace`` once every file is complete, so a crash during a save leaves the previous
checkpoints untouched and never a half-written one that ``--resume auto`` would pick.
Weights go through :func:`irframe.nn.weights.save_weights` (safetensors with ``arch`` and
``config`` metadata); the trainer state (optimizer, scheduler, EMA counters, RNG states, data
position, iteration, best metric) through ``torch.save``, read back with ``weights_only=True``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from irframe.errors import CheckpointError

STATE_FILE = "trainer_state.pt"
MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
BEST_DIR = "best"
STATE_FORMAT = 1
_ITER_RE = re.compile(r"^iter_(\d+)$")


def iter_dirname(iteration: int) -> str:
    """Folder name of the checkpoint after ``iteration`` optimizer steps."""
    return f"iter_{iteration:06d}"


def iteration_of(folder: Path) -> int | None:
    """The iteration of an ``iter_N`` checkpoint folder (``None`` for any other name)."""
    m = _ITER_RE.match(folder.name)
    return int(m.group(1)) if m else None


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` is a finished training checkpoint (weights and state present)."""
    return (folder / STATE_FILE).is_file() and (folder / MODEL_FILE).is_file()


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete ``iter_*`` checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        m = _ITER_RE.match(child.name)
        if m and child.is_dir() and is_complete(child):
            found.append((int(m.group(1)), child))
    return sorted(found)


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint under ``root`` (``None`` if there is none)."""
    found = list_checkpoints(root)
    return found[-1][1] if found else None


def write_folder(final: Path, write: Callable[[Path], None]) -> Path:
    """Create ``final`` atomically: ``write(tmp)`` fills a temporary sibling that is then renamed.

    An existing ``final`` (a re-save of the same iteration) is replaced only after the new folder
    is complete.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp_{final.name}_{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        write(tmp)
        _fsync_dir(tmp)
        if final.exists():
            old = final.parent / f".old_{final.name}_{uuid.uuid4().hex[:8]}"
            os.replace(final, old)  # a directory cannot be replaced by os.replace while non-empty
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(final.parent)
    except (OSError, CheckpointError) as exc:  # a full disk, a read-only folder: say what is safe
        shutil.rmtree(tmp, ignore_errors=True)
        reason = str(exc) if isinstance(exc, CheckpointError) else f"{exc.filename or tmp}: {exc.strerror or exc}"
        raise CheckpointError(
            f"{final}: not saved ({reason}); the earlier checkpoints in {final.parent} are intact"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _fsync_dir(path: Path) -> None:
    # Make the renames durable on POSIX; not available (or needed) everywhere.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def prune(root: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` complete checkpoints, and the debris of killed saves.

    A checkpoint is renamed out of the ``iter_*`` namespace before its files are deleted, so a
    crash mid-deletion never leaves a half-deleted folder that still looks like a checkpoint.
    Only the main process writes, and never while pruning, so every ``.tmp_*`` folder here was
    left by a save that was killed.
    """
    removed = []
    for _, folder in list_checkpoints(root)[:-keep] if keep > 0 else []:
        doomed = root / f".old_{folder.name}_{uuid.uuid4().hex[:8]}"
        os.replace(folder, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(folder)
    for child in [*root.glob(".old_*"), *root.glob(".tmp_*")]:
        shutil.rmtree(child, ignore_errors=True)
    return removed


def check_finite(state: Mapping[str, torch.Tensor], what: str) -> None:
    """Refuse to save weights holding NaN or inf (they would overwrite a good checkpoint)."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise CheckpointError(f"{what}: not saved, non-finite values in {shown}")


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write the trainer state (plain containers of tensors/numbers/strings) with ``torch.save``,
    flushed to the disk (``fsync``) like the weights."""
    with open(path, "wb") as fh:
        torch.save({"format": STATE_FORMAT, **state}, fh)
        fh.flush()
        os.fsync(fh.fileno())


def load_state(folder: Path) -> dict[str, Any]:
    """Read ``trainer_state.pt`` of a checkpoint folder safely (``weights_only=True``)."""
    from irframe.nn.weights import read_checkpoint

    path = folder / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{folder}: not a training checkpoint (no {STATE_FILE})")
    # weights_only=True, with one-line messages for empty, corrupt and refused files (torch's own
    # text for a refused pickle advises weights_only=False, which would run the file's code).
    state, _ = read_checkpoint(path)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(
            f"{path}: unknown trainer-state format "
            f"{state.get('format') if isinstance(state, dict) else type(state).__name__}"
        )
    return state


def write_best_info(folder: Path, info: Mapping[str, Any]) -> None:
    """Describe the best checkpoint (metric, value, iteration) next to its weights."""
    value = info.get("value")
    if isinstance(value, float) and not math.isfinite(value):
        raise CheckpointError(f"best checkpoint: metric value {value} is not finite")
    with open(folder / "best.json", "w", encoding="utf-8") as fh:
        fh.write(json.dumps(dict(info), indent=2))
        fh.flush()
        os.fsync(fh.fileno())
