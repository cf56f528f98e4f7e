"""Checkpoint detector for HAT: the build config from a state_dict's keys and shapes.

A HAT file also holds many of SwinIR's keys (``conv_first``, ``layers.N.residual_group.blocks.M.attn``,
``conv_after_body``, ``upsample``...), so SwinIR's detector may claim it too; this one recognises HAT
by keys only HAT has (``relative_position_index_OCA``, ``overlap_attn``, ``conv_block``) and is
registered as more specific than SwinIR.

Facts no tensor records: ``conv_scale`` (0.01) and ``img_range`` (1.0), which every released HAT
model uses, so they are taken without a warning (an option file sets other values); ``img_size``
(64, the released value) matters only for a window as large as it or for ``ape``, whose embedding
records it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch

from irframe.errors import CheckpointError
from irframe.registry import DETECTORS

# Keys only HAT has: any one of them makes the file HAT's.
_MARKERS = re.compile(
    r"^(relative_position_index_OCA$|layers\.\d+\.residual_group\.(overlap_attn|blocks\.\d+\.conv_block)\.)"
)
_BLOCK = re.compile(r"^layers\.(\d+)\.residual_group\.blocks\.(\d+)\.")
_LAYER = re.compile(r"^layers\.(\d+)\.")
_UPSAMPLE = re.compile(r"^upsample\.(\d+)\.weight$")

_G = "layers.{i}.residual_group"
_REQUIRED = (
    "conv_first.weight",
    "layers.0.residual_group.blocks.0.attn.relative_position_bias_table",
    "layers.0.residual_group.blocks.0.conv_block.cab.0.weight",
    "layers.0.residual_group.blocks.0.conv_block.cab.3.attention.1.weight",
    "layers.0.residual_group.blocks.0.mlp.fc1.weight",
    "layers.0.residual_group.overlap_attn.relative_position_bias_table",
    "norm.weight",
)
RELEASED_COMPRESS = (3, 24)  # HAT / HAT-L, HAT-S
RELEASED_SQUEEZE = (30, 24)
DEFAULT_IMG_SIZE = 64


def _shape(sd: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    return tuple(int(v) for v in sd[key].shape)


def _side_of_square(n: int) -> int | None:
    root = math.isqrt(n)
    return root if root * root == n else None


def _ratio_for(width: int, hidden: int, preferred: tuple[int, ...], what: str) -> int:
    """An integer ``r`` with ``width // r == hidden`` (the released value first)."""
    for r in (*preferred, width // max(hidden, 1), *range(1, width + 1)):
        if r >= 1 and width // r == hidden:
            return r
    raise CheckpointError(f"HAT checkpoint: no {what} gives {hidden} channels from embed_dim {width}")


def _float_ratio(width: int, hidden: int, preferred: float) -> float:
    """A ratio ``r`` with ``int(width * r) == hidden`` (``preferred`` when it fits)."""
    for r in (preferred, hidden / width, (hidden + 0.5) / width):
        if int(width * r) == hidden:
            return float(r)
    raise CheckpointError(f"HAT checkpoint: no ratio gives {hidden} from {width}")  # pragma: no cover


def _window_size(sd: Mapping[str, torch.Tensor]) -> int:
    rows = _shape(sd, "layers.0.residual_group.blocks.0.attn.relative_position_bias_table")[0]
    side = _side_of_square(rows)
    if side is None or side % 2 == 0:
        raise CheckpointError(f"HAT checkpoint: a relative position bias table of {rows} rows is not (2*ws-1)^2")
    ws = (side + 1) // 2
    if "relative_position_index_SA" in sd and _shape(sd, "relative_position_index_SA") != (ws * ws, ws * ws):
        raise CheckpointError(
            f"HAT checkpoint: relative_position_index_SA {_shape(sd, 'relative_position_index_SA')} disagrees with "
            f"window_size {ws} of the bias tables"
        )
    return ws


def _overlap_window(sd: Mapping[str, torch.Tensor], ws: int) -> int:
    if "relative_position_index_OCA" in sd:
        shape = _shape(sd, "relative_position_index_OCA")
        ow = _side_of_square(shape[1]) if len(shape) == 2 else None
        if ow is None or shape[0] != ws * ws:
            raise CheckpointError(f"HAT checkpoint: relative_position_index_OCA {shape} fits no window_size {ws}")
    else:
        rows = _shape(sd, "layers.0.residual_group.overlap_attn.relative_position_bias_table")[0]
        side = _side_of_square(rows)
        if side is None:
            raise CheckpointError(f"HAT checkpoint: an OCAB bias table of {rows} rows is not square")
        ow = side - ws + 1
    table = _shape(sd, "layers.0.residual_group.overlap_attn.relative_position_bias_table")[0]
    if table != (ws + ow - 1) ** 2:
        raise CheckpointError(
            f"HAT checkpoint: OCAB bias table of {table} rows disagrees with an overlapping window of {ow}"
        )
    return ow


def _depths(sd: Mapping[str, torch.Tensor]) -> list[int]:
    layers = sorted({int(m.group(1)) for k in sd if (m := _LAYER.match(k))})
    if layers != list(range(len(layers))):
        raise CheckpointError(f"HAT checkpoint: residual groups {layers} are not numbered 0..{len(layers) - 1}")
    depths = []
    for i in layers:
        blocks = sorted({int(m.group(2)) for k in sd if (m := _BLOCK.match(k)) and int(m.group(1)) == i})
        if not blocks or blocks != list(range(len(blocks))):
            raise CheckpointError(f"HAT checkpoint: layers.{i} has attention blocks {blocks}, not 0..n-1")
        depths.append(len(blocks))
    return depths


def _upscale(sd: Mapping[str, torch.Tensor], num_feat: int) -> int:
    convs = sorted(int(m.group(1)) for k in sd if (m := _UPSAMPLE.match(k)))
    if convs == [0] and _shape(sd, "upsample.0.weight")[0] == 9 * num_feat:
        return 3
    if convs != list(range(0, 2 * len(convs), 2)) or not convs:
        raise CheckpointError(f"HAT checkpoint: upsample convs {convs} are neither 2^n nor x3 pixelshuffle")
    return 2 ** len(convs)


@DETECTORS.register("HAT", more_specific_than=("SwinIR",))
def detect_hat(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any] | None:
    """Build config (``{"type": "HAT", ...}``) of a HAT state_dict, or None for any other family.

    Reads back ``embed_dim``, ``depths``, ``num_heads``, ``window_size`` (bias table / index shapes),
    ``overlap_ratio`` (``relative_position_index_OCA``'s shape), ``compress_ratio`` and
    ``squeeze_factor`` (the CAB widths), ``mlp_ratio``, ``upscale``, ``upsampler``,
    ``resi_connection``, ``in_chans``, ``qkv_bias``, ``patch_norm`` and ``ape``; ``conv_scale`` 0.01
    and ``img_range`` 1.0 are the released values (no tensor records them).

    Raises:
        CheckpointError: HAT's keys, but no buildable HAT (a missing part, inconsistent shapes).
    """
    if not any(_MARKERS.match(k) for k in state_dict):
        return None
    missing = [k for k in _REQUIRED if k not in state_dict]
    if missing:
        raise CheckpointError(f"HAT checkpoint without {', '.join(missing)}")
    if "conv_before_upsample.0.weight" not in state_dict or "conv_last.weight" not in state_dict:
        raise CheckpointError(
            "HAT checkpoint without conv_before_upsample/conv_last: only the 'pixelshuffle' reconstruction "
            "of the official HAT can be built"
        )
    embed_dim, in_chans = _shape(state_dict, "conv_first.weight")[:2]
    out_chans = _shape(state_dict, "conv_last.weight")[0]
    if out_chans != in_chans:
        raise CheckpointError(f"HAT checkpoint: conv_last gives {out_chans} channels but conv_first reads {in_chans}")
    depths = _depths(state_dict)
    heads = []
    for i in range(len(depths)):
        key = f"{_G.format(i=i)}.blocks.0.attn.relative_position_bias_table"
        if key not in state_dict:
            raise CheckpointError(f"HAT checkpoint without {key}")
        heads.append(_shape(state_dict, key)[1])
    ws = _window_size(state_dict)
    ow = _overlap_window(state_dict, ws)
    overlap_ratio = _float_ratio(ws, ow - ws, 0.5)
    block = "layers.0.residual_group.blocks.0"
    compress = _ratio_for(embed_dim, _shape(state_dict, f"{block}.conv_block.cab.0.weight")[0], RELEASED_COMPRESS,
                          "compress_ratio")
    squeeze = _ratio_for(embed_dim, _shape(state_dict, f"{block}.conv_block.cab.3.attention.1.weight")[0],
                         RELEASED_SQUEEZE, "squeeze_factor")
    mlp_ratio = _float_ratio(embed_dim, _shape(state_dict, f"{block}.mlp.fc1.weight")[0], 2.0)
    num_feat = _shape(state_dict, "conv_before_upsample.0.weight")[0]
    config: dict[str, Any] = {
        "type": "HAT",
        "upscale": _upscale(state_dict, num_feat),
        "in_chans": in_chans,
        "img_size": DEFAULT_IMG_SIZE if ws < DEFAULT_IMG_SIZE else ws,
        "window_size": ws,
        "compress_ratio": compress,
        "squeeze_factor": squeeze,
        "conv_scale": 0.01,
        "overlap_ratio": overlap_ratio,
        "img_range": 1.0,
        "depths": depths,
        "embed_dim": embed_dim,
        "num_heads": heads,
        "mlp_ratio": mlp_ratio,
        "qkv_bias": f"{block}.attn.qkv.bias" in state_dict,
        "patch_norm": "patch_embed.norm.weight" in state_dict,
        "upsampler": "pixelshuffle",
        "resi_connection": "1conv" if "conv_after_body.weight" in state_dict else "identity",
    }
    if "absolute_pos_embed" in state_dict:
        side = _side_of_square(_shape(state_dict, "absolute_pos_embed")[1])
        if side is None:
            raise CheckpointError("HAT checkpoint: absolute_pos_embed does not cover a square image")
        config.update(ape=True, img_size=side)
    return config
