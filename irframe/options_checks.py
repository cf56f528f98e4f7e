"""Every component mapping of the options checked against its registry, and every path, at once.

Runs before any work starts, so that a typo in a dataset or loss key, or a missing data folder,
fails at once, all of them in one report (``tools/*.py``, ``irframe show-options``). Nothing is
built: the registries (and so the plugins) are loaded, no model and no dataset is constructed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from irframe.errors import OptionsError, RegistryError
from irframe.options_schema import LoaderOptions, LossOptions, Options
from irframe.registry import ARCHS, DATASETS, LOSSES, METRICS, OPTIMIZERS, SCHEDULERS, TRAIN_STEPS, key_hint
from irframe.registry.arguments import signature_info
from irframe.text import clip, join_problems

TRAIN_PATHS = ("datasets", "train")
"""Sections whose paths a training run needs (``datasets.*``, ``train.pretrain``)."""
TEST_PATHS = ("test",)
"""Sections whose paths a benchmark run needs (``test.datasets.*``)."""


def format_problems(source: str, problems: Sequence[str]) -> str:
    """The message of one :class:`OptionsError` for all ``problems`` of the file ``source``."""
    return f"{source}: {join_problems(list(problems))}"


def check_options(opts: Options | Mapping[str, Any], *, paths: bool | Sequence[str] = True) -> list[str]:
    """Every problem of the component mappings and paths of ``opts``, collected, nothing built.

    Checks each ``{type: Name, ...}`` mapping at any depth against its registry (name, keys,
    value types, required keys): ``model``, ``datasets.*`` (their nested sources and
    ``degradation`` pipelines), ``train.optim``, ``train.scheduler``, ``train.step`` (and the
    components nested in it: a discriminator, its optimizer and loss), ``train.losses.*``,
    ``val.metrics.*``, ``test.datasets.*``, ``test.metrics.*``; with ``paths``, also that every
    path argument (``dataroot_*``...) and ``train.pretrain.path`` exist (``True``: everywhere; or
    the top-level sections a run uses, e.g. :data:`TRAIN_PATHS`; a run without ``train`` among them
    may leave ``model`` out, to take it from its checkpoint). ``opts`` may be validated
    options or the raw mapping of a file (then parts the schema refuses are skipped, not repeated).
    Returns one line per problem, each starting with its full dotted path; empty when all is well.
    Imports the registries (and so the plugins), but constructs no model and no dataset.
    """
    data = opts.to_dict() if isinstance(opts, Options) else opts
    problems: list[str] = []
    if not isinstance(data, Mapping):
        return problems
    loader_keys = frozenset(LoaderOptions.model_fields) - {"type"}
    loss_keys = frozenset(LossOptions.model_fields) - {"type"}

    def check_paths(where: str) -> bool:
        return paths is True or (not isinstance(paths, bool) and where.split(".")[0] in paths)

    def component(
        registry: Any, cfg: Any, where: str, drop: frozenset[str] = frozenset(), skip: frozenset[str] = frozenset()
    ) -> None:
        if not isinstance(cfg, Mapping) or "type" not in cfg:
            return  # not a component mapping: the schema reports it
        kwargs = {k: v for k, v in cfg.items() if k not in drop}
        problems.extend(registry.problems(kwargs, where, skip=skip, paths=check_paths(where)))

    def named(value: Any) -> list[tuple[Any, Any]]:
        return list(value.items()) if isinstance(value, Mapping) else []

    def listed(value: Any) -> list[tuple[int, Any]]:
        return list(enumerate(value)) if isinstance(value, list) else []

    def section(key: str) -> Mapping[str, Any]:
        value = data.get(key)
        return value if isinstance(value, Mapping) else {}

    component(ARCHS, data.get("model"), "model")
    # a run that uses only other sections (test.py: TEST_PATHS) may take the model from its checkpoint
    training = isinstance(paths, bool) or "train" in paths
    if data.get("model") is None and data.get("train") is not None and training:
        problems.append("model: missing required key (training builds the model from it)")
    def dataset(cfg: Any, where: str) -> None:
        before = len(problems)
        component(DATASETS, cfg, where, drop=loader_keys)
        problems[before:] = _with_loader_keys(problems[before:], cfg, where, sorted(loader_keys))

    for name, cfg in named(data.get("datasets")):
        dataset(cfg, f"datasets.{name}")
    train = section("train")
    component(OPTIMIZERS, train.get("optim"), "train.optim")
    component(SCHEDULERS, train.get("scheduler"), "train.scheduler")
    component(TRAIN_STEPS, train.get("step"), "train.step")
    for i, cfg in listed(train.get("losses")):
        kind = cfg.get("type") if isinstance(cfg, Mapping) else None
        if isinstance(kind, str) and kind in LOSSES and getattr(LOSSES.get(kind), "adversarial", False):
            from irframe.losses import adversarial_in_losses  # torch: only once a file is checked

            problems.append(adversarial_in_losses(f"train.losses.{i}", kind))
            continue
        component(LOSSES, cfg, f"train.losses.{i}", drop=loss_keys)
    step = train.get("step")
    for key, pretrain in (("train.pretrain", train.get("pretrain")),
                          ("train.step.pretrain_d", step.get("pretrain_d") if isinstance(step, Mapping) else None)):
        if check_paths("train") and isinstance(pretrain, Mapping):
            path = pretrain.get("path")
            problem = checkpoint_path_problem(path) if isinstance(path, str) and path else None
            if problem is not None:
                problems.append(f"{key}.path: {problem}")
    for i, cfg in listed(section("val").get("metrics")):
        component(METRICS, cfg, f"val.metrics.{i}")
    test = section("test")
    for name, cfg in named(test.get("datasets")):
        dataset(cfg, f"test.datasets.{name}")
    for i, cfg in listed(test.get("metrics")):
        component(METRICS, cfg, f"test.metrics.{i}")
    return list(dict.fromkeys(problems))


def checkpoint_path_problem(path: str) -> str | None:
    """Why a checkpoint path that training reads (``train.pretrain.path``, a discriminator's
    ``pretrain_d.path``) names no weights; ``None`` when it does. Takes what every tool that reads
    weights takes (:func:`irframe.nn.weights.weights_path_problem`): a file, one of our checkpoint
    folders, or ``zoo:NAME``."""
    from irframe.nn.weights import is_zoo_name, weights_path_problem  # torch: only once a path is given

    if not is_zoo_name(path) and not Path(path).exists():
        return f"checkpoint not found: {clip(path)}"
    return weights_path_problem(path)


def _with_loader_keys(found: list[str], cfg: Any, where: str, loader: list[str]) -> list[str]:
    """A dataset's unknown-key problems, reworded with its loader's keys among the accepted ones.

    The registry checks a dataset mapping without the loader's keys (``batch_size``...), so its
    message would neither offer ``batch_size`` for ``batch_sise`` nor list it as accepted.
    """
    if not found or not isinstance(cfg, Mapping):
        return found
    try:
        entry = DATASETS.entry(cfg.get("type"))  # type: ignore[arg-type]
    except RegistryError:
        return found
    info = signature_info(entry.obj)
    if info is None:
        return found
    own = list(info.named)
    owner = getattr(entry.obj, "__name__", None) or type(entry.obj).__name__
    out = []
    for line in found:
        key = next((str(k) for k in cfg if line.startswith(f"{where}.{clip(k)}: unknown key for ")), None)
        if key is None:
            out.append(line)
            continue
        hint = key_hint(key, [*own, *loader]) or "."
        out.append(
            f"{where}.{clip(key)}: unknown key for {owner}{hint} Accepted keys: {', '.join(own)}; "
            f"and the loader's: {', '.join(loader)}"
        )
    return out


def check_components(opts: Options, *, paths: bool | Sequence[str] = False) -> None:
    """Raise one :class:`OptionsError` (file name first) listing every problem :func:`check_options` finds.

    Runs before any work starts so that a typo in a dataset or loss key, or (with ``paths``, as in
    :func:`check_options`; the runs pass the sections they use) a missing data folder, fails at
    once, all of them in one run. Keys are named as the option file spells them (:meth:`Options.spelled`).
    """
    problems = check_options(opts, paths=paths)
    if problems:
        raise OptionsError(format_problems(opts.source, [opts.spelled(p) for p in problems]))

