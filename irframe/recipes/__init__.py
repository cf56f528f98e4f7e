"""Recipes: a task's whole route from raw data to a scored model, as commands over the package.

A recipe prepares its data the way its benchmark needs it, then trains and evaluates through the
same builders as every tool (:func:`irframe.options.load_options`, :func:`irframe.train.build.run_training`);
its command line is a thin script under ``tools/``. Importing this package imports nothing.

* :mod:`irframe.recipes.dirty_documents`: Kaggle's "Denoising Dirty Documents" (honest split,
  training, held-out RMSE); ``tools/dirty_documents.py``.
* :mod:`irframe.recipes.realesrgan_demo`: Real-ESRGAN's two stages (PSNR-first, then GAN) shrunk
  to a CPU, scored on held-out photos; ``tools/realesrgan_demo.py``.
"""
