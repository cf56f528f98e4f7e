"""Pipelines of degradations, written in YAML: ``Compose`` (in order) and ``RandomChoice`` (one of).

Children are option mappings built through ``DEGRADATIONS.build`` (so plugins' degradations work
too) or already-built degradation objects::

    degradation:
      type: Compose
      degradations:
        - {type: MotionBlur, length_range: [5, 25]}
        - type: RandomChoice
          degradations: [{type: GaussianNoise, sigma: 15}, {type: JPEGCompression, quality: 30}]
          p: [0.7, 0.3]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

import numpy as np

from irframe.data.degradations.base import Degradation
from irframe.errors import OptionsError
from irframe.registry import DEGRADATIONS, Nested


def build_degradation(cfg: Any, path: str) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """Build one degradation from options; a list is shorthand for ``Compose``; objects pass through."""
    if isinstance(cfg, Mapping):
        return DEGRADATIONS.build(cfg, path=path)
    if isinstance(cfg, (list, tuple)):
        return Compose(cfg)
    if callable(cfg):
        return cfg
    raise OptionsError(f"{path}: expected a degradation mapping {{type: Name, ...}} or a list of them, got {cfg!r}")


def _build_children(items: Any, owner: str) -> list[Callable[..., np.ndarray]]:
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise OptionsError(f"{owner}.degradations: expected a list of degradations, got {items!r}")
    return [build_degradation(item, f"{owner}.degradations[{i}]") for i, item in enumerate(items)]


@DEGRADATIONS.register()
class Compose(Degradation):
    """Apply degradations in order, all drawing from the same generator (deterministic as a whole).

    Args:
        degradations: the steps, each ``{type: Name, ...}`` (or a built degradation). An empty list
            is the identity.
    """

    def __init__(
        self, degradations: Annotated[Sequence[Mapping[str, Any] | Degradation], Nested("degradation")]
    ) -> None:
        self.degradations = _build_children(degradations, "Compose")

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = img
        for step in self.degradations:
            out = step(out, rng)
        return out if out is not img else img.copy()


@DEGRADATIONS.register()
class RandomChoice(Degradation):
    """Apply one degradation chosen at random per call.

    Args:
        degradations: the candidates (``{type: Name, ...}`` each).
        p: relative weights, one per candidate (normalised to sum 1); uniform when omitted.
    """

    def __init__(
        self,
        degradations: Annotated[Sequence[Mapping[str, Any] | Degradation], Nested("degradation")],
        p: list[float] | None = None,
    ) -> None:
        path = "RandomChoice"
        self.degradations = _build_children(degradations, path)
        if not self.degradations:
            raise OptionsError(f"{path}.degradations: RandomChoice needs at least one candidate")
        n = len(self.degradations)
        if p is None:
            weights = np.full(n, 1.0 / n)
        else:
            weights = np.asarray(p, dtype=np.float64)
            if weights.shape != (n,):
                raise OptionsError(f"{path}.p: expected {n} weights (one per degradation), got {list(p)!r}")
            if (weights < 0).any() or not np.isfinite(weights).all() or weights.sum() <= 0:
                raise OptionsError(f"{path}.p: weights must be finite, non-negative and not all zero, got {list(p)!r}")
            weights = weights / weights.sum()
        self.p = [float(w) for w in weights]

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        choice = int(rng.choice(len(self.degradations), p=self.p))
        return self.degradations[choice](img, rng)
