"""Option files: the one path from a file (and the command line) to validated options.

::

    opts = load_options("options/demo.yml", overrides=["train.optim.lr=2e-4"])

1. :mod:`irframe.options_yaml`: the file is read with a safe YAML loader, its ``_base_`` files
   merged under it;
2. :mod:`irframe.compat`: a file in another framework's layout (BasicSR/Restormer) is translated
   into native option data (keys without a translation are kept as problems, reported with the
   rest in step 4, where every key is named as the file spells it);
3. the ``--set`` overrides (native keys, YAML-typed values), then the tool's command-line flags
   (:class:`Flag`: ``--tile 256`` is ``inference.tile``), are applied on top;
4. :mod:`irframe.options_schema`: the data is validated against the strict, typed schema, and with
   ``check=True`` every component mapping and path against the registries
   (:mod:`irframe.options_checks`); every problem of the file is reported in one
   :class:`~irframe.errors.OptionsError`.

A flag is an override like any other, so each default lives once, in the schema, and each value is
validated once. The names of the three modules below are importable from here too (their old
home), e.g. ``from irframe.options import Options, LossOptions, check_components``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from irframe.compat.basicsr import Translation, translate_file
from irframe.errors import OptionsError
from irframe.options_checks import TEST_PATHS, TRAIN_PATHS, check_components, check_options, format_problems
from irframe.options_schema import (
    Component,
    DistOptions,
    InferenceOptions,
    LoaderOptions,
    LoggerOptions,
    LossOptions,
    MixingOptions,
    Options,
    PathOptions,
    PretrainOptions,
    ProgressiveOptions,
    TestOptions,
    TrainOptions,
    ValOptions,
    schema_problems,
)
from irframe.options_yaml import (
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    apply_overrides,
    deep_merge,
    load_with_bases,
    load_yaml,
    set_option,
)
from irframe.text import clip

__all__ = [
    # the one path
    "Flag",
    "load_options",
    "validate_options",
    "save_options",
    "dump_options",
    "COMMAND_LINE",
    # irframe.options_yaml
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "apply_overrides",
    "deep_merge",
    "load_with_bases",
    "load_yaml",
    "set_option",
    # irframe.options_schema
    "Component",
    "Options",
    "LoaderOptions",
    "ProgressiveOptions",
    "LossOptions",
    "PretrainOptions",
    "MixingOptions",
    "TrainOptions",
    "ValOptions",
    "LoggerOptions",
    "PathOptions",
    "DistOptions",
    "InferenceOptions",
    "TestOptions",
    # irframe.options_checks
    "TRAIN_PATHS",
    "TEST_PATHS",
    "check_options",
    "check_components",
    "format_problems",
]

COMMAND_LINE = "command line"
"""The source of options made from the command line alone (:func:`load_options` with no file)."""


@dataclass(frozen=True)
class Flag:
    """A command-line flag that sets one option: ``Flag("--tile", "inference.tile", 256)``.

    The tools turn their flags into these; :func:`load_options` applies them after the ``--set``
    overrides (a flag wins over the file and over ``--set``), so the schema validates the value and
    holds its default, once. The value is already typed (argparse parsed it); ``None`` means the
    flag was not given and changes nothing. A problem with the value names the flag.
    """

    name: str  # as the user types it, e.g. "--tile"
    key: str  # the dotted option key it sets, e.g. "inference.tile"
    value: Any

    @property
    def label(self) -> str:
        """``--tile 256``: the flag as given, for messages."""
        return f"{self.name} {clip(self.value)}"


def _named_by_flags(problem: str, flags: Sequence[Flag]) -> str:
    """``inference.tile: ...`` -> ``inference.tile (--tile 0): ...`` when a flag set that key."""
    for flag in flags:
        if problem.startswith(flag.key) and problem[len(flag.key) : len(flag.key) + 1] in (":", ".", " "):
            return f"{flag.key} ({flag.label}){problem[len(flag.key) :]}"
    return problem


def validate_options(
    data: Mapping[str, Any],
    source: str = "<options>",
    *,
    check: bool = False,
    paths: bool | Sequence[str] = True,
    flags: Sequence[Flag] = (),
) -> Options:
    """Validate a plain mapping against the schema; raise one :class:`OptionsError` with every problem.

    With ``check``, the component mappings and ``paths`` are checked too (:func:`check_options`, on
    the same data, also when the schema found problems), so one run reports everything. A problem
    with a key one of the ``flags`` set names that flag.
    """
    return _validated(data, source, check=check, paths=paths, flags=flags)


def _validated(
    data: Mapping[str, Any],
    source: str,
    *,
    check: bool,
    paths: bool | Sequence[str],
    flags: Sequence[Flag],
    translation: Translation | None = None,
    overridden: Sequence[str] = (),
) -> Options:
    """:func:`validate_options`, for a translated file too: its translation problems come first, in
    the same error, and every other problem names its key as the file spells it, unless that key
    was set by an override or a flag (``overridden``, native keys)."""
    opts, problems = schema_problems(data)
    if check:
        problems += [p for p in check_options(data, paths=paths) if p not in problems]
    lines = [_named_by_flags(p, flags) for p in problems]
    if translation is not None:
        spelled = [
            _as_spelled(line, translation, overridden) if line == raw else line
            for line, raw in zip(lines, problems, strict=True)
            if not _repeats_translation(raw, translation)
        ]
        lines = list(dict.fromkeys([*translation.problems, *spelled]))
    if lines or opts is None:
        raise OptionsError(format_problems(source, lines))
    opts._source = source
    if translation is not None:
        opts._spelling = functools.partial(_as_spelled, translation=translation, overridden=tuple(overridden))
    return opts


def _problem_key(line: str) -> str:
    """The dotted key a problem line starts with (``train.optim.lrr: unknown key ...`` -> ``train.optim.lrr``)."""
    return line.split(":", 1)[0].split(" (", 1)[0]


def _repeats_translation(line: str, translation: Translation) -> bool:
    """A "missing" problem of a native key the translator left out because of a problem it reports."""
    return "missing required key" in line and translation.is_omitted(_problem_key(line))


def _as_spelled(line: str, translation: Translation, overridden: Sequence[str]) -> str:
    """``train.optim.lrr: ...`` -> ``train.optim_g.lrr: ...`` for a key of a translated file (not one
    an override set)."""
    key = _problem_key(line)
    if any(key == o or key.startswith(o + ".") for o in overridden):
        return line
    return translation.user_path(key) + line[len(key) :]


def load_options(
    path: str | os.PathLike[str] | None,
    overrides: Sequence[str] = (),
    *,
    flags: Sequence[Flag] = (),
    check: bool = False,
    paths: bool | Sequence[str] = True,
) -> Options:
    """Load, merge ``_base_`` files, apply ``--set`` overrides and command-line ``flags``, validate.

    ``check=True`` also checks every component mapping and the ``paths`` (:func:`check_options`)
    and reports all problems of the file in one :class:`OptionsError` (what the tools use).

    A BasicSR/Restormer-style file is translated into native options after the ``_base_`` merge
    and before the overrides (so ``--set`` takes native keys); see :mod:`irframe.compat.basicsr`.
    Its keys without a translation are reported in the same error as every other problem of the
    file (which names the keys as the file spells them).
    ``path=None`` (a tool run with flags only, e.g. ``tools/infer.py --checkpoint``) starts from
    the schema's defaults, named and sourced :data:`COMMAND_LINE`.
    """
    translation = None
    if path is None:
        source, data = COMMAND_LINE, {"name": COMMAND_LINE.replace(" ", "-")}
    else:
        source, data = str(path), load_with_bases(path)
        translation = translate_file(data, source)
        if translation is not None:
            data = translation.native
    data = apply_overrides(data, overrides)
    given = [f for f in flags if f.value is not None]
    for flag in given:
        data = set_option(data, flag.key, flag.value, flag.label)
    overridden = [o.split("=", 1)[0].strip() for o in overrides] + [f.key for f in given]
    return _validated(
        data, source, check=check, paths=paths, flags=given, translation=translation, overridden=overridden
    )


def save_options(opts: Options, path: str | os.PathLike[str]) -> None:
    """Write the resolved options as YAML (atomically: temp file + rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(dump_options(opts), encoding="utf-8")
    os.replace(tmp, p)


def dump_options(opts: Options) -> str:
    """The resolved options as YAML text."""
    return yaml.safe_dump(opts.to_dict(), sort_keys=False, default_flow_style=None, width=100)
