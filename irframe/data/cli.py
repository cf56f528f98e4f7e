"""Command lines of the data tools (the ``tools/*.py`` scripts call these ``main`` functions).

* ``tools/create_lmdb.py``: pack a folder of images into an LMDB database (BasicSR layout),
  resumably (:func:`irframe.data.lmdb_pack.create_lmdb`).
* ``tools/degrade.py``: write degraded copies of clean images (seeded noise, downscaling, any
  registered degradation) as files: inputs for ``tools/infer.py`` (:func:`degrade_main`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from irframe.errors import DataError, IrframeError, OptionsError, report_error

__all__ = ["CREATE_LMDB_HELP", "DEGRADE_HELP", "create_lmdb_main", "degrade_main", "degrade_images"]

CREATE_LMDB_HELP = """Pack a folder of images into an LMDB database (BasicSR layout), resumably.

Usage:
    python tools/create_lmdb.py IN_FOLDER OUT.lmdb [--compress-level N] [--verify] [--recursive] [--key-template T]

SR pairs for BasicSR's paired LMDB reader (LQ and GT databases with the same keys):
    python tools/create_lmdb.py DIV2K/HR hr.lmdb
    python tools/create_lmdb.py DIV2K/LR_x4 lr_x4.lmdb --key-template "{}x4"    # 0001x4.png -> key 0001

Rerunning the same command after an interruption finishes the database without writing any image
twice. See :mod:`irframe.data.lmdb_pack` for the layout.
"""


def create_lmdb_main(argv: Sequence[str] | None = None) -> int:
    """``tools/create_lmdb.py IN_FOLDER OUT.lmdb [...]``; returns the exit status (1: a data error)."""
    from irframe.data.lmdb_pack import create_lmdb

    parser = argparse.ArgumentParser(description=CREATE_LMDB_HELP.splitlines()[0])
    parser.add_argument("in_folder", help="folder of images (keys = file stems)")
    parser.add_argument("out", help="output database folder, ending with .lmdb")
    parser.add_argument(
        "--compress-level",
        type=int,
        default=0,
        choices=range(10),
        metavar="N",
        help="PNG zlib level 0-9 (default 0: stored uncompressed, ~30%% larger than level 1 but "
        "decoded ~2x faster, which is what makes LMDB crops faster than PNG folders; see benchmarks/RESULTS.md)",
    )
    parser.add_argument("--verify", action="store_true", help="decode every record after packing")
    parser.add_argument(
        "--recursive", action="store_true", help="include images in sub-folders (keys = relative paths)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--key-template", default="{}", metavar="T",
        help="the file stems with {} where the key is, e.g. '{}x4' packs babyx4.png under 'baby' (the GT's key): "
        "LQ and GT databases then hold the same keys, as BasicSR's paired LMDB reader requires (default '{}')",
    )
    args = parser.parse_args(argv)
    try:
        report = create_lmdb(
            args.in_folder,
            args.out,
            compress_level=args.compress_level,
            verify=args.verify,
            recursive=args.recursive,
            progress=not args.no_progress,
            key_template=args.key_template,
        )
    except DataError as exc:
        return report_error(exc, status=1)  # this tool's status for bad data since its first version
    verified = ", all records verified" if report.verified else ""
    changed = f", {report.rewritten} re-encoded because their source changed" if report.rewritten else ""
    print(
        f"{report.path}: {report.total} images "
        f"({report.written} written, {report.skipped} already there{changed}){verified}"
    )
    return 0


DEGRADE_HELP = """Write degraded copies of clean images: seeded noise, downscaling or any registered degradation.

Usage:
    python tools/degrade.py IN OUT (--noise SIGMA | --downscale S | --degradation YAML) [--seed N] [--gray]

IN is an image or a folder of images, OUT an image file (for one image) or a folder (same names,
PNG). The images are degraded exactly as an OnlineDegradationDataset with the same degradation and
seed degrades them (image i of the sorted folder draws from default_rng([seed, i])), so a folder
made with the seed of an option file's test set holds the very inputs tools/test.py scores:

    python tools/degrade.py samples/kodim23.png noisy.png --noise 25                 # sigma 25 on 0-255
    python tools/degrade.py experiments/demo_data/val experiments/demo_data/val_noisy --noise 25
    python tools/degrade.py photos/ small/ --downscale 2                             # bicubic (MATLAB) x1/2
    python tools/degrade.py photos/ rainy/ --degradation "{type: RainStreaks}"
"""


def degrade_images(
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    degradation: Any,
    *,
    seed: int = 0,
    channels: int = 3,
    scale: int = 1,
) -> list[Path]:
    """Degrade the image ``source`` (or every image of the folder ``source``) and write the results.

    The images go through an ``OnlineDegradationDataset`` built by the registry (``degradation``
    as in an option file, ``seed`` its per-sample seed), so they are exactly the inputs that data
    set gives a model. ``dest`` is a file when ``source`` is one file and ``dest`` has an image
    suffix; otherwise a folder receiving ``NAME.png`` for each input. Returns the written files.

    Raises:
        DataError: no such input, or an output that would overwrite an input.
        OptionsError: a degradation the registry cannot build.
    """
    from irframe.data.io import imwrite, is_image_file, tensor2img
    from irframe.registry import DATASETS

    src, out = Path(source), Path(dest)
    if not src.exists():
        raise DataError(f"input not found: {src}")
    single = src.is_file()
    to_file = single and is_image_file(out) and not out.is_dir()
    if not single and out.exists() and out.resolve() == src.resolve():
        raise DataError(f"{out}: is the input folder; write the degraded images elsewhere")
    with tempfile.TemporaryDirectory(prefix="irframe-degrade-") as tmp:
        root = src
        if single:  # a one-image folder: the image is index 0, as it would be alone in a data set
            root = Path(tmp)
            (root / src.name).symlink_to(src.resolve())
        cfg = {"type": "OnlineDegradationDataset", "dataroot_gt": str(root), "degradation": degradation,
               "seed": seed, "channels": channels, "scale": scale}
        dataset = DATASETS.build(cfg, path="tools/degrade.py")
        written = []
        for index in range(len(dataset)):
            sample = dataset[index]
            target = out if to_file else out / f"{Path(str(sample['name'])).stem}.png"
            if target.exists() and target.resolve() == Path(str(sample["lq_path"])).resolve():
                raise DataError(f"{target}: is an input; write the degraded images elsewhere")
            imwrite(target, tensor2img(sample["lq"]))
            written.append(target)
    return written


def degrade_main(argv: Sequence[str] | None = None) -> int:
    """``tools/degrade.py IN OUT --noise SIGMA ...``; returns the exit status."""
    import yaml

    parser = argparse.ArgumentParser(
        description=DEGRADE_HELP.splitlines()[0], epilog="\n".join(DEGRADE_HELP.splitlines()[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", help="an image or a folder of images (clean)")
    parser.add_argument("output", help="an image file (for one input image) or a folder")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--noise", type=float, metavar="SIGMA", help="Gaussian noise, sigma on the 0-255 scale")
    how.add_argument("--downscale", type=int, metavar="S", help="bicubic downscaling by S (MATLAB's imresize)")
    how.add_argument("--degradation", metavar="YAML", help="a degradation as in an option file, e.g. '{type: Haze}'")
    parser.add_argument("--seed", type=int, default=0, help="per-image seed base (default 0, as the demo's test set)")
    parser.add_argument("--gray", action="store_true", help="read the images as 1-channel gray")
    args = parser.parse_args(argv)
    scale = 1
    try:
        if args.noise is not None:
            degradation: Any = {"type": "GaussianNoise", "sigma": args.noise}
        elif args.downscale is not None:
            degradation, scale = {"type": "BicubicDownsample", "scale": args.downscale}, args.downscale
        else:
            try:
                degradation = yaml.safe_load(args.degradation)
            except yaml.YAMLError as exc:
                raise OptionsError(f"--degradation: not YAML: {str(exc).splitlines()[0]}") from None
        written = degrade_images(
            args.input, args.output, degradation, seed=args.seed, channels=1 if args.gray else 3, scale=scale
        )
    except IrframeError as exc:
        return report_error(exc)
    where = written[0] if len(written) == 1 else f"{args.output} ({len(written)} images)"
    print(f"wrote {where}")
    return 0
