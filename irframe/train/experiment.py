"""Where a run writes: the experiment folder, and which checkpoint it resumes from.

Rules: an existing experiment folder is never overwritten. ``--resume auto`` continues the
folder's latest complete checkpoint (or starts in it when it has none yet); ``--resume PATH``
continues a given checkpoint folder (or an experiment folder's latest; an older checkpoint
branches into a new folder, never overwriting the newer ones); without ``--resume`` a run whose
folder exists gets the next free name ``<name>_1``, ``<name>_2``, ... and says so.
:func:`claim_experiment` creates the folder and locks it for the run (:mod:`.lock`): a new run's
folder is created exclusively, so two runs started at once never share one, and a second run on
a folder in use is refused. ``name`` must be one plain folder name (:func:`check_name`).
"""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

from irframe.errors import CheckpointError, OptionsError
from irframe.train.checkpoint_folders import (
    BEST_DIR,
    is_complete,
    iteration_of,
    latest_checkpoint,
    list_checkpoints,
    write_folder,
)
from irframe.train.lock import LOCK_FILE, ExperimentLock, release_folder

MAX_NAME_BYTES = 200
"""Longest run ``name`` (UTF-8 bytes): folder names stop at 255, and a run may add ``_N`` or
``_from_iter_NNNNNN`` to it."""


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
        source: for a branch (``--resume`` of an older checkpoint), the experiment it came from.
        created: this run created the folder (:func:`discard_unused` may remove it again).
    """

    name: str
    root: Path
    resume_from: Path | None
    message: str
    fallbacks: tuple[Path, ...] = field(default=())
    source: Path | None = None
    created: bool = False

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
            spaces, or a name longer than :data:`MAX_NAME_BYTES`; the message names the key and the value.
    """
    why = None
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        raise OptionsError(
            f"{source}: name: {name[:40]!r}... is {size} bytes long; at most {MAX_NAME_BYTES} (a folder name "
            "has at most 255, and a run may add _N or _from_iter_N to it)"
        )
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
    """Decide the run folder and resume checkpoint (creates nothing).

    ``--resume PATH`` naming a checkpoint older than the newest of its experiment (or than its
    ``best/``) does not continue in that folder, which would overwrite the newer checkpoints: the
    run branches into a new experiment beside it, ``<name>_from_iter_N`` (see :func:`claim_experiment`).
    """
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


def newer_than(ckpt: Path) -> list[str]:
    """What resuming ``ckpt`` in place would overwrite: the complete checkpoints of its experiment
    after it, and ``best/`` when it was saved at a later iteration."""
    iteration = iteration_of(ckpt)
    if iteration is None:
        return []
    found = [p.name for it, p in list_checkpoints(ckpt.parent) if it > iteration]
    try:
        best = json.loads((ckpt.parent / BEST_DIR / "best.json").read_text(encoding="utf-8"))
        if isinstance(best, dict) and int(best.get("iteration", -1)) > iteration:
            found.append(f"{BEST_DIR}/ (iteration {int(best['iteration'])})")
    except (OSError, ValueError, TypeError):
        pass
    return found


def check_experiments_root(base: Path, source: str = "options", writable: bool = True) -> None:
    """Refuse a ``path.experiments_root`` that is a file or a folder (or the nearest existing
    parent of one) that cannot be written, before anything is built or written. ``writable``:
    whether the run makes a new folder in it (a resume writes in its experiment folder only)."""
    probe = base
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        what = f"{probe} (a parent of it)" if probe != base else str(base)
        raise OptionsError(f"{source}: path.experiments_root: {what} is a file, not a folder")
    if (writable or probe != base) and not os.access(probe, os.W_OK | os.X_OK):
        what = f"{base} cannot be created: {probe} is not writable" if probe != base else f"{base} is not writable"
        raise OptionsError(f"{source}: path.experiments_root: {what}; choose a folder this user can write")


def claim_experiment(experiments_root: str | Path, name: str, resume: str | None) -> Experiment:
    """Resolve (:func:`resolve_experiment`), create the run folder and its ``checkpoints/``, and
    lock it for this process (:class:`~.lock.ExperimentLock`; release it with :func:`release`).

    A new run creates its folder with an exclusive ``mkdir``: when another run created the same
    folder in between (two runs started at once), the name is resolved again (``<name>_N+1``).
    A resumed run locks the folder first and then picks the checkpoint, so a second run on the
    same folder is refused (:class:`~.lock.ExperimentInUse`) before it reads or writes anything.
    A branch (``--resume`` of an older checkpoint) gets a new folder holding a copy of that
    checkpoint (hard links where possible), so ``--resume auto`` on the branch continues it.
    """
    base = Path(experiments_root)
    check_experiments_root(base, writable=resume is None)
    for _ in range(1000):
        plan = resolve_experiment(base, name, resume)
        exclusive = resume is None or plan.source is not None  # a folder of its own
        existed = plan.root.is_dir()
        try:
            plan.root.mkdir(parents=True, exist_ok=not exclusive)
        except FileExistsError:
            continue  # another run took this name a moment ago
        except OSError as exc:
            raise OptionsError(f"path.experiments_root: cannot create {plan.root} ({_reason(exc)})") from None
        lock = _lock(plan.root, resume)
        try:
            if exclusive:
                exp = _branch_copy(plan) if plan.source is not None else plan
            else:
                exp = resolve_experiment(base, name, resume)  # decided again, under the lock
                if exp.root != plan.root or exp.source is not None:
                    lock.release()  # the folder changed in between (a branch is needed now): decide again
                    continue
            exp.checkpoints.mkdir(exist_ok=True)
        except BaseException:
            lock.release()
            if not existed:  # e.g. a branch whose copy failed: leave no empty folder behind
                discard_unused(replace(plan, created=True))
            raise
        return replace(exp, created=not existed)
    raise OptionsError(f"{experiments_root}: could not claim a free experiment folder for {name!r}")


def release(exp: Experiment) -> None:
    """Give up this process's lock on ``exp``'s folder (nothing when it holds none)."""
    release_folder(exp.root)


def discard_unused(exp: Experiment) -> bool:
    """Remove the folder of a run that failed before training, when this run created it and it
    holds nothing but what the run wrote on the way (``options.yml``, the log, the lock, the
    trackers' start-up files, empty sub-folders); otherwise keep it. Returns whether it was removed."""
    if not exp.created or not exp.root.is_dir():
        return False
    ours = {"options.yml", "train.log", LOCK_FILE, "trackers.json"}
    for path in exp.root.rglob("*"):
        rel = path.relative_to(exp.root)
        if path.is_dir() and not path.is_symlink():
            continue
        if len(rel.parts) == 1 and rel.name in ours:
            continue
        if rel.parts[0] in (exp.tensorboard.name, "wandb"):  # a tracker's files, nothing logged yet
            continue
        if exp.source is not None and exp.resume_from is not None and rel.parts[:2] == (
            "checkpoints", exp.resume_from.name,
        ):  # a branch's copy of the checkpoint it started from
            continue
        return False  # anything else (a checkpoint, an image, a user's file) keeps the folder
    release(exp)
    shutil.rmtree(exp.root, ignore_errors=True)
    return not exp.root.exists()


def _lock(root: Path, resume: str | None) -> ExperimentLock:
    try:
        return ExperimentLock.acquire(root)
    except OSError as exc:  # the lock file cannot be created: a read-only folder or file system
        doing = "resume in" if resume is not None else "write"
        raise OptionsError(
            f"{root}: cannot {doing} this experiment folder ({_reason(exc)}); a run writes its checkpoints and "
            "log there: make it writable, or copy the experiment somewhere writable"
        ) from None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _explicit(path: Path) -> Experiment:
    if not path.exists():
        raise OptionsError(f"--resume {path}: no such checkpoint or experiment folder")
    if is_complete(path):
        root = path.parent.parent  # <experiment>/checkpoints/iter_N
        if path.parent.name != "checkpoints":
            raise CheckpointError(f"--resume {path}: expected a folder <experiment>/checkpoints/iter_N")
        newer = newer_than(path)
        if newer:
            branch = _free_name(root.parent, f"{root.name}_from_{path.name}", bare=True)
            target = root.parent / branch
            return Experiment(
                branch, target, path,
                f"--resume {path}: {root} has newer checkpoints ({', '.join(newer)}), which are kept; this run "
                f"branches into a new experiment {target} starting from a copy of {path.name}. Continue the branch "
                f"with --resume {target} (or --set name={branch} --resume auto); --resume auto with name "
                f"{root.name!r} continues the original",
                source=root,
            )
        return Experiment(root.name, root, path, f"resuming {root} from {path.name}")
    ckpt = latest_checkpoint(path / "checkpoints")
    if ckpt is None:
        raise CheckpointError(f"--resume {path}: neither a complete checkpoint nor an experiment with one")
    older = tuple(p for _, p in reversed(list_checkpoints(path / "checkpoints")) if p != ckpt)
    return Experiment(path.name, path, ckpt, f"resuming {path} from {ckpt.name}", older)


def _branch_copy(plan: Experiment) -> Experiment:
    """Copy the branch's starting checkpoint into its new folder (hard links: the files are never
    changed in place, only replaced by whole new folders)."""
    assert plan.resume_from is not None
    source = plan.resume_from

    def write(tmp: Path) -> None:
        for item in sorted(source.iterdir()):
            if not item.is_file():
                continue
            try:
                os.link(item, tmp / item.name)
            except OSError:
                shutil.copy2(item, tmp / item.name)

    copy = write_folder(plan.checkpoints / source.name, write)
    return replace(plan, resume_from=copy, fallbacks=())


def _free_name(base: Path, name: str, bare: bool = False) -> str:
    if bare and not (base / name).exists():
        return name
    i = 1
    while (base / f"{name}_{i}").exists():
        i += 1
    return f"{name}_{i}"
