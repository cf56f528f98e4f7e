"""irframe plugin sr_classics: BasicSR's classic SR archs (EDSR, RCAN, MSRResNet, RRDBNet, SRVGGNetCompact).

Importing this package registers nothing; irframe calls :func:`register`.
"""

from __future__ import annotations

import importlib

# The irframe plugin API this plugin is written for (checked when irframe loads it).
IRFRAME_PLUGIN_API = 1

# Modules whose decorators register this plugin's components.
MODULES: tuple[str, ...] = ("edsr", "rcan", "srresnet", "rrdbnet", "srvgg", "detect")


def register() -> None:
    """Entry point (group ``irframe.plugins``): import the modules that register components."""
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
