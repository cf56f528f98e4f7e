"""Checkpoint detector for PromptIR: infer the build config from a state_dict's keys and shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from irframe_restormer.keys import read_backbone, shape_of

from irframe.errors import CheckpointError
from irframe.registry import DETECTORS

# Keys every PromptIR state_dict has and a plain Restormer never has.
_REQUIRED = (
    "patch_embed.proj.weight",
    "chnl_reduce1.weight",
    "reduce_noise_channel_1.weight",
    "noise_level3.norm1.body.weight",
    "reduce_noise_level3.weight",
    "noise_level1.norm1.body.weight",
    "reduce_noise_level1.weight",
    "output.weight",
)


# PromptIR is a Restormer backbone plus prompt and noise blocks: Restormer's detector may claim its
# files too, and this one, which knows the extra blocks, wins.
@DETECTORS.register("PromptIR", more_specific_than=("Restormer",))
def detect_promptir(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any] | None:
    """Build config (``{"type": "PromptIR", ...}``) of a PromptIR state_dict, or None.

    ``state_dict`` must already be unwrapped (the Lightning ``state_dict`` layer and the ``net.``
    prefix of the released ``model.ckpt`` removed).

    Raises:
        CheckpointError: the keys are a PromptIR's but describe no buildable model (e.g. one
            saved without its decoder prompt blocks).
    """
    if not all(key in state_dict for key in _REQUIRED):
        return None
    if "prompt1.prompt_param" not in state_dict:
        raise CheckpointError(
            "PromptIR checkpoint without prompt blocks (prompt1.prompt_param missing): decoder=False "
            "models cannot run in the official code either"
        )
    config: dict[str, Any] = {"type": "PromptIR"}
    config.update(read_backbone(state_dict, "PromptIR"))
    prompts = [shape_of(state_dict, f"prompt{i}.prompt_param") for i in (1, 2, 3)]  # (1, len, dim, s, s)
    lengths = {p[1] for p in prompts}
    if len(lengths) != 1:
        raise CheckpointError(f"PromptIR checkpoint: prompt blocks have different prompt_len {sorted(lengths)}")
    config["decoder"] = True
    config["prompt_dims"] = [int(p[2]) for p in prompts]
    config["prompt_sizes"] = [int(p[3]) for p in prompts]
    config["prompt_len"] = int(prompts[0][1])
    return config
