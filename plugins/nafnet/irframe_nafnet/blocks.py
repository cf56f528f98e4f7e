"""Building blocks of NAFNet and its Baseline (Chen et al., "Simple Baselines for Image Restoration").

- :class:`LayerNorm2d`: layer norm over the channels of an NCHW map (eps 1e-6, ``weight``/``bias``);
- :class:`NAFBlock`: the nonlinear-activation-free block (SimpleGate + simplified channel attention);
- :class:`BaselineBlock`: the paper's baseline block (GELU + squeeze-and-excitation attention);
- :class:`LocalAvgPool2d` and :func:`tlc_pooling_plan`: test-time local statistics (TLC, Chu et al.
  2022), the local average that replaces the attention's global pooling in ``NAFNetLocal`` /
  ``BaselineLocal``. It has no parameters, so the state_dict names stay those of the plain models.

Names and shapes of parameters are the official ones; the official ``drop_out_rate`` argument is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

# Reduction ratios the official fast TLC implementation tries, largest first.
FAST_REDUCTIONS = (5, 4, 3, 2, 1)


class LayerNorm2d(nn.Module):
    """Layer norm over the channel dimension of an ``(N, C, H, W)`` map, with a per-channel affine."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise each pixel's channel vector to zero mean and unit variance, then scale and shift."""
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    """NAFNet's activation: split the channels in two halves and multiply them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 2C, H, W) -> (N, C, H, W)``."""
        x1, x2 = x.chunk(2, dim=1)
        return x1 * x2


def _dropout(rate: float) -> nn.Module:
    return nn.Dropout(rate) if rate > 0.0 else nn.Identity()


class NAFBlock(nn.Module):
    """NAFNet block: LayerNorm, 1x1 + depthwise 3x3 conv, SimpleGate, simplified channel attention
    (``sca``: global average pool + 1x1 conv), 1x1 conv, scaled by ``beta``; then a SimpleGate
    feed-forward scaled by ``gamma``. Both branches are residual.

    Args:
        c: channels in and out.
        DW_Expand: width of the depthwise branch / ``c`` (halved by the SimpleGate).
        FFN_Expand: width of the feed-forward branch / ``c`` (halved by the SimpleGate).
        drop_out_rate: dropout after each branch (0: none).
    """

    def __init__(self, c: int, DW_Expand: int = 2, FFN_Expand: int = 2, drop_out_rate: float = 0.0) -> None:
        super().__init__()
        dw_channel = c * DW_Expand
        self.conv1 = nn.Conv2d(c, dw_channel, kernel_size=1)
        self.conv2 = nn.Conv2d(dw_channel, dw_channel, kernel_size=3, padding=1, groups=dw_channel)
        self.conv3 = nn.Conv2d(dw_channel // 2, c, kernel_size=1)
        # Index 0 is the pooling (swapped for a local one by the TLC variants), index 1 the 1x1 conv.
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw_channel // 2, dw_channel // 2, kernel_size=1))
        self.sg = SimpleGate()
        ffn_channel = FFN_Expand * c
        self.conv4 = nn.Conv2d(c, ffn_channel, kernel_size=1)
        self.conv5 = nn.Conv2d(ffn_channel // 2, c, kernel_size=1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.dropout1 = _dropout(drop_out_rate)
        self.dropout2 = _dropout(drop_out_rate)
        self.beta = nn.Parameter(torch.zeros((1, c, 1, 1)))
        self.gamma = nn.Parameter(torch.zeros((1, c, 1, 1)))

    def set_pool(self, pool: nn.Module) -> None:
        """Replace the attention's global average pooling (parameter-free: no state_dict change)."""
        self.sca[0] = pool

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """``(N, c, H, W) -> (N, c, H, W)``."""
        x = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        x = self.conv3(x * self.sca(x))
        y = inp + self.dropout1(x) * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return y + self.dropout2(x) * self.gamma


class BaselineBlock(nn.Module):
    """The paper's baseline block: LayerNorm, 1x1 + depthwise 3x3 conv, GELU, squeeze-and-excitation
    channel attention (``se``: global average pool, 1x1 conv to half, ReLU, 1x1 conv back, Sigmoid),
    1x1 conv, scaled by ``beta``; then a GELU feed-forward scaled by ``gamma``.

    Args:
        c: channels in and out.
        DW_Expand: width of the depthwise branch / ``c``.
        FFN_Expand: width of the feed-forward branch / ``c``.
        drop_out_rate: dropout after each branch (0: none).
    """

    def __init__(self, c: int, DW_Expand: int = 1, FFN_Expand: int = 2, drop_out_rate: float = 0.0) -> None:
        super().__init__()
        dw_channel = c * DW_Expand
        self.conv1 = nn.Conv2d(c, dw_channel, kernel_size=1)
        self.conv2 = nn.Conv2d(dw_channel, dw_channel, kernel_size=3, padding=1, groups=dw_channel)
        self.conv3 = nn.Conv2d(dw_channel, c, kernel_size=1)
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(dw_channel, dw_channel // 2, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(dw_channel // 2, dw_channel, kernel_size=1),
            nn.Sigmoid(),
        )
        self.gelu = nn.GELU()
        ffn_channel = FFN_Expand * c
        self.conv4 = nn.Conv2d(c, ffn_channel, kernel_size=1)
        self.conv5 = nn.Conv2d(ffn_channel, c, kernel_size=1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.dropout1 = _dropout(drop_out_rate)
        self.dropout2 = _dropout(drop_out_rate)
        self.beta = nn.Parameter(torch.zeros((1, c, 1, 1)))
        self.gamma = nn.Parameter(torch.zeros((1, c, 1, 1)))

    def set_pool(self, pool: nn.Module) -> None:
        """Replace the attention's global average pooling (parameter-free: no state_dict change)."""
        self.se[0] = pool

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """``(N, c, H, W) -> (N, c, H, W)``."""
        x = self.gelu(self.conv2(self.conv1(self.norm1(inp))))
        x = self.conv3(x * self.se(x))
        y = inp + self.dropout1(x) * self.beta
        x = self.conv5(self.gelu(self.conv4(self.norm2(y))))
        return y + self.dropout2(x) * self.gamma


class LocalAvgPool2d(nn.Module):
    """TLC's local average pooling: each pixel gets the mean of the ``kernel_size`` window around it.

    An input no larger than the window (in both dimensions) gets the global mean ``(N, C, 1, 1)``, as
    the global pooling it replaces. Otherwise the box means are computed from a 2-D cumulative sum (the
    official numerics) over the windows that fit, and the border is filled by replicating the nearest
    window's mean, so the output has the input's size. ``fast_imp`` is the official approximate variant:
    sums on a grid subsampled by up to ``max_reduction`` per dimension, upsampled back (nearest).

    Args:
        kernel_size: window ``(height, width)``.
        fast_imp: use the approximate subsampled computation.
        max_reduction: largest subsampling factor per dimension for ``fast_imp``.
    """

    def __init__(
        self, kernel_size: tuple[int, int], fast_imp: bool = False, max_reduction: tuple[int, int] = (5, 5)
    ) -> None:
        super().__init__()
        self.kernel_size = (int(kernel_size[0]), int(kernel_size[1]))
        self.fast_imp = fast_imp
        self.max_reduction = (int(max_reduction[0]), int(max_reduction[1]))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, fast_imp={self.fast_imp}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> local means ``(N, C, H, W)``, or ``(N, C, 1, 1)`` if the window covers all."""
        if torch.compiler.is_exporting():
            return self._traceable(x)
        h, w = int(x.shape[-2]), int(x.shape[-1])
        kh, kw = self.kernel_size
        if kh >= h and kw >= w:
            return F.adaptive_avg_pool2d(x, 1)
        out = self._fast(x, h, w) if self.fast_imp else None
        if out is None:
            out = self._exact(x, min(h, kh), min(w, kw))
        return self._pad_to(out, h, w)

    @staticmethod
    def _pad_to(out: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Replicate ``out``'s border to ``h`` x ``w``, centred as the official code does."""
        oh, ow = out.shape[-2], out.shape[-1]
        pad = ((w - ow) // 2, (w - ow + 1) // 2, (h - oh) // 2, (h - oh + 1) // 2)
        return F.pad(out, pad, mode="replicate")

    def _traceable(self, x: torch.Tensor) -> torch.Tensor:
        """The exact path without branches on the input size, for ``torch.export`` (dynamic shapes).

        A window covering the input gives one box, the global mean (equal to the eager path's
        ``adaptive_avg_pool2d`` up to rounding), replicated to the input size.
        """
        if self.fast_imp:
            raise ValueError(
                "LocalAvgPool2d: fast_imp=True picks its subsampling from the input size and cannot be exported "
                "with dynamic shapes; build the model with fast_imp=False to export it"
            )
        h, w = x.shape[-2], x.shape[-1]
        k1, k2 = torch.sym_min(h, self.kernel_size[0]), torch.sym_min(w, self.kernel_size[1])
        s = F.pad(x.cumsum(dim=-1).cumsum(dim=-2), (1, 0, 1, 0))
        rows, cols = h + 1 - k1, w + 1 - k2
        s1, s2 = s[:, :, :rows, :cols], s[:, :, :rows, k2:]
        s3, s4 = s[:, :, k1:, :cols], s[:, :, k1:, k2:]
        # (torch's stubs type a tensor divided by a SymInt as possibly a SymFloat)
        return self._pad_to(cast(torch.Tensor, (s4 + s1 - s2 - s3) / (k1 * k2)), h, w)

    @staticmethod
    def _exact(x: torch.Tensor, k1: int, k2: int) -> torch.Tensor:
        # Zero row/column in front, so window sums are s[i+k, j+k] + s[i, j] - s[i, j+k] - s[i+k, j].
        s = F.pad(x.cumsum(dim=-1).cumsum(dim=-2), (1, 0, 1, 0))
        s1, s2 = s[:, :, :-k1, :-k2], s[:, :, :-k1, k2:]
        s3, s4 = s[:, :, k1:, :-k2], s[:, :, k1:, k2:]
        return (s4 + s1 - s2 - s3) / (k1 * k2)

    def _fast(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor | None:
        r1 = min(self.max_reduction[0], next(r for r in FAST_REDUCTIONS if h % r == 0))
        r2 = min(self.max_reduction[1], next(r for r in FAST_REDUCTIONS if w % r == 0))
        s = x[:, :, ::r1, ::r2].cumsum(dim=-1).cumsum(dim=-2)
        k1 = min(int(s.shape[-2]) - 1, self.kernel_size[0] // r1)
        k2 = min(int(s.shape[-1]) - 1, self.kernel_size[1] // r2)
        if k1 < 1 or k2 < 1:  # no window fits the subsampled grid (the official code fails): be exact
            return None
        out = (s[:, :, :-k1, :-k2] - s[:, :, :-k1, k2:] - s[:, :, k1:, :-k2] + s[:, :, k1:, k2:]) / (k1 * k2)
        return F.interpolate(out, scale_factor=(r1, r2))


def tlc_pooling_plan(train_size: Sequence[int], levels: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """``(kernel_size, max_reduction)`` of the local pooling at each U-Net level ``0..levels``.

    The official conversion runs one forward pass on a ``train_size`` input (which the network zero
    pads to a multiple of ``2**levels``) and fixes each pooling's window there: for a feature map of
    height ``f`` it is ``f * base // H`` with ``base = int(1.5 * H)`` (likewise for the width), i.e.
    1.5 times the training crop, scaled to the level. The window never changes afterwards.
    """
    _, _, h, w = (int(v) for v in train_size)
    multiple = 2**levels
    padded_h, padded_w = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    base_h, base_w = int(h * 1.5), int(w * 1.5)
    plan = []
    for level in range(levels + 1):
        fh, fw = padded_h >> level, padded_w >> level
        kernel = (fh * base_h // h, fw * base_w // w)
        reduction = (max(1, FAST_REDUCTIONS[0] * fh // h), max(1, FAST_REDUCTIONS[0] * fw // w))
        plan.append((kernel, reduction))
    return plan
