"""Restormer building blocks: channel LayerNorm, MDTA attention, GDFN feed-forward, resampling.

This module registers nothing, so other plugins (PromptIR) can import the blocks without pulling
the ``Restormer`` registration into their own plugin's load. Attribute names (``norm1.body``,
``attn.qkv_dwconv``, ``ffn.project_in``, ...) follow the official code so that released
checkpoints load with ``strict=True``.

Paper: Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image Restoration",
CVPR 2022 (https://arxiv.org/abs/2111.09881).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from irframe.errors import OptionsError

LayerNormType = Literal["WithBias", "BiasFree"]

# The official LayerNorms add 1e-5 to the (biased) variance; parity depends on it.
_NORM_EPS = 1e-5


def _centred_and_var(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` minus its channel mean, and the biased variance over the channel axis (NCHW, keepdim).

    Why not ``x.var(dim=1)``: on the CPU torch's variance kernel over a strided axis is several
    times slower than two plain means (it was a quarter of Restormer's CPU inference time, see
    benchmarks/RESULTS.md); the centred two-pass form is as accurate.
    """
    centred = x - x.mean(dim=1, keepdim=True)
    return centred, centred.square().mean(dim=1, keepdim=True)


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for an NCHW tensor stored channels-last, else ``torch.contiguous_format``."""
    if x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def channels_last_on_cpu(x: torch.Tensor) -> torch.Tensor:
    """``x`` stored channels-last (NHWC memory, same NCHW shape) if it is a CPU tensor, else unchanged.

    Why: oneDNN runs the depth-wise 3x3 convolutions, the costliest layers of Restormer and PromptIR
    on the CPU, about 2.5x faster on channels-last memory, and the channel norms then reduce over
    contiguous memory; with the norms below, CPU inference got 1.6-1.9x faster (benchmarks/RESULTS.md).
    Convolutions and element-wise ops keep the layout, so converting the input once is enough. GPUs
    keep the caller's layout (not measured there).
    """
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" and x.ndim == 4 else x


class BiasFreeNorm(nn.Module):
    """Scale-only normalisation over the channel axis of an NCHW tensor: ``x / sqrt(var + eps) * w``.

    The mean is used for the variance but, unlike a LayerNorm, not subtracted.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, var = _centred_and_var(x)
        return x * torch.rsqrt(var + _NORM_EPS) * self.weight[:, None, None]


class WithBiasNorm(nn.Module):
    """Standard LayerNorm over the channel axis of an NCHW tensor (learned scale and shift)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred, var = _centred_and_var(x)
        return torch.addcmul(
            self.bias[:, None, None], centred * torch.rsqrt(var + _NORM_EPS), self.weight[:, None, None]
        )


class LayerNorm(nn.Module):
    """Per-pixel LayerNorm across channels, ``'WithBias'`` or ``'BiasFree'``.

    The official code flattens to ``(b, h*w, c)`` and normalises the last axis; normalising axis 1
    of the NCHW tensor is the same computation without the two transposes.
    """

    def __init__(self, channels: int, layer_norm_type: LayerNormType = "WithBias") -> None:
        super().__init__()
        if layer_norm_type == "BiasFree":
            self.body: nn.Module = BiasFreeNorm(channels)
        elif layer_norm_type == "WithBias":
            self.body = WithBiasNorm(channels)
        else:
            raise ValueError(f"LayerNorm_type must be 'WithBias' or 'BiasFree', got {layer_norm_type!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class FeedForward(nn.Module):
    """GDFN: gated depth-wise convolutional feed-forward network.

    ``project_in`` (1x1) widens to twice the hidden width, a depth-wise 3x3 conv mixes locally,
    and one half gates the other through GELU before ``project_out`` (1x1) narrows back.
    """

    def __init__(self, dim: int, ffn_expansion_factor: float = 2.66, bias: bool = False) -> None:
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)  # truncation, as the official code (48 -> 127)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class Attention(nn.Module):
    """MDTA: multi-Dconv-head transposed attention.

    Q, K and V come from a 1x1 conv followed by a depth-wise 3x3 conv. Attention is computed
    across channels (a ``c/heads x c/heads`` map per head) rather than across pixels, so its cost
    is linear in the image size; q and k are L2-normalised over pixels and the logits are scaled by
    a learned per-head temperature.
    """

    def __init__(self, dim: int, num_heads: int, bias: bool = False) -> None:
        super().__init__()
        if num_heads < 1 or dim % num_heads:
            raise ValueError(f"MDTA: {dim} channels cannot be split into {num_heads} heads")
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        # (b, heads*c', h, w) -> (b, heads, c', h*w): the head index is the outer channel factor.
        q = q.reshape(b, self.num_heads, c // self.num_heads, h * w)
        k = k.reshape(b, self.num_heads, c // self.num_heads, h * w)
        v = v.reshape(b, self.num_heads, c // self.num_heads, h * w)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1)) * self.temperature
        out = attn.softmax(dim=-1) @ v
        # Back in the input's memory layout, so that a channels_last network stays channels_last.
        return self.project_out(out.reshape(b, c, h, w).contiguous(memory_format=memory_format_of(x)))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + MDTA(LN(x))`` then ``x + GDFN(LN(x))``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        layer_norm_type: LayerNormType = "WithBias",
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm(dim, layer_norm_type)
        self.attn = Attention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, layer_norm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def transformer_stage(
    dim: int,
    num_heads: int,
    num_blocks: int,
    ffn_expansion_factor: float,
    bias: bool,
    layer_norm_type: LayerNormType,
) -> nn.Sequential:
    """``num_blocks`` transformer blocks in sequence (state_dict keys ``<stage>.<i>.``)."""
    return nn.Sequential(
        *(TransformerBlock(dim, num_heads, ffn_expansion_factor, bias, layer_norm_type) for _ in range(num_blocks))
    )


class OverlapPatchEmbed(nn.Module):
    """Shallow feature extraction: one 3x3 conv (no bias, as in the official model)."""

    def __init__(self, in_channels: int = 3, embed_dim: int = 48, bias: bool = False) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """Halve the resolution and double the channels: 3x3 conv to ``c/2`` then pixel-unshuffle by 2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels // 2, kernel_size=3, padding=1, bias=False), nn.PixelUnshuffle(2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """Double the resolution and halve the channels: 3x3 conv to ``2c`` then pixel-shuffle by 2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels * 2, kernel_size=3, padding=1, bias=False), nn.PixelShuffle(2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def check_input_size(x: torch.Tensor, multiple: int, arch: str) -> None:
    """Raise a clear error when ``x``'s height or width is not a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(
            f"{arch}: input height and width must be multiples of {multiple} (three 2x downsamplings), "
            f"got {h}x{w}; pad the input first (the inference helper does this from model.spec)"
        )


def check_backbone_options(
    arch: str,
    dim: int,
    num_blocks: Sequence[int],
    num_refinement_blocks: int,
    heads: Sequence[int],
    ffn_expansion_factor: float,
) -> tuple[list[int], list[int]]:
    """Validate the 4-level U-Net options shared by Restormer and PromptIR; return them as lists.

    Raises:
        OptionsError: naming the option and value at fault.
    """
    num_blocks, heads = list(num_blocks), list(heads)
    if dim < 1:
        raise OptionsError(f"{arch}.dim: must be a positive channel count, got {dim}")
    if len(num_blocks) != 4 or any(n < 0 for n in num_blocks):
        raise OptionsError(f"{arch}.num_blocks: need 4 non-negative block counts (one per level), got {num_blocks}")
    if num_refinement_blocks < 0:
        raise OptionsError(f"{arch}.num_refinement_blocks: must be >= 0, got {num_refinement_blocks}")
    if len(heads) != 4 or any(h < 1 for h in heads):
        raise OptionsError(f"{arch}.heads: need 4 positive head counts (one per level), got {heads}")
    if ffn_expansion_factor <= 0 or int(dim * ffn_expansion_factor) < 1:
        raise OptionsError(
            f"{arch}.ffn_expansion_factor: {ffn_expansion_factor} leaves no hidden channel at dim={dim}"
        )
    # Decoder level 1 and the refinement work at 2*dim with heads[0]; other levels at dim*2**i.
    widths = {0: [dim, 2 * dim], 1: [2 * dim], 2: [4 * dim], 3: [8 * dim]}
    for level, level_widths in widths.items():
        for width in level_widths:
            if width % heads[level]:
                raise OptionsError(
                    f"{arch}.heads[{level}]={heads[level]} does not divide the {width} channels "
                    f"of level {level + 1} (dim={dim})"
                )
    return num_blocks, heads
