"""One registry class, the registries, and lazy entry-point plugin loading.

Components (archs, losses, datasets, degradations, metrics, optimizers, schedulers, checkpoint
detectors) register with a decorator::

    from irframe.registry import ARCHS

    @ARCHS.register()
    class MyNet(nn.Module): ...

and are built from option mappings ``{type: Name, **kwargs}`` with ``ARCHS.build(cfg)``.

Plugins are Python distributions that declare an entry point in the group ``irframe.plugins``
whose value is a zero-argument callable (usually ``pkg:register``) that imports the modules holding
the decorated components. Plugins are loaded lazily, once, on the first lookup in any registry;
importing :mod:`irframe` loads nothing.

The plugin API (what a plugin may rely on, version :data:`PLUGIN_API_VERSION`): the registries and
``Registry.register(name, obj, *, extra_keys)``, the argument markers :class:`Nested` and
:class:`PathArg` (:data:`ExistingFolder`, :data:`ExistingFile`), the ``option_children`` hook,
:class:`irframe.nn.spec.ModelSpec`, and the errors of :mod:`irframe.errors`. A plugin declares the
version it targets with a module-level ``IRFRAME_PLUGIN_API = 1`` beside its ``register``
callable; a different version is refused at load (the plugin is then reported as failed), and no
declaration means "compatible".

Strict arguments: every option mapping is checked against the component's named parameters, also
when the constructor takes ``**kwargs`` (register with ``extra_keys=True`` to let such a component
accept other keys); values are checked against the type hints, or against the default's type for a
parameter without a hint. ``type: "provider:Name"`` picks one of two components registered under the
same name (``irframe`` is the core's provider name). ``IRFRAME_DISABLE_PLUGINS=name1,name2`` skips
loading those plugins.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import reprlib
import sys
import threading
import types
import typing
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from irframe.errors import OptionsError, PluginError, RegistryError

ENTRY_POINT_GROUP = "irframe.plugins"
CORE_PROVIDER = "irframe"
_CORE_VALUE = "irframe.builtins:register"
PLUGIN_API_VERSION = 1
"""The plugin API version this irframe implements (a plugin declares ``IRFRAME_PLUGIN_API``)."""
DISABLE_ENV = "IRFRAME_DISABLE_PLUGINS"
"""Environment variable: comma-separated plugin (entry-point) names not to load."""
SUGGEST_CUTOFF = 0.75
"""Similarity (difflib ratio) a name needs to be offered as "did you mean" (lower ones mislead)."""
MAX_VALUE_CHARS = 200
"""An error message shows at most this many characters of any value."""

T = TypeVar("T")


@dataclass
class Entry:
    """A registered component: the object, the plugin that provided it, and how it is checked."""

    name: str
    obj: Any
    provider: str
    extra_keys: bool = False  # accepts keys beyond its named parameters (a **kwargs constructor)
    # Detectors only: names of the detectors this one is more specific than (it wins when both match).
    more_specific_than: tuple[str, ...] = ()

    @property
    def checked(self) -> bool:
        """Whether option keys and values of this component can be checked strictly."""
        return not self.extra_keys and _signature(self.obj) is not None

    @property
    def qualified(self) -> str:
        """``provider:Name``, the spelling that picks this entry among same-named ones."""
        return f"{self.provider}:{self.name}"


@dataclass
class PluginInfo:
    """What the loader knows about one plugin (loaded, failed or disabled)."""

    name: str
    value: str  # the entry point's "module:attr"
    distribution: str | None
    error: str | None = None
    components: list[tuple[str, str]] = field(default_factory=list)  # (registry, name)
    disabled: str | None = None  # why it was not loaded (e.g. "IRFRAME_DISABLE_PLUGINS=name")
    api: int | None = None  # the IRFRAME_PLUGIN_API it declares (None: not declared)


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


def short(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """``repr(value)`` bounded to ``limit`` characters, never expanding a huge nested value."""
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 8, 8, 8, 8
    r.maxstring, r.maxother, r.maxlong = limit, limit, limit
    text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """``str(text)`` cut to ``limit`` characters (for keys and paths quoted without ``repr``)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def suggest(word: Any, choices: Iterator[str] | list[str]) -> str | None:
    """The choice close enough to ``word`` to be offered as "did you mean" (else ``None``)."""
    choices = list(choices)
    text = str(word)
    same_case = [c for c in choices if c.lower() == text.lower()]
    if same_case:
        return same_case[0]
    close = difflib.get_close_matches(text, choices, n=1, cutoff=SUGGEST_CUTOFF)
    return close[0] if close else None


class _PluginLoader:
    """Loads the core's built-in components and every entry-point plugin, once."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._loaded = False
        self._loading = False
        self.plugins: dict[str, PluginInfo] = {}
        self.current: str | None = None  # provider name while a plugin's register() runs

    @property
    def loaded(self) -> bool:
        return self._loaded

    def ensure_loaded(self) -> None:
        """Load built-ins and plugins unless already done (re-entrant calls are no-ops)."""
        if not self._loaded:
            self._load_new()

    def refresh(self) -> None:
        """Load plugins installed since the first load (e.g. ``pip install`` in a running notebook)."""
        self._load_new()

    def _load_new(self) -> None:
        if self._loading:
            return
        with self._lock:
            if self._loading:
                return
            self._loading = True
            try:
                known = {(p.name, p.value) for p in self.plugins.values()}
                if (CORE_PROVIDER, _CORE_VALUE) not in known:
                    self._run(CORE_PROVIDER, _CORE_VALUE, None, _import_callable)
                disabled = disabled_plugins()
                for ep in _plugin_entry_points():
                    if (ep.name, ep.value) in known:
                        continue
                    dist = getattr(getattr(ep, "dist", None), "name", None)
                    if ep.name in disabled:
                        self.plugins.setdefault(
                            ep.name,
                            PluginInfo(ep.name, ep.value, dist, disabled=f"{DISABLE_ENV}={os.environ[DISABLE_ENV]}"),
                        )
                        continue
                    self._run(ep.name, ep.value, dist, lambda _v, ep=ep: ep.load())  # type: ignore[misc]  # default-arg lambda
            finally:
                self._loading = False
                self._loaded = True

    def _run(
        self, name: str, value: str, dist: str | None, load: Callable[[str], Callable[[], Any]]
    ) -> None:
        info = PluginInfo(name=name, value=value, distribution=dist)
        if name in self.plugins:
            info.error = (
                f"two plugins are named {name!r}: {self.plugins[name].value} "
                f"(distribution {self.plugins[name].distribution}) and {value} (distribution {dist}); "
                "the second was not loaded"
            )
            warnings.warn(f"irframe plugin {name!r}: {info.error}", RuntimeWarning, stacklevel=3)
            self.plugins[f"{name} ({value})"] = info
            return
        self.plugins[name] = info
        self.current = name
        try:
            register = load(value)
            info.api = _check_api(name, register)
            register()
        except Exception as exc:  # a broken plugin must not take the others down
            info.error = f"{type(exc).__name__}: {exc}"
            for reg in REGISTRIES.values():
                reg._drop_provider(name)
            info.components.clear()
            warnings.warn(
                f"irframe plugin {name!r} ({value}) failed to load and was skipped: {info.error}",
                RuntimeWarning,
                stacklevel=3,
            )
        finally:
            self.current = None

    def failed(self) -> list[PluginInfo]:
        """Plugins that are installed but failed to load."""
        return [p for p in self.plugins.values() if p.error]

    def disabled(self) -> list[PluginInfo]:
        """Plugins that were not loaded because :data:`DISABLE_ENV` names them."""
        return [p for p in self.plugins.values() if p.disabled]

    def snapshot(self) -> Callable[[], None]:
        """Save the loader and registry state; return a function restoring it (for tests)."""
        state = (
            self._loaded,
            dict(self.plugins),
            {k: (dict(r._entries), dict(r._conflicts)) for k, r in REGISTRIES.items()},
        )

        def restore() -> None:
            self._loaded, plugins, regs = state[0], state[1], state[2]
            self.plugins.clear()
            self.plugins.update(plugins)
            for kind, (entries, conflicts) in regs.items():
                REGISTRIES[kind]._entries = dict(entries)
                REGISTRIES[kind]._conflicts = dict(conflicts)

        return restore


def disabled_plugins() -> set[str]:
    """Plugin names listed in :data:`DISABLE_ENV` (the core, ``irframe``, cannot be disabled)."""
    names = {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}
    return names - {CORE_PROVIDER}


def _check_api(name: str, register: Any) -> int | None:
    """The plugin API version a plugin declares beside its ``register``; refuse another version."""
    module = sys.modules.get(getattr(register, "__module__", "") or "")
    declared = getattr(module, "IRFRAME_PLUGIN_API", None)
    if declared is None:
        return None  # plugins written before versioning keep working
    if isinstance(declared, bool) or not isinstance(declared, int):
        raise PluginError(
            f"plugin {name!r} declares IRFRAME_PLUGIN_API = {short(declared)}; expected an integer "
            f"(this irframe supports plugin API {PLUGIN_API_VERSION})"
        )
    if declared != PLUGIN_API_VERSION:
        raise PluginError(
            f"plugin {name!r} targets irframe plugin API {declared}, but this irframe supports plugin API "
            f"{PLUGIN_API_VERSION}; install a version of the plugin made for plugin API {PLUGIN_API_VERSION} "
            f"(or an irframe that supports API {declared})"
        )
    return declared


def failed_plugins_note() -> str:
    """A sentence naming every plugin that is installed but failed to load, or disabled ('' if none).

    Any error about a component that such a plugin could have provided includes it.
    """
    LOADER.ensure_loaded()
    parts = [f"plugin {p.name!r} is installed but failed to load: {p.error}" for p in LOADER.failed()]
    parts += [f"plugin {p.name!r} is disabled ({p.disabled})" for p in LOADER.disabled()]
    return "; ".join(parts)


def _import_callable(value: str) -> Callable[[], Any]:
    module, _, attr = value.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        if part:
            obj = getattr(obj, part)
    return obj


def _plugin_entry_points() -> list[EntryPoint]:
    eps = entry_points(group=ENTRY_POINT_GROUP)
    # Deterministic order; the same entry point seen twice on sys.path is loaded once.
    seen: dict[tuple[str, str], EntryPoint] = {}
    for ep in sorted(eps, key=lambda e: (e.name, e.value)):
        seen.setdefault((ep.name, ep.value), ep)
    return list(seen.values())


LOADER = _PluginLoader()
REGISTRIES: dict[str, Registry] = {}


class Registry:
    """A name -> component mapping filled by decorators, with lazy plugin loading.

    Args:
        kind: what the registry holds (``"arch"``, ``"loss"``, ...), used in messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        # name -> the entries of two or more plugins that both registered it (lookups then fail)
        self._conflicts: dict[str, list[Entry]] = {}
        REGISTRIES[kind] = self

    # -- registration -------------------------------------------------------------------------
    def register(
        self,
        name: str | None = None,
        obj: Any = None,
        *,
        extra_keys: bool = False,
        more_specific_than: Sequence[str] = (),
    ) -> Any:
        """Register ``obj`` under ``name`` (default: its ``__name__``).

        Used as a decorator (``@REG.register()`` or ``@REG.register("Name")``) or called directly
        (``REG.register("Name", obj)``). The same name registered by two different plugins is an
        error naming both; re-registering the very same object is a no-op (module re-import).

        Option keys are checked against ``obj``'s named parameters even when it takes ``**kwargs``;
        ``extra_keys=True`` lets such a component accept other keys too (``irframe list`` then marks
        it as not fully checked).

        ``more_specific_than`` (detectors only) names the detectors this one refines: a checkpoint
        both claim goes to this one (HAT's detector is more specific than SwinIR's, whose keys HAT's
        files also carry), so no detector needs to know another family's keys.
        """
        order = self._check_order(more_specific_than)
        if obj is not None:
            self._add(name or obj.__name__, obj, extra_keys, order)
            return obj
        if callable(name) and not isinstance(name, str):  # bare @REG.register
            self._add(name.__name__, name, extra_keys, order)
            return name

        def deco(o: T) -> T:
            self._add(name or o.__name__, o, extra_keys, order)  # type: ignore[attr-defined]
            return o

        return deco

    def _check_order(self, more_specific_than: Sequence[str]) -> tuple[str, ...]:
        if isinstance(more_specific_than, str):
            more_specific_than = (more_specific_than,)
        names = tuple(more_specific_than)
        if names and self.kind != "detector":
            raise RegistryError(f"{self.kind} registry: more_specific_than applies to detectors only")
        bad = [n for n in names if not isinstance(n, str) or not n]
        if bad:
            raise RegistryError(f"{self.kind} registry: more_specific_than takes detector names, got {short(bad)}")
        return names

    def _add(self, name: str, obj: Any, extra_keys: bool = False, order: tuple[str, ...] = ()) -> None:
        if not isinstance(name, str) or not name or ":" in name:
            raise RegistryError(
                f"{self.kind} registry: a name must be a non-empty string without ':' "
                f"(':' separates a provider, as in 'provider:Name'), got {short(name)}"
            )
        provider = LOADER.current or _provider_of(obj)
        new = Entry(name, obj, provider, extra_keys=bool(extra_keys), more_specific_than=order)
        if name in self._conflicts:
            self._conflicts[name].append(new)
            return
        old = self._entries.get(name)
        if old is not None:
            if old.obj is obj or _same_definition(old.obj, obj):
                return
            if LOADER.current is not None and old.provider != provider:
                # Two plugins claim one name: neither wins silently; a lookup names both.
                self._conflicts[name] = [self._entries.pop(name), new]
                warnings.warn(self._conflict_message(name), RuntimeWarning, stacklevel=3)
                return
            raise RegistryError(
                f"{self.kind} {name!r} is registered twice: by {old.provider!r} "
                f"({_where(old.obj)}) and by {provider!r} ({_where(obj)}); rename one of them"
            )
        self._entries[name] = new
        info = LOADER.plugins.get(provider)
        if info is not None:
            info.components.append((self.kind, name))

    def _drop_provider(self, provider: str) -> None:
        for key in [k for k, e in self._entries.items() if e.provider == provider]:
            del self._entries[key]
        for key, entries in list(self._conflicts.items()):
            entries[:] = [e for e in entries if e.provider != provider]
            if len(entries) == 1:
                self._entries[key] = entries[0]
                del self._conflicts[key]

    def _conflict_message(self, name: str) -> str:
        entries = self._conflicts[name]
        who = " and ".join(f"plugin {e.provider!r} ({_where(e.obj)})" for e in entries)
        picks = " or ".join(repr(e.qualified) for e in entries)
        return (
            f"{self.kind} {name!r} is registered by two plugins: {who}; pick one with type: {picks} "
            f"(or disable a plugin with {DISABLE_ENV}=name)"
        )

    # -- lookup -------------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        """Return the component registered as ``name`` or ``provider:name`` (loads plugins on first use)."""
        return self.entry(name).obj

    def entry(self, name: str) -> Entry:
        """Return the :class:`Entry` (object + provider) for ``name`` or ``provider:name``.

        ``provider:name`` picks the entry of that plugin (``irframe`` for the core) also when two
        plugins registered ``name``; a plain name registered twice is an error naming both.
        """
        LOADER.ensure_loaded()
        if not isinstance(name, str):
            raise RegistryError(f"{self.kind} name must be a string, got {short(name)}")
        provider, sep, bare = name.rpartition(":")
        if sep:
            for e in self._candidates(bare):
                if e.provider == provider:
                    return e
            raise RegistryError(self._provider_message(provider, bare))
        try:
            return self._entries[name]
        except KeyError:
            if name in self._conflicts:
                raise RegistryError(self._conflict_message(name)) from None
            raise RegistryError(self._unknown_message(name)) from None

    def _candidates(self, name: str) -> list[Entry]:
        if name in self._entries:
            return [self._entries[name]]
        return list(self._conflicts.get(name, []))

    def _provider_message(self, provider: str, name: str) -> str:
        info = LOADER.plugins.get(provider)
        candidates = self._candidates(name)
        if info is not None and info.error:
            why = f"plugin {provider!r} is installed but failed to load: {info.error}"
        elif info is not None and info.disabled:
            why = f"plugin {provider!r} is disabled ({info.disabled})"
        elif info is not None or provider == CORE_PROVIDER:
            why = f"plugin {provider!r} registers no {self.kind} {name!r}"
        else:
            known = ", ".join(sorted(LOADER.plugins)) or "(none)"
            close = suggest(provider, list(LOADER.plugins))
            hint = f"; did you mean {close!r}?" if close else ""
            why = f"no plugin named {provider!r}{hint} Plugins: {known}"
        msg = f"unknown {self.kind} {short(f'{provider}:{name}')}: {why}"
        if candidates:
            msg += f". {name!r} is provided by: {', '.join(repr(e.qualified) for e in candidates)}"
        elif not (info is not None and (info.error or info.disabled)):
            msg += self._unknown_message(name).partition(f"unknown {self.kind} {short(name)}")[2]
        return msg

    def _unknown_message(self, name: Any) -> str:
        names = sorted(self._entries)
        msg = f"unknown {self.kind} {short(name)}"
        close = suggest(name, names)
        if close:
            msg += f"; did you mean {close!r}?"
        msg += f" Registered ({self.kind}): {', '.join(names) if names else '(none)'}"
        if self._conflicts:
            msg += f"; registered by two plugins (use provider:Name): {', '.join(sorted(self._conflicts))}"
        note = failed_plugins_note()
        if note:
            msg += f". Also: {note}"
        return msg

    def __contains__(self, name: object) -> bool:
        LOADER.ensure_loaded()
        if isinstance(name, str) and ":" in name:
            provider, _, bare = name.rpartition(":")
            return any(e.provider == provider for e in self._candidates(bare))
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        LOADER.ensure_loaded()
        return iter(sorted(self._entries))

    def names(self) -> list[str]:
        """Sorted registered names."""
        return list(self)

    def entries(self) -> list[Entry]:
        """Sorted entries (name, object, provider)."""
        LOADER.ensure_loaded()
        return [self._entries[n] for n in sorted(self._entries)]

    # -- building -----------------------------------------------------------------------------
    def build(self, cfg: Mapping[str, Any], *, path: str | None = None, **extra: Any) -> Any:
        """Build a component from ``{type: Name, **kwargs}`` (``type`` may be ``provider:Name``).

        Keyword arguments are checked against the component's signature: an unknown key is an error
        naming its dotted path (``path`` + key) with the closest accepted name, and values are
        checked (and coerced, e.g. ``"2e-4"`` -> ``2e-4``) against the parameter annotations, or
        the default's type where there is no annotation. All problems are reported at once.
        ``extra`` are keyword arguments supplied by the engine (not from the options).
        """
        where = path or self.kind
        if not isinstance(cfg, Mapping):
            raise OptionsError(f"{where}: expected a mapping with a 'type' key, got {type(cfg).__name__} {short(cfg)}")
        if "type" not in cfg:
            raise OptionsError(f"{where}: missing required key 'type' (one of the registered {self.kind}s)")
        try:
            entry = self.entry(cfg["type"])
        except RegistryError as exc:
            raise OptionsError(f"{where}.type: {exc}") from None
        kwargs = {k: v for k, v in cfg.items() if k != "type"}
        kwargs = check_kwargs(entry.obj, kwargs, where=where, skip=set(extra), extra_keys=entry.extra_keys)
        kwargs.update(extra)
        return entry.obj(**kwargs)

    def problems(
        self, cfg: Any, where: str, *, skip: frozenset[str] | set[str] = frozenset(), paths: bool = True
    ) -> list[str]:
        """Every problem of one option mapping ``{type: Name, ...}`` for this registry, without building.

        Checks the name, every key and value, the components nested in it (:class:`Nested`
        arguments, ``option_children``) and, with ``paths``, that :class:`PathArg` files and
        folders exist. Each problem is one line starting with its full dotted path (``where`` +
        keys). ``skip`` are arguments the engine supplies.
        """
        if not isinstance(cfg, Mapping):
            return [f"{where}: expected a mapping with a 'type' key, got {type(cfg).__name__} {short(cfg)}"]
        if "type" not in cfg:
            return [f"{where}: missing required key 'type' (one of the registered {self.kind}s)"]
        try:
            entry = self.entry(cfg["type"])
        except RegistryError as exc:
            return [f"{where}.type: {exc}"]
        kwargs = {str(k): v for k, v in cfg.items() if k != "type"}
        _, found = kwarg_problems(entry.obj, kwargs, where=where, skip=skip, extra_keys=entry.extra_keys)
        info = _signature(entry.obj)
        if info is not None and paths:
            for key, marker in info.paths.items():
                why = marker.problem(kwargs.get(key))
                if why:
                    found.append(f"{where}.{key}: {why}")
        children, child_problems = _children(entry.obj, kwargs, info, where, bool(found))
        found.extend(child_problems)
        for rel, kind, child in children:
            found.extend(REGISTRIES[kind].problems(child, f"{where}.{rel}", paths=paths))
        return list(dict.fromkeys(found))  # a child shared by several tasks is reported once


def _children(
    obj: Any, kwargs: Mapping[str, Any], info: _SigInfo | None, where: str, has_problems: bool
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


# ----------------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------------


@dataclass
class _SigInfo:
    """What the checker knows about a component's parameters."""

    named: dict[str, inspect.Parameter]
    var_keyword: bool
    hints: dict[str, Any]
    paths: dict[str, PathArg]
    nested: dict[str, Nested]


_SIGNATURES: dict[int, tuple[Any, _SigInfo | None]] = {}


def _signature(obj: Any) -> _SigInfo | None:
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
        info = _SigInfo(
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
    info = _signature(obj)
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


def join_problems(problems: list[str], limit: int = 50) -> str:
    """One message for several problems: the only one, or a count and one indented line each."""
    if len(problems) == 1:
        return problems[0]
    shown = problems[:limit]
    more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
    return f"{len(problems)} problems:\n  " + "\n  ".join(shown) + more


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


FOREIGN_KEYS: dict[str, str] = {
    # BasicSR / Restormer
    "network_g": "BasicSR's name; here it is `model`",
    "network_d": "BasicSR's discriminator; irframe trains one `model`",
    "model_type": "BasicSR's model class; irframe has one trainer (remove it)",
    "num_gpu": "BasicSR's; the process count comes from `accelerate launch` / `torchrun`",
    "manual_seed": "BasicSR's name; here it is `seed`",
    "pixel_opt": "BasicSR's name; here it is `train.losses` (a list of {type, weight, ...})",
    "perceptual_opt": "BasicSR's name; here it is an entry of `train.losses`",
    "optim_g": "BasicSR's name; here it is `train.optim`",
    "pretrain_network_g": "BasicSR's name; here it is `train.pretrain.path`",
    "strict_load_g": "BasicSR's name; here it is `train.pretrain.strict`",
    "resume_state": "BasicSR's name; here it is `path.resume` (or --resume)",
    "batch_size_per_gpu": "BasicSR's name; here it is `batch_size` (per process)",
    "num_worker_per_gpu": "BasicSR's name; here it is `num_workers`",
    "use_shuffle": "BasicSR's name; here it is the loader key `shuffle`",
    "dataset_enlarge_ratio": "BasicSR's name; here it is the loader key `enlarge_ratio`",
    "use_hflip": "BasicSR's name; here it is `use_flip`",
    "mini_batch_sizes": "Restormer's name; here it is `train.progressive.batch_sizes`",
    "gt_sizes": "Restormer's name; here it is `train.progressive.patch_sizes`",
    "val_freq": "BasicSR's name; here it is `val.freq`",
    "save_img": "BasicSR's name; here it is `val.save_images`",
    "save_checkpoint_freq": "BasicSR's name; here it is `logger.checkpoint_freq`",
    "use_tb_logger": "BasicSR's name; here it is `logger.tensorboard`",
    "phase": "BasicSR's name; the dataset's role is its key under `datasets` (train, val...)",
    # KAIR
    "netG": "KAIR's name; here it is `model`",
    "G_lossfn_type": "KAIR's name; here it is `train.losses`",
    "G_optimizer_lr": "KAIR's name; here it is `train.optim.lr`",
    "dataloader_batch_size": "KAIR's name; here it is `batch_size`",
    "dataloader_num_workers": "KAIR's name; here it is `num_workers`",
    "dataroot_H": "KAIR's name; here it is `dataroot_gt`",
    "dataroot_L": "KAIR's name; here it is `dataroot_lq`",
    "H_size": "KAIR's name; here it is `gt_size`",
    # mmagic / mmengine
    "train_cfg": "mmagic's name; here it is `train`",
    "optim_wrapper": "mmagic's name; here it is `train.optim`",
    "param_scheduler": "mmagic's name; here it is `train.scheduler`",
    "train_dataloader": "mmagic's name; here datasets go under `datasets`",
    "val_evaluator": "mmagic's name; here it is `val.metrics`",
    "work_dir": "mmagic's name; here it is `path.experiments_root`",
    "load_from": "mmagic's name; here it is `train.pretrain.path`",
}
"""Keys of other frameworks' option files -> where irframe keeps that setting (unknown-key messages)."""

_BASICSR_NOTE = " (or run the file as a BasicSR file: it is translated automatically when recognised)"


def key_hint(key: Any, choices: list[str]) -> str:
    """What an unknown-key message adds: a pointer for another framework's key, or a close match."""
    foreign = FOREIGN_KEYS.get(str(key))
    if foreign is not None:
        note = _BASICSR_NOTE if foreign.startswith(("BasicSR", "Restormer")) else ""
        return f"; `{key}` is {foreign}{note}."
    close = suggest(key, choices)
    return f"; did you mean {close!r}?" if close else ""


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _provider_of(obj: Any) -> str:
    """Provider of an object registered outside a plugin's register(): match entry-point modules."""
    module = getattr(obj, "__module__", "") or ""
    top = module.split(".")[0]
    if top == "irframe":
        return CORE_PROVIDER
    for ep in _plugin_entry_points():
        if ep.value.split(":")[0].split(".")[0] == top:
            return ep.name
    return module or "<unknown>"


def _same_definition(a: Any, b: Any) -> bool:
    # A module imported twice (e.g. as a script and as a package) defines equal-named objects.
    return getattr(a, "__qualname__", None) == getattr(b, "__qualname__", object()) and getattr(
        a, "__module__", None
    ) == getattr(b, "__module__", object())


def _where(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


ARCHS = Registry("arch")
LOSSES = Registry("loss")
DATASETS = Registry("dataset")
DEGRADATIONS = Registry("degradation")
METRICS = Registry("metric")
OPTIMIZERS = Registry("optimizer")
SCHEDULERS = Registry("scheduler")
DETECTORS = Registry("detector")  # fn(unwrapped state_dict) -> build config {type: Arch, ...} or None


def list_components() -> dict[str, list[Entry]]:
    """Every registered component, by registry kind."""
    LOADER.ensure_loaded()
    return {kind: reg.entries() for kind, reg in REGISTRIES.items()}


def conflicts() -> dict[str, dict[str, list[Entry]]]:
    """Names claimed by two or more plugins, by registry kind."""
    LOADER.ensure_loaded()
    return {kind: dict(reg._conflicts) for kind, reg in REGISTRIES.items() if reg._conflicts}
