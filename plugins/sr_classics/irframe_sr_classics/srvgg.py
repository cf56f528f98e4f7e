"""SRVGGNetCompact: Real-ESRGAN's compact VGG-style net (``srvgg_arch``), the general-x4v3 / animevideo models.

Layout: one ``body`` list of convs and activations (``body.0`` conv, ``body.1`` activation,
``body.2`` conv, ..., the last conv at ``body.{2 * num_conv + 2}``), a pixel shuffle, and the
nearest-upsampled input added. Only PReLU activations hold parameters (``body.{odd}.weight``).
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from irframe.errors import OptionsError
from irframe.nn.spec import ModelSpec
from irframe.registry import ARCHS
from irframe_sr_classics.blocks import check_non_negative, check_positive, tile_overlap_for

ActType = Literal["prelu", "relu", "leakyrelu"]
ACT_TYPES: tuple[str, ...] = get_args(ActType)


def make_activation(act_type: str, num_feat: int) -> nn.Module:
    """The activation ``act_type`` names: PReLU (one slope per channel), ReLU, or LeakyReLU (slope 0.1).

    Raises:
        OptionsError: another name.
    """
    if act_type == "prelu":
        return nn.PReLU(num_parameters=num_feat)
    if act_type == "relu":
        return nn.ReLU(inplace=True)
    if act_type == "leakyrelu":
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)
    raise OptionsError(f"SRVGGNetCompact: act_type={act_type!r} is not supported; choose one of {', '.join(ACT_TYPES)}")


@ARCHS.register()
class SRVGGNetCompact(nn.Module):
    """A plain stack of 3x3 convs at low resolution, a pixel shuffle, and a nearest-upsampled skip.

    Released configurations: general-x4v3 (``num_conv`` 32) and animevideo-v3 (16), both 64
    features, x4, PReLU.

    Args:
        num_in_ch: input channels.
        num_out_ch: output channels (equal to ``num_in_ch``: the upsampled input is added).
        num_feat: feature channels.
        num_conv: convs between the first and the last.
        upscale: scale factor (any integer >= 1: the last conv gives ``num_out_ch * upscale^2`` channels).
        act_type: ``prelu``, ``relu`` or ``leakyrelu``.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
        act_type: ActType = "prelu",
    ) -> None:
        super().__init__()
        check_positive("SRVGGNetCompact", num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat,
                       upscale=upscale)
        check_non_negative("SRVGGNetCompact", num_conv=num_conv)
        if num_in_ch != num_out_ch:
            raise OptionsError(
                f"SRVGGNetCompact: the output adds the upsampled input, so num_out_ch must equal num_in_ch; "
                f"got {num_in_ch} and {num_out_ch}"
            )
        make_activation(act_type, num_feat)  # refuse an unknown act_type before building anything
        self.num_in_ch, self.num_out_ch, self.num_feat = num_in_ch, num_out_ch, num_feat
        self.num_conv, self.upscale, self.act_type = num_conv, upscale, act_type

        self.body = nn.ModuleList()
        self.body.append(nn.Conv2d(num_in_ch, num_feat, 3, 1, 1))
        self.body.append(make_activation(act_type, num_feat))
        for _ in range(num_conv):
            self.body.append(nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            self.body.append(make_activation(act_type, num_feat))
        self.body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)
        self.spec = ModelSpec(
            in_channels=num_in_ch,
            out_channels=num_out_ch,
            scale=upscale,
            size_multiple=1,
            value_range=1.0,
            tileable=True,
            tile_overlap=tile_overlap_for(num_conv + 2),  # receptive-field radius (input pixels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` (N, C, H, W) in [0, 1] to (N, C, H*upscale, W*upscale)."""
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        base = F.interpolate(x, scale_factor=self.upscale, mode="nearest")
        return out + base


def last_conv_index(num_conv: int) -> int:
    """Index in ``body`` of the last conv (the one before the pixel shuffle)."""
    return 2 * num_conv + 2


def upscale_from_channels(last_channels: int, num_out_ch: int) -> int | None:
    """``upscale`` from the last conv's output channels (``num_out_ch * upscale^2``), or None."""
    if last_channels % num_out_ch:
        return None
    root = math.isqrt(last_channels // num_out_ch)
    return root if root >= 1 and root * root * num_out_ch == last_channels else None
