"""Benchmark models and merge the results into a leaderboard; see :mod:`irframe.evaluate.cli` (``-h``)."""

from irframe.evaluate.cli import benchmark_main

if __name__ == "__main__":
    raise SystemExit(benchmark_main())
