"""Checkpoint detector for IPT: infer the build config from a state_dict's names and shapes.

Registered in ``DETECTORS`` as ``detect_ipt``. The state_dict must already be unwrapped (no
``module.``/``net.`` prefixes; see ``irframe.nn.weights``).

What shapes tell: ``n_feats`` and ``n_colors`` (first head conv), the number of tasks (heads), each
task's scale (its tail's upsampling convs: none -> 1, one conv to 9*C -> 3, k convs to 4*C -> 2**k),
``num_queries`` (query embedding rows), ``num_layers`` (encoder layers), the token width and so
``patch_dim`` (``width = n_feats * patch_dim**2``), the token count and so ``patch_size``
(``(patch_size / patch_dim)**2`` positions), and the ablation switches by the absence of their
parameters (``no_norm``, ``no_mlp``, ``no_pos``).

What they do not tell: ``num_heads`` (attention weights are the same shape for any head count).
We return 12, the official value, when 12 divides the token width, else the largest divisor of the
width below 12. Our own safetensors files carry their exact config in the metadata and never need
this guess. ``rgb_range`` (255), dropout and ``pos_every``/``post_norm``/``freeze_norm`` (no
parameters of their own) take the official defaults.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from irframe.errors import CheckpointError
from irframe.registry import DETECTORS

_HEAD = re.compile(r"^head\.(\d+)\.0\.weight$")
_TAIL_UP = re.compile(r"^tail\.(\d+)\.0\.(\d+)\.weight$")
_ENC = re.compile(r"^body\.encoder\.layers\.(\d+)\.")
_MARKERS = ("sub_mean.weight", "add_mean.weight", "head.0.0.weight", "tail.0.1.weight",
            "body.encoder.layers.0.self_attn.in_proj_weight")


def _shape(sd: Mapping[str, Any], key: str) -> tuple[int, ...]:
    return tuple(int(v) for v in sd[key].shape)


def _guess_heads(width: int) -> int:
    return 12 if width % 12 == 0 else max(h for h in range(1, 12) if width % h == 0)


def _tail_scale(sd: Mapping[str, Any], index: int, n_feats: int) -> int:
    convs = sorted(
        int(m.group(2)) for k in sd if (m := _TAIL_UP.match(k)) and int(m.group(1)) == index
    )
    if not convs:
        return 1
    outs = [_shape(sd, f"tail.{index}.0.{c}.weight")[0] for c in convs]
    if outs == [9 * n_feats]:
        return 3
    if all(o == 4 * n_feats for o in outs):
        return 2 ** len(outs)
    raise CheckpointError(
        f"IPT checkpoint: tail {index} upsampler convs have {outs} output channels; "
        f"expected 9*{n_feats} (x3) or 4*{n_feats} each (x2, x4, x8)"
    )


@DETECTORS.register("IPT")
def detect_ipt(state_dict: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``{"type": "IPT", ...}`` build config of an IPT state_dict, or ``None`` if it is not IPT's.

    Raises:
        CheckpointError: the keys are IPT's but the shapes fit no IPT configuration.
    """
    if not all(k in state_dict for k in _MARKERS):
        return None
    n_feats, n_colors = _shape(state_dict, "head.0.0.weight")[:2]
    heads = sorted(int(m.group(1)) for k in state_dict if (m := _HEAD.match(k)))
    if heads != list(range(len(heads))):
        raise CheckpointError(f"IPT checkpoint: head indices {heads} are not 0..{len(heads) - 1}")
    scales = [_tail_scale(state_dict, i, n_feats) for i in heads]

    width = _shape(state_dict, "body.encoder.layers.0.self_attn.in_proj_weight")[1]
    patch_dim = math.isqrt(width // n_feats)
    if patch_dim * patch_dim * n_feats != width:
        raise CheckpointError(
            f"IPT checkpoint: token width {width} is not n_feats ({n_feats}) times a square patch_dim**2"
        )
    num_layers = len({int(m.group(1)) for k in state_dict if (m := _ENC.match(k))})
    no_mlp = "body.query_embed.weight" not in state_dict
    no_pos = "body.position_encoding.pe.weight" not in state_dict
    no_norm = "body.encoder.layers.0.norm1.weight" not in state_dict

    num_queries = 1
    seq_length: int | None = None
    if not no_mlp:
        num_queries, q_width = _shape(state_dict, "body.query_embed.weight")
        seq_length = q_width // width
    elif not no_pos:
        seq_length = _shape(state_dict, "body.position_encoding.pe.weight")[0]
    patch_size = 48  # official default when no parameter depends on it (no_mlp and no_pos)
    if seq_length is not None:
        side = math.isqrt(seq_length)
        if side * side != seq_length:
            raise CheckpointError(f"IPT checkpoint: {seq_length} token positions is not a square grid")
        patch_size = side * patch_dim

    return {
        "type": "IPT",
        "n_feats": n_feats,
        "patch_size": patch_size,
        "patch_dim": patch_dim,
        "num_heads": _guess_heads(width),
        "num_layers": num_layers,
        "num_queries": num_queries,
        "scale": scales,
        "rgb_range": 255,
        "n_colors": n_colors,
        "no_norm": no_norm,
        "no_mlp": no_mlp,
        "no_pos": no_pos,
    }
