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
from irframe.compat.basicsr.network import TOP_KEYS, NetworkSection
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

    Pure data -> data: nothing is read, built or printed. (:func:`irframe.options.load_options`
    uses the collecting form, :func:`translate_file`, to report these problems together with those
    of the native checks.)

    Args:
        raw: the loaded option file (``_base_`` already merged).
        source: the file name, used in error messages.

    Returns:
        ``(native, notes)``: native option data (validate it with
        :func:`irframe.options.validate_options`) and one note per key that was dropped or whose
        mapping needs a word.

    Raises:
        OptionsError: listing every key that has no translation (unknown keys, unsupported model
            types, BasicSR training states), each by its dotted path, with ``source``.
    """
    t = translate(raw, source)
    return t.native, t.notes


def translate(raw: Mapping[str, Any], source: str, *, collect: bool = False) -> Translation:
    """Like :func:`translate_basicsr`, also returning which BasicSR key went to which native key.

    With ``collect``, keys without a translation do not raise: they are returned in
    ``Translation.problems`` beside the native data of everything else (so the caller can report
    them together with the native checks of that data, as :func:`irframe.options.load_options` does).
    """
    t = Translator(source).run(raw)
    if t.problems and not collect:
        raise OptionsError(problems_message(source, t.problems))
    return t


def problems_message(source: str, problems: list[str]) -> str:
    """The message of the translator's problems: the file, their count and one line each."""
    head = f"{source}: {len(problems)} problem(s) translating this BasicSR-style option file:"
    return head + "\n  " + "\n  ".join(problems)


def translate_file(raw: Any, source: str, announce: bool = True) -> Translation | None:
    """The translation of ``raw`` if it is a BasicSR-style file (problems collected), else ``None``.

    With ``announce`` and no problems, one line goes to stderr: ``<file>: BasicSR-style option file
    translated (N keys mapped, M notes); see `irframe show-options <file>```.
    """
    if not is_basicsr(raw):
        return None
    t = translate(raw, source, collect=True)
    # One line per run, not per process: under torchrun/accelerate only local rank 0 says it.
    if announce and not t.problems and os.environ.get("LOCAL_RANK", "0") == "0":
        print(
            f"{source}: BasicSR-style option file translated ({len(t.mapped)} keys mapped, {len(t.notes)} notes); "
            f"see `irframe show-options {source}`",
            file=sys.stderr,
        )
    return t


def maybe_translate(raw: dict[str, Any], source: str, announce: bool = True) -> dict[str, Any]:
    """Translate ``raw`` if it is a BasicSR-style file (else return it unchanged); raise its problems.

    With ``announce``, one line says so on stderr (see :func:`translate_file`).
    """
    t = translate_file(raw, source, announce)
    if t is None:
        return raw
    if t.problems:
        raise OptionsError(problems_message(source, t.problems))
    return t.native



class Translator(NetworkSection, DatasetSection, TrainSection, ValLoggerSection):
    """One file's translation: every section's methods over the shared bookkeeping.

    :meth:`run` never raises: what has no translation is in ``Translation.problems``.
    """

    def run(self, raw: Mapping[str, Any]) -> Translation:
        rest = dict(raw)
        native: dict[str, Any] = {}
        self.is_train = isinstance(rest.get("train"), Mapping)
        self.top(rest, native)
        self.network(rest, native)
        self.realesrgan_top(rest)
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
        self.unknown("", rest, TOP_KEYS)
        return Translation(
            native, self.notes, self.mapped, self.problems, self.renames, self.omitted, self.suggested
        )
