"""Checkpoint detector for SwinIR: infer the build config from a state_dict's keys and shapes.

Read from the tensors: ``in_chans`` and ``embed_dim`` (``conv_first``), ``depths`` and
``num_heads`` (blocks per residual group, columns of ``relative_position_bias_table``),
``window_size`` (the bias table's rows, ``(2*ws-1)**2``), ``mlp_ratio`` (``mlp.fc1`` width),
``qkv_bias``, ``patch_norm``, ``ape``, ``resi_connection`` (``conv_after_body`` one conv or three),
the upsampler and ``upscale`` (which reconstruction convs exist and their widths) and ``img_size``
(the ``attn_mask`` buffers' window count; only their shape depends on it).

Not recorded anywhere: ``img_range``. Every released SwinIR uses 1.0 except the JPEG artifact
reduction models (255.0, window 7, no upsampler). The value is taken from the released
configuration the shapes identify, else from the filename (``jpeg`` / ``car`` in it: 255.0), else
window 7 without an upsampler means the JPEG setting (255.0), else 1.0; the last two are said in
one ``UserWarning`` that names the option to override it with.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import torch

from irframe.errors import CheckpointError
from irframe.registry import DETECTORS

_FIRST_BLOCK = "layers.0.residual_group.blocks.0."
# Keys every SwinIR state_dict has (whatever its task).
_REQUIRED = (
    "conv_first.weight",
    _FIRST_BLOCK + "attn.relative_position_bias_table",
    _FIRST_BLOCK + "attn.qkv.weight",
    _FIRST_BLOCK + "mlp.fc1.weight",
    "norm.weight",
)
_BLOCK_KEY = re.compile(r"^layers\.(\d+)\.residual_group\.blocks\.(\d+)\.attn\.qkv\.weight$")
_MASK_KEY = re.compile(r"^layers\.\d+\.residual_group\.blocks\.\d+\.attn_mask$")
# Every name a SwinIR state_dict can hold (used only to tell a pure SwinIR file from a larger one).
_SWINIR_KEY = re.compile(
    r"^(?:"
    r"conv_first|norm|patch_embed\.norm|conv_after_body(?:\.[024])?|conv_before_upsample\.0|upsample\.\d+"
    r"|conv_up1|conv_up2|conv_hr|conv_last|layers\.\d+\.conv(?:\.[024])?"
    r"|layers\.\d+\.residual_group\.blocks\.\d+\.(?:norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)"
    r")\.(?:weight|bias)$"
    r"|^layers\.\d+\.residual_group\.blocks\.\d+\.(?:attn_mask|attn\.relative_position_bias_table"
    r"|attn\.relative_position_index)$"
    r"|^absolute_pos_embed$"
)

JPEG_IMG_RANGE = 255.0
DEFAULT_IMG_RANGE = 1.0
_M = {"embed_dim": 180, "depths": [6] * 6, "num_heads": [6] * 6, "mlp_ratio": 2.0, "resi_connection": "1conv"}
_LIGHT = {"embed_dim": 60, "depths": [6] * 4, "num_heads": [6] * 4, "mlp_ratio": 2.0, "resi_connection": "1conv"}
_L = {"embed_dim": 240, "depths": [6] * 9, "num_heads": [8] * 9, "mlp_ratio": 2.0, "resi_connection": "3conv"}
# The released configurations (SwinIR's main_test_swinir.py), by the fields the shapes give, and
# the img_range each was trained with.
RELEASED: dict[str, tuple[dict[str, Any], float]] = {
    **{
        f"classical_x{s}": (
            {**_M, "in_chans": 3, "window_size": 8, "img_size": 48 if s == 8 else 64,
             "upsampler": "pixelshuffle", "upscale": s},
            1.0,
        )
        for s in (2, 3, 4, 8)
    },
    **{
        f"lightweight_x{s}": (
            {**_LIGHT, "in_chans": 3, "window_size": 8, "img_size": 64, "upsampler": "pixelshuffledirect",
             "upscale": s},
            1.0,
        )
        for s in (2, 3, 4)
    },
    "real_x4_M": ({**_M, "in_chans": 3, "window_size": 8, "img_size": 64, "upsampler": "nearest+conv", "upscale": 4},
                  1.0),
    "real_x4_L": ({**_L, "in_chans": 3, "window_size": 8, "img_size": 64, "upsampler": "nearest+conv", "upscale": 4},
                  1.0),
    **{
        f"{name}_dn": ({**_M, "in_chans": c, "window_size": 8, "img_size": 128, "upsampler": "", "upscale": 1}, 1.0)
        for name, c in (("gray", 1), ("color", 3))
    },
    **{
        f"jpeg_car_{name}": (
            {**_M, "in_chans": c, "window_size": 7, "img_size": 126, "upsampler": "", "upscale": 1},
            JPEG_IMG_RANGE,
        )
        for name, c in (("gray", 1), ("color", 3))
    },
}


def _shape(state_dict: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    return tuple(int(v) for v in state_dict[key].shape)


def _window_from_table(rows: int, where: str) -> int:
    side = math.isqrt(rows)
    if side * side != rows or side % 2 == 0:
        raise CheckpointError(
            f"SwinIR checkpoint: {where} has {rows} rows, not (2*window_size-1)**2 for any window_size"
        )
    return (side + 1) // 2


def _layers(state_dict: Mapping[str, torch.Tensor]) -> list[int]:
    """Blocks per residual group, checked to be numbered 0..n-1."""
    blocks: dict[int, set[int]] = {}
    for key in state_dict:
        match = _BLOCK_KEY.match(key)
        if match:
            blocks.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    layers = sorted(blocks)
    if layers != list(range(len(layers))):
        raise CheckpointError(f"SwinIR checkpoint: residual groups (layers.N) are numbered {layers}, not 0..n-1")
    depths = []
    for layer in layers:
        numbers = sorted(blocks[layer])
        if numbers != list(range(len(numbers))):
            raise CheckpointError(
                f"SwinIR checkpoint: blocks of layers.{layer} are numbered {numbers}, not 0..n-1"
            )
        depths.append(len(numbers))
    return depths


def _mlp_ratio(hidden: int, dim: int) -> float:
    """A ratio ``r`` with ``int(dim * r) == hidden`` (the official width rule)."""
    ratio = hidden / dim
    if int(dim * ratio) != hidden:
        ratio = (hidden + 0.5) / dim
    return float(ratio)


def _upsampler(state_dict: Mapping[str, torch.Tensor], in_chans: int, embed_dim: int) -> tuple[str, int]:
    """``(upsampler, upscale)`` from the reconstruction convs."""
    if "conv_up1.weight" in state_dict:
        return "nearest+conv", 4
    if "conv_before_upsample.0.weight" in state_dict:
        num_feat = _shape(state_dict, "conv_before_upsample.0.weight")[0]
        convs = sorted(
            int(m.group(1)) for k in state_dict if (m := re.fullmatch(r"upsample\.(\d+)\.weight", k))
        )
        widths = [_shape(state_dict, f"upsample.{i}.weight")[0] for i in convs]
        if widths == [9 * num_feat]:
            return "pixelshuffle", 3
        if widths and all(w == 4 * num_feat for w in widths):
            return "pixelshuffle", 2 ** len(widths)
        raise CheckpointError(
            f"SwinIR checkpoint: upsample convs give {widths} channels from {num_feat} features; "
            "expected one conv of 9x (upscale 3) or n convs of 4x (upscale 2^n)"
        )
    if "upsample.0.weight" in state_dict:
        out = _shape(state_dict, "upsample.0.weight")[0]
        scale = math.isqrt(out // in_chans) if out % in_chans == 0 else 0
        if scale < 1 or scale * scale * in_chans != out:
            raise CheckpointError(
                f"SwinIR checkpoint: upsample.0 gives {out} channels, not upscale**2 * {in_chans} (pixelshuffledirect)"
            )
        return "pixelshuffledirect", scale
    if "conv_last.weight" in state_dict and _shape(state_dict, "conv_last.weight")[1] == embed_dim:
        return "", 1
    raise CheckpointError(
        "SwinIR checkpoint: no reconstruction convs recognised (conv_up1 for 'nearest+conv', "
        "conv_before_upsample + upsample for 'pixelshuffle', upsample alone for 'pixelshuffledirect', "
        "conv_last from embed_dim for denoising/JPEG)"
    )


def _img_size(state_dict: Mapping[str, torch.Tensor], window: int) -> int:
    """``img_size`` from an ``attn_mask`` (or ``absolute_pos_embed``); otherwise a multiple of the window."""
    masks = [k for k in state_dict if _MASK_KEY.match(k)]
    if masks:
        windows = _shape(state_dict, masks[0])[0]
        side = math.isqrt(windows)
        if side * side != windows:
            raise CheckpointError(
                f"SwinIR checkpoint: {masks[0]} holds {windows} windows, not those of a square img_size; "
                "pass an option file giving img_size"
            )
        return side * window
    if "absolute_pos_embed" in state_dict:
        patches = _shape(state_dict, "absolute_pos_embed")[1]
        side = math.isqrt(patches)
        if side * side == patches:
            return side
    # No mask: no shifted block (img_size then changes nothing), or a file whose masks were left out
    # (they are recomputable): the released default 64, as a multiple of the window above it.
    return window * max(2, math.ceil(64 / window))


def _filename_says_jpeg(filename: str | None) -> bool:
    if not filename:
        return False
    name = PurePath(filename).name.lower()
    return "jpeg" in name or "car" in name


def _img_range(config: Mapping[str, Any], filename: str | None, pure: bool) -> float:
    """The img_range of a detected config (see the module docstring); warns when it is a guess."""
    shape_fields = {k: v for k, v in config.items() if k not in ("type", "qkv_bias", "patch_norm", "ape")}
    defaults = config["qkv_bias"] and config["patch_norm"] and not config["ape"]
    for released, img_range in RELEASED.values():
        if defaults and shape_fields == released:
            return img_range
    if config["upsampler"] == "" and _filename_says_jpeg(filename):
        return JPEG_IMG_RANGE
    if config["upsampler"] == "" and config["window_size"] == 7:
        value, why = JPEG_IMG_RANGE, "window 7 without an upsampler is SwinIR's JPEG setting"
    else:
        value, why = DEFAULT_IMG_RANGE, "the value of every released SwinIR except the JPEG models"
    if pure:  # a file with tensors SwinIR does not have belongs to a larger family; stay silent
        warnings.warn(
            f"SwinIR checkpoint{f' {filename}' if filename else ''}: img_range is not recorded in the file; "
            f"using {value} ({why}); set model.img_range in an option file to override",
            UserWarning,
            stacklevel=2,
        )
    return value


@DETECTORS.register("SwinIR")
def detect_swinir(
    state_dict: Mapping[str, torch.Tensor], *, filename: str | None = None
) -> dict[str, Any] | None:
    """Build config (``{"type": "SwinIR", ...}``) of a SwinIR state_dict, or None.

    ``state_dict`` must already be unwrapped (no ``params``/``params_ema``/``module.`` layers).
    ``filename`` is a hint for ``img_range`` only (``jpeg`` or ``car`` in a denoising-layout
    file's name: the JPEG models' 255).

    Raises:
        CheckpointError: the keys are a SwinIR's but their shapes describe no buildable model.
    """
    if not all(key in state_dict for key in _REQUIRED):
        return None
    if "conv_after_body.weight" not in state_dict and "conv_after_body.0.weight" not in state_dict:
        return None
    embed_dim, in_chans = _shape(state_dict, "conv_first.weight")[:2]
    depths = _layers(state_dict)
    heads: list[int] = []
    windows: set[int] = set()
    for layer in range(len(depths)):
        key = f"layers.{layer}.residual_group.blocks.0.attn.relative_position_bias_table"
        if key not in state_dict:
            raise CheckpointError(f"SwinIR checkpoint: {key} is missing")
        rows, columns = _shape(state_dict, key)[:2]
        windows.add(_window_from_table(rows, key))
        heads.append(columns)
    if len(windows) != 1:
        raise CheckpointError(f"SwinIR checkpoint: residual groups use different window sizes {sorted(windows)}")
    window = windows.pop()
    upsampler, upscale = _upsampler(state_dict, in_chans, embed_dim)
    config: dict[str, Any] = {
        "type": "SwinIR",
        "upscale": upscale,
        "in_chans": in_chans,
        "img_size": _img_size(state_dict, window),
        "window_size": window,
        "embed_dim": embed_dim,
        "depths": depths,
        "num_heads": heads,
        "mlp_ratio": _mlp_ratio(_shape(state_dict, _FIRST_BLOCK + "mlp.fc1.weight")[0], embed_dim),
        "upsampler": upsampler,
        "resi_connection": "3conv" if "conv_after_body.0.weight" in state_dict else "1conv",
        "qkv_bias": _FIRST_BLOCK + "attn.qkv.bias" in state_dict,
        "patch_norm": "patch_embed.norm.weight" in state_dict,
        "ape": "absolute_pos_embed" in state_dict,
    }
    pure = all(_SWINIR_KEY.match(key) for key in state_dict)
    config["img_range"] = _img_range(config, filename, pure)
    return config
