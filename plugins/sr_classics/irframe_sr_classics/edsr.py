"""EDSR (Lim et al. 2017, "Enhanced Deep Residual Networks for Single Image Super-Resolution").

BasicSR's ``edsr_arch`` layout: ``conv_first``, ``body.N.conv1/conv2`` (residual blocks without batch
norm), ``conv_after_body``, ``upsample.N`` (pixel shuffle), ``conv_last``. The net computes on
``(x - rgb_mean) * img_range`` inside forward (the released models: 255 and DIV2K's mean); the
engine feeds and receives [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

from irframe.registry import ARCHS
from irframe_sr_classics.blocks import (
    DIV2K_RGB_MEAN,
    MeanShiftSR,
    ResidualBlockNoBN,
    check_non_negative,
    check_positive,
    check_upsample_scale,
    make_layer,
    tile_overlap_for,
)


@ARCHS.register()
class EDSR(MeanShiftSR):
    """EDSR: a deep residual trunk at low resolution and a pixel-shuffle tail.

    Released configurations: EDSR-M (``num_feat`` 64, ``num_block`` 16, ``res_scale`` 1) and EDSR-L
    (256, 32, ``res_scale`` 0.1), x2/x3/x4.

    Args:
        num_in_ch: input channels.
        num_out_ch: output channels.
        num_feat: feature channels.
        num_block: residual blocks.
        upscale: scale factor, 2^n or 3.
        res_scale: factor on each block's residual branch (EDSR-L: 0.1); no tensor records it.
        img_range: the scale the net computes at (255 for the released weights).
        rgb_mean: mean subtracted inside forward (one value per channel, or one for all).
    """

    def __init__(
        self,
        num_in_ch: int,
        num_out_ch: int,
        num_feat: int = 64,
        num_block: int = 16,
        upscale: int = 4,
        res_scale: float = 1,
        img_range: float = 255.0,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        check_positive("EDSR", num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat)
        check_non_negative("EDSR", num_block=num_block)
        check_upsample_scale(upscale, "EDSR")
        self._build_head("EDSR", num_in_ch, num_out_ch, num_feat, img_range, rgb_mean)
        self.body = make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat, res_scale=res_scale, pytorch_init=True)
        # tile overlap from the receptive-field radius (LR pixels)
        self._build_tail(num_feat, num_out_ch, upscale, tile_overlap=tile_overlap_for(2 * num_block + 4))
