"""Checkpoint detector for Restormer: infer the build config from a state_dict's keys and shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from irframe.registry import DETECTORS
from irframe_restormer.keys import read_backbone

# Keys every Restormer state_dict has (whatever the block counts).
_REQUIRED = (
    "patch_embed.proj.weight",
    "down1_2.body.0.weight",
    "down2_3.body.0.weight",
    "down3_4.body.0.weight",
    "up4_3.body.0.weight",
    "reduce_chan_level3.weight",
    "up3_2.body.0.weight",
    "reduce_chan_level2.weight",
    "up2_1.body.0.weight",
    "output.weight",
)


@DETECTORS.register("Restormer")
def detect_restormer(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any] | None:
    """Build config (``{"type": "Restormer", ...}``) of a Restormer state_dict, or None.

    ``state_dict`` must already be unwrapped (no ``params``/``net.``/``module.`` layers). Heads come
    from the ``attn.temperature`` shapes, ``ffn_expansion_factor`` from the GDFN widths.

    Raises:
        CheckpointError: the keys are a Restormer's but their shapes describe no buildable model.
    """
    if not all(key in state_dict for key in _REQUIRED):
        return None
    config: dict[str, Any] = {"type": "Restormer"}
    config.update(read_backbone(state_dict, "Restormer"))
    config["dual_pixel_task"] = "skip_conv.weight" in state_dict
    return config
