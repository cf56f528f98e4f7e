"""Real-ESRGAN's U-Net discriminator with spectral normalisation (``UNetDiscriminatorSN``).

Three stride-2 convolutions down, three bilinear 2x upsamplings with convolutions back up (with
skip connections added at each level), two more convolutions and a 1-channel head: one realness
logit per pixel. Every convolution but the first and the last is spectrally normalised with
:func:`torch.nn.utils.spectral_norm`, so the ``state_dict`` holds ``weight_orig`` / ``weight_u`` /
``weight_v`` as Real-ESRGAN's released ``net_d`` checkpoints do (they load with ``strict=True``).

Spectral norm keeps a power-iteration estimate (``weight_u``, ``weight_v``) that advances one step
at every training-mode forward; in eval mode the stored vectors are used as they are, so a loaded
checkpoint reproduces its output exactly there.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from irframe.errors import OptionsError
from irframe.registry import ARCHS
from irframe_gan_discriminators.spec import ROLE, DiscriminatorSpec

# Three stride-2 stages, then three 2x upsamplings whose outputs are added to the skips.
SIZE_MULTIPLE = 8


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, negative_slope=0.2, inplace=True)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


@ARCHS.register("UNetDiscriminatorSN")
class UNetDiscriminatorSN(nn.Module):
    """U-Net discriminator with spectral normalisation (Real-ESRGAN).

    Args:
        num_in_ch: channels of the judged images.
        num_feat: channels of the first level (then 2x, 4x, 8x at the bottom).
        skip_connection: add each encoder level to the decoder level of the same size.

    ``forward(x)`` takes ``[N, num_in_ch, H, W]`` with H and W multiples of 8 and returns
    ``[N, 1, H, W]`` logits.
    """

    role: ClassVar[str] = ROLE

    def __init__(self, num_in_ch: int, num_feat: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        if num_in_ch < 1 or num_feat < 1:
            raise OptionsError(
                f"UNetDiscriminatorSN: num_in_ch and num_feat must be positive, got {num_in_ch}, {num_feat}"
            )
        self.skip_connection = skip_connection
        self.disc_spec = DiscriminatorSpec(
            in_channels=num_in_ch, input_size=None, size_multiple=SIZE_MULTIPLE, output="pixel"
        )
        norm = spectral_norm
        # the first convolution
        self.conv0 = nn.Conv2d(num_in_ch, num_feat, kernel_size=3, stride=1, padding=1)
        # downsample
        self.conv1 = norm(nn.Conv2d(num_feat, num_feat * 2, 4, 2, 1, bias=False))
        self.conv2 = norm(nn.Conv2d(num_feat * 2, num_feat * 4, 4, 2, 1, bias=False))
        self.conv3 = norm(nn.Conv2d(num_feat * 4, num_feat * 8, 4, 2, 1, bias=False))
        # upsample
        self.conv4 = norm(nn.Conv2d(num_feat * 8, num_feat * 4, 3, 1, 1, bias=False))
        self.conv5 = norm(nn.Conv2d(num_feat * 4, num_feat * 2, 3, 1, 1, bias=False))
        self.conv6 = norm(nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1, bias=False))
        # extra convolutions
        self.conv7 = norm(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False))
        self.conv8 = norm(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(num_feat, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.disc_spec.check_input(x, "UNetDiscriminatorSN")
        # downsample
        x0 = _lrelu(self.conv0(x))
        x1 = _lrelu(self.conv1(x0))
        x2 = _lrelu(self.conv2(x1))
        x3 = _lrelu(self.conv3(x2))
        # upsample, adding the encoder level of the same size
        x4 = _lrelu(self.conv4(_up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = _lrelu(self.conv5(_up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = _lrelu(self.conv6(_up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        # extra convolutions
        out = _lrelu(self.conv7(x6))
        out = _lrelu(self.conv8(out))
        return self.conv9(out)
