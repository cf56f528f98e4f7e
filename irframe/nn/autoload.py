"""Load a model from a checkpoint file alone: detect the arch and its hyper-parameters.

``load_model(path)`` reads ``.pth/.pt/.ckpt/.bin`` (through ``weights_only=True``) and ``.safetensors``
files, unwraps the known wrappers (``params``/``params_ema``/``state_dict``, ``net.``/``module.``
prefixes) and then:

1. our own safetensors files carry ``{"arch", "config"}`` metadata: the config is used as is;
2. otherwise every registered detector (registry ``DETECTORS``, one per arch family, each plugin adds
   its own) looks at the keys and shapes and returns a build config or ``None``. When several
   match, a detector registered ``more_specific_than`` another wins over it (HAT over SwinIR,
   PromptIR over Restormer); exactly one must remain: none or several is an error that lists what
   was tried and the candidates.

A detector is ``fn(state_dict, *, filename=None, metadata=None) -> dict | None``; the two hints are
passed only to detectors whose signature names them (or takes ``**kwargs``), so ``fn(state_dict)``
works too. Detectors run isolated: one that raises (or returns something that is not a config)
is reported by name and plugin, and the others still decide. A detector that recognises its
family's file but cannot build it raises :class:`~irframe.errors.CheckpointError`; its message is
what the user sees when nothing else matches.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
import torch.nn as nn

from irframe.errors import CheckpointError, IrframeError
from irframe.nn.weights import (
    FOLDER_FILES,
    WRAPPER_KEYS,
    a_or_an,
    config_from_metadata,
    load_state,
    read_checkpoint,
    resolve_weights_file,
    unwrap_state_dict,
)
from irframe.registry import ARCHS, DETECTORS, Entry, conflicts, failed_plugins_note

__all__ = [
    "DetectorOutcome",
    "checkpoint_arch",
    "check_config_against",
    "recognised_config",
    "other_arch",
    "detect_config",
    "detector_entries",
    "detector_metadata",
    "load_model",
    "most_specific",
    "run_detector",
    # where the weights are and what they record: irframe.nn.weights (importable from here too)
    "FOLDER_FILES",
    "config_from_metadata",
    "resolve_weights_file",
]

def check_config_against(
    config: Mapping[str, Any], state: Mapping[str, torch.Tensor], *, strict: bool = True, source: str = "checkpoint"
) -> None:
    """Refuse a build config that does not describe the file's tensors, before allocating the model.

    The arch is built on the ``meta`` device (shapes only, no memory), so a tiny file whose recorded
    config asks for billions of parameters (or absurd numbers: ``10**30`` channels) is refused in
    moments instead of filling the memory; then its parameter names and shapes are compared with
    the file's tensors.

    Raises:
        CheckpointError: the config cannot be built, or the shapes (or, when ``strict``, the key
            sets) disagree; the message names ``source``.
    """
    from irframe.nn.weights import compare_state

    arch = config.get("type")
    try:
        with torch.device("meta"):
            skeleton = ARCHS.build(dict(config), path=f"{source} (recorded config)")
    except CheckpointError:
        raise
    except Exception as exc:  # bad options, overflow, negative sizes: whatever the arch raises on absurd values
        reason = str(exc).splitlines()[0] if str(exc) else ""
        what = "" if isinstance(exc, IrframeError) else f"{type(exc).__name__}: "
        raise CheckpointError(f"{source}: its config cannot build {arch}: {what}{reason}") from None
    missing, unexpected, mismatched = compare_state(skeleton.state_dict(), state, label="file")
    problems = [f"{len(mismatched)} shape(s) differ: {', '.join(mismatched[:5])}"] if mismatched else []
    if strict and missing:
        problems.append(f"{len(missing)} tensor(s) the config implies are not in the file: {', '.join(missing[:5])}")
    if strict and unexpected:
        problems.append(
            f"{len(unexpected)} tensor(s) of the file are not in the config's model: {', '.join(unexpected[:5])}"
        )
    if problems:
        params = sum(t.numel() for t in skeleton.state_dict().values())
        raise CheckpointError(
            f"{source}: its config ({arch}, {params:,} values) does not describe the file's {len(state)} tensors; "
            f"refused before building the model: {'; '.join(problems)}"
        )


def detector_metadata(raw: Mapping[str, Any], metadata: Mapping[str, str]) -> dict[str, Any]:
    """The ``metadata=`` hint detectors receive for a file: what it says besides its weights.

    A ``.safetensors`` file's string metadata as is; for a torch file (whose ``read_checkpoint``
    metadata is empty), its top-level entries that are neither tensors nor the weights wrapper,
    e.g. Lightning's ``hyper_parameters`` and ``epoch``.
    """
    if metadata:
        return dict(metadata)
    return {
        str(k): v
        for k, v in raw.items()
        if not isinstance(v, torch.Tensor) and not (k in WRAPPER_KEYS and isinstance(v, Mapping))
    }


@dataclass(frozen=True)
class DetectorOutcome:
    """What one detector said about a checkpoint.

    ``status`` is ``"match"`` (``config`` set), ``"no match"``, ``"rejected"`` (it raised an
    irframe error on purpose: it knows the file but cannot build it; ``message`` says why) or
    ``"failed"`` (it raised anything else, or returned something that is not a config: a bug in
    the plugin; ``message`` names the exception).
    """

    name: str
    provider: str
    status: str
    config: dict[str, Any] | None = None
    message: str = ""
    more_specific_than: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``detector NAME [plugin]`` as the messages show it."""
        return f"{self.name} [{self.provider}]"

    def describe(self) -> str:
        """One line for the "Detectors tried" listing."""
        if self.status == "rejected":
            return f"{self.label}: recognised but rejected: {self.message}"
        if self.status == "failed":
            return f"{self.label}: FAILED ({self.message}; a bug in plugin {self.provider!r}, ignored)"
        return f"{self.label}: {self.status}"


def _accepted_hints(fn: Callable[..., Any], hints: Mapping[str, Any]) -> dict[str, Any]:
    """The hints ``fn`` accepts by keyword (all of them with ``**kwargs``; none if unknowable)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(hints)
    named = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return {k: v for k, v in hints.items() if k in named}


def detector_entries() -> list[Entry]:
    """Every registered detector, including same-named ones of two plugins: detectors are never
    looked up by name, so such a clash must not keep either of them from running."""
    clashing = [e for entries in conflicts().get(DETECTORS.kind, {}).values() for e in entries]
    return DETECTORS.entries() + clashing


def run_detector(entry: Entry, state_dict: Mapping[str, torch.Tensor], hints: Mapping[str, Any]) -> DetectorOutcome:
    """Call one detector, isolated: whatever it raises or returns becomes a :class:`DetectorOutcome`.

    The detector sees a read-only view of the state dict (and of the metadata hint), and gets the
    ``filename=``/``metadata=`` hints only if its signature names them (or takes ``**kwargs``).
    """
    view = {k: (MappingProxyType(dict(v)) if isinstance(v, Mapping) else v) for k, v in hints.items()}
    order = entry.more_specific_than
    try:
        result = entry.obj(MappingProxyType(dict(state_dict)), **_accepted_hints(entry.obj, view))
    except IrframeError as exc:  # deliberate: "this is my family's file, but not one I can build"
        return DetectorOutcome(entry.name, entry.provider, "rejected", message=str(exc))
    except Exception as exc:  # a careless detector must not break loading for every arch
        return DetectorOutcome(entry.name, entry.provider, "failed", message=f"raised {type(exc).__name__}: {exc}")
    if result is None:
        return DetectorOutcome(entry.name, entry.provider, "no match")
    if not isinstance(result, Mapping) or not isinstance(result.get("type"), str):
        return DetectorOutcome(
            entry.name, entry.provider, "failed",
            message=f"returned {result!r:.80}, not None or a build config with a 'type' name",
        )
    return DetectorOutcome(entry.name, entry.provider, "match", config=dict(result), more_specific_than=order)


def most_specific(matches: list[DetectorOutcome]) -> list[DetectorOutcome]:
    """The matches that no other match declares itself more specific than.

    Two detectors that each claim to refine the other cancel out: both stay, and the caller reports
    the checkpoint as ambiguous.
    """
    names = {o.name for o in matches}
    beaten = {
        loser
        for o in matches
        for loser in o.more_specific_than
        if loser in names and loser != o.name and not _refines(matches, loser, o.name)
    }
    return [o for o in matches if o.name not in beaten]


def _refines(matches: list[DetectorOutcome], name: str, other: str) -> bool:
    return any(o.name == name and other in o.more_specific_than for o in matches)


def detect_config(
    state_dict: Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any] | None = None,
    source: str = "checkpoint",
    *,
    filename: str | None = None,
) -> dict[str, Any]:
    """The build config (``{type: Arch, ...}``) of an unwrapped state dict.

    Our metadata config wins; otherwise every registered detector runs, isolated (see
    :func:`run_detector`), with ``filename`` and ``metadata`` as optional hints. A detector that
    fails or rejects the file is named (plugin and detector) in the error when nothing matches, and
    in a warning when another detector matches.

    Raises:
        CheckpointError: no detector or several detectors matched (the message lists them all).
    """
    config = config_from_metadata(metadata or {}, source)
    if config is not None:
        return config
    hints = {"filename": filename, "metadata": dict(metadata or {})}
    outcomes = [run_detector(entry, state_dict, hints) for entry in detector_entries()]
    matches = most_specific([o for o in outcomes if o.status == "match"])
    troubled = [o for o in outcomes if o.status in ("rejected", "failed")]
    tried = "; ".join(o.describe() for o in outcomes) or "(none registered)"
    if len(matches) == 1:
        for o in troubled:
            warnings.warn(
                f"{source}: checkpoint detector {o.describe()}; {matches[0].label} matched",
                RuntimeWarning,
                stacklevel=2,
            )
        return matches[0].config  # type: ignore[return-value]
    if matches:
        raise CheckpointError(
            f"{source}: several archs claim this checkpoint: {', '.join(o.name for o in matches)} "
            f"(candidates: {', '.join(o.label for o in matches)}; none is registered more_specific_than "
            "the others). "
            f"Detectors tried: {tried}. Pass an option file (-opt) naming the model."
        )
    rejected = [o for o in outcomes if o.status == "rejected"]
    if rejected:
        why = "; ".join(f"{o.label} recognised it but refused it: {o.message}" for o in rejected)
        raise CheckpointError(f"{source}: {why}. Detectors tried: {tried}.")
    keys = list(state_dict)
    shown = ", ".join(keys[:6]) + (f", ... ({len(keys) - 6} more)" if len(keys) > 6 else "")
    raise CheckpointError(
        f"{source}: no registered arch recognises this checkpoint ({len(keys)} tensors: {shown}). "
        f"Detectors tried: {tried}. "
        "Pass an option file (-opt) naming the model, or install the plugin that provides it."
        + (f" Note: {note}." if (note := failed_plugins_note()) else "")
    )


def recognised_config(
    state_dict: Mapping[str, torch.Tensor], metadata: Mapping[str, Any] | None = None, *, filename: str | None = None
) -> dict[str, Any] | None:
    """The build config of a checkpoint when it can be told, silently: the one our metadata
    records, else the one the registered detectors agree on; ``None`` when none or several match
    (where :func:`detect_config` raises and warns, this is for messages about a mismatch)."""
    try:
        config = config_from_metadata(metadata or {})
    except CheckpointError:
        config = None
    if config is not None:
        return config
    hints = {"filename": filename, "metadata": dict(metadata or {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcomes = [run_detector(entry, state_dict, hints) for entry in detector_entries()]
    matches = most_specific([o for o in outcomes if o.status == "match"])
    return dict(matches[0].config) if len(matches) == 1 and matches[0].config is not None else None


def checkpoint_arch(
    state_dict: Mapping[str, torch.Tensor], metadata: Mapping[str, Any] | None = None, *, filename: str | None = None
) -> str | None:
    """The arch a checkpoint holds, when it can be told: the ``arch`` our metadata records, else
    the one arch the registered detectors recognise (run silently); ``None`` when none or several do.

    For messages about weights given to a model of another arch (``train.pretrain``, ``--resume``,
    ``--checkpoint`` with an option file): "the file holds an IPT" says more than a list of keys.
    """
    arch = (metadata or {}).get("arch")
    if isinstance(arch, str) and arch:
        return arch
    config = recognised_config(state_dict, metadata, filename=filename)
    return None if config is None else str(config.get("type"))


def other_arch(
    model: nn.Module | str, state_dict: Mapping[str, torch.Tensor], metadata: Mapping[str, Any] | None = None
) -> str | None:
    """``holds an IPT checkpoint, not a Restormer`` when the checkpoint (:func:`checkpoint_arch`)
    is of another arch than ``model`` (a module or an arch name); ``None`` when it is the same arch
    or cannot be told. Callers put the file name before it and their fix after it."""
    from irframe.nn.weights import unwrap_model

    name = model if isinstance(model, str) else type(unwrap_model(model)).__name__
    holds = checkpoint_arch(state_dict, metadata)
    if holds is None or holds == name:
        return None
    return f"holds {a_or_an(holds)} checkpoint, not {a_or_an(name)}"


def load_model(
    path: str | os.PathLike[str],
    *,
    key: str = "auto",
    prefer_ema: bool = True,
    strict: bool = True,
    device: str | torch.device = "cpu",
    log: Callable[[str], object] | None = None,
) -> nn.Module:
    """Build the right arch for a checkpoint and load its weights (eval mode).

    Args:
        path: a weights file or one of our experiment checkpoint folders.
        key: wrapper key to read (``"auto"``: ``params_ema`` before ``params``; ``"params"``, ...).
        log: told which of ``params`` / ``params_ema`` was used when the file holds both.
        prefer_ema: for a checkpoint folder, take ``ema.safetensors`` when present.
        strict: refuse missing/unexpected keys.
        device: where the model goes.

    The returned module has ``irframe_config`` (the build config) and ``irframe_source`` attributes.
    """
    file = resolve_weights_file(path, prefer_ema)
    raw, metadata = read_checkpoint(file)
    state = unwrap_state_dict(raw, key=key, source=str(file), log=log)
    config = detect_config(state, detector_metadata(raw, metadata), source=str(file), filename=str(file))
    check_config_against(config, state, strict=strict, source=str(file))
    model = ARCHS.build(config, path=f"{file} (detected config)")
    load_state(model, state, strict=strict, source=f"{file} (detected {config.get('type')})")
    model.irframe_config = dict(config)
    model.irframe_source = str(file)
    return model.to(device).eval()
