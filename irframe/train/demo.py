"""The CPU demo behind ``tools/demo.py``: generate synthetic images, train ``options/demo.yml``,
and report the PSNR of the restored validation images next to that of the degraded inputs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from irframe.errors import IrframeError
from irframe.threads import add_threads_argument, configure_threads

TRAIN_IMAGES, VAL_IMAGES, IMAGE_SIZE = 64, 4, 96
# Written into every experiment folder the demo makes: only such folders are ever removed by it.
DEMO_MARKER = ".irframe-demo"


def prepare_data(root: Path) -> tuple[Path, Path]:
    """Generate the demo's training and validation images under ``root`` unless already there."""
    from irframe.train.synthetic import write_textured_images

    train, val = root / "train", root / "val"
    for folder, count, seed in ((train, TRAIN_IMAGES, 0), (val, VAL_IMAGES, 1)):
        if len(list(folder.glob("*.png"))) < count:
            print(f"generating {count} synthetic images in {folder}")
            write_textured_images(folder, count, IMAGE_SIZE, seed=seed)
    return train, val


def demo_experiment(root: Path, name: str) -> tuple[str, str]:
    """Choose the demo's experiment folder under ``root``; reruns reuse it instead of piling up.

    A folder the demo made (it holds :data:`DEMO_MARKER`) is removed and used again. A folder
    without the marker (someone's own experiment that happens to share the name) is never
    touched: the run takes the first of ``name_1``, ``name_2``, ... that is free or the demo's.
    The chosen folder is created with the marker in it, so even an interrupted run is the demo's.

    Returns:
        The experiment name to train under, and a line saying which folder it is and what was removed.
    """
    import shutil

    candidate, i, note = name, 0, "a rerun of the demo replaces it"
    while (root / candidate).exists():
        folder = root / candidate
        if (folder / DEMO_MARKER).is_file():
            shutil.rmtree(folder)
            note = f"the previous demo run there was removed (made by the demo: it held {DEMO_MARKER})"
            break
        note = f"{folder} is not the demo's (no {DEMO_MARKER}) and is kept; a rerun of the demo replaces this one"
        i += 1
        candidate = f"{name}_{i}"
    (root / candidate).mkdir(parents=True)
    (root / candidate / DEMO_MARKER).write_text("made by tools/demo.py; a rerun of the demo replaces this folder\n")
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

    from irframe.options import load_options
    from irframe.train.build import run_training
    from irframe.train.cli import train_workers

    try:
        train, val = prepare_data(Path(args.data))
        overrides = [f"datasets.train.dataroot_gt={train}", f"datasets.val.dataroot_gt={val}", *args.overrides]
        opts = load_options(args.opt, overrides)
        configure_threads(args.threads or opts.threads, workers=train_workers(opts))
        opts.name, note = demo_experiment(Path(opts.path.experiments_root), opts.name)
        print(note)
        # the folder exists (with its marker) and holds no checkpoint: "auto" starts at iteration 0 in it
        result = run_training(opts, resume="auto")
    except IrframeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
