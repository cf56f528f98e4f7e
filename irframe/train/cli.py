"""``tools/train.py``: train from an option file (plain python, ``accelerate launch`` or ``torchrun``).

Examples::

    python tools/train.py -opt options/demo.yml
    python tools/train.py -opt options/restormer_derain.yml --set train.total_iter=1000 --resume auto
    accelerate launch --num_processes 8 tools/train.py -opt options/restormer_derain.yml
    torchrun --nproc_per_node 2 tools/train.py -opt options/demo.yml
    python tools/train.py -opt options/demo.yml --threads 1       # CPU threads (default: auto, printed)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from irframe.errors import IrframeError, report_error
from irframe.heap import keep_freed_memory
from irframe.threads import add_threads_argument, configure_threads

if TYPE_CHECKING:
    from irframe.options import Options


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of ``tools/train.py``."""
    parser = argparse.ArgumentParser(prog="train.py", description="Train an irframe model from an option file.")
    parser.add_argument("-opt", "--opt", required=True, metavar="FILE", help="option file (YAML)")
    parser.add_argument(
        "--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
        help="override an option, e.g. --set train.optim.lr=2e-4 datasets.train.batch_size=4",
    )
    parser.add_argument(
        "--resume", default=None, metavar="auto|PATH",
        help="'auto': continue the experiment's latest checkpoint; PATH: a checkpoint or experiment folder "
        "(sets path.resume)",
    )
    add_threads_argument(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (errors in options/data/checkpoints print one clear line)."""
    args = parse_args(argv)
    from irframe.options import TRAIN_PATHS, Flag, load_options

    try:
        # every problem of the file at once: schema, component arguments (plugins load for this), paths;
        # the flags are options (path.resume, threads) whose defaults live in the schema
        opts = load_options(
            args.opt, overrides=args.overrides, check=True, paths=TRAIN_PATHS,
            flags=[Flag("--resume", "path.resume", args.resume), Flag("--threads", "threads", args.threads)],
        )
        from irframe.train.build import run_training

        configure_threads(opts.threads, workers=train_workers(opts))
        keep_freed_memory()  # each step reuses the last one's pages (irframe.heap; 19-24 % a step on the CPU)
        result = run_training(opts)  # resumes as path.resume says (--resume sets it)
    except IrframeError as exc:
        return report_error(exc)  # once, also under accelerate launch (irframe.launch.error_stream)
    except KeyboardInterrupt as exc:  # Ctrl-C: one line (when, which checkpoint resumes), no traceback
        print(interrupted_line(exc), file=sys.stderr)
        return 130
    if result.is_main:
        print(f"finished at iteration {result.iteration}; experiment {result.experiment}")
    return 0


def interrupted_line(exc: KeyboardInterrupt) -> str:
    """What a tool prints when Ctrl-C stopped it (the trainer's message, when it was training)."""
    return f"interrupted: {exc}" if str(exc) else "interrupted (Ctrl-C) before training started"


def train_workers(opts: Options) -> int:
    """DataLoader workers of the training set (what the thread policy leaves cores for)."""
    train = opts.datasets.get("train")
    return train.num_workers if train is not None else 0
