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
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import threading
import typing
import warnings
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Callable, Iterator, Mapping, TypeVar

from irframe.errors import OptionsError, RegistryError

ENTRY_POINT_GROUP = "irframe.plugins"
CORE_PROVIDER = "irframe"
_CORE_VALUE = "irframe.builtins:register"

T = TypeVar("T")


@dataclass
class Entry:
    """A registered component: the object and the plugin that provided it."""

    name: str
    obj: Any
    provider: str


@dataclass
class PluginInfo:
    """What the loader knows about one plugin (loaded or failed)."""

    name: str
    value: str  # the entry point's "module:attr"
    distribution: str | None
    error: str | None = None
    components: list[tuple[str, str]] = field(default_factory=list)  # (registry, name)


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
                for ep in _plugin_entry_points():
                    if (ep.name, ep.value) in known:
                        continue
                    dist = getattr(getattr(ep, "dist", None), "name", None)
                    self._run(ep.name, ep.value, dist, lambda _v, ep=ep: ep.load())
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
        return [p for p in self.plugins.values() if p.error]

    def snapshot(self) -> Callable[[], None]:
        """Save the loader and registry state; return a function restoring it (for tests)."""
        state = (self._loaded, dict(self.plugins), {k: (dict(r._entries), dict(r._conflicts)) for k, r in REGISTRIES.items()})

        def restore() -> None:
            self._loaded, plugins, regs = state[0], state[1], state[2]
            self.plugins.clear()
            self.plugins.update(plugins)
            for kind, (entries, conflicts) in regs.items():
                REGISTRIES[kind]._entries = dict(entries)
                REGISTRIES[kind]._conflicts = dict(conflicts)

        return restore


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
REGISTRIES: dict[str, "Registry"] = {}


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
    def register(self, name: str | None = None, obj: Any = None) -> Any:
        """Register ``obj`` under ``name`` (default: its ``__name__``).

        Used as a decorator (``@REG.register()`` or ``@REG.register("Name")``) or called directly
        (``REG.register("Name", obj)``). The same name registered by two different plugins is an
        error naming both; re-registering the very same object is a no-op (module re-import).
        """
        if obj is not None:
            self._add(name or obj.__name__, obj)
            return obj
        if callable(name) and not isinstance(name, str):  # bare @REG.register
            self._add(name.__name__, name)
            return name

        def deco(o: T) -> T:
            self._add(name or o.__name__, o)  # type: ignore[attr-defined]
            return o

        return deco

    def _add(self, name: str, obj: Any) -> None:
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{self.kind} registry: a name must be a non-empty string, got {name!r}")
        provider = LOADER.current or _provider_of(obj)
        new = Entry(name, obj, provider)
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
        who = " and ".join(f"plugin {e.provider!r} ({_where(e.obj)})" for e in self._conflicts[name])
        return (
            f"{self.kind} {name!r} is registered by two plugins: {who}; "
            "uninstall one of them (or ask its author to rename it)"
        )

    # -- lookup -------------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        """Return the component registered as ``name`` (loads plugins on first use)."""
        return self.entry(name).obj

    def entry(self, name: str) -> Entry:
        """Return the :class:`Entry` (object + provider) for ``name``."""
        LOADER.ensure_loaded()
        try:
            return self._entries[name]
        except KeyError:
            if name in self._conflicts:
                raise RegistryError(self._conflict_message(name)) from None
            raise RegistryError(self._unknown_message(name)) from None

    def _unknown_message(self, name: Any) -> str:
        names = sorted(self._entries)
        msg = f"unknown {self.kind} {name!r}"
        close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.5)
        lower = [n for n in names if n.lower() == str(name).lower()]
        suggestions = lower + [c for c in close if c not in lower]
        if suggestions:
            msg += f"; did you mean {suggestions[0]!r}?"
        msg += f" Registered ({self.kind}): {', '.join(names) if names else '(none)'}"
        failed = LOADER.failed()
        if failed:
            msg += ". Plugins that failed to load: " + "; ".join(
                f"{p.name} ({p.error})" for p in failed
            )
        return msg

    def __contains__(self, name: object) -> bool:
        LOADER.ensure_loaded()
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
        """Build a component from ``{type: Name, **kwargs}``.

        Keyword arguments are checked against the component's signature: an unknown key is an error
        naming its dotted path (``path`` + key) with the closest accepted name, and values are
        checked (and coerced, e.g. ``"2e-4"`` -> ``2e-4``) against the parameter annotations.
        ``extra`` are keyword arguments supplied by the engine (not from the options).
        """
        where = path or self.kind
        if not isinstance(cfg, Mapping):
            raise OptionsError(f"{where}: expected a mapping with a 'type' key, got {type(cfg).__name__} {cfg!r}")
        if "type" not in cfg:
            raise OptionsError(f"{where}: missing required key 'type' (one of the registered {self.kind}s)")
        name = cfg["type"]
        try:
            obj = self.get(name)
        except RegistryError as exc:
            raise OptionsError(f"{where}.type: {exc}") from None
        kwargs = {k: v for k, v in cfg.items() if k != "type"}
        kwargs = check_kwargs(obj, kwargs, where=where, skip=set(extra))
        kwargs.update(extra)
        return obj(**kwargs)


def check_kwargs(
    obj: Callable[..., Any], kwargs: dict[str, Any], *, where: str, skip: set[str] = frozenset()  # type: ignore[assignment]
) -> dict[str, Any]:
    """Validate ``kwargs`` against ``obj``'s signature; return them coerced to the annotated types."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return kwargs
    params = {n: p for n, p in sig.parameters.items() if p.kind not in (p.VAR_POSITIONAL,)}
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    named = {n: p for n, p in params.items() if p.kind is not p.VAR_KEYWORD}
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable forward references: skip type checks
        hints = {}
    out = dict(kwargs)
    for key, value in kwargs.items():
        if key not in named:
            if accepts_any:
                continue
            choices = [n for n in named if n not in skip and n != "self"]
            close = difflib.get_close_matches(key, choices, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise OptionsError(
                f"{where}.{key}: unknown key for {getattr(obj, '__name__', obj)}{hint} "
                f"Accepted keys: {', '.join(choices) if choices else '(none)'}"
            )
        if key in hints:
            out[key] = _coerce(hints[key], value, f"{where}.{key}")
    missing = [
        n
        for n, p in named.items()
        if p.default is p.empty and n not in kwargs and n not in skip and n != "self"
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if missing:
        raise OptionsError(
            f"{where}: missing required key(s) {', '.join(repr(m) for m in missing)} "
            f"for {getattr(obj, '__name__', obj)}"
        )
    return out


def _coerce(annotation: Any, value: Any, where: str) -> Any:
    """Validate ``value`` against ``annotation`` with pydantic (lax mode); unknown types pass."""
    try:
        from pydantic import TypeAdapter, ValidationError
    except ImportError:  # pragma: no cover - pydantic is a dependency
        return value
    try:
        adapter = TypeAdapter(annotation)
    except Exception:  # types pydantic cannot describe (tensors, modules): not checked here
        return value
    try:
        result = adapter.validate_python(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise OptionsError(
            f"{where}: {err['msg'].lower()} (got {value!r} of type {type(value).__name__}; "
            f"expected {_type_name(annotation)})"
        ) from None
    # pydantic turns lists into tuples for Tuple annotations etc.; keep containers the user wrote
    # when they already satisfy the annotation.
    return value if type(result) is not type(value) and isinstance(value, (list, tuple)) and isinstance(result, (list, tuple)) else result


def _type_name(annotation: Any) -> str:
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
