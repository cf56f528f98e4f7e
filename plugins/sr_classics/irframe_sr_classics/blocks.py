"""Blocks shared by the SR classics (BasicSR's ``arch_util``), and the checks of their options.

``ResidualBlockNoBN``, ``Upsample``, ``make_layer``, ``pixel_unshuffle`` and ``default_init_weights``
keep BasicSR's names, arguments and parameter names (``conv1``/``conv2``, ``upsample.N``), so the
released state dicts load with ``strict=True``. :class:`MeanShiftSR` is the frame EDSR and RCAN share.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import init

from irframe.errors import OptionsError
from irframe.nn.spec import ModelSpec

# DIV2K's RGB mean, which EDSR and RCAN subtract inside forward.
DIV2K_RGB_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)
# Default overlap between tiles (input pixels) for nets whose receptive field is wider than that.
MAX_TILE_OVERLAP = 32


@torch.no_grad()
def default_init_weights(
    module_list: nn.Module | Iterable[nn.Module], scale: float = 1, bias_fill: float = 0, **kwargs: Any
) -> None:
    """BasicSR's initialisation: Kaiming-normal conv/linear weights times ``scale``, biases ``bias_fill``.

    Args:
        module_list: a module or modules whose sub-modules are initialised.
        scale: factor on the initial weights (0.1 for residual blocks, which keeps them near identity).
        bias_fill: value of the biases.
        kwargs: passed to ``torch.nn.init.kaiming_normal_``.
    """
    modules = [module_list] if isinstance(module_list, nn.Module) else list(module_list)
    for module in modules:
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                init.kaiming_normal_(m.weight, **kwargs)
                m.weight.mul_(scale)
                if m.bias is not None:
                    m.bias.fill_(bias_fill)
            elif isinstance(m, nn.BatchNorm2d):
                init.constant_(m.weight, 1)
                if m.bias is not None:
                    m.bias.fill_(bias_fill)


def make_layer(basic_block: Callable[..., nn.Module], num_basic_block: int, **kwarg: Any) -> nn.Sequential:
    """``nn.Sequential`` of ``num_basic_block`` blocks ``basic_block(**kwarg)`` (names ``0``, ``1``, ...)."""
    return nn.Sequential(*[basic_block(**kwarg) for _ in range(num_basic_block)])


class ResidualBlockNoBN(nn.Module):
    """``x + res_scale * conv2(relu(conv1(x)))``: the residual block without batch norm (EDSR, SRResNet).

    Args:
        num_feat: channels.
        res_scale: factor on the residual branch (EDSR-L: 0.1).
        pytorch_init: keep torch's default initialisation; otherwise BasicSR's scaled Kaiming (x0.1).
    """

    def __init__(self, num_feat: int = 64, res_scale: float = 1, pytorch_init: bool = False) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        if not pytorch_init:
            default_init_weights([self.conv1, self.conv2], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output, same shape as ``x``."""
        out = self.conv2(self.relu(self.conv1(x)))
        return x + out * self.res_scale


def upsample_supported(scale: int) -> bool:
    """Whether :class:`Upsample` can build ``scale``: a power of two (1 builds nothing) or 3."""
    return scale >= 1 and (scale & (scale - 1) == 0 or scale == 3)


def check_upsample_scale(scale: int, owner: str, name: str = "upscale") -> None:
    """Refuse a scale :class:`Upsample` cannot build, in one line naming ``owner.name``."""
    if not upsample_supported(scale):
        raise OptionsError(
            f"{owner}: {name}={scale} is not supported; its pixel-shuffle Upsample builds 2^n (1, 2, 4, 8, ...) and 3"
        )


class Upsample(nn.Sequential):
    """Pixel-shuffle upsampling: ``log2(scale)`` x (conv to 4x channels, shuffle 2), or one x3 step.

    Args:
        scale: 2^n or 3.
        num_feat: channels in and out.

    Raises:
        OptionsError: another scale.
    """

    def __init__(self, scale: int, num_feat: int) -> None:
        check_upsample_scale(scale, "Upsample", "scale")
        m: list[nn.Module] = []
        if scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                m.append(nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1))
                m.append(nn.PixelShuffle(2))
        else:  # 3
            m.append(nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1))
            m.append(nn.PixelShuffle(3))
        super().__init__(*m)


def pixel_unshuffle(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Space-to-depth: ``(b, c, h*s, w*s) -> (b, c*s*s, h, w)`` in BasicSR's channel order.

    Raises:
        ValueError: height or width is not a multiple of ``scale`` (the engine pads to
            ``spec.size_multiple`` first).
    """
    b, c, hh, hw = x.size()
    if hh % scale or hw % scale:
        raise ValueError(
            f"pixel_unshuffle: input {hh}x{hw} is not a multiple of {scale} in height and width "
            "(irframe.nn.inference.restore pads to the model's spec.size_multiple)"
        )
    h, w = hh // scale, hw // scale
    x_view = x.view(b, c, h, scale, w, scale)
    return x_view.permute(0, 1, 3, 5, 2, 4).reshape(b, c * scale * scale, h, w)


def check_positive(owner: str, **values: int) -> None:
    """Refuse sizes below 1 (channels, features), naming each bad one."""
    bad = [f"{k}={v}" for k, v in values.items() if v < 1]
    if bad:
        raise OptionsError(f"{owner}: expected positive values, got {', '.join(bad)}")


def check_non_negative(owner: str, **values: int) -> None:
    """Refuse counts below 0 (blocks, groups), naming each bad one."""
    bad = [f"{k}={v}" for k, v in values.items() if v < 0]
    if bad:
        raise OptionsError(f"{owner}: expected values >= 0, got {', '.join(bad)}")


def mean_buffer(
    owner: str, rgb_mean: Sequence[float], num_in_ch: int, num_out_ch: int, img_range: float
) -> torch.Tensor:
    """The ``(1, C, 1, 1)`` mean that EDSR and RCAN subtract from the input and add to the output.

    Raises:
        OptionsError: ``img_range`` is not positive, or ``rgb_mean`` has neither 1 value nor one per
            input and output channel.
    """
    if not img_range > 0:
        raise OptionsError(f"{owner}: img_range must be > 0, got {img_range}")
    mean = tuple(float(v) for v in rgb_mean)
    if len(mean) != 1 and (len(mean) != num_in_ch or len(mean) != num_out_ch):
        raise OptionsError(
            f"{owner}: rgb_mean has {len(mean)} values but the model reads {num_in_ch} and writes {num_out_ch} "
            "channels; give one value, or one per channel (e.g. rgb_mean: [0.4420] for gray images)"
        )
    return torch.tensor(mean, dtype=torch.float32).view(1, len(mean), 1, 1)


def tile_overlap_for(radius: float, size_multiple: int = 1) -> int:
    """A default tile overlap (input pixels) for a receptive-field ``radius``.

    The inference helper gives exactly the whole-image output when the guard band (a quarter of
    the overlap) covers the radius, so small nets get ``4 * radius``; deep ones are capped at
    :data:`MAX_TILE_OVERLAP` (tiling then approximates, as for every deep SR net). The result is a
    multiple of ``size_multiple`` so tiles keep the pixel-unshuffle grid.
    """
    overlap = min(MAX_TILE_OVERLAP, 4 * math.ceil(radius))
    return max(size_multiple, math.ceil(overlap / size_multiple) * size_multiple)


class MeanShiftSR(nn.Module):
    """The frame EDSR and RCAN share (BasicSR): ``conv_first``, a ``body``, ``conv_after_body`` closing a
    long skip, a pixel-shuffle ``upsample`` and ``conv_last``, computing on ``(x - mean) * img_range``.

    A subclass checks its options, then builds :meth:`_build_head`, its ``body`` and
    :meth:`_build_tail` in this order (the official ``state_dict`` order); the forward pass is this one.
    """

    mean: torch.Tensor  # (1, C, 1, 1), a non-persistent buffer
    body: nn.Module

    def _build_head(
        self, owner: str, num_in_ch: int, num_out_ch: int, num_feat: int, img_range: float, rgb_mean: Sequence[float]
    ) -> None:
        """The mean (checked against the channels by :func:`mean_buffer`) and ``conv_first``."""
        self.img_range = img_range
        # Not a persistent buffer: the released files do not hold it (strict loading must pass).
        self.register_buffer(
            "mean", mean_buffer(owner, rgb_mean, num_in_ch, num_out_ch, img_range), persistent=False
        )
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)

    def _build_tail(self, num_feat: int, num_out_ch: int, upscale: int, tile_overlap: int) -> None:
        """``conv_after_body``, ``upsample``, ``conv_last`` and the spec."""
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = Upsample(upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.spec = ModelSpec(
            in_channels=self.conv_first.in_channels,
            out_channels=num_out_ch,
            scale=upscale,
            size_multiple=1,
            value_range=float(self.img_range),  # computes on (x - mean) * img_range, converted back inside forward
            tileable=True,
            tile_overlap=tile_overlap,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` (N, num_in_ch, H, W) in [0, 1] to (N, num_out_ch, H*upscale, W*upscale)."""
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.img_range
        x = self.conv_first(x)
        res = self.conv_after_body(self.body(x))
        res = res + x
        x = self.conv_last(self.upsample(res))
        return x / self.img_range + mean
