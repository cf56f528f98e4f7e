"""Where a run writes: the experiment folder, and which checkpoint it resumes from.

Rules: an existing experiment folder is never overwritten. ``--resume auto`` continues the
folder's latest complete checkpoint (or starts in it when it has none yet); ``--resume PATH``
continues a given checkpoint folder (or an experiment folder's latest); without ``--resume`` a
run whose folder exists gets the next free name ``<name>_1``, ``<name>_2``, ... and says so.
:func:`claim_experiment` creates the folder: a new run's folder is created exclusively, so two runs
started at once never share one. ``name`` must be one plain folder name (:func:`check_name`).
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from irframe.errors import CheckpointError, OptionsError
from irframe.train.checkpoint import is_complete, latest_checkpoint, list_checkpoints


@dataclass(frozen=True)
class Experiment:
    """The resolved run folder and resume point.

    Attributes:
        name: the run's name (the folder name; may differ from the options' ``name``).
        root: ``experiments_root / name``.
        resume_from: the checkpoint folder to continue from, if any.
        message: one line telling the user what was decided.
        fallbacks: for ``--resume auto``, the older complete checkpoints (newest first) to try
            when ``resume_from`` turns out to be unreadable.
    """

    name: str
    root: Path
    resume_from: Path | None
    message: str
    fallbacks: tuple[Path, ...] = field(default=())

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def visualization(self) -> Path:
        return self.root / "visualization"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"


def check_name(name: str, source: str = "options") -> None:
    """Refuse a run ``name`` that is not one plain folder name.

    Raises:
        OptionsError: an empty name, ``.``/``..``, a path separator (``../../x`` would write
            outside ``experiments_root``), a control character (newline, tab, ...) or surrounding
            spaces; the message names the key and the value.
    """
    why = None
    if not name or name.strip() != name:
        why = "is empty or starts/ends with spaces"
    elif name in (".", ".."):
        why = "is a relative path"
    elif "/" in name or "\\" in name or (os.altsep and os.altsep in name):
        why = "contains a path separator (the experiment folder must stay inside path.experiments_root)"
    elif any(unicodedata.category(ch).startswith("C") for ch in name):
        why = "contains a control character (newline, tab, ...)"
    if why:
        raise OptionsError(f"{source}: name: {name!r} {why}; use one plain folder name")


def resolve_experiment(experiments_root: str | Path, name: str, resume: str | None) -> Experiment:
    """Decide the run folder and resume checkpoint (creates nothing)."""
    check_name(name)
    base = Path(experiments_root)
    root = base / name
    if resume is None:
        if not root.exists():
            return Experiment(name, root, None, f"new experiment {root}")
        new_name = _free_name(base, name)
        return Experiment(
            new_name,
            base / new_name,
            None,
            f"{root} exists and is kept; this run is named {new_name!r} ({base / new_name}). "
            f"Use --resume auto to continue {name!r} instead",
        )
    if resume == "auto":
        if not root.exists():
            return Experiment(name, root, None, f"--resume auto: {root} does not exist yet; new experiment")
        ckpt = latest_checkpoint(root / "checkpoints")
        if ckpt is None:
            return Experiment(
                name, root, None, f"--resume auto: no complete checkpoint in {root}; starting at iteration 0 in it"
            )
        older = tuple(p for _, p in reversed(list_checkpoints(root / "checkpoints")) if p != ckpt)
        return Experiment(name, root, ckpt, f"resuming {root} from {ckpt.name}", older)
    return _explicit(Path(resume))


def claim_experiment(experiments_root: str | Path, name: str, resume: str | None) -> Experiment:
    """Resolve (:func:`resolve_experiment`) and create the run folder and its ``checkpoints/``.

    A new run creates its folder with an exclusive ``mkdir``: when another run created the same
    folder in between (two runs started at once), the name is resolved again (``<name>_N+1``).
    """
    for _ in range(1000):
        exp = resolve_experiment(experiments_root, name, resume)
        Path(experiments_root).mkdir(parents=True, exist_ok=True)
        try:
            exp.root.mkdir(exist_ok=resume is not None)
        except FileExistsError:
            continue  # another run took this name a moment ago
        exp.checkpoints.mkdir(exist_ok=True)
        return exp
    raise OptionsError(f"{experiments_root}: could not claim a free experiment folder for {name!r}")


def _explicit(path: Path) -> Experiment:
    if not path.exists():
        raise OptionsError(f"--resume {path}: no such checkpoint or experiment folder")
    if is_complete(path):
        root = path.parent.parent  # <experiment>/checkpoints/iter_N
        if path.parent.name != "checkpoints":
            raise CheckpointError(f"--resume {path}: expected a folder <experiment>/checkpoints/iter_N")
        return Experiment(root.name, root, path, f"resuming {root} from {path.name}")
    ckpt = latest_checkpoint(path / "checkpoints")
    if ckpt is None:
        raise CheckpointError(f"--resume {path}: neither a complete checkpoint nor an experiment with one")
    return Experiment(path.name, path, ckpt, f"resuming {path} from {ckpt.name}")


def _free_name(base: Path, name: str) -> str:
    i = 1
    while (base / f"{name}_{i}").exists():
        i += 1
    return f"{name}_{i}"
