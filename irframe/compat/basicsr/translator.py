"""The BasicSR translator: recognise the dialect, translate section by section, report once.

:class:`Translator` combines the sections (:mod:`.network`, :mod:`.datasets`, :mod:`.train`,
:mod:`.val`); :meth:`Translator.run` calls them in order and raises one
:class:`~irframe.errors.OptionsError` listing every key without a translation. A new group of
BasicSR keys goes into the section that owns it (a new method there, called from :meth:`run`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from irframe.compat.basicsr.base import Translation
from irframe.compat.basicsr.datasets import BASICSR_LOADER_KEYS, DatasetSection
from irframe.compat.basicsr.network import NetworkSection
from irframe.compat.basicsr.train import TrainSection
from irframe.compat.basicsr.val import ValLoggerSection
from irframe.errors import OptionsError

_BASICSR_TOP_KEYS = ("network_g", "network_d", "model_type", "manual_seed", "num_gpu", "dist_params")


def is_basicsr(raw: Any) -> bool:
    """Whether ``raw`` (a loaded option mapping) is in BasicSR's layout.

    Recognised by keys native files never have: ``network_g``/``model_type``/``manual_seed``/
    ``num_gpu``/``dist_params`` at the top, ``train.optim_g``/``train.pixel_opt``,
    ``path.pretrain_network_g``/``path.resume_state``, or a dataset with ``batch_size_per_gpu`` and
    friends.
    """
    if not isinstance(raw, Mapping):
        return False
    if any(k in raw for k in _BASICSR_TOP_KEYS):
        return True
    train, path, datasets = raw.get("train"), raw.get("path"), raw.get("datasets")
    if isinstance(train, Mapping) and ("optim_g" in train or "pixel_opt" in train):
        return True
    if isinstance(path, Mapping) and any(k in path for k in ("pretrain_network_g", "resume_state", "strict_load_g")):
        return True
    if isinstance(datasets, Mapping):
        for loader in datasets.values():
            if isinstance(loader, Mapping) and any(k in loader for k in BASICSR_LOADER_KEYS):
                return True
    return False


def translate_basicsr(raw: Mapping[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """Translate a BasicSR-style option mapping into native option data.

    Pure data -> data: nothing is read, built or printed.

    Args:
        raw: the loaded option file (``_base_`` already merged).
        source: the file name, used in error messages.

    Returns:
        ``(native, notes)``: native option data (validate it with
        :func:`irframe.options.validate_options`) and one note per key that was dropped or whose
        mapping needs a word.

    Raises:
        OptionsError: listing every key that has no translation (unknown keys, adversarial training,
            BasicSR training states), each by its dotted path, with ``source``.
    """
    t = translate(raw, source)
    return t.native, t.notes


def translate(raw: Mapping[str, Any], source: str) -> Translation:
    """Like :func:`translate_basicsr`, also returning which BasicSR key went to which native key."""
    return Translator(source).run(raw)


def maybe_translate(raw: dict[str, Any], source: str, announce: bool = True) -> dict[str, Any]:
    """Translate ``raw`` if it is a BasicSR-style file (else return it unchanged).

    With ``announce``, one line goes to stderr: ``<file>: BasicSR-style option file translated
    (N keys mapped, M notes); see `irframe show-options <file>```.
    """
    if not is_basicsr(raw):
        return raw
    t = translate(raw, source)
    # One line per run, not per process: under torchrun/accelerate only local rank 0 says it.
    if announce and os.environ.get("LOCAL_RANK", "0") == "0":
        print(
            f"{source}: BasicSR-style option file translated ({len(t.mapped)} keys mapped, {len(t.notes)} notes); "
            f"see `irframe show-options {source}`",
            file=sys.stderr,
        )
    return t.native



class Translator(NetworkSection, DatasetSection, TrainSection, ValLoggerSection):
    """One file's translation: every section's methods over the shared bookkeeping."""

    def run(self, raw: Mapping[str, Any]) -> Translation:
        rest = dict(raw)
        native: dict[str, Any] = {}
        self.is_train = isinstance(rest.get("train"), Mapping)
        self.top(rest, native)
        self.network(rest, native)
        datasets = rest.pop("datasets", None)
        train = rest.pop("train", None)
        val = rest.pop("val", None)
        path = rest.pop("path", None)
        logger = rest.pop("logger", None)
        progressive = self.datasets(datasets, native)
        if train is not None:
            self.train(train, native, progressive)
        elif progressive is not None:
            self.note("datasets.train.iters", "progressive schedule dropped: the file has no train section")
        self.path(path, native)
        self.val(val, native)
        self.logger(logger, native)
        self.unknown("", rest)
        if self.problems:
            head = f"{self.source}: {len(self.problems)} problem(s) translating this BasicSR-style option file:"
            raise OptionsError(head + "\n  " + "\n  ".join(self.problems))
        return Translation(native, self.notes, self.mapped)
