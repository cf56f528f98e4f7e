"""The registries, the plugin API, and lazy entry-point plugin loading.

Components (archs, losses, datasets, degradations, metrics, optimizers, schedulers, checkpoint
detectors, training steps) register with a decorator::

    from irframe.registry import ARCHS

    @ARCHS.register()
    class MyNet(nn.Module): ...

and are built from option mappings ``{type: Name, **kwargs}`` with ``ARCHS.build(cfg)``.

One concept per module:

* :mod:`.loader` - entry-point plugins (group ``irframe.plugins``), loaded lazily, once, on the first
  lookup in any registry; importing :mod:`irframe` loads nothing;
* :mod:`.registry` - the :class:`Registry` class (register, look up, build, check without building);
* :mod:`.arguments` - option mappings checked against a component's signature, and the argument
  markers :class:`Nested` and :class:`PathArg`;
* :mod:`.foreign_keys` - other frameworks' keys and where irframe keeps each setting (hints).

The plugin API (what a plugin may rely on, version :data:`PLUGIN_API_VERSION`): the registries below
and ``Registry.register(name, obj, *, extra_keys, more_specific_than)``, the argument markers
:class:`Nested` and :class:`PathArg` (:data:`ExistingFolder`, :data:`ExistingFile`), the
``option_children`` hook, :class:`irframe.nn.spec.ModelSpec`, and the errors of
:mod:`irframe.errors`, all imported from here (``from irframe.registry import ...``). A plugin
declares the version it targets with a module-level ``IRFRAME_PLUGIN_API = 1`` beside its
``register`` callable; a different version is refused at load (the plugin is then reported as
failed), and no declaration means "compatible".

Strict arguments: every option mapping is checked against the component's named parameters, also
when the constructor takes ``**kwargs`` (register with ``extra_keys=True`` to let such a component
accept other keys); values are checked against the type hints, or against the default's type for a
parameter without a hint. ``type: "provider:Name"`` picks one of two components registered under the
same name (``irframe`` is the core's provider name). ``IRFRAME_DISABLE_PLUGINS=name1,name2`` skips
loading those plugins.
"""

from __future__ import annotations

from irframe.registry.arguments import (
    ExistingFile,
    ExistingFolder,
    Nested,
    PathArg,
    bool_allowed,
    check_kwargs,
    kwarg_problems,
)
from irframe.registry.foreign_keys import FOREIGN_KEYS, key_hint
from irframe.registry.loader import (
    CORE_PROVIDER,
    DISABLE_ENV,
    ENTRY_POINT_GROUP,
    LOADER,
    PLUGIN_API_VERSION,
    REGISTRIES,
    PluginInfo,
    disabled_plugins,
    failed_plugins_note,
)
from irframe.registry.registry import Entry, Registry, conflicts, list_components, registry_of

# Text helpers, once defined here: they live in irframe.text now (kept importable from here).
from irframe.text import MAX_VALUE_CHARS, SUGGEST_CUTOFF, clip, join_problems, short, suggest

ARCHS = Registry("arch")
LOSSES = Registry("loss")
DATASETS = Registry("dataset")
DEGRADATIONS = Registry("degradation")
METRICS = Registry("metric")
OPTIMIZERS = Registry("optimizer", supplied=("params",))
SCHEDULERS = Registry("scheduler", supplied=("optimizer", "warmup_iter"))
DETECTORS = Registry("detector")  # fn(unwrapped state_dict) -> build config {type: Arch, ...} or None
# The trainer's step (``train.step``): one optimizer step and the networks/optimizers it owns
# (irframe.train.step.TrainStep); built with the engine's ``context``.
TRAIN_STEPS = Registry("step", supplied=("context",))

__all__ = [
    # the registries
    "ARCHS",
    "LOSSES",
    "DATASETS",
    "DEGRADATIONS",
    "METRICS",
    "OPTIMIZERS",
    "SCHEDULERS",
    "DETECTORS",
    "TRAIN_STEPS",
    "Registry",
    "Entry",
    "registry_of",
    "list_components",
    "conflicts",
    # argument markers and checks
    "Nested",
    "PathArg",
    "ExistingFolder",
    "ExistingFile",
    "check_kwargs",
    "kwarg_problems",
    "bool_allowed",
    "FOREIGN_KEYS",
    "key_hint",
    # plugins
    "PLUGIN_API_VERSION",
    "ENTRY_POINT_GROUP",
    "CORE_PROVIDER",
    "DISABLE_ENV",
    "LOADER",
    "REGISTRIES",
    "PluginInfo",
    "disabled_plugins",
    "failed_plugins_note",
    # text helpers (irframe.text)
    "MAX_VALUE_CHARS",
    "SUGGEST_CUTOFF",
    "clip",
    "join_problems",
    "short",
    "suggest",
]
