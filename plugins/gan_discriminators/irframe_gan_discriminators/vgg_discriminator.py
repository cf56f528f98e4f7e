"""ESRGAN's VGG-style discriminator (BasicSR's ``VGGStyleDiscriminator``), registered under that name.

Ten conv-BN-LeakyReLU layers, each pair halving the resolution, then two linear layers giving one
realness logit per image. The linear head reads a 4x4 map, so the input side is fixed: 128 (five
halvings) or 256 (six). Constructor arguments and ``state_dict`` names are BasicSR's, so its
released ``net_d`` checkpoints load with ``strict=True``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from irframe.errors import OptionsError
from irframe.registry import ARCHS
from irframe_gan_discriminators.spec import ROLE, DiscriminatorSpec

INPUT_SIZES = (128, 256)


@ARCHS.register("VGGStyleDiscriminator")
class VGGStyleDiscriminator(nn.Module):
    """VGG-style discriminator for 128x128 or 256x256 inputs (SRGAN, ESRGAN).

    Args:
        num_in_ch: channels of the judged images.
        num_feat: channels of the first stage (later stages 2x, 4x, 8x).
        input_size: 128 or 256; inputs must be exactly ``input_size`` square.

    ``forward(x)`` takes ``[N, num_in_ch, input_size, input_size]`` and returns ``[N, 1]`` logits.
    """

    role: ClassVar[str] = ROLE

    def __init__(self, num_in_ch: int, num_feat: int, input_size: int = 128) -> None:
        super().__init__()
        if input_size not in INPUT_SIZES:
            raise OptionsError(f"VGGStyleDiscriminator.input_size: must be 128 or 256, got {input_size!r}")
        if num_in_ch < 1 or num_feat < 1:
            raise OptionsError(
                f"VGGStyleDiscriminator: num_in_ch and num_feat must be positive, got {num_in_ch}, {num_feat}"
            )
        self.input_size = input_size
        self.disc_spec = DiscriminatorSpec(
            in_channels=num_in_ch, input_size=input_size, size_multiple=1, output="image"
        )

        # Attribute order = BasicSR's state_dict order.
        self.conv0_0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(num_feat, num_feat, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(num_feat, affine=True)

        self.conv1_0 = nn.Conv2d(num_feat, num_feat * 2, 3, 1, 1, bias=False)
        self.bn1_0 = nn.BatchNorm2d(num_feat * 2, affine=True)
        self.conv1_1 = nn.Conv2d(num_feat * 2, num_feat * 2, 4, 2, 1, bias=False)
        self.bn1_1 = nn.BatchNorm2d(num_feat * 2, affine=True)

        self.conv2_0 = nn.Conv2d(num_feat * 2, num_feat * 4, 3, 1, 1, bias=False)
        self.bn2_0 = nn.BatchNorm2d(num_feat * 4, affine=True)
        self.conv2_1 = nn.Conv2d(num_feat * 4, num_feat * 4, 4, 2, 1, bias=False)
        self.bn2_1 = nn.BatchNorm2d(num_feat * 4, affine=True)

        self.conv3_0 = nn.Conv2d(num_feat * 4, num_feat * 8, 3, 1, 1, bias=False)
        self.bn3_0 = nn.BatchNorm2d(num_feat * 8, affine=True)
        self.conv3_1 = nn.Conv2d(num_feat * 8, num_feat * 8, 4, 2, 1, bias=False)
        self.bn3_1 = nn.BatchNorm2d(num_feat * 8, affine=True)

        self.conv4_0 = nn.Conv2d(num_feat * 8, num_feat * 8, 3, 1, 1, bias=False)
        self.bn4_0 = nn.BatchNorm2d(num_feat * 8, affine=True)
        self.conv4_1 = nn.Conv2d(num_feat * 8, num_feat * 8, 4, 2, 1, bias=False)
        self.bn4_1 = nn.BatchNorm2d(num_feat * 8, affine=True)

        if input_size == 256:
            self.conv5_0 = nn.Conv2d(num_feat * 8, num_feat * 8, 3, 1, 1, bias=False)
            self.bn5_0 = nn.BatchNorm2d(num_feat * 8, affine=True)
            self.conv5_1 = nn.Conv2d(num_feat * 8, num_feat * 8, 4, 2, 1, bias=False)
            self.bn5_1 = nn.BatchNorm2d(num_feat * 8, affine=True)

        self.linear1 = nn.Linear(num_feat * 8 * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def _stage(self, feat: torch.Tensor, level: int) -> torch.Tensor:
        """``conv{level}_0`` (+BN) and the stride-2 ``conv{level}_1`` + BN, each with LeakyReLU."""
        conv0: nn.Module = getattr(self, f"conv{level}_0")
        feat = conv0(feat) if level == 0 else getattr(self, f"bn{level}_0")(conv0(feat))
        feat = self.lrelu(feat)
        return self.lrelu(getattr(self, f"bn{level}_1")(getattr(self, f"conv{level}_1")(feat)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.disc_spec.check_input(x, "VGGStyleDiscriminator")
        feat = x
        for level in range(6 if self.input_size == 256 else 5):
            feat = self._stage(feat, level)  # each stage halves the size: 4x4 at the end
        feat = self.lrelu(self.linear1(feat.flatten(1)))
        return self.linear2(feat)
