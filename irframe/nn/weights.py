"""Reading, unwrapping, loading and saving model weights, safely.

- Official ``.pth/.pt/.ckpt/.bin`` files are read with ``torch.load(weights_only=True)`` only: a
  pickle that needs to run code is refused as unsafe, never executed.
- Our own weights are ``.safetensors`` files carrying metadata (``{"arch": name, "config": json}``).
- Released files wrap their weights in different ways (BasicSR ``params`` / ``params_ema``, Lightning
  ``state_dict`` with ``net.`` prefixes, DDP ``module.``, ``torch.compile`` ``_orig_mod.``):
  :func:`unwrap_state_dict` reduces them all to a plain ``{name: tensor}``.
- Where the weights are: :func:`resolve_weights_file` takes a file, one of our experiment
  checkpoint folders, or ``zoo:NAME`` (a model of the zoo folder, :func:`resolve_zoo`; the catalog
  and ``irframe zoo`` are in :mod:`irframe.zoo`); :func:`config_from_metadata` reads the build config
  our files carry.
"""

from __future__ import annotations

import json
import os
import pickle
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn as nn

from irframe.errors import CheckpointError

T = TypeVar("T")

__all__ = [
    "TORCH_SUFFIXES",
    "WRAPPER_KEYS",
    "PARAM_KEYS",
    "STRIP_PREFIXES",
    "FOLDER_FILES",
    "ZOO_PREFIX",
    "LoadResult",
    "WeightsMismatchError",
    "mismatch_summary",
    "a_or_an",
    "resolve_weights_file",
    "weights_path_problem",
    "resolve_zoo",
    "is_zoo_name",
    "zoo_dir",
    "config_from_metadata",
    "read_checkpoint",
    "unwrap_state_dict",
    "strip_prefixes",
    "unwrap_model",
    "load_weights",
    "save_weights",
]

TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
# Wrapper keys tried, in order, when key="auto". BasicSR files may hold both ``params`` and
# ``params_ema``: we take the EMA weights (the ones BasicSR validates and releases, and what our
# checkpoint folders give with ema.safetensors) unless told otherwise (key="params"); the choice
# is reported through ``log`` when a file holds both.
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model_state_dict", "model", "net")
PARAM_KEYS = ("auto", "params", "params_ema")  # the choices of --param-key
# Prefixes removed when *every* key carries them: DDP, torch.compile, Lightning's ``self.net``.
STRIP_PREFIXES = ("module.", "_orig_mod.", "net.")
_MAX_LISTED = 10
_EXAMPLES = 2  # keys quoted as examples in a mismatch message (the counts say how many there are)
_EXAMPLE_CHARS = 80


def _listing(items: Iterable[str], limit: int = _MAX_LISTED) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def a_or_an(name: str) -> str:
    """``an IPT``, ``a Restormer``: the arch name with its article, as messages use it."""
    return f"{'an' if name[:1].upper() in 'AEIOU' else 'a'} {name}"


def _examples(items: list[str], count: int = _EXAMPLES) -> str:
    """`` (e.g. a, b)`` of the first ``count`` items, each clipped (a count says the rest); ``""`` for 0."""
    from irframe.text import clip

    return f" (e.g. {', '.join(clip(item, _EXAMPLE_CHARS) for item in items[:count])})" if count > 0 else ""


# -- where the weights are: a file, a checkpoint folder, or zoo:NAME ------------------------------
FOLDER_FILES = ("ema.safetensors", "model.safetensors")
"""Files looked for, in order, when a path is one of our experiment checkpoint folders."""
ZOO_PREFIX = "zoo:"
ZOO_ENV = "IRFRAME_ZOO"
ZOO_SUFFIX = ".safetensors"


def resolve_weights_file(path: str | os.PathLike[str], prefer_ema: bool = True) -> Path:
    """The weights file for ``path``: the file itself, the EMA/model file of a checkpoint folder, or
    the file of a zoo model named ``zoo:NAME`` (:func:`resolve_zoo`)."""
    if is_zoo_name(path):
        return resolve_zoo(str(path))
    p = Path(path)
    if p.is_dir():
        names = FOLDER_FILES if prefer_ema else FOLDER_FILES[::-1]
        for name in names:
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"{p}: a folder without {' or '.join(FOLDER_FILES)}")
    if not p.is_file():
        raise CheckpointError(f"checkpoint file not found: {p}")
    return p


def weights_path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` names no weights file (``None`` when it does), for option checks that run before
    anything is read: a missing file or folder, a folder without weights, an unknown ``zoo:NAME``.

    Accepts what :func:`resolve_weights_file` accepts (a file, one of our checkpoint folders,
    ``zoo:NAME``), so every place that reads a checkpoint path can check it the same way.
    """
    try:
        resolve_weights_file(path)
    except CheckpointError as exc:
        return str(exc)
    return None


def zoo_dir() -> Path:
    """The zoo folder: ``$IRFRAME_ZOO`` if set, else ``zoo/`` next to the ``irframe`` package."""
    env = os.environ.get(ZOO_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "zoo"


def is_zoo_name(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a ``zoo:NAME`` reference rather than a file path."""
    return isinstance(path, str) and path.startswith(ZOO_PREFIX)


def zoo_names(folder: Path) -> list[str]:
    """The model names of a zoo folder (its ``*.safetensors`` files), sorted."""
    if not folder.is_dir():
        return []
    return sorted(
        p.name[: -len(ZOO_SUFFIX)] for p in folder.iterdir() if p.is_file() and p.name.endswith(ZOO_SUFFIX)
    )


def resolve_zoo(ref: str) -> Path:
    """The file of ``zoo:NAME`` (``NAME`` or ``NAME.safetensors`` in :func:`zoo_dir`).

    Raises:
        CheckpointError: an empty name, a name with a path separator, or no such model (the error
            lists the zoo's models).
    """
    name = ref[len(ZOO_PREFIX) :] if ref.startswith(ZOO_PREFIX) else ref
    if name.endswith(ZOO_SUFFIX):
        name = name[: -len(ZOO_SUFFIX)]
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise CheckpointError(f"{ref!r}: a zoo reference is zoo:NAME with a plain model name (see `irframe zoo`)")
    folder = zoo_dir()
    file = folder / f"{name}{ZOO_SUFFIX}"
    if not file.is_file():
        known = zoo_names(folder)
        listing = ", ".join(known) if known else f"none: {folder} holds no *{ZOO_SUFFIX} file"
        raise CheckpointError(f"{ref}: no zoo model {name!r} in {folder} (available: {listing})")
    return file


# -- reading ---------------------------------------------------------------------------------------
def read_checkpoint(path: str | os.PathLike[str]) -> tuple[Mapping[str, Any], dict[str, str]]:
    """Read a weights file without executing code.

    Returns ``(content, metadata)``: for ``.safetensors`` the tensors and the file's metadata; for
    torch files the top-level mapping as stored (possibly a wrapper such as ``{"params": ...}``; pass
    it to :func:`unwrap_state_dict`) and ``{}``.

    Raises:
        CheckpointError: missing file, unknown suffix, unreadable content, or a pickle that would
            need to run code (refused as unsafe).
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint file not found: {p}")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        return _read_safetensors(p)
    if suffix in TORCH_SUFFIXES:
        return _read_torch(p), {}
    raise CheckpointError(
        f"{p}: unsupported checkpoint suffix {p.suffix!r}; expected .safetensors or one of "
        f"{', '.join(TORCH_SUFFIXES)}"
    )


def _open_safetensors(p: Path, read: Callable[[Any], T]) -> T:
    """Run ``read(handle)`` on an open safetensors file; the library's errors become one CheckpointError."""
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            return read(f)
    except Exception as exc:  # the library raises its own (Rust) error types
        raise CheckpointError(f"{p}: not a readable safetensors file: {exc}") from exc


def _read_safetensors(p: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    return _open_safetensors(
        p,
        lambda f: (
            {k: f.get_tensor(k) for k in f.keys()},  # noqa: SIM118 (safe_open is not a dict)
            dict(f.metadata() or {}),
        ),
    )


def read_safetensors_header(path: str | os.PathLike[str]) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """The metadata and the tensor shapes of a safetensors file, without reading any tensor data.

    Raises:
        CheckpointError: the file is not a readable safetensors file (the message names it).
    """
    return _open_safetensors(
        Path(path),
        lambda f: (
            dict(f.metadata() or {}),
            {k: tuple(int(d) for d in f.get_slice(k).get_shape()) for k in f.keys()},  # noqa: SIM118
        ),
    )


def config_from_metadata(metadata: Mapping[str, str], source: str = "checkpoint") -> dict[str, Any] | None:
    """The build config our safetensors files carry (``{"arch", "config"}`` metadata), or None."""
    if "arch" not in metadata or not isinstance(metadata.get("config"), str):
        return None
    try:
        config = json.loads(metadata["config"], parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{source}: metadata 'config' is not valid JSON: {exc}") from None
    except ValueError as exc:  # NaN / Infinity (refused by _refuse_constant)
        raise CheckpointError(f"{source}: metadata 'config' {exc}") from None
    except RecursionError:
        raise CheckpointError(f"{source}: metadata 'config' is nested too deeply to be a model config") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{source}: metadata 'config' must be a mapping, got {config!r}")
    config.setdefault("type", metadata["arch"])
    return config


def _refuse_constant(name: str) -> Any:
    """``json.loads`` hook for ``NaN``/``Infinity``/``-Infinity``: no model argument is non-finite."""
    raise ValueError(f"holds the non-finite number {name}")


def _read_torch(p: Path) -> Mapping[str, Any]:
    if p.stat().st_size == 0:
        raise CheckpointError(
            f"{p}: empty file (0 bytes): not a PyTorch checkpoint (an interrupted copy or a full disk?)"
        )
    try:
        with warnings.catch_warnings():
            # torch warns about plain-pickle protocols before refusing or loading; our error says more
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only's unpickler stops at the first global outside its allow-list, before calling it.
        raise CheckpointError(
            f"{p}: refused as unsafe: it holds Python objects that torch.load(weights_only=True) will not "
            f"build, since unpickling them could run code from the file ({_unpickling_reason(exc)}). "
            "Only plain tensor state dicts are accepted; re-save the weights (e.g. as safetensors) where "
            "the file was made."
        ) from None
    except Exception as exc:  # corrupt zip, truncated file, not a torch file at all
        raise CheckpointError(
            f"{p}: cannot be read as a PyTorch checkpoint: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{p}: holds a {type(obj).__name__}, not a mapping of weights")
    return obj


def _unpickling_reason(exc: Exception) -> str:
    """The informative line of torch's (long) weights_only error, e.g. the refused global."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line or "Unsupported" in line:
            return line
    return lines[0] if lines else type(exc).__name__


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def strip_prefixes(
    state: Mapping[str, torch.Tensor], prefixes: Iterable[str] = STRIP_PREFIXES
) -> dict[str, torch.Tensor]:
    """Remove each prefix shared by *all* keys, repeatedly (``module._orig_mod.x`` -> ``x``).

    A prefix only some keys carry is left alone: it is then part of the model's own names.
    """
    out = dict(state)
    prefixes = tuple(prefixes)
    changed = True
    while changed and out:
        changed = False
        for prefix in prefixes:
            if all(k.startswith(prefix) for k in out):
                out = {k[len(prefix) :]: v for k, v in out.items()}
                changed = True
    return out


def unwrap_state_dict(
    obj: Mapping[str, Any],
    key: str = "auto",
    *,
    prefixes: Iterable[str] = STRIP_PREFIXES,
    source: str = "checkpoint",
    log: Callable[[str], object] | None = None,
) -> dict[str, torch.Tensor]:
    """Reduce a loaded checkpoint to a plain ``{name: tensor}`` state dict.

    Args:
        obj: what :func:`read_checkpoint` returned.
        key: ``"auto"`` walks down the first wrapper found among :data:`WRAPPER_KEYS` (so BasicSR's
            ``params_ema`` is preferred over ``params``); any other value picks that top-level key
            (e.g. ``"params"``) and then continues automatically.
        prefixes: prefixes to strip when every key carries them (default DDP / compile / Lightning).
        source: the file name, for messages.
        log: told which of ``params`` / ``params_ema`` was used when the file holds both.
    """
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: expected a mapping of weights, got {type(obj).__name__}")
    if log is not None and all(isinstance(obj.get(k), Mapping) for k in ("params", "params_ema")):
        used = "params_ema" if key == "auto" else key
        other = "params" if used == "params_ema" else "params_ema"
        log(f"{source}: holds both 'params' and 'params_ema'; using {used!r} (--param-key {other} for the other)")
    current: Any = obj
    if key != "auto":
        if key not in current:
            raise CheckpointError(f"{source}: no key {key!r}; top-level keys: {_listing(map(str, current))}")
        current = current[key]
    for _ in range(len(WRAPPER_KEYS) + 1):  # wrappers can nest (e.g. {"model": {"state_dict": ...}})
        if _is_state_dict(current) or not isinstance(current, Mapping):
            break
        found = next((k for k in WRAPPER_KEYS if isinstance(current.get(k), Mapping)), None)
        if found is None:
            break
        current = current[found]
    if not _is_state_dict(current):
        if isinstance(current, Mapping) and current:
            bad = [f"{k} ({type(v).__name__})" for k, v in current.items() if not isinstance(v, torch.Tensor)]
            raise CheckpointError(
                f"{source}: no state dict found: entries that are not tensors: {_listing(bad)}; "
                f"expected tensors or one of the wrappers {', '.join(WRAPPER_KEYS)} (choose with key=...)"
            )
        raise CheckpointError(f"{source}: no weights found (empty or not a mapping: {type(current).__name__})")
    return strip_prefixes(current, prefixes)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module under DDP/DataParallel (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    for _ in range(4):
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif isinstance(inner := getattr(model, "_orig_mod", None), nn.Module):
            model = inner
        else:
            break
    return model


class WeightsMismatchError(CheckpointError):
    """Weights that do not fit a model: the message counts what differs (a few examples, never
    every key), and the fields let a caller that knows more (the options, the file's arch) say why.

    Attributes:
        source: the file, as named in the message.
        model_name: the class of the model the weights were loaded into.
        missing, unexpected, mismatched: as :func:`compare_state` returns them.
        holds: the arch the file was saved from, when its metadata records it.
    """

    def __init__(
        self, message: str, *, source: str, model_name: str, missing: list[str], unexpected: list[str],
        mismatched: list[str], holds: str | None = None,
    ) -> None:
        super().__init__(message)
        self.source, self.model_name, self.holds = source, model_name, holds
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched

    def differences(self, brief: bool = False) -> str:
        """What differs, as counts with two examples each (one line, bounded); ``brief``: the shape
        count with one example, else the key counts alone (for a message that already says the fix)."""
        return mismatch_summary(self.missing, self.unexpected, self.mismatched, self.model_name, brief=brief)


def mismatch_summary(
    missing: list[str], unexpected: list[str], mismatched: list[str], model_name: str, *, brief: bool = False
) -> str:
    """``74 tensor shape(s) differ (e.g. ...); 3 key(s) of Net missing from the file (e.g. ...)``:
    counts and two examples of each kind of difference (``brief``: the shape count with one
    example, else the key counts alone), so the line stays short for any model size."""
    if brief and mismatched:
        return f"{len(mismatched)} tensor shape(s) differ{_examples(mismatched, 1)}"
    shapes, keys = (1, 0) if brief else (_EXAMPLES, _EXAMPLES)
    parts = []
    if mismatched:
        parts.append(f"{len(mismatched)} tensor shape(s) differ{_examples(mismatched, shapes)}")
    if missing:
        parts.append(f"{len(missing)} key(s) of {model_name} missing from the file{_examples(missing, keys)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s) in the file{_examples(unexpected, keys)}")
    return "; ".join(parts)


@dataclass
class LoadResult:
    """What :func:`load_weights` did: keys the model has but the file lacks, and the reverse."""

    path: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)


def load_weights(
    model: nn.Module,
    path: str | os.PathLike[str],
    strict: bool = True,
    key: str = "auto",
    log: Callable[[str], object] | None = None,
) -> LoadResult:
    """Load a weights file into ``model`` (DDP/compiled wrappers are looked through).

    Shape mismatches are always an error; missing/unexpected keys are an error when ``strict``, and
    reported in the returned :class:`LoadResult` otherwise. Messages name the file and list up to
    ten keys of each kind. ``log`` is told which weights were used when the file holds both
    ``params`` and ``params_ema`` (see :func:`unwrap_state_dict`).
    """
    state, metadata = read_state_for(model, path, key, log=log)
    holds = metadata.get("arch") if isinstance(metadata.get("arch"), str) else None
    result = load_state(model, state, strict=strict, source=str(path), holds=holds)
    result.metadata = metadata
    return result


def read_state_for(
    model: nn.Module, path: str | os.PathLike[str], key: str = "auto", log: Callable[[str], object] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read ``path`` and unwrap it into a state dict for ``model`` (and the file's metadata).

    ``path`` is anything :func:`resolve_weights_file` takes: a file, one of our checkpoint folders
    or ``zoo:NAME``. A prefix every model key carries (a top-level submodule named ``net``) is part
    of the names, so it is not stripped from the file's keys.
    """
    own = unwrap_model(model).state_dict()
    prefixes = [p for p in STRIP_PREFIXES if not (own and all(k.startswith(p) for k in own))]
    file = resolve_weights_file(path)
    raw, metadata = read_checkpoint(file)
    return unwrap_state_dict(raw, key=key, prefixes=prefixes, source=str(file), log=log), metadata


def compare_state(
    own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], label: str = "file"
) -> tuple[list[str], list[str], list[str]]:
    """``(missing, unexpected, mismatched)``: model keys absent from ``state``, ``state`` keys the
    model lacks, and common keys whose shapes differ (as ``"key: <label> (..) vs model (..)"``)."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k}: {label} {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    return missing, unexpected, mismatched


def load_state(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    strict: bool = True,
    source: str = "checkpoint",
    holds: str | None = None,
) -> LoadResult:
    """Load an unwrapped state dict into ``model`` with the checks and messages of :func:`load_weights`.

    ``holds``: the arch the file was saved from, when known (our metadata); a file of another arch
    is named as such first, rather than as a list of keys.

    Raises:
        WeightsMismatchError: shapes differ, or (``strict``) keys are missing or unexpected; one
            line with counts and two examples of each, whatever the model's size.
    """
    target = unwrap_model(model)
    missing, unexpected, mismatched = compare_state(target.state_dict(), state, label="checkpoint")
    name = type(target).__name__
    if not mismatched and not (strict and (missing or unexpected)):
        target.load_state_dict(state, strict=False)  # everything was checked above, with better messages
        return LoadResult(source, missing, unexpected)
    summary = mismatch_summary(missing if strict else [], unexpected if strict else [], mismatched, name)
    if holds is not None and holds != name:
        held, built = a_or_an(holds), a_or_an(name)
        message = f"{source}: holds {held} checkpoint, not {built}: load it as {held} ({summary})"
    elif mismatched:
        message = f"{source}: does not fit {name} (built with other options?): {summary}"
    else:
        message = f"{source}: does not match {name}: {summary} (strict=True)"
    raise WeightsMismatchError(
        message, source=source, model_name=name, missing=missing, unexpected=unexpected, mismatched=mismatched,
        holds=holds,
    )


def save_weights(
    model_or_state: nn.Module | Mapping[str, torch.Tensor],
    path: str | os.PathLike[str],
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write weights as safetensors, atomically (temporary file in the same folder + ``os.replace``).

    Args:
        model_or_state: a module (wrappers looked through) or a ``{name: tensor}`` mapping.
        path: the ``.safetensors`` file to write.
        metadata: string metadata, e.g. ``{"arch": "Restormer", "config": json}``; non-string values
            are stored as JSON.
    Returns:
        The written path.
    """
    dest = Path(path)
    if dest.suffix.lower() != ".safetensors":
        raise CheckpointError(f"{dest}: save_weights writes safetensors; name the file *.safetensors")
    if isinstance(model_or_state, nn.Module):
        state: Mapping[str, Any] = unwrap_model(model_or_state).state_dict()
    elif isinstance(model_or_state, Mapping):
        state = model_or_state
    else:
        raise CheckpointError(f"{dest}: expected a module or a state dict, got {type(model_or_state).__name__}")
    tensors: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{dest}: entry {k!r} is a {type(v).__name__}, not a tensor")
        # clone: safetensors refuses tensors that share memory (tied weights, views)
        tensors[k] = v.detach().to("cpu").contiguous().clone()
    meta = {}
    for k, v in (metadata or {}).items():
        meta[str(k)] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)

    from safetensors.torch import save_file

    from irframe.data.io import give_default_permissions

    if dest.is_dir():
        raise CheckpointError(f"{dest}: is a folder; name the weights file to write")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=meta)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        give_default_permissions(tmp)  # safetensors creates owner-only files
        os.replace(tmp, dest)
    except Exception as exc:  # a full disk (OSError or the library's own error), a read-only folder
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise CheckpointError(f"{dest}: not written ({reason}); any earlier {dest.name} is intact") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest
