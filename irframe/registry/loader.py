"""The plugin loader: the core's components and every entry-point plugin, loaded once, lazily.

Plugins are Python distributions that declare an entry point in the group :data:`ENTRY_POINT_GROUP`
(``irframe.plugins``) whose value is a zero-argument callable (usually ``pkg:register``) that imports
the modules holding the decorated components. The first lookup in any registry loads the core's
own components (:mod:`irframe.builtins`) and then every plugin; a plugin that fails (any exception,
``sys.exit()`` included; only Ctrl-C goes through) is reported (:meth:`_PluginLoader.failed`,
:func:`failed_plugins_note`) and takes none of the others, nor the running tool, down.
A plugin declares the plugin API it targets with ``IRFRAME_PLUGIN_API = 1`` beside its
``register``; another version is refused at load. ``IRFRAME_DISABLE_PLUGINS=name1,name2`` skips
loading those plugins.

The loader knows the registries only as :class:`Fillable` (what it undoes when a plugin fails, and
what a test snapshot saves); :mod:`irframe.registry.registry` holds the registry class.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol

from irframe.errors import PluginError
from irframe.text import short

ENTRY_POINT_GROUP = "irframe.plugins"
CORE_PROVIDER = "irframe"
_CORE_VALUE = "irframe.builtins:register"
PLUGIN_API_VERSION = 1
"""The plugin API version this irframe implements (a plugin declares ``IRFRAME_PLUGIN_API``)."""
DISABLE_ENV = "IRFRAME_DISABLE_PLUGINS"
"""Environment variable: comma-separated plugin (entry-point) names not to load."""


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


class Fillable(Protocol):
    """What the loader needs of a registry: its kind, dropping a failed plugin's entries, and
    saving/restoring its contents (:meth:`_PluginLoader.snapshot`)."""

    kind: str

    def _drop_provider(self, provider: str) -> None: ...

    def _state(self) -> Any: ...

    def _restore(self, state: Any) -> None: ...


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
        except KeyboardInterrupt:  # the user's Ctrl-C stops the tool, whatever was loading
            raise
        except BaseException as exc:  # a broken plugin must not take the others down, nor end the tool:
            # a register() that calls sys.exit() (SystemExit) made every command exit silently
            info.error = (
                f"SystemExit: its register() called sys.exit({exc.code!r})"
                if isinstance(exc, SystemExit)
                else f"{type(exc).__name__}: {exc}"
            )
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
            {k: r._state() for k, r in REGISTRIES.items()},
        )

        def restore() -> None:
            self._loaded, plugins, regs = state[0], state[1], state[2]
            self.plugins.clear()
            self.plugins.update(plugins)
            for kind, saved in regs.items():
                REGISTRIES[kind]._restore(saved)

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



def provider_of(obj: Any) -> str:
    """Provider of an object registered outside a plugin's register(): match entry-point modules."""
    module = getattr(obj, "__module__", "") or ""
    top = module.split(".")[0]
    if top == "irframe":
        return CORE_PROVIDER
    for ep in _plugin_entry_points():
        if ep.value.split(":")[0].split(".")[0] == top:
            return ep.name
    return module or "<unknown>"


LOADER = _PluginLoader()
REGISTRIES: dict[str, Fillable] = {}
"""Every registry by kind (a :class:`~irframe.registry.registry.Registry` adds itself when created)."""
