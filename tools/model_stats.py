"""Parameters and FLOPs per model beside the papers' figures; see :mod:`irframe.evaluate.cli` (``-h``)."""

from irframe.evaluate.cli import stats_main

if __name__ == "__main__":
    raise SystemExit(stats_main())
