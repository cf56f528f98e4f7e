"""Image-quality metrics: PSNR, SSIM, RMSE, LPIPS, each with a named protocol and direction.

Importing this package registers ``PSNR``, ``SSIM``, ``RMSE`` and ``LPIPS`` in
:data:`irframe.registry.METRICS` (the core loader imports it; nothing touches the disk and the
``lpips`` package itself is only imported when an LPIPS network is built).

- :mod:`irframe.metrics.numpy_metrics`: BasicSR-compatible ``calculate_psnr`` / ``calculate_ssim`` on
  0-255 BGR numpy images (the reference).
- :mod:`irframe.metrics.functional`: the same computations batched on torch tensors (any device).
- :mod:`irframe.metrics.base`: the :class:`Metric` object contract.
- :mod:`irframe.metrics.fidelity`, :mod:`irframe.metrics.lpips`: the registered metrics;
  ``build_lpips_net`` is shared with the LPIPS loss.
"""

from __future__ import annotations

from irframe.metrics.base import Metric
from irframe.metrics.fidelity import PSNR, RMSE, SSIM
from irframe.metrics.lpips import LPIPS, build_lpips_net
from irframe.metrics.numpy_metrics import calculate_psnr, calculate_ssim, to_y_channel

__all__ = [
    "Metric",
    "PSNR",
    "SSIM",
    "RMSE",
    "LPIPS",
    "build_lpips_net",
    "calculate_psnr",
    "calculate_ssim",
    "to_y_channel",
]
