"""The registry: a name -> component mapping filled by decorators, built from option mappings.

Components register with a decorator (``@ARCHS.register()``) or a call (``ARCHS.register("Name",
obj)``) and are built from ``{type: Name, **kwargs}`` with ``ARCHS.build(cfg)``, every key and value
checked first (:mod:`irframe.registry.arguments`). The first lookup loads the plugins
(:mod:`irframe.registry.loader`). ``type: "provider:Name"`` picks one of two components registered
under the same name (``irframe`` is the core's provider name).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from irframe.errors import OptionsError, RegistryError
from irframe.registry.arguments import check_kwargs, kwarg_problems, nested_options, signature_info
from irframe.registry.loader import CORE_PROVIDER, DISABLE_ENV, LOADER, REGISTRIES, failed_plugins_note, provider_of
from irframe.text import short, suggest

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
        return not self.extra_keys and signature_info(self.obj) is not None

    @property
    def qualified(self) -> str:
        """``provider:Name``, the spelling that picks this entry among same-named ones."""
        return f"{self.provider}:{self.name}"


class Registry:
    """A name -> component mapping filled by decorators, with lazy plugin loading.

    Args:
        kind: what the registry holds (``"arch"``, ``"loss"``, ...), used in messages.
        supplied: constructor arguments the engine always supplies, never an option file (an
            optimizer's ``params``): :meth:`problems` does not ask an option mapping for them.
    """

    def __init__(self, kind: str, supplied: Sequence[str] = ()) -> None:
        self.kind = kind
        self.supplied = frozenset(supplied)
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
        provider = LOADER.current or provider_of(obj)
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

    def _state(self) -> tuple[dict[str, Entry], dict[str, list[Entry]]]:
        return dict(self._entries), {k: list(v) for k, v in self._conflicts.items()}

    def _restore(self, state: tuple[dict[str, Entry], dict[str, list[Entry]]]) -> None:
        self._entries, self._conflicts = dict(state[0]), {k: list(v) for k, v in state[1].items()}

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
        keys). ``skip`` are arguments the engine supplies (besides the registry's ``supplied``).
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
        skip = frozenset(skip) | self.supplied
        _, found = kwarg_problems(entry.obj, kwargs, where=where, skip=skip, extra_keys=entry.extra_keys)
        info = signature_info(entry.obj)
        if info is not None and paths:
            for key, marker in info.paths.items():
                why = marker.problem(kwargs.get(key))
                if why:
                    found.append(f"{where}.{key}: {why}")
        children, child_problems = nested_options(entry.obj, kwargs, info, where, bool(found))
        found.extend(child_problems)
        for rel, kind, child in children:
            found.extend(registry_of(kind).problems(child, f"{where}.{rel}", paths=paths))
        return list(dict.fromkeys(found))  # a child shared by several tasks is reported once


def _same_definition(a: Any, b: Any) -> bool:
    # A module imported twice (e.g. as a script and as a package) defines equal-named objects.
    return getattr(a, "__qualname__", None) == getattr(b, "__qualname__", object()) and getattr(
        a, "__module__", None
    ) == getattr(b, "__module__", object())


def _where(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def registry_of(kind: str) -> Registry:
    """The registry of ``kind`` (``"arch"``, ``"loss"``, ...)."""
    return cast(Registry, REGISTRIES[kind])


def list_components() -> dict[str, list[Entry]]:
    """Every registered component, by registry kind."""
    LOADER.ensure_loaded()
    return {kind: registry_of(kind).entries() for kind in REGISTRIES}


def conflicts() -> dict[str, dict[str, list[Entry]]]:
    """Names claimed by two or more plugins, by registry kind."""
    LOADER.ensure_loaded()
    return {kind: dict(reg._conflicts) for kind in REGISTRIES if (reg := registry_of(kind))._conflicts}
