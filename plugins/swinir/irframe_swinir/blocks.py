"""Shared Swin building blocks: window partitioning and its relative position index and
shifted-window mask, window attention, stochastic depth, MLP, patch (un)embedding, upsamplers.

These keep the official SwinIR signatures, submodule names and semantics so that other plugins
(e.g. HAT) can import them from ``irframe_swinir.blocks`` and keep official ``state_dict`` keys.
Importing this module registers nothing (the ``SwinIR`` arch lives in :mod:`irframe_swinir.arch`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from irframe.errors import OptionsError

__all__ = [
    "DropPath",
    "Mlp",
    "PatchEmbed",
    "PatchUnEmbed",
    "Upsample",
    "UpsampleOneStep",
    "WindowAttention",
    "attend_in_windows",
    "default_device",
    "init_swin_weights",
    "pad_to_window",
    "relative_position_index",
    "shifted_window_mask",
    "to_2tuple",
    "trunc_normal",
    "window_partition",
    "window_reverse",
]


def to_2tuple(value: int | Sequence[int]) -> tuple[int, int]:
    """Return ``(value, value)`` for an int, or the first two items of a sequence as a tuple."""
    if isinstance(value, int):
        return (value, value)
    items = tuple(int(v) for v in value)
    if len(items) != 2:
        raise OptionsError(f"expected an int or a pair of ints, got {value!r}")
    return (items[0], items[1])


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """Split ``x`` of shape ``(b, h, w, c)`` into windows ``(num_windows * b, ws, ws, c)``.

    ``h`` and ``w`` must be multiples of ``window_size``.
    """
    b, h, w, c = x.shape
    rows, cols = h // window_size, w // window_size
    x = x.view(b, rows, window_size, cols, window_size, c)
    # sizes spelled out rather than -1: simpler symbolic shapes under torch.export
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b * rows * cols, window_size, window_size, c)


def window_reverse(
    windows: torch.Tensor, window_size: int, h: int, w: int, batch: int | None = None
) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(num_windows * b, ws, ws, c)`` -> ``(b, h, w, c)``.

    ``batch`` (``b``) is found from the shapes when not given, by integer division (the official
    code divides floats and truncates: the same number). Callers that know it pass it: under
    ``torch.export`` with symbolic ``h`` and ``w`` every division is a symbolic expression to reason
    about, and tracing a deep model slows down with each one.
    """
    rows, cols = h // window_size, w // window_size
    b = windows.shape[0] // (rows * cols) if batch is None else batch
    c = windows.shape[-1]
    x = windows.view(b, rows, cols, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, c)


def pad_to_window(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """Reflect-pad ``x`` (``(b, c, h, w)``) at the bottom/right to multiples of ``window_size``.

    Same as the official SwinIR ``check_image_size``. Reflect padding needs each pad amount to be
    smaller than the corresponding dimension; a clear :class:`OptionsError` is raised otherwise.

    Under ``torch.export`` with symbolic height and width (ONNX export), the result is also sliced
    to ``window_size * (side // window_size)``, which selects every row and column (the sides are
    multiples of the window by then) but spells the sizes as multiples of the window: the window
    partitions, token reshapes and masks downstream then keep simple symbolic shapes (``ws * k``
    split by ``ws`` is ``k``), where torch would otherwise build ever longer size expressions,
    block after block, and tracing a deep model would take minutes.
    """
    _, _, h, w = x.shape
    pad_h = (window_size - h % window_size) % window_size
    pad_w = (window_size - w % window_size) % window_size
    padded = x
    if pad_h != 0 or pad_w != 0:
        if pad_h >= h or pad_w >= w:
            raise OptionsError(
                f"input {h}x{w} is too small to reflect-pad to a multiple of window_size {window_size}; "
                f"use an input of at least {window_size // 2 + 1} pixels per side or a smaller window_size"
            )
        padded = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    if isinstance(h, int) and isinstance(w, int):
        return padded
    rows, cols = padded.shape[2] // window_size, padded.shape[3] // window_size
    return padded[:, :, : rows * window_size, : cols * window_size]


def default_device() -> torch.device:
    """The device new tensors go to (``meta`` inside ``with torch.device("meta")``)."""
    return torch.empty(0).device


def trunc_normal(tensor: torch.Tensor, std: float = 0.02) -> None:
    """Truncated normal init at +-2 (absolute), as timm's ``trunc_normal_`` used by Swin."""
    nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-2.0, b=2.0)


def init_swin_weights(module: nn.Module) -> None:
    """The official SwinIR/HAT ``_init_weights``, for ``model.apply``: truncated-normal ``Linear``
    weights with zero biases, ``LayerNorm`` weight 1 and bias 0."""
    if isinstance(module, nn.Linear):
        trunc_normal(module.weight)
        if module.bias is not None:
            nn.init.constant_(module.bias, 0)
    elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
        nn.init.constant_(module.bias, 0)
        nn.init.constant_(module.weight, 1.0)


def relative_position_index(window_size: int | Sequence[int]) -> torch.Tensor:
    """Index ``(wh*ww, wh*ww)`` of every (query, key) pair of a window into Swin's relative position
    bias table of ``(2*wh-1)*(2*ww-1)`` rows; int64, computed on the CPU."""
    wh, ww = to_2tuple(window_size)
    cpu = torch.device("cpu")
    coords = torch.stack(
        torch.meshgrid(torch.arange(wh, device=cpu), torch.arange(ww, device=cpu), indexing="ij")
    ).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    relative[:, :, 0] += wh - 1
    relative[:, :, 1] += ww - 1
    relative[:, :, 0] *= 2 * ww - 1
    return relative.sum(-1)


def shifted_window_mask(
    size: Sequence[int | torch.SymInt],
    window_size: int,
    shift_size: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Attention mask ``(num_windows, ws*ws, ws*ws)`` of shifted windows on an ``(h, w) = size`` map.

    The official ``calculate_mask``: 0 between two tokens of a window that come from the same region
    of the map rolled by ``shift_size``, -100 across regions. ``h`` and ``w`` must be multiples of
    ``window_size``. Computed on ``device`` (default: the CPU, so the values are real even where the
    default device is ``meta``) and returned in ``dtype``.

    The official code labels the nine regions by assigning to slices of an ``(h, w)`` image; here a
    row's region is ``(row >= h - ws) + (row >= h - shift)`` (a column's likewise), which gives the
    same labels from comparisons with ``arange``, so ``h`` and ``w`` may be symbolic sizes under
    ``torch.export`` (a dynamic-shape ONNX graph computes the mask for its input size).
    """
    h, w = size[0], size[1]
    device = torch.device("cpu") if device is None else device
    if shift_size <= 0:  # the official slices then cover the whole map with one label: nothing masked
        windows = (h // window_size) * (w // window_size)
        return torch.zeros((windows, window_size * window_size, window_size * window_size), device=device, dtype=dtype)

    def regions(n: int | torch.SymInt) -> torch.Tensor:
        index = torch.arange(n, device=device)
        return (index >= n - window_size).long() + (index >= n - shift_size).long()

    img_mask = (regions(h)[:, None] * 3 + regions(w)[None, :]).view(1, h, w, 1)
    mask_windows = window_partition(img_mask, window_size).view(-1, window_size * window_size)
    differs = mask_windows.unsqueeze(1) != mask_windows.unsqueeze(2)
    return torch.zeros(differs.shape, device=device, dtype=dtype).masked_fill_(differs, -100.0)


class DropPath(nn.Module):
    """Stochastic depth, as timm's ``DropPath`` that the official SwinIR and HAT use.

    In training, each sample's residual branch is zeroed with probability ``drop_prob`` and the
    kept ones are scaled by ``1 / (1 - drop_prob)``; identity in eval mode.
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Identity in eval mode; in training, ``x`` times a per-sample mask of 0 or ``1 / keep``."""
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        if keep > 0.0:
            mask.div_(keep)
        return x * mask

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class WindowAttention(nn.Module):
    """Multi-head self-attention inside a window, with a learned relative position bias.

    Args:
        dim: token width.
        window_size: window side, or ``(height, width)``.
        num_heads: attention heads (must divide ``dim``).
        qkv_bias: learn a bias in the query/key/value projection.
        qk_scale: query scale; default ``head_dim ** -0.5``.
        attn_drop: dropout on the attention weights.
        proj_drop: dropout after the output projection.
        index_buffer: hold the relative position index as the ``relative_position_index`` buffer
            (SwinIR's layout); ``False`` for HAT, whose network holds one index for all its blocks
            and passes it to :meth:`forward`.
    """

    relative_position_index: torch.Tensor | None

    def __init__(
        self,
        dim: int,
        window_size: int | Sequence[int],
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        index_buffer: bool = True,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.window_size = to_2tuple(window_size)
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = qk_scale or head_dim**-0.5
        wh, ww = self.window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * wh - 1) * (2 * ww - 1), num_heads))
        index = relative_position_index(self.window_size).to(default_device()) if index_buffer else None
        self.register_buffer("relative_position_index", index)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        trunc_normal(self.relative_position_bias_table)
        self.softmax = nn.Softmax(dim=-1)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, rpi: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Attend within windows.

        Args:
            x: ``(num_windows*b, n, c)`` tokens of each window (``n = wh*ww``).
            mask: ``(num_windows, n, n)`` additive mask of shifted windows (0 / -100), or ``None``.
            rpi: relative position index ``(n, n)``; default the module's own buffer.
        """
        index = rpi if rpi is not None else self.relative_position_index
        if index is None:
            raise ValueError("WindowAttention built with index_buffer=False needs the relative position index rpi")
        b_, n, c = x.shape
        qkv = self.qkv(x).reshape(b_, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(b_ // nw, nw, self.num_heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(b_, self.num_heads, n, n)
        attn = self.attn_drop(self.softmax(attn))
        x = (attn @ v).transpose(1, 2).reshape(b_, n, c)
        return self.proj_drop(self.proj(x))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window_size={self.window_size}, num_heads={self.num_heads}"


def attend_in_windows(
    x: torch.Tensor,
    attn: WindowAttention,
    window_size: int,
    shift_size: int,
    mask: torch.Tensor | None = None,
    rpi: torch.Tensor | None = None,
) -> torch.Tensor:
    """(Shifted-)window attention over a ``(b, h, w, c)`` map whose sides are multiples of the window.

    Rolls the map by ``-shift_size``, runs ``attn`` in each window (with ``mask``, the shifted-window
    mask, and ``rpi``, see :class:`WindowAttention`), puts the windows back and rolls back. Returns
    the tokens ``(b, h*w, c)``.
    """
    b, h, w, c = x.shape
    if shift_size > 0:
        x = torch.roll(x, shifts=(-shift_size, -shift_size), dims=(1, 2))
    windows = window_partition(x, window_size)
    count = windows.shape[0]
    windows = windows.view(count, window_size * window_size, c)
    attn_windows = attn(windows, mask=mask, rpi=rpi).view(count, window_size, window_size, c)
    x = window_reverse(attn_windows, window_size, h, w, batch=b)
    if shift_size > 0:
        x = torch.roll(x, shifts=(shift_size, shift_size), dims=(1, 2))
    return x.reshape(b, h * w, c)


class Mlp(nn.Module):
    """Two-layer MLP (``fc1`` -> ``act`` -> ``drop`` -> ``fc2`` -> ``drop``), as in Swin."""

    def __init__(
        self,
        in_features: int,
        hidden_features: int | None = None,
        out_features: int | None = None,
        act_layer: type[nn.Module] = nn.GELU,
        drop: float = 0.0,
    ) -> None:
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP to the last dimension of ``x``."""
        x = self.drop(self.act(self.fc1(x)))
        return self.drop(self.fc2(x))


class _PatchGrid(nn.Module):
    """What :class:`PatchEmbed` and :class:`PatchUnEmbed` record of the nominal image (the official
    attributes ``img_size``, ``patch_size``, ``patches_resolution``, ``num_patches``, ``in_chans``,
    ``embed_dim``); neither holds a tensor for them."""

    def __init__(
        self, img_size: int | Sequence[int], patch_size: int | Sequence[int], in_chans: int, embed_dim: int
    ) -> None:
        super().__init__()
        img = to_2tuple(img_size)
        patch = to_2tuple(patch_size)
        self.img_size = img
        self.patch_size = patch
        self.patches_resolution = [img[0] // patch[0], img[1] // patch[1]]
        self.num_patches = self.patches_resolution[0] * self.patches_resolution[1]
        self.in_chans = in_chans
        self.embed_dim = embed_dim


class PatchEmbed(_PatchGrid):
    """Flatten a feature map ``(b, c, h, w)`` to tokens ``(b, h*w, c)`` (no projection, as SwinIR).

    Args:
        img_size: nominal image size (recorded only).
        patch_size: nominal patch size (recorded only; SwinIR uses 1).
        in_chans: input channels (recorded only).
        embed_dim: token width.
        norm_layer: optional norm applied to the tokens (stored as ``.norm``).
    """

    def __init__(
        self,
        img_size: int | Sequence[int] = 224,
        patch_size: int | Sequence[int] = 4,
        in_chans: int = 3,
        embed_dim: int = 96,
        norm_layer: type[nn.Module] | None = None,
    ) -> None:
        super().__init__(img_size, patch_size, in_chans, embed_dim)
        self.norm: nn.Module | None = norm_layer(embed_dim) if norm_layer is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c, h, w)`` -> ``(b, h*w, c)``, normalised when a norm layer was given."""
        x = x.flatten(2).transpose(1, 2)
        if self.norm is not None:
            x = self.norm(x)
        return x


class PatchUnEmbed(_PatchGrid):
    """Inverse of :class:`PatchEmbed`: tokens ``(b, h*w, c)`` -> feature map ``(b, c, h, w)``.

    ``norm_layer`` is accepted for the official signature and unused (as in the official code).
    """

    def __init__(
        self,
        img_size: int | Sequence[int] = 224,
        patch_size: int | Sequence[int] = 4,
        in_chans: int = 3,
        embed_dim: int = 96,
        norm_layer: type[nn.Module] | None = None,
    ) -> None:
        super().__init__(img_size, patch_size, in_chans, embed_dim)

    def forward(self, x: torch.Tensor, x_size: tuple[int, int]) -> torch.Tensor:
        """``(b, h*w, c)`` -> ``(b, c, h, w)`` with ``(h, w) = x_size``."""
        b = x.shape[0]
        return x.transpose(1, 2).reshape(b, self.embed_dim, x_size[0], x_size[1])


def _check_scale(scale: int, allowed: str) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise OptionsError(f"upscale must be a positive int ({allowed}), got {scale!r}")
    return scale


class Upsample(nn.Sequential):
    """Conv + PixelShuffle upsampler for ``scale`` = 2^n or 3 (official SwinIR/EDSR layout).

    Submodules are numbered as the official ``nn.Sequential``: ``0`` conv, ``1`` PixelShuffle, ...
    """

    def __init__(self, scale: int, num_feat: int) -> None:
        scale = _check_scale(scale, "2^n or 3")
        layers: list[nn.Module] = []
        if scale & (scale - 1) == 0 and scale >= 2:
            for _ in range(int(math.log2(scale))):
                layers.append(nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1))
                layers.append(nn.PixelShuffle(2))
        elif scale == 3:
            layers.append(nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1))
            layers.append(nn.PixelShuffle(3))
        else:
            raise OptionsError(f"upscale {scale} is not supported by the pixelshuffle upsampler; use 2^n or 3")
        super().__init__(*layers)
        self.scale = scale
        self.num_feat = num_feat


class UpsampleOneStep(nn.Sequential):
    """One conv to ``scale**2 * num_out_ch`` channels + PixelShuffle (lightweight SR upsampler).

    ``input_resolution`` is recorded only (the official class uses it for FLOP counts).
    """

    def __init__(
        self, scale: int, num_feat: int, num_out_ch: int, input_resolution: tuple[int, int] | None = None
    ) -> None:
        scale = _check_scale(scale, "any positive int")
        super().__init__(
            nn.Conv2d(num_feat, (scale**2) * num_out_ch, 3, 1, 1),
            nn.PixelShuffle(scale),
        )
        self.scale = scale
        self.num_feat = num_feat
        self.num_out_ch = num_out_ch
        self.input_resolution = input_resolution
