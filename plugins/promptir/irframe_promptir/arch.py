"""The PromptIR network (registered as ``PromptIR``).

A Restormer backbone with a prompt block before each of the three lower decoder levels. A prompt
block generates an input-conditioned prompt (PGM: a softmax-weighted mix of learnable prompt
components, weighted by a Linear layer on the globally pooled feature, resized bilinearly to the
feature size and passed through a 3x3 conv) and lets the features interact with it (PIM: concat,
one transformer block, 1x1 conv back to the decoder width). The model is blind: no task input.

Paper: Potlapalli et al., "PromptIR: Prompting for All-in-One Blind Image Restoration",
NeurIPS 2023 (https://arxiv.org/abs/2306.13090).

The official code hard-codes the prompt widths (64/128/320) and writes the channel sums for
dim 48 (e.g. ``dim*4 + 512`` for ``dim*8 + 320``). Here the sums are written in terms of ``dim``
and ``prompt_dims``: with the defaults every name and shape equals the released checkpoint's,
and small configurations (for tests) stay consistent.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from irframe_restormer.blocks import (
    Downsample,
    LayerNormType,
    OverlapPatchEmbed,
    TransformerBlock,
    Upsample,
    channels_last_on_cpu,
    check_backbone_options,
    check_input_size,
    memory_format_of,
    transformer_stage,
)

from irframe.errors import OptionsError
from irframe.nn.spec import ModelSpec
from irframe.registry import ARCHS

SIZE_MULTIPLE = 8
# Output width of the official (unused) ``chnl_reduce3``; also part of ``reduce_noise_channel_3``.
_UNUSED_LEVEL3_WIDTH = 256


class PromptGenBlock(nn.Module):
    """Prompt generation module (PGM).

    Args:
        prompt_dim: channels of each prompt component.
        prompt_len: number of prompt components.
        prompt_size: stored spatial size of the components (resized to the feature's size).
        lin_dim: channels of the feature the weights are computed from.
    """

    def __init__(self, prompt_dim: int = 128, prompt_len: int = 5, prompt_size: int = 96, lin_dim: int = 192) -> None:
        super().__init__()
        self.prompt_param = nn.Parameter(torch.rand(1, prompt_len, prompt_dim, prompt_size, prompt_size))
        self.linear_layer = nn.Linear(lin_dim, prompt_len)
        self.conv3x3 = nn.Conv2d(prompt_dim, prompt_dim, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Prompt of shape (N, prompt_dim, H, W) for features ``x`` of shape (N, lin_dim, H, W)."""
        weights = F.softmax(self.linear_layer(x.mean(dim=(-2, -1))), dim=1)  # (N, prompt_len)
        prompt = torch.einsum("nl,lchw->nchw", weights, self.prompt_param[0])
        prompt = F.interpolate(prompt, size=x.shape[-2:], mode="bilinear", align_corners=False)
        # In the feature's memory layout, so that concatenating the two keeps it (channels_last on the CPU).
        return self.conv3x3(prompt.contiguous(memory_format=memory_format_of(x)))


@ARCHS.register("PromptIR")
class PromptIR(nn.Module):
    """PromptIR (Potlapalli et al., NeurIPS 2023), the released all-in-one model by default.

    Args:
        inp_channels, out_channels, dim, num_blocks, num_refinement_blocks, heads,
        ffn_expansion_factor, bias, LayerNorm_type: as for ``Restormer``.
        decoder: prompt blocks in the decoder. Must be True: the official network cannot run
            without them (its ``up4_3`` expects the prompt-reduced latent); the option exists so
            that the official option files build unchanged.
        prompt_dims: channels of the prompts of decoder levels 1, 2 and 3 (official 64, 128, 320).
        prompt_sizes: stored spatial sizes of those prompts (official 64, 32, 16).
        prompt_len: prompt components per level (official 5).

    ``chnl_reduce1-3`` and ``reduce_noise_channel_1-3`` exist in the official model and its
    checkpoints but are never used by its forward; they are kept so checkpoints load strictly and
    are listed in :attr:`unused_parameter_prefixes` (DDP needs ``find_unused_parameters``).
    """

    unused_parameter_prefixes: tuple[str, ...] = ("chnl_reduce", "reduce_noise_channel_")

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
        decoder: bool = True,
        prompt_dims: Sequence[int] = (64, 128, 320),
        prompt_sizes: Sequence[int] = (64, 32, 16),
        prompt_len: int = 5,
    ) -> None:
        super().__init__()
        num_blocks, heads = check_backbone_options(
            "PromptIR", dim, num_blocks, num_refinement_blocks, heads, ffn_expansion_factor
        )
        p1, p2, p3 = _check_prompt_options(dim, heads, decoder, prompt_dims, prompt_sizes, prompt_len)
        s1, s2, s3 = prompt_sizes
        if inp_channels < 1 or inp_channels != out_channels:
            raise OptionsError(
                f"PromptIR: the global residual (output + input) needs inp_channels == out_channels >= 1, "
                f"got {inp_channels} and {out_channels}"
            )
        self.decoder = decoder

        def stage(width: int, level: int, count: int) -> nn.Sequential:
            return transformer_stage(width, heads[level], count, ffn_expansion_factor, bias, LayerNorm_type)

        def block(width: int) -> TransformerBlock:  # prompt interaction: all three use heads[2]
            return TransformerBlock(width, heads[2], ffn_expansion_factor, bias, LayerNorm_type)

        def conv1x1(cin: int, cout: int) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, kernel_size=1, bias=bias)

        # Attribute order = official state_dict order.
        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)
        self.prompt1 = PromptGenBlock(p1, prompt_len, s1, lin_dim=dim * 2)
        self.prompt2 = PromptGenBlock(p2, prompt_len, s2, lin_dim=dim * 4)
        self.prompt3 = PromptGenBlock(p3, prompt_len, s3, lin_dim=dim * 8)
        # Unused by the forward (see class docstring).
        self.chnl_reduce1 = conv1x1(p1, p1)
        self.chnl_reduce2 = conv1x1(p2, p2)
        self.chnl_reduce3 = conv1x1(p3, _UNUSED_LEVEL3_WIDTH)
        self.reduce_noise_channel_1 = conv1x1(dim + p1, dim)

        self.encoder_level1 = stage(dim, 0, num_blocks[0])
        self.down1_2 = Downsample(dim)
        self.reduce_noise_channel_2 = conv1x1(dim * 2 + p2, dim * 2)
        self.encoder_level2 = stage(dim * 2, 1, num_blocks[1])
        self.down2_3 = Downsample(dim * 2)
        self.reduce_noise_channel_3 = conv1x1(dim * 4 + _UNUSED_LEVEL3_WIDTH, dim * 4)
        self.encoder_level3 = stage(dim * 4, 2, num_blocks[2])
        self.down3_4 = Downsample(dim * 4)
        self.latent = stage(dim * 8, 3, num_blocks[3])

        # The level-3 prompt block reduces the latent to dim*4 before upsampling.
        self.up4_3 = Upsample(dim * 4)
        self.reduce_chan_level3 = conv1x1(dim * 2 + dim * 4, dim * 4)
        self.noise_level3 = block(dim * 8 + p3)
        self.reduce_noise_level3 = conv1x1(dim * 8 + p3, dim * 4)
        self.decoder_level3 = stage(dim * 4, 2, num_blocks[2])

        self.up3_2 = Upsample(dim * 4)
        self.reduce_chan_level2 = conv1x1(dim * 4, dim * 2)
        self.noise_level2 = block(dim * 4 + p2)
        self.reduce_noise_level2 = conv1x1(dim * 4 + p2, dim * 4)
        self.decoder_level2 = stage(dim * 2, 1, num_blocks[1])

        self.up2_1 = Upsample(dim * 2)
        self.noise_level1 = block(dim * 2 + p1)
        self.reduce_noise_level1 = conv1x1(dim * 2 + p1, dim * 2)
        self.decoder_level1 = stage(dim * 2, 0, num_blocks[0])
        self.refinement = stage(dim * 2, 0, num_refinement_blocks)
        self.output = nn.Conv2d(dim * 2, out_channels, kernel_size=3, padding=1, bias=bias)

        self.spec = ModelSpec(
            in_channels=inp_channels,
            out_channels=out_channels,
            scale=1,
            size_multiple=SIZE_MULTIPLE,
            value_range=1.0,
            # Pooled prompt weights and channel attention see the whole input: tiling approximates.
            tileable=True,
        )

    @staticmethod
    def _prompted(x: torch.Tensor, prompt: nn.Module, interact: nn.Module, reduce: nn.Module) -> torch.Tensor:
        """Prompt interaction: concat the generated prompt, one transformer block, 1x1 reduction."""
        return reduce(interact(torch.cat([x, prompt(x)], 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restore ``x`` (N, C, H, W) in [0,1]; H and W multiples of 8. Not clamped."""
        check_input_size(x, SIZE_MULTIPLE, "PromptIR")
        enc1 = self.encoder_level1(self.patch_embed(channels_last_on_cpu(x)))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))

        latent = self._prompted(latent, self.prompt3, self.noise_level3, self.reduce_noise_level3)
        dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1)))
        dec3 = self._prompted(dec3, self.prompt2, self.noise_level2, self.reduce_noise_level2)
        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1)))
        dec2 = self._prompted(dec2, self.prompt1, self.noise_level1, self.reduce_noise_level1)
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], 1))
        dec1 = self.refinement(dec1)
        return self.output(dec1).contiguous() + x  # NCHW-contiguous whatever layout the features ran in


def _check_prompt_options(
    dim: int,
    heads: Sequence[int],
    decoder: bool,
    prompt_dims: Sequence[int],
    prompt_sizes: Sequence[int],
    prompt_len: int,
) -> tuple[int, int, int]:
    """Validate the prompt options; return the three prompt widths."""
    if not decoder:
        raise OptionsError(
            "PromptIR.decoder: must be True; the official network has no working forward without its "
            "decoder prompt blocks (for a prompt-free model use type: Restormer)"
        )
    if len(prompt_dims) != 3 or any(p < 1 for p in prompt_dims):
        raise OptionsError(f"PromptIR.prompt_dims: need 3 positive widths (levels 1-3), got {list(prompt_dims)}")
    if len(prompt_sizes) != 3 or any(s < 1 for s in prompt_sizes):
        raise OptionsError(f"PromptIR.prompt_sizes: need 3 positive sizes (levels 1-3), got {list(prompt_sizes)}")
    if prompt_len < 1:
        raise OptionsError(f"PromptIR.prompt_len: must be >= 1, got {prompt_len}")
    p1, p2, p3 = (int(p) for p in prompt_dims)
    for name, width in (("noise_level1", dim * 2 + p1), ("noise_level2", dim * 4 + p2), ("noise_level3", dim * 8 + p3)):
        if width % heads[2]:
            raise OptionsError(
                f"PromptIR.heads[2]={heads[2]} does not divide the {width} channels of the prompt "
                f"interaction block {name} (dim={dim}, prompt_dims={list(prompt_dims)})"
            )
    return p1, p2, p3
