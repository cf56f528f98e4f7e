"""Restore an image or a folder of images; see :mod:`irframe.evaluate.cli` (``python tools/infer.py -h``)."""

from irframe.evaluate.cli import infer_main

if __name__ == "__main__":
    raise SystemExit(infer_main())
