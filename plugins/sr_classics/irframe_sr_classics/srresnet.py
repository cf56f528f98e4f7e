"""MSRResNet: SRResNet (Ledig et al. 2017) without batch norm, as in BasicSR's ``srresnet_arch``.

Layout: ``conv_first``, ``body.N.conv1/conv2``, ``upconv1`` (x2/x3: one pixel-shuffle step; x4: two,
with ``upconv2``), ``conv_hr``, ``conv_last``; the output adds the bilinearly upsampled input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from irframe.errors import OptionsError
from irframe.nn.spec import ModelSpec
from irframe.registry import ARCHS
from irframe_sr_classics.blocks import (
    ResidualBlockNoBN,
    check_non_negative,
    check_positive,
    default_init_weights,
    make_layer,
    tile_overlap_for,
)

SUPPORTED_UPSCALES = (2, 3, 4)  # as the official code (upscale 1 fails there)


@ARCHS.register()
class MSRResNet(nn.Module):
    """Modified SRResNet: residual blocks without batch norm, pixel-shuffle upsampling, global bilinear skip.

    Released configurations: ``num_feat`` 64, ``num_block`` 16, x2/x3/x4.

    Args:
        num_in_ch: input channels.
        num_out_ch: output channels (equal to ``num_in_ch``: the upsampled input is added).
        num_feat: feature channels.
        num_block: residual blocks.
        upscale: 2, 3 or 4.
    """

    def __init__(
        self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16, upscale: int = 4
    ) -> None:
        super().__init__()
        check_positive("MSRResNet", num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat)
        check_non_negative("MSRResNet", num_block=num_block)
        if upscale not in SUPPORTED_UPSCALES:
            raise OptionsError(f"MSRResNet: upscale={upscale} is not supported; choose one of 2, 3, 4")
        if num_in_ch != num_out_ch:
            raise OptionsError(
                f"MSRResNet: the output adds the upsampled input, so num_out_ch must equal num_in_ch; "
                f"got {num_in_ch} and {num_out_ch}"
            )
        self.upscale = upscale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat)
        if upscale in (2, 3):
            self.upconv1 = nn.Conv2d(num_feat, num_feat * upscale * upscale, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(upscale)
        else:  # 4: two x2 steps
            self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(2)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)
        default_init_weights([self.conv_first, self.upconv1, self.conv_hr, self.conv_last], 0.1)
        if upscale == 4:
            default_init_weights(self.upconv2, 0.1)
        self.spec = ModelSpec(
            in_channels=num_in_ch,
            out_channels=num_out_ch,
            scale=upscale,
            size_multiple=1,
            value_range=1.0,
            tileable=True,
            tile_overlap=tile_overlap_for(2 * num_block + 4),  # receptive-field radius (LR pixels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` (N, C, H, W) in [0, 1] to (N, C, H*upscale, W*upscale)."""
        feat = self.lrelu(self.conv_first(x))
        out = self.body(feat)
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.upscale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        base = F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)
        return out + base
