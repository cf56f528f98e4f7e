"""Checkpoint detectors of the SR classics: each arch's build config from a state dict's names and shapes.

Each detector looks for its own arch's names only (EDSR and MSRResNet have the same shapes at 64
features x 16 blocks, but EDSR has ``conv_after_body``/``upsample.N`` and MSRResNet
``upconv1``/``conv_hr``). Facts no tensor records come from the released configuration the shapes
identify, otherwise from the documented default, said in one warning line:

- EDSR ``res_scale``: 256 features x 32 blocks is EDSR-L (0.1), 64 x 16 EDSR-M (1); ``img_range``
  255 and DIV2K's ``rgb_mean`` (every released EDSR/RCAN);
- RCAN ``res_scale``: 1 (the released RCAN and BasicSR's option files);
- SRVGGNetCompact ``act_type``: PReLU weights say ``prelu``; without them ``relu`` and ``leakyrelu``
  look alike (``leakyrelu`` unless the file name says ``relu``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from irframe.errors import CheckpointError
from irframe.registry import DETECTORS
from irframe_sr_classics.blocks import DIV2K_RGB_MEAN
from irframe_sr_classics.rrdbnet import UNSHUFFLE
from irframe_sr_classics.srvgg import last_conv_index, upscale_from_channels

StateDict = Mapping[str, torch.Tensor]

# (num_feat, num_block) -> res_scale of the released EDSR models.
EDSR_RELEASED_RES_SCALE: dict[tuple[int, int], float] = {(64, 16): 1.0, (256, 32): 0.1}
# (num_feat, num_group, num_block, attention width) of the released RCAN (res_scale 1).
RCAN_RELEASED = {(64, 10, 20, 4)}


def shape_of(state_dict: StateDict, key: str) -> tuple[int, ...]:
    """The shape of ``state_dict[key]`` as ints (the caller has checked the key is there)."""
    return tuple(int(v) for v in state_dict[key].shape)


def indices(state_dict: StateDict, pattern: str) -> list[int]:
    """Sorted distinct integers captured by ``pattern`` (one group, matched at the key's start)."""
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for key in state_dict if (m := regex.match(key))})


def has_all(state_dict: StateDict, *keys: str) -> bool:
    """Whether every key is in the state dict."""
    return all(key in state_dict for key in keys)


def source_name(filename: str | None, arch: str) -> str:
    """``"<arch> checkpoint <file name>"`` for messages (just the arch without a file name)."""
    return f"{arch} checkpoint {Path(filename).name}" if filename else f"{arch} checkpoint"


def count_consecutive(state_dict: StateDict, pattern: str, what: str, source: str) -> int:
    """How many blocks ``pattern`` finds, checking they are numbered 0, 1, 2, ...

    Raises:
        CheckpointError: a gap in the numbering (a block missing from the file).
    """
    found = indices(state_dict, pattern)
    if found != list(range(len(found))):
        missing = sorted(set(range(found[-1] + 1)) - set(found))
        raise CheckpointError(f"{source}: {what} {missing} missing (the file has {what} {found})")
    return len(found)


def upsample_scale(state_dict: StateDict, num_feat: int, source: str) -> int:
    """EDSR/RCAN ``upscale`` from the ``upsample.N`` convs (x2 steps of 4*num_feat channels, or one x3 step).

    Raises:
        CheckpointError: a layout BasicSR's ``Upsample`` does not build.
    """
    convs = indices(state_dict, r"upsample\.(\d+)\.weight$")
    if not convs:
        return 1
    widths = [shape_of(state_dict, f"upsample.{i}.weight")[0] for i in convs]
    if convs == [0] and widths == [9 * num_feat]:
        return 3
    if convs == list(range(0, 2 * len(convs), 2)) and all(w == 4 * num_feat for w in widths):
        return int(2 ** len(convs))
    raise CheckpointError(
        f"{source}: upsample convs at {convs} with {widths} output channels are no pixel-shuffle layout "
        f"(x2 steps of {4 * num_feat} channels at 0, 2, ..., or one x3 step of {9 * num_feat})"
    )


def mean_shift_config(num_in_ch: int, num_out_ch: int, source: str) -> dict[str, Any]:
    """``img_range`` and ``rgb_mean`` of an EDSR/RCAN file (no tensor holds them): the released values.

    Models with other than 3 channels get DIV2K's gray mean, said in one warning line.
    """
    mean: list[float] = list(DIV2K_RGB_MEAN)
    if not num_in_ch == num_out_ch == 3:
        mean = [round(sum(DIV2K_RGB_MEAN) / 3, 4)]
        warnings.warn(
            f"{source}: rgb_mean is not stored in the weights; using {mean} for its {num_in_ch}-in/{num_out_ch}-out "
            "channels; set model.rgb_mean (and img_range) in an option file if it was trained with another",
            UserWarning,
            stacklevel=3,
        )
    return {"img_range": 255.0, "rgb_mean": mean}


@DETECTORS.register("EDSR")
def detect_edsr(state_dict: StateDict, *, filename: str | None = None) -> dict[str, Any] | None:
    """``{"type": "EDSR", ...}`` for an EDSR state dict (BasicSR names), ``None`` for anything else.

    Raises:
        CheckpointError: EDSR's names whose shapes describe no buildable EDSR.
    """
    if not has_all(state_dict, "conv_first.weight", "body.0.conv1.weight", "conv_after_body.weight",
                   "conv_last.weight"):
        return None
    source = source_name(filename, "EDSR")
    num_feat, num_in_ch = shape_of(state_dict, "conv_first.weight")[:2]
    num_out_ch = shape_of(state_dict, "conv_last.weight")[0]
    num_block = count_consecutive(state_dict, r"body\.(\d+)\.conv1\.weight$", "residual blocks body.N", source)
    upscale = upsample_scale(state_dict, num_feat, source)
    res_scale = EDSR_RELEASED_RES_SCALE.get((num_feat, num_block))
    if res_scale is None:
        res_scale = 1.0
        warnings.warn(
            f"{source}: res_scale is not stored in the weights and num_feat={num_feat}, num_block={num_block} is "
            "no released EDSR (M: 64x16, res_scale 1; L: 256x32, res_scale 0.1); using res_scale=1; set "
            "model.res_scale in an option file if it was trained with another",
            UserWarning,
            stacklevel=2,
        )
    return {
        "type": "EDSR", "num_in_ch": num_in_ch, "num_out_ch": num_out_ch, "num_feat": num_feat,
        "num_block": num_block, "upscale": upscale, "res_scale": res_scale,
        **mean_shift_config(num_in_ch, num_out_ch, source),
    }


@DETECTORS.register("RCAN")
def detect_rcan(state_dict: StateDict, *, filename: str | None = None) -> dict[str, Any] | None:
    """``{"type": "RCAN", ...}`` for an RCAN state dict (BasicSR names), ``None`` for anything else.

    Raises:
        CheckpointError: RCAN's names whose shapes describe no buildable RCAN (groups of different
            depths, an attention width no squeeze factor gives).
    """
    if not has_all(state_dict, "conv_first.weight", "body.0.conv.weight", "conv_after_body.weight",
                   "conv_last.weight"):
        return None
    source = source_name(filename, "RCAN")
    num_feat, num_in_ch = shape_of(state_dict, "conv_first.weight")[:2]
    num_out_ch = shape_of(state_dict, "conv_last.weight")[0]
    num_group = count_consecutive(state_dict, r"body\.(\d+)\.conv\.weight$", "residual groups body.N", source)
    depths = [
        len(indices(state_dict, rf"body\.{g}\.residual_group\.(\d+)\.rcab\.0\.weight$")) for g in range(num_group)
    ]
    if len(set(depths)) > 1:
        raise CheckpointError(f"{source}: residual groups hold different numbers of blocks {depths}; RCAN's are equal")
    num_block = count_consecutive(
        state_dict, r"body\.0\.residual_group\.(\d+)\.rcab\.0\.weight$", "blocks body.0.residual_group.N", source
    )
    squeeze_factor, width = 16, max(num_feat // 16, 1)
    attention = "body.0.residual_group.0.rcab.3.attention.1.weight"
    if num_block and attention in state_dict:
        width = shape_of(state_dict, attention)[0]
        # the largest factor that gives this width: 16 for BasicSR's 64 -> 4 (13..16 give 4 as well)
        squeeze_factor = num_feat // width if 0 < width <= num_feat else 0
        if not squeeze_factor or num_feat // squeeze_factor != width:
            raise CheckpointError(
                f"{source}: channel attention narrows {num_feat} channels to {width}, which no squeeze_factor gives"
            )
    upscale = upsample_scale(state_dict, num_feat, source)
    if (num_feat, num_group, num_block, width) not in RCAN_RELEASED:
        warnings.warn(
            f"{source}: res_scale is not stored in the weights; using res_scale=1 (the released RCAN's); set "
            "model.res_scale in an option file if it was trained with another",
            UserWarning,
            stacklevel=2,
        )
    return {
        "type": "RCAN", "num_in_ch": num_in_ch, "num_out_ch": num_out_ch, "num_feat": num_feat,
        "num_group": num_group, "num_block": num_block, "squeeze_factor": squeeze_factor, "upscale": upscale,
        "res_scale": 1.0, **mean_shift_config(num_in_ch, num_out_ch, source),
    }


@DETECTORS.register("MSRResNet")
def detect_msrresnet(state_dict: StateDict, *, filename: str | None = None) -> dict[str, Any] | None:
    """``{"type": "MSRResNet", ...}`` for an MSRResNet state dict (BasicSR names), ``None`` for anything else.

    Raises:
        CheckpointError: MSRResNet's names whose upsampling convs give no supported scale.
    """
    if not has_all(state_dict, "conv_first.weight", "upconv1.weight", "conv_hr.weight", "conv_last.weight"):
        return None
    source = source_name(filename, "MSRResNet")
    num_feat, num_in_ch = shape_of(state_dict, "conv_first.weight")[:2]
    num_out_ch = shape_of(state_dict, "conv_last.weight")[0]
    num_block = count_consecutive(state_dict, r"body\.(\d+)\.conv1\.weight$", "residual blocks body.N", source)
    width = shape_of(state_dict, "upconv1.weight")[0]
    if "upconv2.weight" in state_dict:
        upscale = 4 if width == 4 * num_feat else 0
    else:
        upscale = {4 * num_feat: 2, 9 * num_feat: 3}.get(width, 0)
    if not upscale:
        raise CheckpointError(
            f"{source}: upconv1 gives {width} channels from {num_feat} features"
            f"{' with upconv2' if 'upconv2.weight' in state_dict else ''}: no x2/x3/x4 layout of MSRResNet"
        )
    return {"type": "MSRResNet", "num_in_ch": num_in_ch, "num_out_ch": num_out_ch, "num_feat": num_feat,
            "num_block": num_block, "upscale": upscale}


@DETECTORS.register("RRDBNet")
def detect_rrdbnet(state_dict: StateDict, *, filename: str | None = None) -> dict[str, Any] | None:
    """``{"type": "RRDBNet", ...}`` for an RRDBNet (ESRGAN / Real-ESRGAN) state dict, ``None`` for anything else.

    The scale comes from ``conv_first``'s input channels: as many as ``conv_last`` writes is scale 4,
    4x as many scale 2 (pixel-unshuffle by 2), 16x scale 1 (by 4).

    Raises:
        CheckpointError: an ESRGAN file in the pre-BasicSR layout (``RRDB_trunk``), or dense blocks
            whose widths disagree.
    """
    source = source_name(filename, "RRDBNet")
    if "conv_first.weight" in state_dict and any(key.startswith("RRDB_trunk.") for key in state_dict):
        raise CheckpointError(
            f"{source}: an ESRGAN file in the old layout (RRDB_trunk.*, trunk_conv, HRconv); convert it to "
            "BasicSR's names (body.N.rdbK, conv_body, conv_hr) with BasicSR's scripts/model_conversion first"
        )
    if not has_all(state_dict, "conv_first.weight", "conv_body.weight", "conv_up1.weight", "conv_up2.weight",
                   "conv_hr.weight", "conv_last.weight"):
        return None
    num_feat, first_in = shape_of(state_dict, "conv_first.weight")[:2]
    num_out_ch = shape_of(state_dict, "conv_last.weight")[0]
    num_block = count_consecutive(state_dict, r"body\.(\d+)\.rdb1\.conv1\.weight$", "RRDB blocks body.N", source)
    num_grow_ch = 32
    if num_block:
        growth = {shape_of(state_dict, f"body.{b}.rdb{r}.conv1.weight")[0]
                  for b in range(num_block) for r in (1, 2, 3) if f"body.{b}.rdb{r}.conv1.weight" in state_dict}
        if len(growth) != 1:
            raise CheckpointError(f"{source}: dense blocks grow by different channel counts {sorted(growth)}")
        num_grow_ch = growth.pop()
    by_input = {num_out_ch * factor**2: scale for scale, factor in UNSHUFFLE.items()}
    if first_in in by_input:
        scale = by_input[first_in]
        num_in_ch = first_in // UNSHUFFLE[scale] ** 2
    else:
        scale, num_in_ch = 4, first_in
        warnings.warn(
            f"{source}: conv_first reads {first_in} channels and conv_last writes {num_out_ch}, which is none of "
            f"the scale 4/2/1 layouts ({num_out_ch}/{4 * num_out_ch}/{16 * num_out_ch}); using scale=4 with "
            f"num_in_ch={first_in}; set model.scale and num_in_ch in an option file if that is wrong",
            UserWarning,
            stacklevel=2,
        )
    return {"type": "RRDBNet", "num_in_ch": num_in_ch, "num_out_ch": num_out_ch, "scale": scale,
            "num_feat": num_feat, "num_block": num_block, "num_grow_ch": num_grow_ch}


_SRVGG_KEY = re.compile(r"body\.(\d+)\.(weight|bias)$")


@DETECTORS.register("SRVGGNetCompact")
def detect_srvgg(state_dict: StateDict, *, filename: str | None = None) -> dict[str, Any] | None:
    """``{"type": "SRVGGNetCompact", ...}`` for a Real-ESRGAN compact state dict, ``None`` for anything else.

    Its file holds only ``body.N`` entries: convs (4-D weight and bias) at even N, PReLU slopes (1-D
    weight) at odd N when ``act_type`` is ``prelu``.

    Raises:
        CheckpointError: its layout with a gap, or a last conv whose width gives no integer upscale.
    """
    if "body.0.weight" not in state_dict or not all(_SRVGG_KEY.match(key) for key in state_dict):
        return None
    convs, acts = [], []
    for key in state_dict:
        m = _SRVGG_KEY.match(key)
        assert m is not None  # every key matched above
        index, ndim = int(m.group(1)), state_dict[key].ndim
        if index % 2 == 0 and ndim in (1, 4):
            convs.append(index)
        elif index % 2 == 1 and m.group(2) == "weight" and ndim == 1:
            acts.append(index)
        else:  # another family's sequential layout
            return None
    convs, acts = sorted(set(convs)), sorted(set(acts))
    if len(state_dict["body.0.weight"].shape) != 4 or len(convs) < 2:
        return None
    source = source_name(filename, "SRVGGNetCompact")
    last = convs[-1]
    num_conv = (last - 2) // 2
    if convs != list(range(0, last + 1, 2)) or last != last_conv_index(num_conv):
        raise CheckpointError(f"{source}: convs at body.{convs} are not consecutive (expected 0, 2, ..., {last})")
    if acts and acts != list(range(1, last, 2)):
        raise CheckpointError(f"{source}: PReLU slopes at body.{acts}, expected one after every conv but the last")
    num_feat, num_in_ch = shape_of(state_dict, "body.0.weight")[:2]
    last_channels = shape_of(state_dict, f"body.{last}.weight")[0]
    upscale = upscale_from_channels(last_channels, num_in_ch)
    if upscale is None:
        raise CheckpointError(
            f"{source}: the last conv gives {last_channels} channels, not {num_in_ch} x upscale^2 for an integer "
            "upscale"
        )
    act_type = "prelu" if acts else srvgg_act_without_prelu(filename, source)
    return {"type": "SRVGGNetCompact", "num_in_ch": num_in_ch, "num_out_ch": num_in_ch, "num_feat": num_feat,
            "num_conv": num_conv, "upscale": upscale, "act_type": act_type}


def srvgg_act_without_prelu(filename: str | None, source: str) -> str:
    """``relu`` or ``leakyrelu`` for a compact net without PReLU weights: the file name's word, else
    ``leakyrelu`` said in one warning line (no tensor tells them apart)."""
    name = Path(filename).name.lower() if filename else ""
    if "leakyrelu" in name or "lrelu" in name:
        return "leakyrelu"
    if "relu" in name:
        return "relu"
    warnings.warn(
        f"{source}: no PReLU weights, so act_type is 'relu' or 'leakyrelu', which no tensor tells apart; using "
        "'leakyrelu'; set model.act_type: relu in an option file if it was trained with ReLU",
        UserWarning,
        stacklevel=3,
    )
    return "leakyrelu"
