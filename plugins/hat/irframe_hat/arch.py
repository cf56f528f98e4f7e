"""HAT: Hybrid Attention Transformer for image super-resolution (Chen et al., CVPR 2023).

HAT, HAT-S and HAT-L are one class with different widths and depths. Parameter and buffer names are
the official ones (``hat_arch.py`` of XPixelGroup/HAT), so released ``.pth`` files load with
``strict=True``: the relative position indices are persistent buffers at the top level
(``relative_position_index_SA`` / ``_OCA``), each residual hybrid attention group (RHAG) holds
hybrid attention blocks (HAB: window self-attention plus a channel-attention conv branch scaled by
``conv_scale``) and one overlapping cross-attention block (OCAB, ``overlap_attn``).

The official network only takes inputs whose sides are multiples of ``window_size`` (HAT's test
code pads them first). This one declares that as ``spec.size_multiple = window_size``, so the
inference helper pads (:func:`irframe.nn.inference.restore`, which falls back to edge replication
for inputs too small to reflect), and, called directly, it still reflect-pads any input to the
window inside ``forward`` and crops the output. The shifted-window attention mask is computed per
call from the padded size, as the official ``forward_features`` does.

The window attention, relative position index, shifted-window mask, stochastic depth, MLP and
patch (un)embedding are SwinIR's, from the ``irframe-swinir`` plugin (:mod:`irframe_swinir.blocks`,
which registers nothing); the overlapping cross-attention index is HAT's own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.utils.checkpoint as checkpoint
from irframe_swinir.blocks import (
    DropPath,
    Mlp,
    PatchEmbed,
    PatchUnEmbed,
    Upsample,
    WindowAttention,
    attend_in_windows,
    default_device,
    init_swin_weights,
    pad_to_window,
    relative_position_index,
    shifted_window_mask,
    to_2tuple,
    trunc_normal,
    window_partition,
    window_reverse,
)

from irframe.errors import OptionsError
from irframe.nn.spec import ModelSpec
from irframe.registry import ARCHS

__all__ = [
    "CAB",
    "HAB",
    "HAT",
    "OCAB",
    "RHAG",
    "AttenBlocks",
    "ChannelAttention",
    "overlap_window_size",
    "relative_position_index_oca",
]

RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K's mean, subtracted by the official code for RGB input
NUM_FEAT = 64  # width of the reconstruction head, fixed in the official code
UPSAMPLERS = ("pixelshuffle",)  # the only reconstruction the official HAT builds
RESI_CONNECTIONS = ("1conv", "identity")


# -- OCAB's index ----------------------------------------------------------------------------
def overlap_window_size(window_size: int, overlap_ratio: float) -> int:
    """Side of OCAB's key/value window: ``int(window_size * overlap_ratio) + window_size``."""
    return int(window_size * overlap_ratio) + window_size


def _grid(size: int) -> torch.Tensor:
    """``(2, size*size)`` row/column coordinates of a ``size`` x ``size`` window, row-major."""
    coords = torch.arange(size)
    return torch.stack(torch.meshgrid(coords, coords, indexing="ij")).flatten(1)


def relative_position_index_oca(window_size: int, overlap_win_size: int) -> torch.Tensor:
    """OCAB's index ``(ws*ws, ow*ow)`` into a ``(ws+ow-1)**2`` bias table, as the official code builds it.

    The official offset (``ws - ow + 1``) leaves some entries negative; they index the table from its
    end (Python indexing), which is what the released weights were trained with.
    """
    ori, ext = _grid(window_size), _grid(overlap_win_size)
    rel = (ext[:, None, :] - ori[:, :, None]).permute(1, 2, 0) + (window_size - overlap_win_size + 1)
    return rel[..., 0] * (window_size + overlap_win_size - 1) + rel[..., 1]


# -- blocks ----------------------------------------------------------------------------------
class ChannelAttention(nn.Module):
    """RCAN-style channel attention: global pooling, squeeze, excite, sigmoid gate (``attention.{1,3}``)."""

    def __init__(self, num_feat: int, squeeze_factor: int = 16) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(num_feat, num_feat // squeeze_factor, 1, padding=0),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_feat // squeeze_factor, num_feat, 1, padding=0),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate each channel of ``x`` (``(b, c, h, w)``) by its pooled statistics."""
        return x * self.attention(x)


class CAB(nn.Module):
    """Channel attention block: conv (compress) - GELU - conv (expand) - channel attention (``cab.{0,2,3}``)."""

    def __init__(self, num_feat: int, compress_ratio: int = 3, squeeze_factor: int = 30) -> None:
        super().__init__()
        hidden = num_feat // compress_ratio
        self.cab = nn.Sequential(
            nn.Conv2d(num_feat, hidden, 3, 1, 1),
            nn.GELU(),
            nn.Conv2d(hidden, num_feat, 3, 1, 1),
            ChannelAttention(num_feat, squeeze_factor),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c, h, w)`` -> ``(b, c, h, w)``."""
        return self.cab(x)


class HAB(nn.Module):
    """Hybrid attention block: (shifted) window attention plus a CAB branch, then an MLP.

    ``x + attn(norm1(x)) + conv_scale * CAB(norm1(x))``, then ``x + mlp(norm2(x))``.

    Args:
        dim: token width.
        input_resolution: nominal ``(h, w)`` of the token map (from ``img_size``); a window at least
            as large disables the shift, as in the official code.
        num_heads: attention heads.
        window_size: window side.
        shift_size: cyclic shift (0 or ``window_size // 2``).
        compress_ratio, squeeze_factor: CAB widths (``dim // compress_ratio``, ``dim // squeeze_factor``).
        conv_scale: weight of the CAB branch.
        mlp_ratio: MLP hidden width / ``dim``.
        qkv_bias, qk_scale, drop, attn_drop: see :class:`WindowAttention`.
        drop_path: stochastic depth rate.
        act_layer: MLP activation; norm_layer: token norm.
    """

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        num_heads: int,
        window_size: int = 7,
        shift_size: int = 0,
        compress_ratio: int = 3,
        squeeze_factor: int = 30,
        conv_scale: float = 0.01,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        act_layer: type[nn.Module] = nn.GELU,
        norm_layer: type[nn.Module] = nn.LayerNorm,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.input_resolution = input_resolution
        self.num_heads = num_heads
        self.window_size = window_size
        self.shift_size = shift_size
        self.mlp_ratio = mlp_ratio
        if min(input_resolution) <= window_size:  # the window covers the nominal image: no shift
            self.shift_size = 0
        if not 0 <= self.shift_size < self.window_size:
            raise OptionsError(f"HAB: shift_size must be in [0, window_size={window_size}), got {shift_size}")
        self.norm1 = norm_layer(dim)
        self.attn = WindowAttention(
            dim, window_size=window_size, num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale,
            attn_drop=attn_drop, proj_drop=drop, index_buffer=False,
        )
        self.conv_scale = conv_scale
        self.conv_block = CAB(num_feat=dim, compress_ratio=compress_ratio, squeeze_factor=squeeze_factor)
        self.drop_path: nn.Module = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=act_layer, drop=drop)

    def forward(
        self, x: torch.Tensor, x_size: tuple[int, int], rpi_sa: torch.Tensor, attn_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """``(b, h*w, c)`` tokens of an ``x_size`` map (sides multiples of the window) -> same shape."""
        h, w = x_size
        b, _, c = x.shape
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        conv_x = self.conv_block(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1).contiguous().view(b, h * w, c)
        mask = attn_mask if self.shift_size > 0 else None
        attn_x = attend_in_windows(x, self.attn, self.window_size, self.shift_size, mask, rpi=rpi_sa)
        x = shortcut + self.drop_path(attn_x) + conv_x * self.conv_scale
        return x + self.drop_path(self.mlp(self.norm2(x)))


class OCAB(nn.Module):
    """Overlapping cross-attention block: queries from ``ws`` windows, keys/values from overlapping
    ``ow = int(ws * overlap_ratio) + ws`` windows around them, then an MLP.

    Args:
        dim: token width.
        input_resolution: nominal ``(h, w)`` (recorded only).
        window_size: query window side.
        overlap_ratio: extra key/value window size relative to ``window_size``; ``ow - ws`` must be
            even (the key/value window is centred on the query window).
        num_heads: attention heads.
        qkv_bias, qk_scale: see :class:`WindowAttention`.
        mlp_ratio: MLP hidden width / ``dim``.
        norm_layer: token norm.
    """

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        window_size: int,
        overlap_ratio: float,
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        mlp_ratio: float = 2.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.input_resolution = input_resolution
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.overlap_win_size = overlap_window_size(window_size, overlap_ratio)
        extra = self.overlap_win_size - window_size
        if extra < 0 or extra % 2:
            raise OptionsError(
                f"OCAB: window_size {window_size} with overlap_ratio {overlap_ratio} gives an overlapping window "
                f"of {self.overlap_win_size}, whose {extra} extra pixels cannot be split evenly around the window"
            )
        self.norm1 = norm_layer(dim)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.unfold = nn.Unfold(
            kernel_size=(self.overlap_win_size, self.overlap_win_size), stride=window_size, padding=extra // 2
        )
        side = window_size + self.overlap_win_size - 1
        self.relative_position_bias_table = nn.Parameter(torch.zeros(side * side, num_heads))
        trunc_normal(self.relative_position_bias_table)
        self.softmax = nn.Softmax(dim=-1)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], rpi: torch.Tensor) -> torch.Tensor:
        """``(b, h*w, c)`` tokens of an ``x_size`` map (sides multiples of the window) -> same shape."""
        h, w = x_size
        b, _, c = x.shape
        ws, ow, heads = self.window_size, self.overlap_win_size, self.num_heads
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        qkv = self.qkv(x).reshape(b, h, w, 3, c).permute(3, 0, 4, 1, 2)  # 3, b, c, h, w
        q = qkv[0].permute(0, 2, 3, 1)  # b, h, w, c
        kv = torch.cat((qkv[1], qkv[2]), dim=1)  # b, 2c, h, w
        q_windows = window_partition(q, ws)
        q_windows = q_windows.view(q_windows.shape[0], ws * ws, c)  # b*nw, ws*ws, c
        # unfold: (b, 2c*ow*ow, nw) ordered (key/value, channel, row, column) -> 2, b*nw, ow*ow, c
        kv_windows = self.unfold(kv)
        nw = kv_windows.shape[-1]
        kv_windows = kv_windows.view(b, 2, c, ow, ow, nw).permute(1, 0, 5, 3, 4, 2).reshape(2, b * nw, ow * ow, c)
        b_, nq, _ = q_windows.shape
        n = ow * ow
        d = self.dim // heads
        q = q_windows.reshape(b_, nq, heads, d).permute(0, 2, 1, 3)
        k = kv_windows[0].reshape(b_, n, heads, d).permute(0, 2, 1, 3)
        v = kv_windows[1].reshape(b_, n, heads, d).permute(0, 2, 1, 3)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[rpi.view(-1)].view(ws * ws, n, -1).permute(2, 0, 1).contiguous()
        attn = self.softmax(attn + bias.unsqueeze(0))
        attn_windows = (attn @ v).transpose(1, 2).reshape(b_, nq, self.dim).view(b_, ws, ws, self.dim)
        x = window_reverse(attn_windows, ws, h, w, batch=b).view(b, h * w, self.dim)
        x = self.proj(x) + shortcut
        return x + self.mlp(self.norm2(x))


class AttenBlocks(nn.Module):
    """The attention part of one RHAG: ``depth`` HABs (every second one shifted), then one OCAB.

    Args:
        dim, input_resolution, num_heads, window_size, compress_ratio, squeeze_factor, conv_scale,
        mlp_ratio, qkv_bias, qk_scale, drop, attn_drop, norm_layer: see :class:`HAB`.
        depth: number of HABs.
        overlap_ratio: see :class:`OCAB`.
        drop_path: one stochastic depth rate per HAB, or one for all.
        use_checkpoint: recompute the HABs in the backward pass (saves memory in training).
    """

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        depth: int,
        num_heads: int,
        window_size: int,
        compress_ratio: int,
        squeeze_factor: int,
        conv_scale: float,
        overlap_ratio: float,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float | Sequence[float] = 0.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        use_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.input_resolution = input_resolution
        self.depth = depth
        self.use_checkpoint = use_checkpoint
        rates = list(drop_path) if isinstance(drop_path, Sequence) else [drop_path] * depth
        self.blocks = nn.ModuleList(
            HAB(
                dim=dim, input_resolution=input_resolution, num_heads=num_heads, window_size=window_size,
                shift_size=0 if i % 2 == 0 else window_size // 2, compress_ratio=compress_ratio,
                squeeze_factor=squeeze_factor, conv_scale=conv_scale, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                qk_scale=qk_scale, drop=drop, attn_drop=attn_drop, drop_path=rates[i], norm_layer=norm_layer,
            )
            for i in range(depth)
        )
        self.overlap_attn = OCAB(
            dim=dim, input_resolution=input_resolution, window_size=window_size, overlap_ratio=overlap_ratio,
            num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale, mlp_ratio=mlp_ratio, norm_layer=norm_layer,
        )

    def forward(
        self, x: torch.Tensor, x_size: tuple[int, int], params: dict[str, torch.Tensor | None]
    ) -> torch.Tensor:
        """Run the blocks; ``params``: ``rpi_sa``, ``rpi_oca``, ``attn_mask`` (see :meth:`HAT.forward_features`)."""
        rpi_sa, rpi_oca, mask = params["rpi_sa"], params["rpi_oca"], params["attn_mask"]
        assert rpi_sa is not None and rpi_oca is not None
        recompute = self.use_checkpoint and self.training and torch.is_grad_enabled()
        for blk in self.blocks:
            if recompute:
                x = checkpoint.checkpoint(blk, x, x_size, rpi_sa, mask, use_reentrant=False)
            else:
                x = blk(x, x_size, rpi_sa, mask)
        return self.overlap_attn(x, x_size, rpi_oca)


class RHAG(nn.Module):
    """Residual hybrid attention group: AttenBlocks, a conv (``1conv``) or nothing (``identity``), plus the input.

    Args:
        dim ... use_checkpoint: see :class:`AttenBlocks`.
        img_size, patch_size: nominal sizes of the token (un)embedding (recorded only).
        resi_connection: ``"1conv"`` or ``"identity"``.
    """

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        depth: int,
        num_heads: int,
        window_size: int,
        compress_ratio: int,
        squeeze_factor: int,
        conv_scale: float,
        overlap_ratio: float,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float | Sequence[float] = 0.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        use_checkpoint: bool = False,
        img_size: int | tuple[int, int] = 224,
        patch_size: int | tuple[int, int] = 4,
        resi_connection: str = "1conv",
    ) -> None:
        super().__init__()
        if resi_connection not in RESI_CONNECTIONS:
            raise OptionsError(f"RHAG: resi_connection must be one of {RESI_CONNECTIONS}, got {resi_connection!r}")
        self.dim = dim
        self.input_resolution = input_resolution
        self.residual_group = AttenBlocks(
            dim=dim, input_resolution=input_resolution, depth=depth, num_heads=num_heads, window_size=window_size,
            compress_ratio=compress_ratio, squeeze_factor=squeeze_factor, conv_scale=conv_scale,
            overlap_ratio=overlap_ratio, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale, drop=drop,
            attn_drop=attn_drop, drop_path=drop_path, norm_layer=norm_layer, use_checkpoint=use_checkpoint,
        )
        self.conv: nn.Module = nn.Conv2d(dim, dim, 3, 1, 1) if resi_connection == "1conv" else nn.Identity()
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=0, embed_dim=dim)
        self.patch_unembed = PatchUnEmbed(img_size=img_size, patch_size=patch_size, in_chans=0, embed_dim=dim)

    def forward(
        self, x: torch.Tensor, x_size: tuple[int, int], params: dict[str, torch.Tensor | None]
    ) -> torch.Tensor:
        """``(b, h*w, c)`` -> same shape."""
        body = self.patch_unembed(self.residual_group(x, x_size, params), x_size)
        return self.patch_embed(self.conv(body)) + x


# -- the network -----------------------------------------------------------------------------
def _positive_ints(name: str, values: Sequence[int]) -> list[int]:
    out = list(values)
    if not out or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in out):
        raise OptionsError(f"HAT: {name} must be a non-empty list of positive ints, got {values!r}")
    return out


def check_hat_args(
    *,
    embed_dim: int,
    depths: Sequence[int],
    num_heads: Sequence[int],
    window_size: int,
    compress_ratio: int,
    squeeze_factor: int,
    overlap_ratio: float,
    mlp_ratio: float,
    upscale: int,
    upsampler: str,
    resi_connection: str,
    in_chans: int,
    img_range: float,
    patches_resolution: tuple[int, int],
    ape: bool,
    drop_rates: dict[str, float],
) -> None:
    """Refuse HAT constructor arguments the official network cannot run with, in one line each.

    Raises:
        OptionsError: naming the argument, its value and what would work.
    """
    depths = _positive_ints("depths", depths)
    heads = _positive_ints("num_heads", num_heads)
    if len(depths) != len(heads):
        raise OptionsError(
            f"HAT: depths and num_heads must have one entry per residual group; got {len(depths)} depths "
            f"{depths} and {len(heads)} num_heads {heads}"
        )
    for name, value in (("embed_dim", embed_dim), ("window_size", window_size), ("in_chans", in_chans),
                        ("compress_ratio", compress_ratio), ("squeeze_factor", squeeze_factor)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OptionsError(f"HAT: {name} must be a positive int, got {value!r}")
    bad_heads = [f"num_heads[{i}]={h}" for i, h in enumerate(heads) if embed_dim % h]
    if bad_heads:
        raise OptionsError(f"HAT: embed_dim {embed_dim} must be a multiple of every num_heads; {', '.join(bad_heads)}")
    for name, ratio in (("compress_ratio", compress_ratio), ("squeeze_factor", squeeze_factor)):
        if embed_dim // ratio < 1:
            raise OptionsError(f"HAT: {name} {ratio} leaves no channel of embed_dim {embed_dim} (needs <= {embed_dim})")
    if not (isinstance(overlap_ratio, (int, float)) and math.isfinite(overlap_ratio) and overlap_ratio >= 0):
        raise OptionsError(
            f"HAT: overlap_ratio must be a finite number >= 0 (released models: 0.5), got {overlap_ratio!r}"
        )
    extra = int(window_size * overlap_ratio)
    if extra % 2:
        raise OptionsError(
            f"HAT: window_size {window_size} with overlap_ratio {overlap_ratio} widens OCAB's window by "
            f"int({window_size}*{overlap_ratio})={extra} pixels, which cannot be split evenly around the window "
            "(the official code fails on it); pick values that make it even, e.g. window_size 16 and "
            "overlap_ratio 0.5 as every released model"
        )
    if not (math.isfinite(mlp_ratio) and mlp_ratio > 0 and int(embed_dim * mlp_ratio) >= 1):
        raise OptionsError(f"HAT: mlp_ratio must be > 0, got {mlp_ratio!r}")
    if upsampler not in UPSAMPLERS:
        raise OptionsError(
            f"HAT: unknown upsampler {upsampler!r}; the official HAT builds its reconstruction only for "
            "'pixelshuffle' (every released model uses it)"
        )
    if isinstance(upscale, bool) or not isinstance(upscale, int) or upscale < 2 or (
        upscale & (upscale - 1) and upscale != 3
    ):
        raise OptionsError(
            f"HAT: upscale must be 2^n (2, 4, 8, ...) or 3 for the pixelshuffle upsampler, got {upscale!r}"
        )
    if resi_connection not in RESI_CONNECTIONS:
        raise OptionsError(f"HAT: resi_connection must be '1conv' or 'identity', got {resi_connection!r}")
    if not (math.isfinite(img_range) and img_range > 0):
        raise OptionsError(f"HAT: img_range must be > 0 (1.0 for every released model), got {img_range!r}")
    if min(patches_resolution) < window_size:
        raise OptionsError(
            f"HAT: img_size // patch_size = {patches_resolution[0]}x{patches_resolution[1]} is smaller than "
            f"window_size {window_size}; use img_size >= window_size (released models: 64)"
        )
    if ape and (patches_resolution[0] != patches_resolution[1] or patches_resolution[0] % window_size):
        raise OptionsError(
            f"HAT: ape=True needs a square img_size // patch_size that is a multiple of window_size {window_size}, "
            f"got {patches_resolution[0]}x{patches_resolution[1]}"
        )
    for name, rate in drop_rates.items():
        if not 0 <= rate < 1:
            raise OptionsError(f"HAT: {name} must be in [0, 1), got {rate!r}")


@ARCHS.register()
class HAT(nn.Module):
    """Hybrid Attention Transformer for super-resolution; input and output in [0, 1].

    Args (the official names and defaults; HAT uses ``window_size=16, embed_dim=180, depths=[6]*6,
    num_heads=[6]*6, mlp_ratio=2, upsampler='pixelshuffle'``; HAT-S ``embed_dim=144,
    compress_ratio=24, squeeze_factor=24``; HAT-L 12 groups):
        img_size: nominal training patch size: decides only whether a window as large disables the
            shift, and the size of ``absolute_pos_embed`` when ``ape``.
        patch_size: nominal patch size (1; HAT embeds every pixel).
        in_chans: image channels (the output has as many).
        embed_dim: token width.
        depths: HABs per residual group; num_heads: attention heads per group.
        window_size: attention window side.
        compress_ratio, squeeze_factor: channel-attention block widths (``embed_dim // ratio``).
        conv_scale: weight of the channel-attention branch (0.01 in every released model; no tensor
            records it).
        overlap_ratio: OCAB's extra key/value window, ``int(window_size * overlap_ratio)`` pixels;
            must be even.
        mlp_ratio: MLP hidden width / ``embed_dim``.
        qkv_bias, qk_scale: attention projection bias and query scale (``None``: ``head_dim**-0.5``).
        drop_rate, attn_drop_rate, drop_path_rate: dropout, attention dropout, stochastic depth.
        norm_layer: token norm class.
        ape: learned absolute position embedding (inputs must then be ``img_size`` square).
        patch_norm: normalise the embedded tokens.
        use_checkpoint: recompute the attention blocks in the backward pass (memory for time).
        upscale: 2^n or 3.
        img_range: the scale the network computes at (1.0).
        upsampler: ``"pixelshuffle"``, the only reconstruction the official HAT builds (its default
            ``""`` builds none and is refused here).
        resi_connection: ``"1conv"`` or ``"identity"``.

    ``spec.size_multiple`` is ``window_size``, the official input rule, so the inference helper pads
    to it; called directly, ``forward`` reflect-pads any other input size to the window itself and
    crops the output to ``upscale`` times the input size.
    """

    mean: torch.Tensor
    relative_position_index_SA: torch.Tensor
    relative_position_index_OCA: torch.Tensor

    def __init__(
        self,
        img_size: int | tuple[int, int] = 64,
        patch_size: int | tuple[int, int] = 1,
        in_chans: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (6, 6, 6, 6),
        num_heads: Sequence[int] = (6, 6, 6, 6),
        window_size: int = 7,
        compress_ratio: int = 3,
        squeeze_factor: int = 30,
        conv_scale: float = 0.01,
        overlap_ratio: float = 0.5,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        ape: bool = False,
        patch_norm: bool = True,
        use_checkpoint: bool = False,
        upscale: int = 2,
        img_range: float = 1.0,
        upsampler: str = "",
        resi_connection: str = "1conv",
    ) -> None:
        super().__init__()
        img, patch = to_2tuple(img_size), to_2tuple(patch_size)
        if min(patch) < 1 or min(img) < 1:
            raise OptionsError(f"HAT: img_size and patch_size must be positive, got {img_size!r}, {patch_size!r}")
        patches_resolution = (img[0] // patch[0], img[1] // patch[1])
        check_hat_args(
            embed_dim=embed_dim, depths=depths, num_heads=num_heads, window_size=window_size,
            compress_ratio=compress_ratio, squeeze_factor=squeeze_factor, overlap_ratio=overlap_ratio,
            mlp_ratio=mlp_ratio, upscale=upscale, upsampler=upsampler, resi_connection=resi_connection,
            in_chans=in_chans, img_range=img_range, patches_resolution=patches_resolution, ape=ape,
            drop_rates={"drop_rate": drop_rate, "attn_drop_rate": attn_drop_rate, "drop_path_rate": drop_path_rate},
        )
        depths, num_heads = list(depths), list(num_heads)
        self.window_size = window_size
        self.shift_size = window_size // 2
        self.overlap_ratio = overlap_ratio
        self.img_range = img_range
        self.upscale = upscale
        self.upsampler = upsampler
        mean = RGB_MEAN if in_chans == 3 else (0.0,)
        # not persistent: official checkpoints do not hold it
        self.register_buffer("mean", torch.tensor(mean).view(1, len(mean), 1, 1), persistent=False)
        self.register_buffer("relative_position_index_SA", relative_position_index(window_size).to(default_device()))
        overlap = overlap_window_size(window_size, overlap_ratio)
        self.register_buffer("relative_position_index_OCA", relative_position_index_oca(window_size, overlap))

        # 1. shallow features
        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        # 2. deep features
        self.num_layers = len(depths)
        self.embed_dim = embed_dim
        self.ape = ape
        self.patch_norm = patch_norm
        self.num_features = embed_dim
        self.mlp_ratio = mlp_ratio
        norm = norm_layer if patch_norm else None
        self.patch_embed = PatchEmbed(img_size=img, patch_size=patch, in_chans=embed_dim, embed_dim=embed_dim,
                                      norm_layer=norm)
        self.patches_resolution = list(patches_resolution)
        self.patch_unembed = PatchUnEmbed(img_size=img, patch_size=patch, in_chans=embed_dim, embed_dim=embed_dim,
                                          norm_layer=norm)
        if ape:
            num_patches = patches_resolution[0] * patches_resolution[1]
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, num_patches, embed_dim))
            trunc_normal(self.absolute_pos_embed)
        self.pos_drop = nn.Dropout(p=drop_rate)
        dpr = [float(r) for r in torch.linspace(0, drop_path_rate, sum(depths), device="cpu")]
        self.layers = nn.ModuleList(
            RHAG(
                dim=embed_dim, input_resolution=patches_resolution, depth=depths[i], num_heads=num_heads[i],
                window_size=window_size, compress_ratio=compress_ratio, squeeze_factor=squeeze_factor,
                conv_scale=conv_scale, overlap_ratio=overlap_ratio, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                qk_scale=qk_scale, drop=drop_rate, attn_drop=attn_drop_rate,
                drop_path=dpr[sum(depths[:i]):sum(depths[: i + 1])], norm_layer=norm_layer,
                use_checkpoint=use_checkpoint, img_size=img, patch_size=patch, resi_connection=resi_connection,
            )
            for i in range(self.num_layers)
        )
        self.norm = norm_layer(self.num_features)
        self.conv_after_body: nn.Module = (
            nn.Conv2d(embed_dim, embed_dim, 3, 1, 1) if resi_connection == "1conv" else nn.Identity()
        )
        # 3. reconstruction (pixelshuffle, the only one the official HAT has)
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, NUM_FEAT, 3, 1, 1), nn.LeakyReLU(inplace=True))
        self.upsample = Upsample(upscale, NUM_FEAT)
        self.conv_last = nn.Conv2d(NUM_FEAT, in_chans, 3, 1, 1)
        self.apply(init_swin_weights)
        self.spec = ModelSpec(
            in_channels=in_chans,
            out_channels=in_chans,
            scale=upscale,
            size_multiple=window_size,  # the official input rule (forward still pads other sizes itself)
            value_range=img_range,
            fixed_size=patches_resolution[0] if ape else None,
            # channel attention pools over the whole input, so tiles are close to, not equal to, the
            # whole image; HAT's own test code tiles the same way
            tileable=True,
            tile_overlap=max(32, 2 * window_size),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Deep features of ``conv_first``'s output ``(b, c, h, w)`` (sides multiples of the window)."""
        h, w = x.shape[2], x.shape[3]
        # the shifted-window mask is computed for this input size, as the official code does
        attn_mask = shifted_window_mask((h, w), self.window_size, self.shift_size, device=x.device, dtype=x.dtype)
        params: dict[str, torch.Tensor | None] = {
            "attn_mask": attn_mask,
            "rpi_sa": self.relative_position_index_SA,
            "rpi_oca": self.relative_position_index_OCA,
        }
        x = self.patch_embed(x)
        if self.ape:
            x = x + self.absolute_pos_embed
        x = self.pos_drop(x)
        for layer in self.layers:
            x = layer(x, (h, w), params)
        return self.patch_unembed(self.norm(x), (h, w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, in_chans, h, w)`` in [0, 1], any ``h``/``w`` -> ``(b, in_chans, h*upscale, w*upscale)``.

        Raises:
            OptionsError: the input cannot be padded to the window (sides under ``window_size // 2 + 1``
                pixels), or, with ``ape``, is not ``img_size`` square after padding.
        """
        if x.ndim != 4:
            raise OptionsError(f"HAT: expected a (batch, channels, height, width) input, got shape {tuple(x.shape)}")
        h, w = x.shape[2], x.shape[3]
        x = pad_to_window(x, self.window_size)
        if self.ape and tuple(x.shape[2:]) != tuple(self.patches_resolution):
            side = self.patches_resolution[0]
            raise OptionsError(
                f"HAT with ape=True takes {side}x{side} inputs only (its absolute position embedding), got {h}x{w}"
            )
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.img_range
        x = self.conv_first(x)
        x = self.conv_after_body(self.forward_features(x)) + x
        x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        x = x / self.img_range + mean
        return x[:, :, : h * self.upscale, : w * self.upscale]
