"""Write a Kaggle pixel submission from restored pages; see :mod:`irframe.evaluate.cli` (``-h``)."""

from irframe.evaluate.cli import submission_main

if __name__ == "__main__":
    raise SystemExit(submission_main())
