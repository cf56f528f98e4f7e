"""RCAN (Zhang et al. 2018, "Image Super-Resolution Using Very Deep Residual Channel Attention Networks").

BasicSR's ``rcan_arch`` layout: ``conv_first``, ``body.G.residual_group.B.rcab.{0,2}`` (convs) and
``rcab.3.attention.{1,3}`` (channel attention), ``body.G.conv``, ``conv_after_body``, ``upsample.N``,
``conv_last``. Like EDSR it computes on ``(x - rgb_mean) * img_range`` inside forward.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from irframe.errors import OptionsError
from irframe.registry import ARCHS
from irframe_sr_classics.blocks import (
    DIV2K_RGB_MEAN,
    MAX_TILE_OVERLAP,
    MeanShiftSR,
    check_non_negative,
    check_positive,
    check_upsample_scale,
    make_layer,
)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: global average pool, 1x1 conv down by ``squeeze_factor``, ReLU, 1x1 conv up,
    sigmoid; the input is scaled channel-wise by the result."""

    def __init__(self, num_feat: int, squeeze_factor: int = 16) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(num_feat, num_feat // squeeze_factor, 1, padding=0),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_feat // squeeze_factor, num_feat, 1, padding=0),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` scaled by its channel attention."""
        return x * self.attention(x)


class RCAB(nn.Module):
    """Residual channel attention block: ``x + res_scale * CA(conv(relu(conv(x))))``."""

    def __init__(self, num_feat: int, squeeze_factor: int = 16, res_scale: float = 1) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.rcab = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1),
            nn.ReLU(True),
            nn.Conv2d(num_feat, num_feat, 3, 1, 1),
            ChannelAttention(num_feat, squeeze_factor),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output, same shape as ``x``."""
        return self.rcab(x) * self.res_scale + x


class ResidualGroup(nn.Module):
    """``num_block`` RCABs and a conv, with a skip connection around them."""

    def __init__(self, num_feat: int, num_block: int, squeeze_factor: int = 16, res_scale: float = 1) -> None:
        super().__init__()
        self.residual_group = make_layer(
            RCAB, num_block, num_feat=num_feat, squeeze_factor=squeeze_factor, res_scale=res_scale
        )
        self.conv = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The group's output, same shape as ``x``."""
        return self.conv(self.residual_group(x)) + x


@ARCHS.register()
class RCAN(MeanShiftSR):
    """RCAN: residual groups of channel-attention blocks, then a pixel-shuffle tail.

    Released configuration (BasicSR's RCAN x4): ``num_feat`` 64, ``num_group`` 10, ``num_block`` 20,
    ``squeeze_factor`` 16. Channel attention pools over the whole input, so tiled inference is an
    approximation of whole-image inference.

    Args:
        num_in_ch: input channels.
        num_out_ch: output channels.
        num_feat: feature channels.
        num_group: residual groups.
        num_block: channel-attention blocks per group.
        squeeze_factor: channel reduction inside the attention (``num_feat // squeeze_factor`` >= 1).
        upscale: scale factor, 2^n or 3.
        res_scale: factor on each block's residual branch; no tensor records it.
        img_range: the scale the net computes at (255 for the released weights).
        rgb_mean: mean subtracted inside forward (one value per channel, or one for all).
    """

    def __init__(
        self,
        num_in_ch: int,
        num_out_ch: int,
        num_feat: int = 64,
        num_group: int = 10,
        num_block: int = 16,
        squeeze_factor: int = 16,
        upscale: int = 4,
        res_scale: float = 1,
        img_range: float = 255.0,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        check_positive("RCAN", num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat,
                       squeeze_factor=squeeze_factor)
        check_non_negative("RCAN", num_group=num_group, num_block=num_block)
        check_upsample_scale(upscale, "RCAN")
        if num_feat // squeeze_factor < 1:
            raise OptionsError(
                f"RCAN: squeeze_factor={squeeze_factor} leaves no channel in the attention of num_feat={num_feat} "
                "(num_feat // squeeze_factor must be >= 1)"
            )
        self._build_head("RCAN", num_in_ch, num_out_ch, num_feat, img_range, rgb_mean)
        self.body = make_layer(
            ResidualGroup, num_group, num_feat=num_feat, num_block=num_block, squeeze_factor=squeeze_factor,
            res_scale=res_scale,
        )
        # channel attention pools globally: tiles approximate the whole image, whatever the overlap
        self._build_tail(num_feat, num_out_ch, upscale, tile_overlap=MAX_TILE_OVERLAP)
