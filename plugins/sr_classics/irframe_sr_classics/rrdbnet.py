"""RRDBNet: the ESRGAN generator (Wang et al. 2018), as in BasicSR's ``rrdbnet_arch``.

Layout: ``conv_first``, ``body.N.rdb{1,2,3}.conv{1..5}`` (residual-in-residual dense blocks),
``conv_body``, ``conv_up1``/``conv_up2`` (two nearest x2 steps), ``conv_hr``, ``conv_last``. For
``scale`` 2 and 1 (Real-ESRGAN x2plus) the input is pixel-unshuffled first (by 2 / 4), so
``conv_first`` reads 4x / 16x the channels and the input size must be a multiple of 2 / 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from irframe.errors import OptionsError
from irframe.nn.spec import ModelSpec
from irframe.registry import ARCHS
from irframe_sr_classics.blocks import (
    check_non_negative,
    check_positive,
    default_init_weights,
    make_layer,
    pixel_unshuffle,
    tile_overlap_for,
)

# scale -> pixel-unshuffle factor of the input (the trunk always upsamples x4).
UNSHUFFLE = {4: 1, 2: 2, 1: 4}


class ResidualDenseBlock(nn.Module):
    """Five densely connected convs (each sees the input and all earlier outputs); ``x + 0.2 * conv5(...)``.

    Args:
        num_feat: channels in and out.
        num_grow_ch: channels each of the first four convs adds.
    """

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        default_init_weights([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output, same shape as ``x``."""
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Residual in residual dense block: three dense blocks, ``x + 0.2 * rdb3(rdb2(rdb1(x)))``."""

    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output, same shape as ``x``."""
        out = self.rdb3(self.rdb2(self.rdb1(x)))
        return out * 0.2 + x


@ARCHS.register()
class RRDBNet(nn.Module):
    """ESRGAN's generator: a trunk of RRDBs at low resolution, two nearest-neighbour x2 upsampling convs.

    Released configurations: ESRGAN / Real-ESRGAN x4plus (``num_feat`` 64, ``num_block`` 23,
    ``num_grow_ch`` 32, scale 4) and Real-ESRGAN x2plus (the same with scale 2).

    Args:
        num_in_ch: image channels in (``conv_first`` reads 4x that for scale 2, 16x for scale 1).
        num_out_ch: output channels.
        scale: 4, 2 or 1 (2 and 1 pixel-unshuffle the input by 2 / 4 first).
        num_feat: feature channels.
        num_block: RRDB blocks.
        num_grow_ch: growth channels of the dense blocks.
    """

    def __init__(
        self,
        num_in_ch: int,
        num_out_ch: int,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        check_positive("RRDBNet", num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat,
                       num_grow_ch=num_grow_ch)
        check_non_negative("RRDBNet", num_block=num_block)
        if scale not in UNSHUFFLE:
            raise OptionsError(
                f"RRDBNet: scale={scale} is not supported; choose 4, 2 or 1 (2 and 1 pixel-unshuffle the input, "
                "the trunk always upsamples x4)"
            )
        self.scale = scale
        self.unshuffle = UNSHUFFLE[scale]
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle**2, num_feat, 3, 1, 1)
        self.body = make_layer(RRDB, num_block, num_feat=num_feat, num_grow_ch=num_grow_ch)
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        self.spec = ModelSpec(
            in_channels=num_in_ch,
            out_channels=num_out_ch,
            scale=scale,
            size_multiple=self.unshuffle,
            value_range=1.0,
            tileable=True,
            # receptive-field radius: 15 convs per RRDB at the trunk's resolution, in input pixels
            tile_overlap=tile_overlap_for((15 * num_block + 5) * self.unshuffle, self.unshuffle),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` (N, num_in_ch, H, W) in [0, 1] to (N, num_out_ch, H*scale, W*scale).

        Raises:
            ValueError: for scale 2 / 1, H or W is not a multiple of 2 / 4 (``restore`` pads for it).
        """
        feat = pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))
