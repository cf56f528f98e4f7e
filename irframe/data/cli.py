"""Command lines of the data tools (the ``tools/*.py`` scripts call these ``main`` functions).

* ``tools/create_lmdb.py``: pack a folder of images into an LMDB database (BasicSR layout),
  resumably (:func:`irframe.data.lmdb_pack.create_lmdb`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from irframe.errors import DataError, report_error

__all__ = ["CREATE_LMDB_HELP", "create_lmdb_main"]

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
