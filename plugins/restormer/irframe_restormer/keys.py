"""Read Restormer-family hyper-parameters back from a state_dict's key names and shapes.

Shared by the Restormer and PromptIR checkpoint detectors; registers nothing. Every function takes
a plain (already unwrapped) ``name -> tensor`` mapping; only ``.shape`` of the values is read, so
meta tensors work too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch

from irframe.errors import CheckpointError

DEFAULT_HEADS = (1, 2, 4, 8)
DEFAULT_FFN_EXPANSION = 2.66

# Stages whose blocks use heads[level] (first match with at least one block wins).
_HEAD_STAGES: tuple[tuple[str, ...], ...] = (
    ("encoder_level1", "decoder_level1", "refinement"),
    ("encoder_level2", "decoder_level2"),
    ("encoder_level3", "decoder_level3", "noise_level3", "noise_level2", "noise_level1"),
    ("latent",),
)


def shape_of(state_dict: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    """Shape of ``state_dict[key]``; :class:`CheckpointError` naming the key if it is absent."""
    try:
        return tuple(state_dict[key].shape)
    except KeyError:
        raise CheckpointError(f"checkpoint has no entry {key!r}") from None


def count_blocks(state_dict: Mapping[str, torch.Tensor], stage: str) -> int:
    """Number of blocks ``<stage>.<i>.*`` (0 if none); the indices must run 0..n-1."""
    pattern = re.compile(rf"^{re.escape(stage)}\.(\d+)\.")
    indices = {int(m.group(1)) for key in state_dict if (m := pattern.match(key))}
    if indices and indices != set(range(len(indices))):
        raise CheckpointError(f"checkpoint stage {stage!r} has non-contiguous block indices {sorted(indices)}")
    return len(indices)


def read_heads(state_dict: Mapping[str, torch.Tensor]) -> list[int]:
    """Heads per level from the ``attn.temperature`` shapes ``(heads, 1, 1)``.

    A level without any block keeps the default head count (it does not change any shape).
    """
    heads = []
    for level, stages in enumerate(_HEAD_STAGES):
        found = _first_temperature(state_dict, stages)
        heads.append(DEFAULT_HEADS[level] if found is None else found)
    return heads


def _first_temperature(state_dict: Mapping[str, torch.Tensor], stages: tuple[str, ...]) -> int | None:
    # Stages are nn.Sequential (``<stage>.0.attn``) or, for PromptIR's noise levels, one block.
    for stage in stages:
        for key in (f"{stage}.0.attn.temperature", f"{stage}.attn.temperature"):
            if key in state_dict:
                return int(state_dict[key].shape[0])
    return None


def read_layer_norm_type(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """``'WithBias'`` if the block norms have a bias, ``'BiasFree'`` if not, None without blocks."""
    for key in state_dict:
        if key.endswith("norm1.body.weight"):
            return "WithBias" if key[: -len("weight")] + "bias" in state_dict else "BiasFree"
    return None


def read_ffn_expansion(state_dict: Mapping[str, torch.Tensor]) -> float:
    """The ``ffn_expansion_factor`` that reproduces every GDFN width in the checkpoint.

    Each block's ``ffn.project_in.weight`` is ``(2 * int(width * f), width, 1, 1)``, so each block
    bounds ``f`` to ``[hidden/width, (hidden+1)/width)``. The official 2.66 is preferred when it
    fits; otherwise the shortest decimal inside every bound.
    """
    pairs: set[tuple[int, int]] = set()
    for key, value in state_dict.items():
        if key.endswith("ffn.project_in.weight"):
            out_ch, width = int(value.shape[0]), int(value.shape[1])
            pairs.add((width, out_ch // 2))
    if not pairs:
        return DEFAULT_FFN_EXPANSION

    def fits(f: float) -> bool:
        return all(int(width * f) == hidden for width, hidden in pairs)

    if fits(DEFAULT_FFN_EXPANSION):
        return DEFAULT_FFN_EXPANSION
    lo = max(hidden / width for width, hidden in pairs)
    hi = min((hidden + 1) / width for width, hidden in pairs)
    if lo >= hi:
        raise CheckpointError(
            "checkpoint GDFN widths (ffn.project_in) are inconsistent with any single "
            f"ffn_expansion_factor: (width, hidden) pairs {sorted(pairs)}"
        )
    for decimals in range(1, 9):
        f = math.ceil(lo * 10**decimals) / 10**decimals
        if f < hi and fits(f):
            return f
    mid = (lo + hi) / 2
    if fits(mid):
        return mid
    raise CheckpointError(f"cannot find an ffn_expansion_factor for the GDFN widths {sorted(pairs)}")


def read_backbone(state_dict: Mapping[str, torch.Tensor], arch: str) -> dict[str, Any]:
    """The U-Net options common to Restormer and PromptIR (everything but the arch-specific ones).

    Raises:
        CheckpointError: if the encoder and decoder block counts disagree (no such model exists).
    """
    out_channels, dec_width = shape_of(state_dict, "output.weight")[:2]
    dim, inp_channels = shape_of(state_dict, "patch_embed.proj.weight")[:2]
    if dec_width != 2 * dim:
        raise CheckpointError(
            f"{arch} checkpoint: output.weight takes {dec_width} channels, expected 2 * dim = {2 * dim}"
        )
    num_blocks = [count_blocks(state_dict, s) for s in ("encoder_level1", "encoder_level2", "encoder_level3", "latent")]
    decoder = [count_blocks(state_dict, s) for s in ("decoder_level1", "decoder_level2", "decoder_level3")]
    if decoder != num_blocks[:3]:
        raise CheckpointError(
            f"{arch} checkpoint: decoder levels 1-3 have {decoder} blocks but encoder levels 1-3 have "
            f"{num_blocks[:3]}; the architecture repeats the encoder counts"
        )
    return {
        "inp_channels": int(inp_channels),
        "out_channels": int(out_channels),
        "dim": int(dim),
        "num_blocks": num_blocks,
        "num_refinement_blocks": count_blocks(state_dict, "refinement"),
        "heads": read_heads(state_dict),
        "ffn_expansion_factor": read_ffn_expansion(state_dict),
        "bias": "output.bias" in state_dict,
        "LayerNorm_type": read_layer_norm_type(state_dict) or "WithBias",
    }
