"""NAFNet and its Baseline (registered as ``NAFNet``, ``Baseline``, ``NAFNetLocal``, ``BaselineLocal``).

Both are the same U-Net: a 3x3 ``intro`` conv, ``len(enc_blk_nums)`` encoder levels (blocks, then a
2x2 stride-2 conv in ``downs`` doubling the channels), ``middle_blks`` at the bottom, decoder levels
(a 1x1 conv + PixelShuffle(2) in ``ups`` halving the channels, the encoder skip added, blocks), a 3x3
``ending`` conv and the input added back. The input is zero padded at the bottom/right to a multiple
of ``2**levels`` inside ``forward`` and the output cropped back, as the official code does, so any
size works. NAFNet uses :class:`~irframe_nafnet.blocks.NAFBlock`, Baseline
:class:`~irframe_nafnet.blocks.BaselineBlock`.

The ``*Local`` variants are the test-time local statistics (TLC) models the released GoPro / REDS
deblurring checkpoints are evaluated with: every attention's global average pooling becomes a local
one whose window is 1.5 times ``train_size``'s crop at that level. The official code finds the
windows by swapping modules and running a dummy forward pass; here they are computed when the model
is built (same windows, same numerics, same state_dict as the plain model).

Constructor arguments keep the official names and defaults; ``state_dict`` names and shapes are the
official ones, so released ``.pth`` files (weights under ``params``) load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from irframe.errors import OptionsError
from irframe.nn.spec import ModelSpec
from irframe.registry import ARCHS
from irframe_nafnet.blocks import BaselineBlock, LocalAvgPool2d, NAFBlock, tlc_pooling_plan

# The TLC training crop of the released GoPro / REDS models (the official default).
DEFAULT_TRAIN_SIZE = (1, 3, 256, 256)

BlockFactory = Callable[[int], "NAFBlock | BaselineBlock"]


def check_unet_options(
    arch: str, img_channel: int, width: int, middle_blk_num: int, enc_blk_nums: Sequence[int],
    dec_blk_nums: Sequence[int],
) -> tuple[list[int], list[int]]:
    """Validated block counts ``(enc, dec)`` as lists.

    Raises:
        OptionsError: a non-positive channel count, a negative block count, or encoder and decoder
            lists of different lengths (the decoder must climb back every level the encoder went down).
    """
    if img_channel < 1:
        raise OptionsError(f"{arch}: img_channel must be a positive number of channels, got {img_channel}")
    if width < 1:
        raise OptionsError(f"{arch}: width must be a positive number of channels, got {width}")
    if middle_blk_num < 0:
        raise OptionsError(f"{arch}: middle_blk_num must be >= 0, got {middle_blk_num}")
    enc, dec = [int(n) for n in enc_blk_nums], [int(n) for n in dec_blk_nums]
    for key, counts in (("enc_blk_nums", enc), ("dec_blk_nums", dec)):
        if any(n < 0 for n in counts):
            raise OptionsError(f"{arch}: {key} must hold block counts >= 0, got {counts}")
    if len(enc) != len(dec):
        raise OptionsError(
            f"{arch}: enc_blk_nums {enc} and dec_blk_nums {dec} must have the same length (one decoder level "
            f"per encoder level), got {len(enc)} and {len(dec)}"
        )
    return enc, dec


def check_train_size(arch: str, train_size: Sequence[int]) -> tuple[int, int, int, int]:
    """``train_size`` as four positive ints ``(N, C, H, W)``; only ``H`` and ``W`` set the windows.

    Raises:
        OptionsError: not four numbers, or one of them not positive.
    """
    values = tuple(train_size)
    if len(values) != 4 or any(int(v) < 1 for v in values):
        raise OptionsError(
            f"{arch}: train_size must be 4 positive numbers (N, C, H, W) of the training input, e.g. "
            f"[1, 3, 256, 256], got {list(values)}"
        )
    n, c, h, w = (int(v) for v in values)
    return n, c, h, w


class NAFUNet(nn.Module):
    """The U-Net shared by NAFNet and Baseline (not registered; see the module docstring).

    Args:
        arch: the registered name, for error messages.
        img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums: as the official constructors.
        block: ``block(channels)`` builds one block.
    """

    def __init__(
        self, arch: str, img_channel: int, width: int, middle_blk_num: int, enc_blk_nums: Sequence[int],
        dec_blk_nums: Sequence[int], block: BlockFactory,
    ) -> None:
        super().__init__()
        enc, dec = check_unet_options(arch, img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums)
        levels = len(enc)
        # Attribute order = official state_dict order.
        self.intro = nn.Conv2d(img_channel, width, kernel_size=3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, kernel_size=3, padding=1)
        self.encoders = nn.ModuleList(nn.Sequential(*[block(width << i) for _ in range(n)]) for i, n in enumerate(enc))
        self.decoders = nn.ModuleList(
            nn.Sequential(*[block(width << (levels - 1 - j)) for _ in range(n)]) for j, n in enumerate(dec)
        )
        self.middle_blks = nn.Sequential(*[block(width << levels) for _ in range(middle_blk_num)])
        self.ups = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width << i, width << (i + 1), kernel_size=1, bias=False), nn.PixelShuffle(2))
            for i in range(levels, 0, -1)
        )
        self.downs = nn.ModuleList(
            nn.Conv2d(width << i, width << (i + 1), kernel_size=2, stride=2) for i in range(levels)
        )
        self.padder_size: int = 2**levels
        self.spec = ModelSpec(
            in_channels=img_channel,
            out_channels=img_channel,
            scale=1,
            # forward also zero pads to 2**levels itself (the official code), so a direct call takes any
            # size; declaring the multiple lets the engine pad and keeps the exported graph's sizes simple.
            size_multiple=self.padder_size,
            value_range=1.0,
            # The channel attention pools globally (or over a wide window): tiles are an approximation.
            tileable=True,
        )

    def blocks_by_level(self) -> Iterator[tuple[int, NAFBlock | BaselineBlock]]:
        """``(level, block)`` for every block; level 0 is full resolution, ``len(encoders)`` the middle."""
        levels = len(self.encoders)
        stages = [(i, stage) for i, stage in enumerate(self.encoders)] + [(levels, self.middle_blks)]
        stages += [(levels - 1 - j, stage) for j, stage in enumerate(self.decoders)]
        for level, stage in stages:
            for block in cast(nn.Sequential, stage):
                yield level, cast("NAFBlock | BaselineBlock", block)

    def use_local_pooling(self, train_size: Sequence[int], fast_imp: bool) -> None:
        """Replace every attention's global pooling by TLC's local pooling for ``train_size``."""
        plan = tlc_pooling_plan(train_size, len(self.encoders))
        for level, block in self.blocks_by_level():
            kernel, reduction = plan[level]
            block.set_pool(LocalAvgPool2d(kernel, fast_imp=fast_imp, max_reduction=reduction))

    def check_image_size(self, x: torch.Tensor) -> torch.Tensor:
        """Zero pad ``x`` at the bottom/right to a multiple of ``2**levels``."""
        h, w = x.shape[-2:]
        pad_h = (self.padder_size - h % self.padder_size) % self.padder_size
        pad_w = (self.padder_size - w % self.padder_size) % self.padder_size
        return F.pad(x, (0, pad_w, 0, pad_h))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """Restore ``inp`` (N, img_channel, H, W) in [0,1], any H and W. Not clamped."""
        expected = self.spec.in_channels
        if inp.ndim != 4 or inp.shape[1] != expected:
            raise ValueError(
                f"{type(self).__name__}: expected an (N, {expected}, H, W) input, got shape {tuple(inp.shape)}"
            )
        h, w = inp.shape[-2:]
        inp = self.check_image_size(inp)
        x = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, skips[::-1]):
            x = decoder(up(x) + skip)
        x = self.ending(x) + inp
        return x[:, :, :h, :w]


@ARCHS.register("NAFNet")
class NAFNet(NAFUNet):
    """NAFNet (Chen et al., ECCV 2022): the nonlinear-activation-free U-Net.

    Args:
        img_channel: image channels in and out (3 RGB).
        width: channels of level 0; level ``i`` has ``width * 2**i``.
        middle_blk_num: blocks at the bottom level.
        enc_blk_nums: blocks per encoder level (its length is the number of levels).
        dec_blk_nums: blocks per decoder level, bottom-up (same length as ``enc_blk_nums``).
    """

    def __init__(
        self,
        img_channel: int = 3,
        width: int = 16,
        middle_blk_num: int = 1,
        enc_blk_nums: Sequence[int] = (),
        dec_blk_nums: Sequence[int] = (),
    ) -> None:
        super().__init__(type(self).__name__, img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums, NAFBlock)


@ARCHS.register("NAFNetLocal")
class NAFNetLocal(NAFNet):
    """NAFNet with test-time local statistics (TLC): how the released GoPro/REDS models are evaluated.

    Args:
        img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums: as :class:`NAFNet`.
        train_size: ``(N, C, H, W)`` of the training crops; each pooling window is ``1.5 * (H, W)``
            scaled to its level (an input no larger than the window gets the global mean).
        fast_imp: the official faster, approximate local pooling.
    """

    def __init__(
        self,
        img_channel: int = 3,
        width: int = 16,
        middle_blk_num: int = 1,
        enc_blk_nums: Sequence[int] = (),
        dec_blk_nums: Sequence[int] = (),
        train_size: Sequence[int] = DEFAULT_TRAIN_SIZE,
        fast_imp: bool = False,
    ) -> None:
        size = check_train_size(type(self).__name__, train_size)
        super().__init__(img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums)
        self.train_size = size
        self.use_local_pooling(size, fast_imp)


@ARCHS.register("Baseline")
class Baseline(NAFUNet):
    """The NAFNet paper's Baseline: the same U-Net with GELU and squeeze-and-excitation attention.

    Args:
        img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums: as :class:`NAFNet`.
        dw_expand: depthwise branch width / block width.
        ffn_expand: feed-forward width / block width.
    """

    def __init__(
        self,
        img_channel: int = 3,
        width: int = 16,
        middle_blk_num: int = 1,
        enc_blk_nums: Sequence[int] = (),
        dec_blk_nums: Sequence[int] = (),
        dw_expand: int = 1,
        ffn_expand: int = 2,
    ) -> None:
        arch = type(self).__name__
        if dw_expand < 1 or ffn_expand < 1:
            raise OptionsError(f"{arch}: dw_expand and ffn_expand must be >= 1, got {dw_expand} and {ffn_expand}")
        if width >= 1 and width * dw_expand < 2:
            raise OptionsError(
                f"{arch}: width * dw_expand must be >= 2 (the channel attention halves it), got {width} * {dw_expand}"
            )

        def block(c: int) -> BaselineBlock:
            return BaselineBlock(c, dw_expand, ffn_expand)

        super().__init__(arch, img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums, block)


@ARCHS.register("BaselineLocal")
class BaselineLocal(Baseline):
    """Baseline with test-time local statistics (TLC), as the released GoPro Baseline models are evaluated.

    Args:
        img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums, dw_expand, ffn_expand: as
            :class:`Baseline`.
        train_size, fast_imp: as :class:`NAFNetLocal`.
    """

    def __init__(
        self,
        img_channel: int = 3,
        width: int = 16,
        middle_blk_num: int = 1,
        enc_blk_nums: Sequence[int] = (),
        dec_blk_nums: Sequence[int] = (),
        dw_expand: int = 1,
        ffn_expand: int = 2,
        train_size: Sequence[int] = DEFAULT_TRAIN_SIZE,
        fast_imp: bool = False,
    ) -> None:
        size = check_train_size(type(self).__name__, train_size)
        super().__init__(img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums, dw_expand, ffn_expand)
        self.train_size = size
        self.use_local_pooling(size, fast_imp)
