"""The document-denoising recipe (Kaggle "Denoising Dirty Documents"): split, train, summary.

    python tools/dirty_documents.py split -opt OPTIONS (--data DIR | --noisy DIR --clean DIR) --val-ids ID [ID ...]
    python tools/dirty_documents.py train -opt OPTIONS (--data DIR | --noisy DIR --clean DIR) --val-ids ID [ID ...]
                                          [--set KEY=VALUE ...] [--resume auto|PATH] [--allow-seen-text]

``split`` copies the paired pages into the four folders the option file names
(``datasets.train``/``datasets.val`` ``dataroot_lq`` and ``dataroot_gt``): the pages listed by
``--val-ids`` go to validation, the others to training. ``train`` does the same, trains with
the option file and ends with one line giving the held-out pages' RMSE for the noisy input and
for the restored output (and PSNR), the best checkpoint and the wall time.

An honest validation: the competition reuses each text on several pages (different stains, the
same clean page), so a validation page whose clean page is pixel-identical to a training page's
would be scored on text the model has already seen. The split refuses that (naming the pages)
unless ``--allow-seen-text`` is given, and the summary then says so.

Inputs: ``--data DIR`` holding ``noisy/`` + ``clean/`` or Kaggle's ``train/`` + ``train_cleaned/``,
or the two folders given explicitly. Pairs are matched by file stem. Existing split folders are
reused when they hold exactly the planned files and refused otherwise (nothing is overwritten).
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from irframe.errors import DataError, IrframeError, OptionsError, report_error

if TYPE_CHECKING:  # imported where used: `-h` stays instant
    from irframe.options import Options
    from irframe.train.build import TrainResult

DESCRIPTION = 'The document-denoising recipe (Kaggle "Denoising Dirty Documents"): split, train, summary.'
# (noisy, clean) folder names inside --data, in the order they are tried
LAYOUTS = (("noisy", "clean"), ("train", "train_cleaned"))
SPLIT_KEYS = ("train", "val")  # the option file's dataset names the split fills


@dataclass(frozen=True)
class Pair:
    """One noisy page and its clean page (same file stem)."""

    id: str
    noisy: Path
    clean: Path


@dataclass(frozen=True)
class Split:
    """Which pairs train and which validate; ``seen_text`` lists ``(val id, train id)`` pairs whose
    clean pages are identical (validation text also in training)."""

    train: tuple[Pair, ...]
    val: tuple[Pair, ...]
    seen_text: tuple[tuple[str, str], ...] = ()


def resolve_inputs(data: str | None, noisy: str | None, clean: str | None) -> tuple[Path, Path]:
    """The noisy and clean folders from ``--data`` or ``--noisy``/``--clean``."""
    if data is not None:
        if noisy is not None or clean is not None:
            raise OptionsError("give either --data DIR or --noisy DIR --clean DIR, not both")
        root = Path(data)
        if not root.is_dir():
            raise DataError(f"--data {root}: not a folder")
        for noisy_name, clean_name in LAYOUTS:
            if (root / noisy_name).is_dir() and (root / clean_name).is_dir():
                return root / noisy_name, root / clean_name
        layouts = " or ".join(f"{n}/ + {c}/" for n, c in LAYOUTS)
        raise DataError(f"--data {root}: expected sub-folders {layouts}")
    if noisy is None or clean is None:
        raise OptionsError("give --data DIR, or both --noisy DIR and --clean DIR")
    return Path(noisy), Path(clean)


def find_pairs(noisy_dir: Path, clean_dir: Path) -> dict[str, Pair]:
    """Noisy and clean pages matched by file stem; every page must have its partner."""
    from irframe.evaluate.images import list_images

    for folder in (noisy_dir, clean_dir):
        if not folder.is_dir():
            raise DataError(f"{folder}: not a folder")
    noisy = {p.stem: p for p in list_images(noisy_dir)}
    clean = {p.stem: p for p in list_images(clean_dir)}
    if not noisy:
        raise DataError(f"{noisy_dir}: no images")
    lonely = sorted(set(noisy) ^ set(clean))
    if lonely:
        where = ", ".join(f"{s} (only in {noisy_dir if s in noisy else clean_dir})" for s in lonely[:10])
        raise DataError(f"{noisy_dir} and {clean_dir} do not pair up by file name: {where}")
    return {s: Pair(s, noisy[s], clean[s]) for s in sorted(noisy, key=_id_order)}


def _id_order(stem: str) -> tuple[int, int | str]:
    # numeric ids in numeric order (2 before 10), other names after them by name
    return (0, int(stem)) if stem.isdigit() else (1, stem)


def _page_digest(pair: Pair) -> str:
    """Digest of the clean page's pixels (not its bytes: two encodings of one page are one text);
    checks that the noisy page has the same size."""
    from irframe.data.io import imread

    clean = imread(pair.clean, channels=1)
    h, w = imread(pair.noisy, channels=1).shape[:2]
    if clean.shape[:2] != (h, w):
        raise DataError(
            f"page {pair.id}: {pair.noisy} is {w}x{h} (WxH) but {pair.clean} is {clean.shape[1]}x{clean.shape[0]}"
        )
    return hashlib.sha256(clean.tobytes() + repr(clean.shape).encode()).hexdigest()


def plan_split(pairs: dict[str, Pair], val_ids: Sequence[str], allow_seen_text: bool = False) -> Split:
    """Hold out ``val_ids``; refuse validation pages whose text (clean page) is in training.

    Raises:
        OptionsError: an unknown or repeated id, or no page left for training or validation.
        DataError: a noisy/clean size mismatch, or (without ``allow_seen_text``) validation text
            that also appears in training, naming the pages.
    """
    wanted = [str(v) for v in val_ids]
    unknown = [v for v in wanted if v not in pairs]
    if unknown:
        raise OptionsError(f"--val-ids: no page {', '.join(unknown)}; the pages are {', '.join(pairs)}")
    if len(set(wanted)) != len(wanted):
        raise OptionsError(f"--val-ids: repeated id in {' '.join(wanted)}")
    if not wanted:
        raise OptionsError("--val-ids: name at least one page to hold out for validation")
    train = tuple(p for s, p in pairs.items() if s not in wanted)
    val = tuple(pairs[s] for s in sorted(wanted, key=_id_order))
    if not train:
        raise OptionsError("--val-ids: every page is held out; nothing is left for training")
    digests = {p.id: _page_digest(p) for p in (*train, *val)}
    seen = tuple((v.id, t.id) for v in val for t in train if digests[v.id] == digests[t.id])
    if seen and not allow_seen_text:
        shown = ", ".join(f"clean {v} == clean {t}" for v, t in seen)
        groups = sorted(set(wanted) | {t for _v, t in seen}, key=_id_order)
        raise DataError(
            f"validation text is also in training ({shown}): the held-out score would measure memorised "
            f"text. Hold out every page of that text (e.g. --val-ids {' '.join(groups)}), or pass "
            "--allow-seen-text to accept an optimistic score (the summary says so)"
        )
    return Split(train, val, seen)


def split_folders(opts: Options) -> dict[str, tuple[Path, Path]]:
    """``{"train"|"val": (noisy folder, clean folder)}`` named by the options' datasets."""
    out = {}
    for key in SPLIT_KEYS:
        if key not in opts.datasets:
            raise OptionsError(f"{opts.source}: datasets.{key} is missing (the split fills it)")
        cfg = opts.datasets[key].dataset_cfg()
        lq, gt = cfg.get("dataroot_lq"), cfg.get("dataroot_gt")
        if not (isinstance(lq, str) and lq and isinstance(gt, str) and gt):
            raise OptionsError(
                f"{opts.source}: datasets.{key} needs dataroot_lq and dataroot_gt folders (a PairedImageDataset), "
                f"got {[lq, gt]}"
            )
        out[key] = (Path(lq), Path(gt))
    return out


def _holds_exactly(folder: Path, files: Sequence[Path]) -> bool:
    """Whether an existing ``folder`` holds exactly ``files`` (same names, same bytes).

    Raises:
        DataError: ``folder`` exists but is not a folder.
    """
    if not folder.is_dir():
        raise DataError(f"{folder} exists and is not a folder")
    present = sorted(p.name for p in folder.iterdir())
    return present == sorted(f.name for f in files) and all(
        filecmp.cmp(f, folder / f.name, shallow=False) for f in files
    )


def _copy_into(folder: Path, files: Sequence[Path]) -> None:
    """Create ``folder`` with copies of ``files``: complete or absent (a temporary folder renamed)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for f in files:
            shutil.copyfile(f, tmp / f.name)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_split(split: Split, folders: dict[str, tuple[Path, Path]]) -> list[str]:
    """Copy the split into the option file's folders; returns one line per folder.

    Every folder is checked before anything is copied: an existing folder is reused if it holds
    exactly its planned pages, otherwise the split is refused and nothing is written.
    """
    plan: list[tuple[Path, list[Path], tuple[Pair, ...]]] = []
    for key, pairs in (("train", split.train), ("val", split.val)):
        noisy_dir, clean_dir = folders[key]
        plan += [(noisy_dir, [p.noisy for p in pairs], pairs), (clean_dir, [p.clean for p in pairs], pairs)]
    resolved = [folder.resolve() for folder, _files, _pairs in plan]
    if len(set(resolved)) != len(resolved):
        raise OptionsError(f"the split needs four different folders, the options name {[str(f) for f, _, _ in plan]}")
    reuse = []
    for folder, files, _pairs in plan:
        if folder.exists() and not _holds_exactly(folder, files):
            raise DataError(
                f"{folder} exists and does not hold exactly the planned pages ({', '.join(f.name for f in files)}); "
                "nothing was written: remove it, or name other folders in the option file's datasets"
            )
        reuse.append(folder.exists())
    lines = []
    for (folder, files, pairs), reused in zip(plan, reuse):
        if not reused:
            _copy_into(folder, files)
        state = "reused" if reused else "written"
        lines.append(f"{folder}: {len(files)} page(s) {state} ({', '.join(p.id for p in pairs)})")
    return lines


def prepare(args: argparse.Namespace) -> tuple[Options, Split]:
    """Load the options, plan the split and write it; returns ``(options, split)``."""
    from irframe.options import load_options

    opts = load_options(args.opt, args.overrides)
    folders = split_folders(opts)
    noisy_dir, clean_dir = resolve_inputs(args.data, args.noisy, args.clean)
    split = plan_split(find_pairs(noisy_dir, clean_dir), args.val_ids, args.allow_seen_text)
    for line in write_split(split, folders):
        print(line)
    return opts, split


def summary(result: TrainResult, split: Split, seconds: float) -> str:
    """The closing line: held-out RMSE (and PSNR) of the noisy input and of the restored pages."""
    val, experiment = result.val, result.experiment
    if val is None or "val" not in val.scores or "RMSE" not in val.scores["val"]:
        return f"trained without an RMSE validation on datasets.val; experiment {experiment}"
    scores, base = val.scores["val"], val.baseline.get("val", {})
    ids = ", ".join(p.id for p in split.val)
    label = "text ALSO in training: optimistic" if split.seen_text else "text unseen in training"
    parts = [
        f"held-out page(s) {ids} ({label}): RMSE noisy input {base.get('RMSE', float('nan')):.4f} "
        f"-> restored {scores['RMSE']:.4f}"
    ]
    if "PSNR" in scores:
        parts.append(f"PSNR {base.get('PSNR', float('nan')):.2f} -> {scores['PSNR']:.2f} dB")
    best = experiment / "checkpoints" / "best" / "best.json"
    if best.is_file():
        import json

        info = json.loads(best.read_text(encoding="utf-8"))
        parts.append(f"best {info['metric']} {info['value']:.4f} at iteration {info['iteration']} ({best.parent})")
    parts.append(f"wall time {seconds / 60:.1f} min")
    return "dirty documents: " + "; ".join(parts)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="dirty_documents.py", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("split", "write the train/val split only"), ("train", "split, train, print the held-out RMSE")):
        p = sub.add_parser(name, help=text)
        p.add_argument(
            "-opt", "--opt", required=True, metavar="FILE", help="option file (its datasets name the split folders)"
        )
        p.add_argument(
            "--data", default=None, metavar="DIR", help="folder with noisy/ + clean/ (or train/ + train_cleaned/)"
        )
        p.add_argument("--noisy", default=None, metavar="DIR", help="noisy pages (instead of --data)")
        p.add_argument("--clean", default=None, metavar="DIR", help="clean pages, same file names (instead of --data)")
        p.add_argument("--val-ids", nargs="+", required=True, metavar="ID", help="page ids held out for validation")
        p.add_argument("--allow-seen-text", action="store_true", help="accept validation text that is also in training")
        p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                       help="override an option, e.g. --set train.total_iter=100")
        if name == "train":
            p.add_argument(
                "--resume", default=None, metavar="auto|PATH", help="continue an experiment (as tools/train.py)"
            )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with one ``error:`` line for bad options or data)."""
    args = parse_args(argv)
    try:
        start = time.perf_counter()
        opts, split = prepare(args)
        if args.command == "split":
            return 0
        from irframe.train.build import run_training

        result = run_training(opts, resume=args.resume)
    except IrframeError as exc:
        return report_error(exc)
    if result.is_main:
        print(summary(result, split, time.perf_counter() - start))
    return 0
