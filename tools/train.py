"""Train a model from an option file; see :mod:`irframe.train.cli` (``python tools/train.py -h``)."""

from irframe.train.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
