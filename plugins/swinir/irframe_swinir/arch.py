"""The SwinIR network (registered as ``SwinIR``).

Liang et al., "SwinIR: Image Restoration Using Swin Transformer" (ICCVW 2021). A shallow conv,
residual Swin transformer blocks (RSTB: shifted-window attention layers closed by a conv and a
residual), a conv after the body with a long skip, and one of four reconstruction heads:

- ``'pixelshuffle'``: classical SR (conv + LeakyReLU, ``Upsample`` conv/PixelShuffle steps, conv);
- ``'pixelshuffledirect'``: lightweight SR (one conv + PixelShuffle);
- ``'nearest+conv'``: real-world SR x4 (two nearest-neighbour x2 steps, each followed by a conv);
- ``''``: denoising / JPEG artifact reduction (``output = input + conv(features)``, scale 1).

Constructor arguments keep the official names and defaults, and the ``state_dict`` keys and shapes
are the official ones (``attn_mask`` buffers of the shifted blocks included), so released
checkpoints (``params`` / ``params_ema`` of the official ``.pth`` files) load with ``strict=True``.
The input is reflect-padded to a multiple of ``window_size`` inside ``forward`` and the output is
cropped back, as the official ``check_image_size`` does.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils import checkpoint as torch_checkpoint

from irframe.errors import OptionsError
from irframe.nn.spec import ModelSpec
from irframe.registry import ARCHS
from irframe_swinir.blocks import (
    DropPath,
    Mlp,
    PatchEmbed,
    PatchUnEmbed,
    Upsample,
    UpsampleOneStep,
    WindowAttention,
    attend_in_windows,
    default_device,
    init_swin_weights,
    pad_to_window,
    shifted_window_mask,
    to_2tuple,
    trunc_normal,
)

Upsampler = Literal["pixelshuffle", "pixelshuffledirect", "nearest+conv", ""]
ResiConnection = Literal["1conv", "3conv"]

UPSAMPLERS: tuple[str, ...] = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "")
RESI_CONNECTIONS: tuple[str, ...] = ("1conv", "3conv")
# DIV2K's RGB mean, subtracted by the official model for 3-channel inputs (gray inputs: 0).
RGB_MEAN = (0.4488, 0.4371, 0.4040)
# Features of the reconstruction heads of 'pixelshuffle' and 'nearest+conv'.
NUM_FEAT = 64


@functools.lru_cache(maxsize=8)
def _cached_window_mask(size: tuple[int, int], window_size: int, shift_size: int) -> torch.Tensor:
    """:func:`shifted_window_mask` on the CPU, cached: every shifted block of a model asks for the same
    one (when built, and in each forward on an input of another size than ``img_size``)."""
    return shifted_window_mask(size, window_size, shift_size)


class SwinTransformerBlock(nn.Module):
    """(Shifted-)window attention + MLP, each with a pre-norm and a residual.

    As in the official code, a block whose ``input_resolution`` is not larger than ``window_size``
    uses one window of the whole resolution and no shift. A shifted block registers its mask for
    ``input_resolution`` as the ``attn_mask`` buffer and computes it for any other size on the fly.
    """

    attn_mask: torch.Tensor | None

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        num_heads: int,
        window_size: int = 7,
        shift_size: int = 0,
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
        if min(self.input_resolution) <= self.window_size:
            # the window covers the whole (nominal) image: no partition, no shift
            self.shift_size = 0
            self.window_size = min(self.input_resolution)
        if not 0 <= self.shift_size < self.window_size:
            raise OptionsError(f"SwinIR: shift_size must be in [0, {self.window_size}), got {self.shift_size}")
        self.norm1 = norm_layer(dim)
        self.attn = WindowAttention(
            dim,
            window_size=to_2tuple(self.window_size),
            num_heads=num_heads,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            attn_drop=attn_drop,
            proj_drop=drop,
        )
        self.drop_path: nn.Module = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        attn_mask = None
        if self.shift_size > 0:
            attn_mask = self.calculate_mask(self.input_resolution).to(default_device())
        self.register_buffer("attn_mask", attn_mask)

    def calculate_mask(self, x_size: tuple[int, int]) -> torch.Tensor:
        """The shifted-window attention mask for a feature map of ``x_size``, on the CPU.

        A fresh copy of a cached result, so the blocks of one model never share a buffer's storage.
        """
        return _cached_window_mask((int(x_size[0]), int(x_size[1])), self.window_size, self.shift_size).clone()

    def forward(self, x: torch.Tensor, x_size: tuple[int, int]) -> torch.Tensor:
        """``x``: tokens ``(b, h*w, c)`` of a feature map of ``x_size = (h, w)``."""
        h, w = x_size
        b, _, c = x.shape
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        mask: torch.Tensor | None = None
        if self.shift_size > 0:
            buffered = self.attn_mask
            if not (isinstance(h, int) and isinstance(w, int)):
                # symbolic sizes (torch.export with dynamic height/width): the mask becomes part of the
                # graph, computed for the input's size; comparing with input_resolution would fix the size
                mask = shifted_window_mask((h, w), self.window_size, self.shift_size, device=x.device)
            elif tuple(self.input_resolution) == (h, w) and isinstance(buffered, torch.Tensor):
                mask = buffered
            else:
                mask = self.calculate_mask(x_size).to(x.device)
        x = attend_in_windows(x, self.attn, self.window_size, self.shift_size, mask)
        x = shortcut + self.drop_path(x)
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, input_resolution={self.input_resolution}, num_heads={self.num_heads}, "
            f"window_size={self.window_size}, shift_size={self.shift_size}, mlp_ratio={self.mlp_ratio}"
        )


class BasicLayer(nn.Module):
    """``depth`` Swin blocks, alternating regular and shifted (by half a window) windows."""

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float | Sequence[float] = 0.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        downsample: type[nn.Module] | None = None,
        use_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.input_resolution = input_resolution
        self.depth = depth
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim=dim,
                input_resolution=input_resolution,
                num_heads=num_heads,
                window_size=window_size,
                shift_size=0 if i % 2 == 0 else window_size // 2,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                qk_scale=qk_scale,
                drop=drop,
                attn_drop=attn_drop,
                drop_path=drop_path[i] if isinstance(drop_path, Sequence) else drop_path,
                norm_layer=norm_layer,
            )
            for i in range(depth)
        )
        self.downsample: nn.Module | None = (
            downsample(input_resolution, dim=dim, norm_layer=norm_layer) if downsample is not None else None
        )

    def forward(self, x: torch.Tensor, x_size: tuple[int, int]) -> torch.Tensor:
        """Run the blocks (with activation checkpointing when ``use_checkpoint``)."""
        for block in self.blocks:
            if self.use_checkpoint and torch.is_grad_enabled():
                x = torch_checkpoint.checkpoint(block, x, x_size, use_reentrant=False)
            else:
                x = block(x, x_size)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


def _residual_conv(dim: int, resi_connection: str) -> nn.Module:
    """The conv closing a residual group: one 3x3 conv, or 3x3 -> 1x1 -> 3x3 through ``dim // 4``."""
    if resi_connection == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    return nn.Sequential(
        nn.Conv2d(dim, dim // 4, 3, 1, 1),
        nn.LeakyReLU(negative_slope=0.2, inplace=True),
        nn.Conv2d(dim // 4, dim // 4, 1, 1, 0),
        nn.LeakyReLU(negative_slope=0.2, inplace=True),
        nn.Conv2d(dim // 4, dim, 3, 1, 1),
    )


class RSTB(nn.Module):
    """Residual Swin Transformer Block: a :class:`BasicLayer`, a conv, and a residual around both."""

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float | Sequence[float] = 0.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        downsample: type[nn.Module] | None = None,
        use_checkpoint: bool = False,
        img_size: int | Sequence[int] = 224,
        patch_size: int | Sequence[int] = 4,
        resi_connection: str = "1conv",
    ) -> None:
        super().__init__()
        self.dim = dim
        self.input_resolution = input_resolution
        self.residual_group = BasicLayer(
            dim=dim,
            input_resolution=input_resolution,
            depth=depth,
            num_heads=num_heads,
            window_size=window_size,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            drop=drop,
            attn_drop=attn_drop,
            drop_path=drop_path,
            norm_layer=norm_layer,
            downsample=downsample,
            use_checkpoint=use_checkpoint,
        )
        self.conv = _residual_conv(dim, resi_connection)
        self.patch_embed = PatchEmbed(
            img_size=to_2tuple(img_size), patch_size=to_2tuple(patch_size), in_chans=0, embed_dim=dim
        )
        self.patch_unembed = PatchUnEmbed(
            img_size=to_2tuple(img_size), patch_size=to_2tuple(patch_size), in_chans=0, embed_dim=dim
        )

    def forward(self, x: torch.Tensor, x_size: tuple[int, int]) -> torch.Tensor:
        """Tokens in, tokens out: ``x + embed(conv(unembed(blocks(x))))``."""
        y = self.patch_unembed(self.residual_group(x, x_size), x_size)
        return self.patch_embed(self.conv(y)) + x


def _as_int_list(name: str, value: Sequence[int]) -> list[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise OptionsError(f"SwinIR: {name} must be a list of ints, got {value!r}")
    items = list(value)
    if not items or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in items):
        raise OptionsError(f"SwinIR: {name} must be a non-empty list of positive ints, got {items}")
    return items


def check_swinir_options(
    *,
    img_size: tuple[int, int],
    patch_size: tuple[int, int],
    in_chans: int,
    embed_dim: int,
    depths: Sequence[int],
    num_heads: Sequence[int],
    window_size: int,
    mlp_ratio: float,
    upscale: int,
    img_range: float,
    upsampler: str,
    resi_connection: str,
) -> tuple[list[int], list[int]]:
    """Refuse bad SwinIR arguments with one-line :class:`OptionsError`; return ``(depths, num_heads)``."""
    if upsampler not in UPSAMPLERS:
        raise OptionsError(
            f"SwinIR: unknown upsampler {upsampler!r}; use 'pixelshuffle' (classical SR), "
            "'pixelshuffledirect' (lightweight SR), 'nearest+conv' (real-world SR x4) or '' (denoising/JPEG)"
        )
    if resi_connection not in RESI_CONNECTIONS:
        raise OptionsError(f"SwinIR: resi_connection must be '1conv' or '3conv', got {resi_connection!r}")
    depth_list = _as_int_list("depths", depths)
    head_list = _as_int_list("num_heads", num_heads)
    if len(depth_list) != len(head_list):
        raise OptionsError(
            f"SwinIR: depths and num_heads need one entry per residual group, got {len(depth_list)} depths "
            f"{depth_list} and {len(head_list)} num_heads {head_list}"
        )
    if in_chans < 1 or embed_dim < 1:
        raise OptionsError(f"SwinIR: in_chans and embed_dim must be positive, got {in_chans}, {embed_dim}")
    for i, heads in enumerate(head_list):
        if embed_dim % heads:
            raise OptionsError(f"SwinIR: num_heads[{i}]={heads} does not divide embed_dim={embed_dim}")
    if resi_connection == "3conv" and embed_dim < 4:
        raise OptionsError(
            f"SwinIR: resi_connection '3conv' needs embed_dim >= 4 (it uses embed_dim // 4), got {embed_dim}"
        )
    if window_size < 1:
        raise OptionsError(f"SwinIR: window_size must be positive, got {window_size}")
    if mlp_ratio <= 0 or img_range <= 0:
        raise OptionsError(f"SwinIR: mlp_ratio and img_range must be > 0, got {mlp_ratio}, {img_range}")
    if min(img_size) < 1 or min(patch_size) < 1:
        raise OptionsError(f"SwinIR: img_size and patch_size must be positive, got {img_size}, {patch_size}")
    resolution = (img_size[0] // patch_size[0], img_size[1] // patch_size[1])
    if min(resolution) < 1:
        raise OptionsError(f"SwinIR: img_size {img_size} is smaller than patch_size {patch_size}")
    shifted = any(d > 1 for d in depth_list) and min(resolution) > window_size
    if shifted and (resolution[0] % window_size or resolution[1] % window_size):
        raise OptionsError(
            f"SwinIR: window_size {window_size} does not divide img_size {resolution[0]}x{resolution[1]} "
            "(the shifted-window attention mask is built for img_size); use an img_size that is a multiple "
            "of window_size (the released models: 64 or 48 with window 8, 128 with 8, 126 with 7)"
        )
    if isinstance(upscale, bool) or not isinstance(upscale, int) or upscale < 1:
        raise OptionsError(f"SwinIR: upscale must be a positive int, got {upscale!r}")
    if upsampler == "pixelshuffle" and not (upscale == 3 or (upscale >= 2 and upscale & (upscale - 1) == 0)):
        raise OptionsError(f"SwinIR: upsampler 'pixelshuffle' supports upscale 2^n or 3, got {upscale}")
    if upsampler == "nearest+conv" and upscale != 4:
        raise OptionsError(
            f"SwinIR: upsampler 'nearest+conv' supports upscale 4 only (as the official code), got {upscale}"
        )
    return depth_list, head_list


@ARCHS.register("SwinIR")
class SwinIR(nn.Module):
    """SwinIR (Liang et al., ICCVW 2021).

    Args:
        img_size: nominal input size (training patch); sets the ``attn_mask`` buffers' shape. Any
            input size works: other sizes get their mask computed on the fly.
        patch_size: patch size (1 in every released model).
        in_chans: image channels (3 RGB, 1 gray); the output has as many.
        embed_dim: feature width.
        depths: Swin blocks per residual group (RSTB).
        num_heads: attention heads per residual group.
        window_size: attention window side; inputs are padded to a multiple of it.
        mlp_ratio: MLP hidden width / ``embed_dim``.
        qkv_bias: learn a bias in the query/key/value projections.
        qk_scale: query scale; default ``head_dim ** -0.5``.
        drop_rate: dropout after the patch embedding, projections and MLPs.
        attn_drop_rate: dropout on the attention weights.
        drop_path_rate: stochastic depth, rising linearly to this over all blocks.
        norm_layer: the normalisation layer class.
        ape: learn an absolute position embedding (then inputs must be ``img_size``).
        patch_norm: LayerNorm after the patch embedding.
        use_checkpoint: activation checkpointing in training (saves memory).
        upscale: SR factor (2^n or 3 for ``'pixelshuffle'``, any for ``'pixelshuffledirect'``, 4 for
            ``'nearest+conv'``); ignored by ``''`` (denoising / JPEG work at scale 1).
        img_range: the range the network computes in (1.0; the released JPEG models 255.0). The
            input and output stay in [0, 1].
        upsampler: ``'pixelshuffle'``, ``'pixelshuffledirect'``, ``'nearest+conv'`` or ``''``.
        resi_connection: ``'1conv'`` or ``'3conv'`` (3x3 -> 1x1 -> 3x3 through ``embed_dim // 4``).
    """

    mean: torch.Tensor

    def __init__(
        self,
        img_size: int | Sequence[int] = 64,
        patch_size: int | Sequence[int] = 1,
        in_chans: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (6, 6, 6, 6),
        num_heads: Sequence[int] = (6, 6, 6, 6),
        window_size: int = 7,
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
        upsampler: Upsampler = "",
        resi_connection: ResiConnection = "1conv",
    ) -> None:
        super().__init__()
        img_hw, patch_hw = to_2tuple(img_size), to_2tuple(patch_size)
        depth_list, head_list = check_swinir_options(
            img_size=img_hw,
            patch_size=patch_hw,
            in_chans=in_chans,
            embed_dim=embed_dim,
            depths=depths,
            num_heads=num_heads,
            window_size=window_size,
            mlp_ratio=mlp_ratio,
            upscale=upscale,
            img_range=img_range,
            upsampler=upsampler,
            resi_connection=resi_connection,
        )
        num_in_ch = num_out_ch = in_chans
        self.img_range = img_range
        mean = RGB_MEAN if in_chans == 3 else (0.0,) * in_chans
        # not persistent: the official model keeps it as a plain attribute, outside the state_dict
        self.register_buffer("mean", torch.tensor(mean).view(1, in_chans, 1, 1), persistent=False)
        self.upscale = upscale
        self.upsampler = upsampler
        self.window_size = window_size
        self.num_layers = len(depth_list)
        self.embed_dim = embed_dim
        self.ape = ape
        self.patch_norm = patch_norm
        self.num_features = embed_dim
        self.mlp_ratio = mlp_ratio
        scale = upscale if upsampler else 1
        self.spec = ModelSpec(
            in_channels=in_chans,
            out_channels=in_chans,
            scale=scale,
            size_multiple=window_size,
            value_range=float(img_range),
            # the absolute position embedding holds one vector per token of img_size: that size only
            fixed_size=img_hw[0] if ape and img_hw[0] == img_hw[1] else None,
            tileable=True,
            tile_overlap=32,
        )

        # 1. shallow feature extraction
        self.conv_first = nn.Conv2d(num_in_ch, embed_dim, 3, 1, 1)

        # 2. deep feature extraction
        self.patch_embed = PatchEmbed(
            img_size=img_hw,
            patch_size=patch_hw,
            in_chans=embed_dim,
            embed_dim=embed_dim,
            norm_layer=norm_layer if patch_norm else None,
        )
        self.num_patches = self.patch_embed.num_patches
        resolution = (self.patch_embed.patches_resolution[0], self.patch_embed.patches_resolution[1])
        self.patches_resolution = resolution
        self.patch_unembed = PatchUnEmbed(
            img_size=img_hw, patch_size=patch_hw, in_chans=embed_dim, embed_dim=embed_dim
        )
        self.absolute_pos_embed: nn.Parameter | None = None
        if ape:
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, self.num_patches, embed_dim))
            trunc_normal(self.absolute_pos_embed)
        self.pos_drop = nn.Dropout(p=drop_rate)
        dpr = [float(v) for v in torch.linspace(0, drop_path_rate, sum(depth_list), device="cpu")]
        self.layers = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(depth_list, head_list, strict=True)):
            start = sum(depth_list[:i])
            self.layers.append(
                RSTB(
                    dim=embed_dim,
                    input_resolution=resolution,
                    depth=depth,
                    num_heads=heads,
                    window_size=window_size,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    qk_scale=qk_scale,
                    drop=drop_rate,
                    attn_drop=attn_drop_rate,
                    drop_path=dpr[start : start + depth],
                    norm_layer=norm_layer,
                    downsample=None,
                    use_checkpoint=use_checkpoint,
                    img_size=img_hw,
                    patch_size=patch_hw,
                    resi_connection=resi_connection,
                )
            )
        self.norm = norm_layer(self.num_features)
        self.conv_after_body = _residual_conv(embed_dim, resi_connection)

        # 3. reconstruction
        if upsampler == "pixelshuffle":
            self.conv_before_upsample = nn.Sequential(
                nn.Conv2d(embed_dim, NUM_FEAT, 3, 1, 1), nn.LeakyReLU(inplace=True)
            )
            self.upsample: nn.Module = Upsample(upscale, NUM_FEAT)
            self.conv_last = nn.Conv2d(NUM_FEAT, num_out_ch, 3, 1, 1)
        elif upsampler == "pixelshuffledirect":
            self.upsample = UpsampleOneStep(upscale, embed_dim, num_out_ch, resolution)
        elif upsampler == "nearest+conv":
            self.conv_before_upsample = nn.Sequential(
                nn.Conv2d(embed_dim, NUM_FEAT, 3, 1, 1), nn.LeakyReLU(inplace=True)
            )
            self.conv_up1 = nn.Conv2d(NUM_FEAT, NUM_FEAT, 3, 1, 1)
            self.conv_up2 = nn.Conv2d(NUM_FEAT, NUM_FEAT, 3, 1, 1)
            self.conv_hr = nn.Conv2d(NUM_FEAT, NUM_FEAT, 3, 1, 1)
            self.conv_last = nn.Conv2d(NUM_FEAT, num_out_ch, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        else:
            self.conv_last = nn.Conv2d(embed_dim, num_out_ch, 3, 1, 1)

        self.apply(init_swin_weights)

    def no_weight_decay(self) -> set[str]:
        """Parameters the official recipe keeps out of weight decay."""
        return {"absolute_pos_embed"}

    def no_weight_decay_keywords(self) -> set[str]:
        """Name fragments of parameters the official recipe keeps out of weight decay."""
        return {"relative_position_bias_table"}

    def check_image_size(self, x: torch.Tensor) -> torch.Tensor:
        """Reflect-pad ``x`` at the bottom/right to a multiple of ``window_size`` (as the official code)."""
        return pad_to_window(x, self.window_size)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The residual groups on a ``(b, embed_dim, h, w)`` feature map (same shape out)."""
        x_size = (x.shape[2], x.shape[3])
        x = self.patch_embed(x)
        if self.absolute_pos_embed is not None:
            if x.shape[1] != self.absolute_pos_embed.shape[1]:
                raise OptionsError(
                    f"SwinIR with ape=True takes only inputs of img_size {self.patch_embed.img_size} "
                    f"(padded to the window), got {x_size[0]}x{x_size[1]}"
                )
            x = x + self.absolute_pos_embed
        x = self.pos_drop(x)
        for layer in self.layers:
            x = layer(x, x_size)
        x = self.norm(x)
        return self.patch_unembed(x, x_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, in_chans, h, w)`` in [0, 1] -> ``(b, in_chans, h*s, w*s)`` (``s = spec.scale``)."""
        h, w = x.shape[2:]
        x = self.check_image_size(x)
        mean = self.mean.to(dtype=x.dtype)
        x = (x - mean) * self.img_range
        if self.upsampler == "pixelshuffle":
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            x = self.conv_before_upsample(x)
            x = self.conv_last(self.upsample(x))
        elif self.upsampler == "pixelshuffledirect":
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            x = self.upsample(x)
        elif self.upsampler == "nearest+conv":
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            x = self.conv_before_upsample(x)
            x = self.lrelu(self.conv_up1(F.interpolate(x, scale_factor=2, mode="nearest")))
            x = self.lrelu(self.conv_up2(F.interpolate(x, scale_factor=2, mode="nearest")))
            x = self.conv_last(self.lrelu(self.conv_hr(x)))
        else:
            x_first = self.conv_first(x)
            res = self.conv_after_body(self.forward_features(x_first)) + x_first
            x = x + self.conv_last(res)
        x = x / self.img_range + mean
        scale = self.spec.scale
        return x[:, :, : h * scale, : w * scale]
