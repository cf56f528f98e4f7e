"""Convolutional pieces of IPT: mean shift, the heads' residual blocks and the tails' upsamplers.

Module and attribute names follow the official code (huawei-noah/Pretrained-IPT, ``model/common.py``)
so that released checkpoints load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from irframe.errors import OptionsError

# DIV2K RGB mean used by the official code (and by EDSR before it).
DIV2K_RGB_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)


def default_conv(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> nn.Conv2d:
    """A 'same'-padded convolution (odd kernel sizes)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)


class MeanShift(nn.Conv2d):
    """Fixed 1x1 conv adding ``sign * rgb_range * mean`` per channel.

    It is a (frozen) conv rather than a buffer because the official checkpoints store its weight
    and bias as ``sub_mean.*`` / ``add_mean.*``.
    """

    def __init__(
        self,
        rgb_range: float,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
        sign: int = -1,
    ) -> None:
        super().__init__(3, 3, kernel_size=1)
        assert self.bias is not None  # built with bias=True
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(tuple(rgb_mean)))
        for p in self.parameters():
            p.requires_grad = False


class ResBlock(nn.Module):
    """conv -> ReLU -> conv plus identity (EDSR block, no batch norm, residual scale 1)."""

    def __init__(self, n_feats: int, kernel_size: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            default_conv(n_feats, n_feats, kernel_size),
            nn.ReLU(inplace=True),
            default_conv(n_feats, n_feats, kernel_size),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + x


def check_scale(scale: int) -> None:
    """Raise :class:`OptionsError` unless the tails can upsample by ``scale`` (1, 3 or a power of two)."""
    if scale < 1 or (scale != 3 and scale & (scale - 1)):
        raise OptionsError(f"IPT.scale: {scale} is not supported (use 1, 3 or a power of two: 2, 4, 8)")


class Upsampler(nn.Sequential):
    """Sub-pixel upsampling: log2(scale) x (conv to 4C + PixelShuffle(2)), or conv to 9C + shuffle 3.

    Scale 1 gives an empty sequence (kept so that the tail's conv stays at index 1, as officially).
    """

    def __init__(self, scale: int, n_feats: int) -> None:
        check_scale(scale)
        layers: list[nn.Module] = []
        if scale == 3:
            layers += [default_conv(n_feats, 9 * n_feats, 3), nn.PixelShuffle(3)]
        else:
            for _ in range(scale.bit_length() - 1):
                layers += [default_conv(n_feats, 4 * n_feats, 3), nn.PixelShuffle(2)]
        super().__init__(*layers)


def make_head(n_colors: int, n_feats: int) -> nn.Sequential:
    """Task head: 3x3 conv to ``n_feats`` then two 5x5 residual blocks."""
    return nn.Sequential(default_conv(n_colors, n_feats, 3), ResBlock(n_feats, 5), ResBlock(n_feats, 5))


def make_tail(scale: int, n_feats: int, n_colors: int) -> nn.Sequential:
    """Task tail: upsampler for ``scale`` then a 3x3 conv back to ``n_colors``."""
    return nn.Sequential(Upsampler(scale, n_feats), default_conv(n_feats, n_colors, 3))
