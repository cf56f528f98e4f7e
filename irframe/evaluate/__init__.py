"""Evaluation: benchmarks, leaderboards, the HTML report, inference and Kaggle submissions.

Importing this package loads nothing; use the submodules:

- :mod:`~irframe.evaluate.models`: build a model from options and/or a checkpoint (one function for
  every tool);
- :mod:`~irframe.evaluate.runner`: one model over one benchmark set (images, metrics, runtime);
- :mod:`~irframe.evaluate.bench`: what ``tools/test.py`` does (models x sets -> leaderboard);
- :mod:`~irframe.evaluate.leaderboard`: merged results as JSON, Markdown, CSV;
- :mod:`~irframe.evaluate.report`: ``report.html`` with side-by-side crops;
- :mod:`~irframe.evaluate.infer`: restore files safely (``tools/infer.py``);
- :mod:`~irframe.evaluate.submission`: Kaggle pixel submissions (Denoising Dirty Documents);
- :mod:`~irframe.evaluate.model_stats`: params/FLOPs beside the papers' figures;
- :mod:`~irframe.evaluate.cli`: the command lines of the tools.
"""
