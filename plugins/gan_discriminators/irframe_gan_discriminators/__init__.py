"""irframe plugin gan_discriminators: the discriminators of adversarial SR training.

Importing this package registers nothing; irframe calls :func:`register`, which imports the arch
modules (``VGGStyleDiscriminator`` from ESRGAN/BasicSR, ``UNetDiscriminatorSN`` from Real-ESRGAN).
A discriminator is not a restorer: it declares ``role = "discriminator"`` and a
:class:`~irframe_gan_discriminators.spec.DiscriminatorSpec` instead of a ``ModelSpec`` (see
:mod:`.spec`).
"""

from __future__ import annotations

import importlib

# The irframe plugin API this plugin is written for (checked when irframe loads it).
IRFRAME_PLUGIN_API = 1

# Modules whose decorators register this plugin's components.
MODULES: tuple[str, ...] = ("vgg_discriminator", "unet_discriminator")


def register() -> None:
    """Entry point (group `irframe.plugins`): import the modules that register components."""
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
