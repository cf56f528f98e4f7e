"""The Restormer network (registered as ``Restormer``).

A 4-level encoder/decoder of MDTA + GDFN transformer blocks with pixel-(un)shuffle resampling,
skip connections concatenated on the way up, refinement blocks at full resolution and a global
residual (``output = net(x) + x``). Constructor arguments keep the official names and defaults,
and the ``state_dict`` keys and shapes are the official ones, so released checkpoints
(``params`` of the BasicSR ``.pth`` files) load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from irframe.errors import OptionsError
from irframe.nn.spec import ModelSpec
from irframe.registry import ARCHS
from irframe_restormer.blocks import (
    Downsample,
    LayerNormType,
    OverlapPatchEmbed,
    Upsample,
    channels_last_on_cpu,
    check_backbone_options,
    check_input_size,
    transformer_stage,
)

# Three 2x downsamplings: height and width must be multiples of 2**3.
SIZE_MULTIPLE = 8


@ARCHS.register("Restormer")
class Restormer(nn.Module):
    """Restormer (Zamir et al., CVPR 2022).

    Args:
        inp_channels: input channels (3 RGB, 1 grayscale, 6 for the dual-pixel task's two views).
        out_channels: output channels.
        dim: channels of level 1; level ``i`` has ``dim * 2**(i-1)``.
        num_blocks: transformer blocks per level (encoder levels 1-3 and the latent; the decoder
            levels 3-1 repeat the counts of their encoder levels).
        num_refinement_blocks: blocks at full resolution after decoder level 1.
        heads: attention heads per level.
        ffn_expansion_factor: GDFN hidden width / block width (truncated to an int per block).
        bias: biases in the attention, feed-forward, 1x1 reduction and output convs.
        LayerNorm_type: ``'WithBias'`` (deraining, deblurring) or ``'BiasFree'`` (denoising).
        dual_pixel_task: dual-pixel defocus deblurring: a 1x1 ``skip_conv`` adds the level-1
            embedding before the output conv and no input residual is added (6 in, 3 out).
    """

    def __init__(
        self,
        inp_channels: int = 3,
        out_channels: int = 3,
        dim: int = 48,
        num_blocks: Sequence[int] = (4, 6, 6, 8),
        num_refinement_blocks: int = 4,
        heads: Sequence[int] = (1, 2, 4, 8),
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        LayerNorm_type: LayerNormType = "WithBias",
        dual_pixel_task: bool = False,
    ) -> None:
        super().__init__()
        num_blocks, heads = check_backbone_options(
            "Restormer", dim, num_blocks, num_refinement_blocks, heads, ffn_expansion_factor
        )
        if inp_channels < 1 or out_channels < 1:
            raise OptionsError(
                f"Restormer: inp_channels and out_channels must be positive, got {inp_channels}, {out_channels}"
            )
        if not dual_pixel_task and inp_channels != out_channels:
            raise OptionsError(
                f"Restormer: the global residual (output + input) needs inp_channels == out_channels, "
                f"got {inp_channels} and {out_channels}; set dual_pixel_task=True for the 6-in/3-out model"
            )
        self.dual_pixel_task = dual_pixel_task

        def stage(width: int, level: int, count: int) -> nn.Sequential:
            return transformer_stage(width, heads[level], count, ffn_expansion_factor, bias, LayerNorm_type)

        # Attribute order = official state_dict order.
        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)
        self.encoder_level1 = stage(dim, 0, num_blocks[0])
        self.down1_2 = Downsample(dim)
        self.encoder_level2 = stage(dim * 2, 1, num_blocks[1])
        self.down2_3 = Downsample(dim * 2)
        self.encoder_level3 = stage(dim * 4, 2, num_blocks[2])
        self.down3_4 = Downsample(dim * 4)
        self.latent = stage(dim * 8, 3, num_blocks[3])

        self.up4_3 = Upsample(dim * 8)
        self.reduce_chan_level3 = nn.Conv2d(dim * 8, dim * 4, kernel_size=1, bias=bias)
        self.decoder_level3 = stage(dim * 4, 2, num_blocks[2])
        self.up3_2 = Upsample(dim * 4)
        self.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, kernel_size=1, bias=bias)
        self.decoder_level2 = stage(dim * 2, 1, num_blocks[1])
        # Level 1 keeps the concatenated 2*dim channels (no 1x1 reduction).
        self.up2_1 = Upsample(dim * 2)
        self.decoder_level1 = stage(dim * 2, 0, num_blocks[0])
        self.refinement = stage(dim * 2, 0, num_refinement_blocks)
        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(dim, dim * 2, kernel_size=1, bias=bias)
        self.output = nn.Conv2d(dim * 2, out_channels, kernel_size=3, padding=1, bias=bias)

        self.spec = ModelSpec(
            in_channels=inp_channels,
            out_channels=out_channels,
            scale=1,
            size_multiple=SIZE_MULTIPLE,
            value_range=1.0,
            # Channel attention is global over whatever it sees: tiled output is an approximation.
            tileable=True,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restore ``x`` (N, inp_channels, H, W) in [0,1]; H and W multiples of 8. Not clamped."""
        check_input_size(x, SIZE_MULTIPLE, "Restormer")
        emb1 = self.patch_embed(channels_last_on_cpu(x))
        enc1 = self.encoder_level1(emb1)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))

        dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1)))
        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1)))
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], 1))
        dec1 = self.refinement(dec1)

        # .contiguous(): the output is NCHW-contiguous whatever layout the features ran in.
        if self.dual_pixel_task:
            return self.output(dec1 + self.skip_conv(emb1)).contiguous()
        return self.output(dec1).contiguous() + x
