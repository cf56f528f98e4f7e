"""Option mappings checked against a component's signature, before anything is built.

Every option mapping ``{type: Name, **kwargs}`` is checked against the named parameters of the
component's constructor, also when it takes ``**kwargs`` (registered with ``extra_keys=True`` such a
component accepts other keys too): an unknown key names its dotted path and the closest accepted
key (or, for another framework's key, where irframe keeps that setting:
:mod:`irframe.registry.foreign_keys`); values are checked, and coerced (``"2e-4"`` -> ``2e-4``),
against the type hints, or against the default's type for a parameter without a hint; booleans are
never numbers. All problems are reported at once.

Two argument markers, used inside ``typing.Annotated``, tell the checker more: :class:`Nested` (the
value holds option mappings of another registry, checked too) and :class:`PathArg` (a file or folder
that must exist).
"""

from __future__ import annotations

import inspect
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from irframe.errors import OptionsError
from irframe.registry.foreign_keys import key_hint
from irframe.text import clip, join_problems, short

T = TypeVar("T")

# ----------------------------------------------------------------------------------------------
# Argument markers (used inside typing.Annotated on a component's parameters)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nested:
    """Marks a parameter whose value holds option mapping(s) of components of registry ``kind``.

    The option checker then checks those mappings too, with their full dotted paths: one mapping
    (``{type: Name, ...}``), a list of them (``key.0``, ``key.1``...), or with ``keyed=True`` a
    mapping of names to them (``key.<name>``)::

        degradation: Annotated[dict[str, Any] | list[dict[str, Any]], Nested("degradation")]

    A component whose children depend on several arguments defines instead a classmethod
    ``option_children(cls, kwargs) -> list[(relative path, registry kind, mapping)]``.
    """

    kind: str
    keyed: bool = False


@dataclass(frozen=True)
class PathArg:
    """Marks a parameter naming a file or folder that must exist before anything is built.

    ``what`` is ``"folder"``, ``"file"`` or ``"path"`` (either). The option checker reports every
    missing one at once by its option key (``datasets.train.dataroot_gt: folder not found: X``).
    """

    what: Literal["folder", "file", "path"] = "path"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not an existing path of this kind (``None``: it is, or it is no path)."""
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            return None  # the type check reports values that are not paths
        p = Path(value)
        if not p.exists():
            return f"{self.what} not found: {clip(value)}"
        if self.what == "folder" and not p.is_dir():
            return f"expected a folder, got a file: {clip(value)}"
        if self.what == "file" and not p.is_file():
            return f"expected a file, got a folder: {clip(value)}"
        return None


ExistingFolder = Annotated[str, PathArg("folder")]
"""A folder (or an ``.lmdb`` database, also a folder) that must exist."""
ExistingFile = Annotated[str, PathArg("file")]
"""A file that must exist."""


# ----------------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------------


@dataclass
class SignatureInfo:
    """What the checker knows about a component's parameters."""

    named: dict[str, inspect.Parameter]
    var_keyword: bool
    hints: dict[str, Any]
    paths: dict[str, PathArg]
    nested: dict[str, Nested]


_SIGNATURES: dict[int, tuple[Any, SignatureInfo | None]] = {}


def signature_info(obj: Any) -> SignatureInfo | None:
    """The parameters of ``obj`` (``None``: no signature, its arguments cannot be checked)."""
    cached = _SIGNATURES.get(id(obj))
    if cached is not None and cached[0] is obj:
        return cached[1]
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        info = None
    else:
        target = obj.__init__ if inspect.isclass(obj) else obj
        try:
            hints = typing.get_type_hints(target, include_extras=True)
        except Exception:  # unresolvable forward references: the defaults' types are used
            hints = {}
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        named = {n: p for n, p in sig.parameters.items() if p.kind in kinds and n != "self"}
        hints = {n: h for n, h in hints.items() if n in named}
        info = SignatureInfo(
            named=named,
            var_keyword=any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()),
            hints=hints,
            paths={n: m for n, h in hints.items() for m in _markers(h, PathArg)[:1]},
            nested={n: m for n, h in hints.items() for m in _markers(h, Nested)[:1]},
        )
    _SIGNATURES[id(obj)] = (obj, info)
    return info


def _markers(hint: Any, cls: type[T]) -> list[T]:
    """Markers of type ``cls`` in an annotation (inside ``Annotated``, also within unions)."""
    found: list[Any] = []
    if typing.get_origin(hint) is Annotated:
        found.extend(m for m in getattr(hint, "__metadata__", ()) if isinstance(m, cls))
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            found.extend(_markers(arg, cls))
    return found


def kwarg_problems(
    obj: Callable[..., Any],
    kwargs: Mapping[str, Any],
    *,
    where: str,
    skip: frozenset[str] | set[str] = frozenset(),
    extra_keys: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    """Check ``kwargs`` against ``obj``'s named parameters; return them coerced, and every problem.

    Keys must be named parameters (also when ``obj`` takes ``**kwargs``, unless ``extra_keys``);
    values must match the type hints (booleans are not numbers), or the default's type for a
    parameter without a hint; required parameters must be given. ``skip`` are supplied by the
    engine and may not be set. A component without a signature is not checked.
    """
    info = signature_info(obj)
    out = dict(kwargs)
    if info is None:
        return out, []
    owner = getattr(obj, "__name__", None) or type(obj).__name__
    choices = [n for n in info.named if n not in skip]
    problems: list[str] = []
    for key, value in kwargs.items():
        if key in skip:
            problems.append(f"{where}.{key}: set by the engine, not by the options")
            continue
        if key not in info.named:
            if extra_keys and info.var_keyword:
                continue
            problems.append(
                f"{where}.{clip(key)}: unknown key for {owner}{key_hint(key, choices) or '.'} "
                f"Accepted keys: {', '.join(choices) if choices else '(none)'}"
            )
            continue
        if key in info.hints:
            problem, out[key] = _coerce(info.hints[key], value, f"{where}.{key}")
        else:
            problem = _default_problem(info.named[key].default, value, f"{where}.{key}")
        if problem:
            problems.append(problem)
    missing = [n for n, p in info.named.items() if p.default is p.empty and n not in kwargs and n not in skip]
    if missing:
        problems.append(f"{where}: missing required key(s) {', '.join(repr(m) for m in missing)} for {owner}")
    return out, problems


def check_kwargs(
    obj: Callable[..., Any],
    kwargs: Mapping[str, Any],
    *,
    where: str,
    skip: frozenset[str] | set[str] = frozenset(),
    extra_keys: bool = False,
) -> dict[str, Any]:
    """Validate ``kwargs`` against ``obj``'s signature (see :func:`kwarg_problems`); return them
    coerced to the annotated types, or raise one :class:`OptionsError` listing every problem."""
    out, problems = kwarg_problems(obj, kwargs, where=where, skip=skip, extra_keys=extra_keys)
    if problems:
        raise OptionsError(join_problems(problems))
    return out




def bool_allowed(annotation: Any, value: Any) -> bool:
    """False when ``value`` is (or holds) a boolean where ``annotation`` wants a number.

    pydantic's lax mode reads ``true`` as ``1``; an option file meaning a number never says
    ``true``. Containers (lists, tuples, dicts) are checked item by item.
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return bool_allowed(args[0], value)
    if origin in (typing.Union, types.UnionType):
        # a list is judged by the union's list members only (``list[int] | None`` and ``[true]``)
        if isinstance(value, (list, tuple)):
            fits = [
                a
                for a in args
                if _is_sequence_origin(typing.get_origin(a) or a) or typing.get_origin(a) in (set, frozenset)
            ]
        elif isinstance(value, Mapping):
            fits = [a for a in args if _is_mapping_origin(typing.get_origin(a) or a)]
        else:
            fits = []
        return any(bool_allowed(a, value) for a in (fits or args))
    if isinstance(value, bool):
        if origin is Literal:
            return any(isinstance(a, bool) for a in args)
        return annotation not in (int, float, complex, str, bytes, type(None))
    if isinstance(value, (list, tuple)) and (origin in (list, tuple, set, frozenset) or _is_sequence_origin(origin)):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return all(bool_allowed(a, v) for a, v in zip(args, value))
        return not args or all(bool_allowed(args[0], v) for v in value)
    if isinstance(value, Mapping) and origin is not None and _is_mapping_origin(origin) and len(args) == 2:
        return all(bool_allowed(args[1], v) for v in value.values())
    return True


def _is_sequence_origin(origin: Any) -> bool:
    import collections.abc as abc

    return isinstance(origin, type) and issubclass(origin, abc.Sequence) and not issubclass(origin, (str, bytes))


def _is_mapping_origin(origin: Any) -> bool:
    import collections.abc as abc

    return isinstance(origin, type) and issubclass(origin, abc.Mapping)


def _coerce(annotation: Any, value: Any, where: str) -> tuple[str | None, Any]:
    """Validate ``value`` against ``annotation`` with pydantic (lax mode, but booleans are not
    numbers); return ``(problem or None, the coerced value)``. Types pydantic cannot describe pass."""
    if not bool_allowed(annotation, value):
        return (
            f"{where}: expected {_type_name(annotation)}, got the boolean {value!r} (booleans are not numbers)",
            value,
        )
    try:
        from pydantic import TypeAdapter, ValidationError
    except ImportError:  # pragma: no cover - pydantic is a dependency
        return None, value
    try:
        adapter = TypeAdapter(annotation)
    except Exception:  # types pydantic cannot describe (tensors, modules): not checked here
        return None, value
    try:
        result = adapter.validate_python(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        return (
            f"{where}: {err['msg'].lower()} (got {short(value)} of type {type(value).__name__}; "
            f"expected {_type_name(annotation)})",
            value,
        )
    except Exception as exc:  # a validator of an odd type failing on odd input
        return f"{where}: {type(exc).__name__}: {short(str(exc))} (got {short(value)})", value
    # pydantic turns lists into tuples for Tuple annotations etc.; keep containers the user wrote
    # when they already satisfy the annotation.
    keep = type(result) is not type(value) and isinstance(value, (list, tuple)) and isinstance(result, (list, tuple))
    return None, value if keep else result


_DEFAULT_KINDS: tuple[tuple[type | tuple[type, ...], str, Callable[[Any], bool]], ...] = (
    (bool, "a boolean", lambda v: isinstance(v, bool)),
    (int, "an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    (float, "a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    (str, "a string", lambda v: isinstance(v, str)),
    ((list, tuple), "a list", lambda v: isinstance(v, (list, tuple))),
    (dict, "a mapping", lambda v: isinstance(v, Mapping)),
)


def _default_problem(default: Any, value: Any, where: str) -> str | None:
    """For a parameter without a type hint: ``value`` must have its default's type (``None``: unchecked)."""
    if default is None or default is inspect.Parameter.empty:
        return None
    for kind, want, ok in _DEFAULT_KINDS:
        if isinstance(default, kind):
            if ok(value):
                return None
            return (
                f"{where}: expected {want} like the default {short(default)}, got {short(value)} of type "
                f"{type(value).__name__} (the parameter has no type hint: its default's type is used)"
            )
    return None


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def nested_options(
    obj: Any, kwargs: Mapping[str, Any], info: SignatureInfo | None, where: str, has_problems: bool
) -> tuple[list[tuple[str, str, Any]], list[str]]:
    """The option mappings nested in ``kwargs`` as ``(relative path, registry kind, mapping)``."""
    hook = getattr(obj, "option_children", None)
    if callable(hook):
        try:
            return [(str(r), str(k), c) for r, k, c in hook(dict(kwargs))], []
        except OptionsError as exc:  # "Owner.key: ..." (the component's own wording) -> "where.key: ..."
            msg, owner = str(exc), getattr(obj, "__name__", "")
            return [], [
                f"{where}.{msg[len(owner) + 1 :]}" if owner and msg.startswith(owner + ".") else f"{where}: {msg}"
            ]
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            # values of the wrong type were reported by the type check already
            return [], [] if has_problems else [f"{where}: {type(exc).__name__}: {short(str(exc))}"]
    out: list[tuple[str, str, Any]] = []
    for key, marker in (info.nested.items() if info is not None else ()):
        if key not in kwargs or kwargs[key] is None:
            continue
        value = kwargs[key]
        if marker.keyed and isinstance(value, Mapping):
            items = [(f"{key}.{k}", v) for k, v in value.items()]
        elif isinstance(value, (list, tuple)):
            items = [(f"{key}.{i}", v) for i, v in enumerate(value)]
        else:
            items = [(key, value)]
        # other values are reported by the parameter's type check (or are built objects, from code)
        out.extend((rel, marker.kind, v) for rel, v in items if isinstance(v, Mapping))
    return out, []
