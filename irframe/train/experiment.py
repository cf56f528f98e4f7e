"""Where a run writes: the experiment folder, and which checkpoint it resumes from.

Rules: an existing experiment folder is never overwritten. ``--resume auto`` continues the
folder's latest complete checkpoint (or starts in it when it has none yet); ``--resume PATH``
continues a given checkpoint folder (or an experiment folder's latest); without ``--resume`` a
run whose folder exists gets the next free name ``<name>_1``, ``<name>_2``, ... and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from irframe.errors import CheckpointError, OptionsError
from irframe.train.checkpoint import is_complete, latest_checkpoint


@dataclass(frozen=True)
class Experiment:
    """The resolved run folder and resume point.

    Attributes:
        name: the run's name (the folder name; may differ from the options' ``name``).
        root: ``experiments_root / name``.
        resume_from: the checkpoint folder to continue from, if any.
        message: one line telling the user what was decided.
    """

    name: str
    root: Path
    resume_from: Path | None
    message: str

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def visualization(self) -> Path:
        return self.root / "visualization"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"


def resolve_experiment(experiments_root: str | Path, name: str, resume: str | None) -> Experiment:
    """Decide the run folder and resume checkpoint (creates nothing)."""
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
            return Experiment(name, root, None, f"--resume auto: no complete checkpoint in {root}; starting at iteration 0 in it")
        return Experiment(name, root, ckpt, f"resuming {root} from {ckpt.name}")
    return _explicit(Path(resume))


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
