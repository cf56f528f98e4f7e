"""The metric object contract shared by every registered metric.

``METRICS.build({"type": "PSNR", "crop_border": 4, "test_y_channel": True})`` returns a
:class:`Metric`: calling it with ``pred, gt`` (NCHW float tensors in [0,1], RGB or 1 channel) gives
one value per image (``Tensor[N]``, float64, on the input device). Each metric states its direction
(``higher_is_better``) and its protocol (a short string such as ``"PSNR-Y crop4 8bit"``) so that
best-checkpoint tracking and leaderboards compare like with like.
"""

from __future__ import annotations

import torch

from irframe.errors import OptionsError
from irframe.metrics.functional import check_pair, crop_borders, rgb_to_y, to_255

__all__ = ["Metric"]


class Metric:
    """Base class: input checks, the BasicSR preparation steps, protocol naming, reduction.

    Subclasses set ``name`` and ``higher_is_better`` and implement :meth:`compute` on prepared
    tensors.

    Args:
        crop_border: pixels cut from every side before the computation (BasicSR's ``crop_border``).
        test_y_channel: compare the BT.601 Y channel only (RGB input; 1-channel input is kept).
        quantize: clamp to [0,1] and round to 8 bit first, as BasicSR's validation does with
            ``tensor2img``; ``False`` measures the float output as is.
    """

    name: str = "Metric"
    higher_is_better: bool = True

    def __init__(self, crop_border: int = 0, test_y_channel: bool = False, quantize: bool = True) -> None:
        if crop_border < 0:
            raise OptionsError(f"{self.name}.crop_border must be >= 0, got {crop_border}")
        self.crop_border = crop_border
        self.test_y_channel = test_y_channel
        self.quantize = quantize

    @property
    def protocol(self) -> str:
        """How the numbers were measured, e.g. ``"PSNR-Y crop4 8bit"``."""
        space = "Y" if self.test_y_channel else "RGB"
        depth = "8bit" if self.quantize else "float"
        return f"{self.name}-{space} crop{self.crop_border} {depth}"

    def prepare(self, pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Checked, 0-255 float64, border-cropped (and Y if asked) copies of ``pred`` and ``gt``."""
        check_pair(pred, gt, self.name)
        a = crop_borders(to_255(pred.detach(), self.quantize), self.crop_border)
        b = crop_borders(to_255(gt.detach(), self.quantize), self.crop_border)
        if self.test_y_channel:
            a, b = rgb_to_y(a), rgb_to_y(b)
        return a, b

    def compute(self, a255: torch.Tensor, b255: torch.Tensor) -> torch.Tensor:
        """Per-image values from prepared tensors (implemented by subclasses)."""
        raise NotImplementedError

    def __call__(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """Per-image metric values ``[N]`` (float64, on the input device)."""
        with torch.no_grad():
            return self.compute(*self.prepare(pred, gt))

    def reduce(self, values: torch.Tensor, num_pixels: torch.Tensor | None = None) -> float:
        """Dataset score from per-image values (the plain mean; RMSE overrides it).

        Args:
            values: per-image values gathered over the data set.
            num_pixels: pixels per image (used by metrics whose score is not a mean of per-image values).
        """
        return float(values.to(torch.float64).mean())

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(crop_border={self.crop_border}, test_y_channel={self.test_y_channel}, "
            f"quantize={self.quantize})"
        )
