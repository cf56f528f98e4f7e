"""The CPU demo behind ``tools/demo.py``: generate synthetic images, train ``options/demo.yml``,
and report the PSNR of the restored validation images next to that of the degraded inputs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from irframe.errors import IrframeError, report_error
from irframe.threads import add_threads_argument, configure_threads

TRAIN_IMAGES, VAL_IMAGES, IMAGE_SIZE = 64, 4, 96
# Written into every experiment folder the demo makes: only such folders are ever removed by it,
# and only while their checkpoints are exactly those the demo's own run left (see reusable()).
DEMO_MARKER = ".irframe-demo"
_MARKER_TEXT = "made by tools/demo.py; a rerun of the demo replaces this folder\n"


def prepare_data(root: Path) -> tuple[Path, Path]:
    """Generate the demo's training and validation images under ``root`` unless already there."""
    from irframe.train.synthetic import write_textured_images

    train, val = root / "train", root / "val"
    for folder, count, seed in ((train, TRAIN_IMAGES, 0), (val, VAL_IMAGES, 1)):
        if len(list(folder.glob("*.png"))) < count:
            print(f"generating {count} synthetic images in {folder}")
            write_textured_images(folder, count, IMAGE_SIZE, seed=seed)
    return train, val


def checkpoint_fingerprint(folder: Path) -> list[list[object]]:
    """Every file under ``folder/checkpoints`` with its size and modification time (ns)."""
    base = folder / "checkpoints"
    if not base.is_dir():
        return []
    return sorted(
        [str(p.relative_to(base)), st.st_size, st.st_mtime_ns]
        for p in base.rglob("*")
        if p.is_file() and not p.is_symlink()
        for st in [p.stat()]
    )


def record_demo_run(folder: Path) -> None:
    """After the demo's run: remember its checkpoints in the marker, so that a later rerun can tell
    them from checkpoints another run wrote there (``train.py --resume auto`` on the demo's folder)."""
    import json

    marker = folder / DEMO_MARKER
    marker.write_text(_MARKER_TEXT + json.dumps({"checkpoints": checkpoint_fingerprint(folder)}) + "\n")


def reusable(folder: Path) -> str | None:
    """The line saying why the demo may remove ``folder`` (``None``: it must keep it).

    Only a folder with :data:`DEMO_MARKER` whose checkpoints are exactly the ones the demo's own
    run recorded there (or, for a demo run that was interrupted, a folder without any complete
    checkpoint), and that no run is using right now."""
    import json

    from irframe.train.checkpoint_folders import list_checkpoints
    from irframe.train.lock import in_use

    marker = folder / DEMO_MARKER
    if not marker.is_file():
        return None
    if in_use(folder) is not None:
        return None
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8").splitlines()[1])["checkpoints"]
    except (OSError, ValueError, IndexError, KeyError, TypeError):
        recorded = None
    if recorded is None:  # the demo's run did not finish: nothing of value unless it saved a checkpoint
        if list_checkpoints(folder / "checkpoints") or (folder / "checkpoints" / "best").exists():
            return None
        return "the previous demo run there was removed (it was interrupted before its first checkpoint)"
    if recorded != checkpoint_fingerprint(folder):
        return None
    return f"the previous demo run there was removed (its {DEMO_MARKER} lists exactly the checkpoints there)"


def demo_experiment(root: Path, name: str) -> tuple[str, str]:
    """Choose the demo's experiment folder under ``root``; reruns reuse it instead of piling up.

    A folder the demo made and nobody continued (:func:`reusable`) is removed and used again. Any
    other folder (someone's own experiment that happens to share the name, a demo run the user
    continued with ``tools/train.py --resume auto``, a run in progress) is never touched: the run
    takes the first of ``name_1``, ``name_2``, ... that is free or reusable. The chosen folder is
    created with the marker in it, so even an interrupted run is the demo's.

    Returns:
        The experiment name to train under, and a line saying which folder it is and what was removed.
    """
    import shutil

    candidate, i, note = name, 0, "a rerun of the demo replaces it"
    while (root / candidate).exists():
        folder = root / candidate
        why = reusable(folder)
        if why is not None:
            shutil.rmtree(folder)
            note = why
            break
        reason = (
            "has checkpoints the demo did not write (continued by another run), or is in use"
            if (folder / DEMO_MARKER).is_file() else f"is not the demo's (no {DEMO_MARKER})"
        )
        note = f"{folder} {reason} and is kept; a rerun of the demo replaces this one"
        i += 1
        candidate = f"{name}_{i}"
    (root / candidate).mkdir(parents=True)
    (root / candidate / DEMO_MARKER).write_text(_MARKER_TEXT)
    return candidate, f"demo experiment folder {root / candidate}: {note}"


def main(argv: Sequence[str] | None = None, options_file: Path | None = None) -> int:
    """Run the demo; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="demo.py", description="Train a tiny Restormer on synthetic images (CPU, minutes)."
    )
    parser.add_argument("--data", default="experiments/demo_data", help="folder of the generated images")
    parser.add_argument("-opt", "--opt", default=str(options_file or "options/demo.yml"), help="option file")
    parser.add_argument(
        "--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
        help="override an option, e.g. --set train.total_iter=100 logger.progress_bar=false",
    )
    add_threads_argument(parser)
    args = parser.parse_args(argv)

    from irframe.options import Flag, load_options
    from irframe.train.build import run_training
    from irframe.train.checks import check_option_values
    from irframe.train.cli import interrupted_line, train_workers

    try:
        train, val = prepare_data(Path(args.data))
        overrides = [f"datasets.train.dataroot_gt={train}", f"datasets.val.dataroot_gt={val}", *args.overrides]
        opts = load_options(args.opt, overrides, flags=[Flag("--threads", "threads", args.threads)])
        check_option_values(opts)  # name, experiments_root, ...: before the demo makes or removes a folder
        configure_threads(opts.threads, workers=train_workers(opts))
        opts.name, note = demo_experiment(Path(opts.path.experiments_root), opts.name)
        print(note)
        try:
            # the folder exists (with its marker) and holds no checkpoint: "auto" starts at iteration 0 in it
            result = run_training(opts, resume="auto")
        finally:  # also after an error or Ctrl-C: what is there now is the demo's own
            mine = Path(opts.path.experiments_root) / opts.name
            if (mine / DEMO_MARKER).is_file():
                record_demo_run(mine)
    except IrframeError as exc:
        return report_error(exc)  # once, also under accelerate launch (irframe.launch.error_stream)
    except KeyboardInterrupt as exc:
        print(interrupted_line(exc), file=sys.stderr)
        return 130
    if result.val is None or "val" not in result.val.scores:
        print("demo finished without validation (val section removed?)")
        return 0
    restored = result.val.scores["val"]["PSNR"]
    degraded = result.val.baseline.get("val", {}).get("PSNR", float("nan"))
    print(
        f"demo: restored PSNR {restored:.2f} dB vs degraded input {degraded:.2f} dB "
        f"({restored - degraded:+.2f} dB) on {result.val.images['val']} validation images; "
        f"experiment {result.experiment}"
    )
    return 0
