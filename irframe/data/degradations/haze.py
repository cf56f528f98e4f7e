"""Haze by the atmospheric scattering model ``I = J t + A (1 - t)``, ``t = exp(-beta d)``.

Without a depth map the scene depth ``d`` comes from a proxy, normalised to ``[0, 1]``:

* ``radial``: farthest at the image centre, nearest at the corners (the common synthetic-haze
  recipe: a vanishing point in the middle of the view);
* ``vertical``: farthest at the top row, nearest at the bottom row (ground plane, sky above);
* ``uniform``: the same depth everywhere (homogeneous fog).

With the airlight ``A`` in ``[0, 1]`` the output is a convex combination of the image and ``A`` and
stays in ``[0, 1]``; nothing is clipped. Applied to a training patch, the proxy is the patch's own.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from irframe.data.degradations.base import Degradation, make_param
from irframe.errors import OptionsError
from irframe.registry import DEGRADATIONS

DepthProxy = Literal["radial", "vertical", "uniform"]


def depth_proxy(height: int, width: int, kind: DepthProxy) -> np.ndarray:
    """Normalised ``H x W`` depth in ``[0, 1]`` (1 = farthest) for the given proxy."""
    if kind == "uniform":
        return np.ones((height, width), dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    if kind == "vertical":
        depth = np.broadcast_to(1.0 - ys / max(height - 1, 1), (height, width))
    elif kind == "radial":
        cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
        dist = np.sqrt((ys - cy) ** 2 + (xs - cx) ** 2)
        depth = 1.0 - dist / max(float(dist.max()), 1e-6)
    else:
        raise ValueError(f"unknown depth proxy {kind!r}; expected radial, vertical or uniform")
    return depth.astype(np.float32)


@DEGRADATIONS.register()
class Haze(Degradation):
    """Synthetic haze.

    Args:
        beta: scattering coefficient (default 1.0 when no range is given; transmission at the
            farthest point is ``exp(-beta)``, e.g. 0.37 at beta 1, 0.14 at beta 2).
        beta_range: ``[low, high]`` drawn per call.
        airlight: atmospheric light ``A`` in ``[0, 1]`` (default 0.8), the same for all channels.
        airlight_range: ``[low, high]`` drawn per call.
        depth: depth proxy: ``radial``, ``vertical`` or ``uniform`` (see the module doc).
    """

    def __init__(
        self,
        beta: float | None = None,
        beta_range: tuple[float, float] | None = None,
        airlight: float | None = None,
        airlight_range: tuple[float, float] | None = None,
        depth: DepthProxy = "radial",
    ) -> None:
        self.beta = make_param("Haze", "beta", beta, beta_range, 1.0, minimum=0.0)
        self.airlight = make_param("Haze", "airlight", airlight, airlight_range, 0.8, minimum=0.0, maximum=1.0)
        if depth not in ("radial", "vertical", "uniform"):
            raise OptionsError(f"Haze.depth: expected 'radial', 'vertical' or 'uniform', got {depth!r}")
        self.depth = depth

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        beta, airlight = self.beta.sample(rng), self.airlight.sample(rng)
        t = np.exp(-beta * depth_proxy(img.shape[0], img.shape[1], self.depth))[:, :, None]
        return (img * t + np.float32(airlight) * (1.0 - t)).astype(np.float32)
