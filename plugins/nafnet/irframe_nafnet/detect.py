"""Checkpoint detectors for NAFNet and Baseline: read the build config back from keys and shapes.

The two families have the same U-Net keys (``intro``, ``ending``, ``encoders``, ``decoders``,
``middle_blks``, ``ups``, ``downs``) and differ in their blocks' attention: NAFNet's ``sca.1`` (one
conv), Baseline's ``se.1``/``se.3`` (two convs). Each detector claims only files with its own
attention keys, so neither knows the other's and no order between them is needed.

A fact no tensor records: whether the model is evaluated with test-time local statistics (TLC,
``NAFNetLocal`` / ``BaselineLocal`` with ``train_size``). The released GoPro and REDS deblurring
models are (``train_size`` (1, 3, 256, 256)); they are recognised by their block counts (or a file
name naming GoPro / REDS) and detected as the ``*Local`` type, with a one-line warning saying how to
choose the plain model instead. Everything else (SIDD denoising, unknown counts) is the plain model.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import torch

from irframe.errors import CheckpointError
from irframe.registry import DETECTORS
from irframe_nafnet.arch import DEFAULT_TRAIN_SIZE

# Every key of a NAFNet / Baseline state_dict starts with one of these.
_PREFIXES = ("intro.", "ending.", "encoders.", "decoders.", "middle_blks.", "ups.", "downs.")
# Block counts (enc_blk_nums, middle_blk_num, dec_blk_nums) of the released GoPro / REDS models
# (NAFNet width 32 / 64, Baseline width 32 / 64), which are evaluated with TLC.
TLC_RELEASED_COUNTS = (([1, 1, 1, 28], 1, [1, 1, 1, 1]),)
# File names naming the data set (a hint that wins over the block counts).
_TLC_NAME = re.compile(r"(?<![a-z])(gopro|reds)(?![a-z])")
_PLAIN_NAME = re.compile(r"(?<![a-z])sidd(?![a-z])")

_ATTENTION = {"NAFNet": re.compile(r"\.sca\.1\.weight$"), "Baseline": re.compile(r"\.se\.1\.weight$")}


def _shape(state_dict: Mapping[str, torch.Tensor], key: str, arch: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in state_dict[key].shape)
    except KeyError:
        raise CheckpointError(f"{arch} checkpoint has no entry {key!r}") from None


def _indices(state_dict: Mapping[str, torch.Tensor], pattern: str, arch: str, what: str) -> list[int]:
    """Sorted distinct first captured indices of ``pattern`` among the keys; they must run 0..n-1."""
    regex = re.compile(pattern)
    found = sorted({int(m.group(1)) for key in state_dict if (m := regex.match(key))})
    if found != list(range(len(found))):
        raise CheckpointError(f"{arch} checkpoint: {what} indices {found} are not contiguous from 0")
    return found


def _count(state_dict: Mapping[str, torch.Tensor], stage: str, arch: str) -> int:
    """Number of blocks ``<stage>.<j>.*`` (0 if none)."""
    return len(_indices(state_dict, rf"^{re.escape(stage)}\.(\d+)\.", arch, stage))


def read_unet(state_dict: Mapping[str, torch.Tensor], arch: str) -> dict[str, Any]:
    """``img_channel``, ``width`` and the block counts of a NAFNet/Baseline state_dict.

    Raises:
        CheckpointError: the shapes describe no buildable model (a missing tensor, encoder and decoder
            level counts that differ, an ``ending`` that does not map ``width`` back to the image).
    """
    intro, ending = _shape(state_dict, "intro.weight", arch), _shape(state_dict, "ending.weight", arch)
    if len(intro) != 4:
        raise CheckpointError(f"{arch} checkpoint: intro.weight {intro} is no conv weight (4 dimensions)")
    width, img_channel = intro[:2]
    if ending[:2] != (img_channel, width):
        raise CheckpointError(
            f"{arch} checkpoint: ending.weight {ending} does not map width {width} back to the {img_channel} "
            f"channels intro.weight reads"
        )
    n_down = len(_indices(state_dict, r"^downs\.(\d+)\.", arch, "downs"))
    n_up = len(_indices(state_dict, r"^ups\.(\d+)\.", arch, "ups"))
    if n_down != n_up:
        raise CheckpointError(
            f"{arch} checkpoint: {n_down} downsampling levels (downs.*) but {n_up} upsampling levels (ups.*); "
            "the architecture climbs back every level it goes down"
        )
    for stage, n in (("encoders", n_down), ("decoders", n_up)):
        # A level without blocks has no keys, so level indices may skip; none may exceed the levels.
        levels = re.compile(rf"^{stage}\.(\d+)\.")
        extra = sorted(i for key in state_dict if (m := levels.match(key)) and (i := int(m.group(1))) >= n)
        if extra:
            raise CheckpointError(f"{arch} checkpoint: {stage}.{extra[0]} exists but there are only {n} levels")
    return {
        "img_channel": img_channel,
        "width": width,
        "middle_blk_num": _count(state_dict, "middle_blks", arch),
        "enc_blk_nums": [_count(state_dict, f"encoders.{i}", arch) for i in range(n_down)],
        "dec_blk_nums": [_count(state_dict, f"decoders.{i}", arch) for i in range(n_up)],
    }


def _unet_keys(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``intro.weight`` is there and every key is one of the U-Net's."""
    return "intro.weight" in state_dict and all(key.startswith(_PREFIXES) for key in state_dict)


def _family(state_dict: Mapping[str, torch.Tensor], arch: str) -> bool:
    """Whether the file has the U-Net keys only and ``arch``'s attention keys (CheckpointError if mixed)."""
    if not _unet_keys(state_dict):
        return False
    mine = any(_ATTENTION[arch].search(key) for key in state_dict)
    if mine and any(_ATTENTION[other].search(key) for other in _ATTENTION if other != arch for key in state_dict):
        raise CheckpointError(f"{arch} checkpoint mixes NAFNet (sca.*) and Baseline (se.*) blocks")
    return mine


def _expansion(state_dict: Mapping[str, torch.Tensor], conv: str, arch: str) -> int:
    """Ratio ``out / in`` of every block's ``conv`` (1x1), which must be one integer."""
    ratios = set()
    for key, value in state_dict.items():
        if key.endswith(f".{conv}.weight"):
            out_ch, in_ch = int(value.shape[0]), int(value.shape[1])
            if in_ch < 1 or out_ch % in_ch:
                raise CheckpointError(f"{arch} checkpoint: {key} {tuple(value.shape)} is no integer expansion")
            ratios.add(out_ch // in_ch)
    if len(ratios) != 1:
        raise CheckpointError(f"{arch} checkpoint: the blocks' {conv} expansions differ: {sorted(ratios)}")
    return ratios.pop()


def _tlc_reason(config: Mapping[str, Any], filename: str | None) -> str | None:
    """Why this file is a released TLC model (None if it is not one).

    A file name naming SIDD (and not GoPro/REDS) means the plain model whatever the block counts;
    otherwise the released GoPro/REDS block counts, or a file name naming GoPro/REDS, mean TLC.
    """
    name = PurePath(filename).name if filename else ""
    tlc_name, plain_name = bool(_TLC_NAME.search(name.lower())), bool(_PLAIN_NAME.search(name.lower()))
    if plain_name and not tlc_name:
        return None
    counts = (config["enc_blk_nums"], config["middle_blk_num"], config["dec_blk_nums"])
    if counts in TLC_RELEASED_COUNTS:
        enc, mid, dec = counts
        return f"its block counts (enc {enc}, middle {mid}, dec {dec}) are those of the released GoPro/REDS models"
    if tlc_name and not plain_name:
        return f"the file name {name!r} names the released GoPro/REDS deblurring models"
    return None


def _with_tlc(config: dict[str, Any], arch: str, filename: str | None) -> dict[str, Any]:
    reason = _tlc_reason(config, filename)
    if reason is None:
        return config
    train_size = list(DEFAULT_TRAIN_SIZE)
    warnings.warn(
        f"{arch} checkpoint: {reason}, which are evaluated with test-time local statistics: using {arch}Local "
        f"with train_size {train_size} (no tensor records it); for plain {arch} (global pooling) or another "
        f"train_size, pass an option file (-opt) with model: {{type: {arch}, ...}} or {{type: {arch}Local, "
        "train_size: [...]}",
        UserWarning,
        stacklevel=2,
    )
    return {**config, "type": f"{arch}Local", "train_size": train_size, "fast_imp": False}


@DETECTORS.register("NAFNet")
def detect_nafnet(
    state_dict: Mapping[str, torch.Tensor], *, filename: str | None = None
) -> dict[str, Any] | None:
    """Build config (``{"type": "NAFNet" or "NAFNetLocal", ...}``) of a NAFNet state_dict, or None.

    ``state_dict`` must already be unwrapped (no ``params``/``module.`` layers). A file with the U-Net
    keys but no block at all is claimed here too (NAFNet and Baseline are the same model then).

    Raises:
        CheckpointError: the keys are NAFNet's but describe no buildable model.
    """
    if not _family(state_dict, "NAFNet"):
        blockless = _unet_keys(state_dict) and not any(p.search(k) for p in _ATTENTION.values() for k in state_dict)
        if not blockless:
            return None
    config: dict[str, Any] = {"type": "NAFNet", **read_unet(state_dict, "NAFNet")}
    return _with_tlc(config, "NAFNet", filename)


@DETECTORS.register("NAFNetBaseline")
def detect_baseline(
    state_dict: Mapping[str, torch.Tensor], *, filename: str | None = None
) -> dict[str, Any] | None:
    """Build config (``{"type": "Baseline" or "BaselineLocal", ...}``) of a NAFNet-paper Baseline
    state_dict, or None. ``dw_expand`` and ``ffn_expand`` come from the ``conv1`` / ``conv4`` widths.

    Raises:
        CheckpointError: the keys are Baseline's but describe no buildable model.
    """
    if not _family(state_dict, "Baseline"):
        return None
    config: dict[str, Any] = {"type": "Baseline", **read_unet(state_dict, "Baseline")}
    config["dw_expand"] = _expansion(state_dict, "conv1", "Baseline")
    config["ffn_expand"] = _expansion(state_dict, "conv4", "Baseline")
    return _with_tlc(config, "Baseline", filename)
