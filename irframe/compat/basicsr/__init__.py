"""The BasicSR / Restormer option-file dialect, translated into irframe's native options.

BasicSR (and Restormer, which ships a copy of it) describes a run with ``network_g``,
``datasets.<phase>.batch_size_per_gpu``, ``train.optim_g``, ``path.pretrain_network_g`` and so on.
:func:`translate_basicsr` maps such a file, key by key, onto the native schema of
:mod:`irframe.options_schema`; the result then goes through the normal native validation (one
build path).

* Every key either maps onto a native key (counted), or is accepted with a *note* saying why it
  has no meaning here (``num_gpu``, ``dist_params``, ``prefetch_mode``, ...), never silently given
  another meaning.
* A key this package does not know is a problem naming its dotted path (with the closest BasicSR
  key as "did you mean"); all problems are collected. :func:`translate` raises them as one
  :class:`~irframe.errors.OptionsError` naming the file; :func:`irframe.options.load_options`
  reports them in one error together with the native checks of everything that did translate,
  and names each key of the native checks as the file spells it (``train.optim_g.lrr``).
* Architectures keep their ``type`` and keyword arguments (the plugins' are the official ones); an
  arch that no plugin registers fails later in the usual way, naming ``network_g.type``.

:func:`irframe.options.load_options` calls :func:`translate_file` after the ``_base_`` merge and
before ``--set`` overrides, so overrides use native keys (``train.optim.lr``, not
``train.optim_g.lr``).

One module per section of a BasicSR file, each a class over the shared bookkeeping of :mod:`.base`:

* :mod:`.network` - top-level keys, ``network_g``/``network_d``, ``path:`` (weights, resume);
* :mod:`.datasets` - ``datasets:`` phases, loaders, augmentations, dataset types;
* :mod:`.train` - ``train:`` iterations, warm-up, optimizer, scheduler, losses;
* :mod:`.val` - ``val:`` metrics and ``logger:``;
* :mod:`.translator` - recognising the dialect and running the sections; :mod:`.native` - writing
  the result as a native file (``irframe convert-options``).
"""

from __future__ import annotations

from irframe.compat.basicsr.base import Translation
from irframe.compat.basicsr.datasets import DATASET_ALIASES
from irframe.compat.basicsr.native import native_yaml
from irframe.compat.basicsr.network import SUPERVISED_MODEL_TYPES
from irframe.compat.basicsr.train import RESTORMER_GRAD_CLIP
from irframe.compat.basicsr.translator import (
    is_basicsr,
    maybe_translate,
    translate,
    translate_basicsr,
    translate_file,
)
from irframe.compat.basicsr.val import METRIC_ALIASES

__all__ = [
    "DATASET_ALIASES",
    "METRIC_ALIASES",
    "RESTORMER_GRAD_CLIP",
    "SUPERVISED_MODEL_TYPES",
    "Translation",
    "is_basicsr",
    "maybe_translate",
    "native_yaml",
    "translate",
    "translate_basicsr",
    "translate_file",
]
