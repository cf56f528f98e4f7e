"""The data layer: image I/O, storage backends, degradations, datasets, transforms and samplers.

Nothing is imported here (importing :mod:`irframe.data` touches no disk and registers nothing);
import the submodule you need:

* :mod:`irframe.data.io`: ``imread`` / ``imwrite`` / ``img2tensor`` / ``tensor2img``;
* :mod:`irframe.data.backends`: disk folders and BasicSR-layout LMDBs;
* :mod:`irframe.data.lmdb_pack`: ``create_lmdb`` (used by ``tools/create_lmdb.py``);
* :mod:`irframe.data.lmdb_check`: whether a ``data.mdb`` can be read without crashing (before LMDB maps it);
* :mod:`irframe.data.degradations`: registered degradations and ``imresize``;
* :mod:`irframe.data.datasets`: registered datasets;
* :mod:`irframe.data.transforms`: aligned crops, flips and rotations;
* :mod:`irframe.data.samplers`: ``ProgressiveBatchSampler`` and ``TaskBatchSampler``.
"""
