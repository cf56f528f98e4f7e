"""Restormer building blocks: channel LayerNorm, MDTA attention, GDFN feed-forward, resampling.

This module registers nothing, so other plugins (PromptIR) can import the blocks without pulling
the ``Restormer`` registration into their own plugin's load. Attribute names (``norm1.body``,
``attn.qkv_dwconv``, ``ffn.project_in``, ...) follow the official code so that released
checkpoints load with ``strict=True``.

Paper: Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image Restoration",
CVPR 2022 (https://arxiv.org/abs/2111.09881).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from irframe.errors import OptionsError
from irframe.nn import onednn

LayerNormType = Literal["WithBias", "BiasFree"]

# The official LayerNorms add 1e-5 to the (biased) variance; parity depends on it.
_NORM_EPS = 1e-5
# Gate halves of GDFN are padded to a multiple of this many channels inside the forward (zero
# weights, so the output is unchanged): with the official widths (2 x 127, 2 x 63 ...) every row of
# the hidden tensor starts misaligned and the CPU's vector kernels ran 2-4x slower (benchmarks/RESULTS.md).
_GATE_ALIGN = 16


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for an NCHW tensor stored channels-last, else ``torch.contiguous_format``."""
    if x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def channels_last_on_cpu(x: torch.Tensor) -> torch.Tensor:
    """``x`` stored channels-last (NHWC memory, same NCHW shape) if it is a CPU tensor, else unchanged.

    Why: oneDNN runs the depth-wise 3x3 convolutions, the costliest layers of Restormer and PromptIR
    on the CPU, about 2.5x faster on channels-last memory, and the transformer blocks then see their
    pixels as rows of a matrix (``to_tokens`` is a view). Convolutions and element-wise ops keep the
    layout, so converting the input once is enough. GPUs keep the caller's layout (not measured there).
    """
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" and x.ndim == 4 else x


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(b, c, h, w)`` -> ``(b, h*w, c)``: a view for a channels-last tensor, else one copy."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


def from_tokens(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``(b, h*w, c)`` -> ``(b, c, h, w)`` stored channels-last (a view, no copy)."""
    b, _, c = t.shape
    return t.view(b, h, w, c).permute(0, 3, 1, 2)


def _dwconv_tokens(t: torch.Tensor, h: int, w: int, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A depth-wise 3x3 conv of a token matrix ``(b, h*w, c)`` (run channels-last), tokens out."""
    return to_tokens(F.conv2d(from_tokens(t, h, w), weight, bias, padding=1, groups=weight.shape[0]))


def _project(t: torch.Tensor, h: int, w: int, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A 1x1 convolution of tokens ``(b, h*w, c_in)`` with the ``(c_out, c_in)`` matrix ``weight``, tokens out.

    Where the fused kernels may run (CPU inference, :mod:`irframe.nn.onednn`) it is oneDNN's matmul.
    Elsewhere on the CPU (training, compile, export) it is oneDNN's 1x1 convolution of the channels-last
    map (the tokens' own memory): forward and backward took 0.4-0.6x of ``F.linear``'s GEMM on the AMD CPU
    of ``benchmarks/RESULTS.md``. Other devices use ``F.linear`` (not measured there).
    """
    if onednn.fusable(t):
        return onednn.linear(t, weight, bias)
    if t.device.type != "cpu":
        return F.linear(t, weight, bias)
    return to_tokens(F.conv2d(from_tokens(t, h, w), weight.view(*weight.shape, 1, 1), bias))


def _project_add(residual: torch.Tensor | None, t: torch.Tensor, h: int, w: int, weight: torch.Tensor,
                 bias: torch.Tensor | None) -> torch.Tensor:
    """``residual + _project(t, ...)``: the 1x1 convolution and an addition on the CPU outside the fused
    kernels; elsewhere the product with the addition inside it (``baddbmm``)."""
    if onednn.fusable(t) or t.device.type != "cpu":
        return _add_out(residual, t, weight.t(), bias)
    out = _project(t, h, w, weight, bias)
    return out if residual is None else residual + out


def _pointwise(conv: nn.Conv2d) -> torch.Tensor:
    """A 1x1 convolution's weight as a ``(out, in)`` matrix (a view)."""
    return conv.weight.view(conv.weight.shape[0], conv.weight.shape[1])


class BiasFreeNorm(nn.Module):
    """Scale-only normalisation over the last axis: ``x / sqrt(var + eps) * w``.

    The mean is used for the variance but, unlike a LayerNorm, not subtracted.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Two plain means, not torch.var: its CPU kernel was 10x slower on these rows (benchmarks/RESULTS.md)
        var = (x - x.mean(dim=-1, keepdim=True)).square().mean(dim=-1, keepdim=True)
        return x * torch.rsqrt(var + _NORM_EPS) * self.weight


class WithBiasNorm(nn.Module):
    """Standard LayerNorm over the last axis (learned scale and shift)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, _NORM_EPS)


class LayerNorm(nn.Module):
    """Per-pixel LayerNorm across channels, ``'WithBias'`` or ``'BiasFree'``, of tokens ``(b, h*w, c)``.

    The official code flattens the NCHW map to ``(b, h*w, c)`` and normalises the last axis; the
    blocks here keep that token layout between their layers, so the norm is one fused kernel.
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


def _add_out(
    residual: torch.Tensor | None, a: torch.Tensor, w_t: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``residual + a @ w_t (+ bias)`` for ``a`` ``(b, n, k)`` and ``w_t`` ``(k, m)`` or ``(b, k, m)``.

    The residual addition is fused into the matrix product (``baddbmm``): one pass less over the pixels.
    """
    if residual is None:
        out = torch.matmul(a, w_t)
    else:
        out = torch.baddbmm(residual, a, w_t if w_t.dim() == 3 else w_t.expand(a.shape[0], -1, -1))
    return out if bias is None else out + bias


# (hidden width, project_in weight, its bias, dwconv weight, its bias, project_out weight)
_GateWeights = tuple[int, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None, torch.Tensor]
_KEPT: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, _GateWeights]] = weakref.WeakKeyDictionary()


def _kept_without_grad(module: nn.Module, device: torch.device, build: Callable[[], _GateWeights]) -> _GateWeights:
    """``build()``, kept per module while autograd is off and no parameter of ``module`` changed.

    Inference re-ran the weight padding on every call (a copy of the feed-forward weights per block,
    about 2 % of a 128x128 forward). The key holds each parameter's storage and version counter, so
    ``load_state_dict``, an optimiser or EMA step (all in place) or ``.to()`` rebuild the entry; with
    autograd on, the padded weights are built in the graph every time, as gradients need.
    """
    if torch.is_grad_enabled() or torch.compiler.is_compiling() or torch.jit.is_scripting():
        return build()
    params = list(module.parameters())
    if any(p.is_inference() for p in params):  # made under inference_mode: no version counter to key on
        return build()
    key = (device, *((p.data_ptr(), p._version) for p in params))
    kept = _KEPT.get(module)
    if kept is None or kept[0] != key:
        kept = (key, build())
        _KEPT[module] = kept
    return kept[1]


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

    def _aligned(self, device: torch.device) -> _GateWeights:
        """The weights with each gate half zero-padded to a multiple of ``_GATE_ALIGN`` channels (CPU).

        Zero rows give zero hidden channels (``gelu(0) * 0 = 0``) and zero columns of ``project_out``
        ignore them, so the result is the official one; gradients reach the real weights through the cat.
        Other devices (GPU, meta for FLOP counts) run the official widths: the padding is about the
        CPU's vector kernels, and FLOP counts stay those of the model. Without autograd the padded
        copies are kept (:func:`_kept_without_grad`) until a weight changes.
        """
        return _kept_without_grad(self, device, lambda: self._pad_gate(device))

    def _pad_gate(self, device: torch.device) -> _GateWeights:
        """:meth:`_aligned`'s weights, built anew."""
        hidden = self.project_out.weight.shape[1]
        w_in, b_in = _pointwise(self.project_in), self.project_in.bias
        w_dw, b_dw = self.dwconv.weight, self.dwconv.bias
        w_out = _pointwise(self.project_out)
        pad = -hidden % _GATE_ALIGN if device.type == "cpu" else 0
        if pad == 0:
            return hidden, w_in, b_in, w_dw, b_dw, w_out

        def halves(t: torch.Tensor) -> torch.Tensor:
            zeros = t.new_zeros((pad, *t.shape[1:]))
            return torch.cat([t[:hidden], zeros, t[hidden:], zeros])

        return (
            hidden + pad, halves(w_in), None if b_in is None else halves(b_in), halves(w_dw),
            None if b_dw is None else halves(b_dw), torch.cat([w_out, w_out.new_zeros(w_out.shape[0], pad)], 1),
        )

    def forward(self, x: torch.Tensor, h: int, w: int, residual: torch.Tensor | None = None) -> torch.Tensor:
        """GDFN of normalised tokens ``x`` ``(b, h*w, c)``, plus ``residual`` when given."""
        width, w_in, b_in, w_dw, b_dw, w_out = self._aligned(x.device)
        if onednn.fusable(x):
            gated = self._fused_gate(x, h, w, width, w_in, b_in, w_dw, b_dw)
            if residual is not None:  # project_out with the residual added inside oneDNN's matmul
                return onednn.linear_add(gated, residual, w_out, self.project_out.bias)
            return _add_out(residual, gated, w_out.t(), self.project_out.bias)
        u1, u2 = _dwconv_tokens(_project(x, h, w, w_in, b_in), h, w, w_dw, b_dw).split(width, dim=-1)
        return _project_add(residual, F.gelu(u1) * u2, h, w, w_out, self.project_out.bias)

    @staticmethod
    def _fused_gate(x: torch.Tensor, h: int, w: int, width: int, w_in: torch.Tensor, b_in: torch.Tensor | None,
                    w_dw: torch.Tensor, b_dw: torch.Tensor | None) -> torch.Tensor:
        """``gelu(dw(x W1)) * dw(x W2)`` with the GELU inside oneDNN's first depth-wise conv.

        Each half gets its own 1x1 product (contiguous), the first conv applies GELU (erf, as
        ``F.gelu``) as a post-op: one pass over the hidden tensor less than the unfused ops. The product
        goes through ``_convolution_pointwise.binary``, which torch 2.14 runs as the conv and an in-place
        multiply for grouped (depth-wise) convs, not as a post-op (profiled: ``aten::mul_``); a torch
        that fuses it gains the second pass without a change here.
        """
        halves = [slice(0, width), slice(width, 2 * width)]
        u1, u2 = (from_tokens(onednn.linear(x, w_in[s], None if b_in is None else b_in[s]), h, w) for s in halves)
        w_dw, b_dw = w_dw.to(u1.dtype), onednn.cast(b_dw, u1.dtype)  # bfloat16 under autocast, as the products
        b1, b2 = (None, None) if b_dw is None else (b_dw[halves[0]], b_dw[halves[1]])
        ops = torch.ops.mkldnn._convolution_pointwise
        one = [1, 1]
        g = ops(u1, w_dw[halves[0]], b1, one, one, one, width, "gelu", [], "none")
        return to_tokens(ops.binary(u2, g, w_dw[halves[1]], b2, one, one, one, width, "mul", None, None, [], None))


class Attention(nn.Module):
    """MDTA: multi-Dconv-head transposed attention.

    Q, K and V come from a 1x1 conv followed by a depth-wise 3x3 conv. Attention is computed
    across channels (a ``c/heads x c/heads`` map per head) rather than across pixels, so its cost
    is linear in the image size; q and k are L2-normalised over pixels and the logits are scaled by
    a learned per-head temperature.

    Computed on tokens ``(b, h*w, c)``: the normalisation divides the small ``q k^T`` map by the
    norms instead of dividing q and k, and the attention map is folded into ``project_out``
    (``Wo @ blockdiag(attn)`` is ``c x c``), so ``attn @ v`` and ``project_out`` are one product
    over the pixels, wherever there are more pixels than channels (else ``attn @ v`` first, as the
    official code). The same sums in another order: outputs equal the official ones to ~1e-6.
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

    def forward(self, x: torch.Tensor, h: int, w: int, residual: torch.Tensor | None = None) -> torch.Tensor:
        """MDTA of normalised tokens ``x`` ``(b, h*w, c)``, plus ``residual`` when given."""
        b, n, c = x.shape
        heads, cp = self.num_heads, c // self.num_heads
        qkv = _project(x, h, w, _pointwise(self.qkv), self.qkv.bias)
        qkv = _dwconv_tokens(qkv, h, w, self.qkv_dwconv.weight, self.qkv_dwconv.bias)
        # split, not three slices: in training, each slice's backward filled a zeroed qkv-sized gradient
        # and copied into it (11 % of a PromptIR step); split's backward is one concatenation
        q, k, v = qkv.split(c, dim=-1)
        # per head: q_h^T k_h over the pixels, (b, heads, c', c'); the channel index is head * c' + i
        logits = torch.matmul(q.view(b, n, heads, cp).permute(0, 2, 3, 1), k.view(b, n, heads, cp).permute(0, 2, 1, 3))
        # F.normalize's L2 norms over the pixels (clamped at 1e-12 as it does), applied to the small map
        q_norm, k_norm = (t.square().sum(dim=1).sqrt().clamp_min(1e-12) for t in (q, k))
        logits = logits / (q_norm.reshape(b, heads, cp, 1) * k_norm.reshape(b, heads, 1, cp))
        attn = (logits * self.temperature).softmax(dim=-1)
        if n <= c:  # few pixels (the latent level): folding costs c*c*c' products, attn @ v only n*c*c'
            out = torch.matmul(v.view(b, n, heads, cp).transpose(1, 2), attn.transpose(-1, -2))
            out = out.transpose(1, 2).reshape(b, n, c)
            return _project_add(residual, out, h, w, _pointwise(self.project_out), self.project_out.bias)
        # out = v @ (Wo blockdiag(attn))^T: mix[b, o, head, i] = sum_j Wo[o, head*c'+j] attn[b, head, j, i]
        mix = torch.einsum("ohj,bhji->bohi", _pointwise(self.project_out).view(c, heads, cp), attn).reshape(b, c, c)
        return _add_out(residual, v, mix.transpose(1, 2), self.project_out.bias)


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + MDTA(LN(x))`` then ``x + GDFN(LN(x))``.

    Takes and returns NCHW feature maps; inside, the pixels are the rows of a ``(b, h*w, c)`` token
    matrix (a view of a channels-last map), as the official LayerNorm sees them.
    """

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
        h, w = x.shape[-2:]
        t = to_tokens(x)
        t = self.attn(self.norm1(t), h, w, residual=t)
        t = self.ffn(self.norm2(t), h, w, residual=t)
        return from_tokens(t, h, w)


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
