"""What every degradation shares: the call contract, input checks and seeded parameter draws.

A degradation is a callable ``deg(img, rng) -> img``: ``img`` is a float32 ``HWC`` array in
``[0, 1]`` (``C`` = 1 or 3), ``rng`` a :class:`numpy.random.Generator`; all randomness comes from
``rng``, so the same generator state gives the same output. Each family documents whether its
output can leave ``[0, 1]`` and whether it clips.

Random parameters follow one convention: a fixed ``name`` **or** a ``name_range`` ``[low, high]``
drawn uniformly per call; giving both is an error.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from irframe.errors import DataError, OptionsError


def check_image(img: Any, where: str) -> np.ndarray:
    """Validate the degradation input contract (float32 ``HWC``, C in {1, 3}); return it."""
    if not isinstance(img, np.ndarray):
        raise DataError(f"{where}: expected a numpy array, got {type(img).__name__}")
    if img.dtype != np.float32:
        raise DataError(f"{where}: expected a float32 image in [0, 1], got dtype {img.dtype}")
    if img.ndim != 3 or img.shape[2] not in (1, 3) or img.shape[0] < 1 or img.shape[1] < 1:
        raise DataError(f"{where}: expected an HxWxC image with C in (1, 3), got shape {img.shape}")
    return img


def check_rng(rng: Any, where: str) -> np.random.Generator:
    """Degradations take a :class:`numpy.random.Generator` (never the global numpy state)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{where}: rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    return rng


class Degradation(ABC):
    """Base class: validates the input, calls :meth:`apply`, checks the output keeps dtype/layout."""

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        name = type(self).__name__
        check_image(img, name)
        check_rng(rng, name)
        out = self.apply(img, rng)
        if out.dtype != np.float32 or out.ndim != 3 or out.shape[2] != img.shape[2]:
            raise AssertionError(
                f"{name} returned {out.dtype} {out.shape} for {img.dtype} {img.shape}"
            )  # a bug here, not bad data
        return out

    @abstractmethod
    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Degrade ``img`` (already checked) using only ``rng`` for randomness."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


@dataclass(frozen=True)
class Param:
    """A parameter that is either fixed or drawn uniformly from ``[low, high]`` on every call."""

    name: str
    low: float
    high: float

    @property
    def fixed(self) -> bool:
        return self.low == self.high

    def sample(self, rng: np.random.Generator) -> float:
        # A fixed parameter consumes no randomness.
        return self.low if self.fixed else float(rng.uniform(self.low, self.high))

    def __repr__(self) -> str:
        return f"{self.low:g}" if self.fixed else f"U[{self.low:g}, {self.high:g}]"


def make_param(
    owner: str,
    name: str,
    value: float | None,
    value_range: Any,
    default: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Param:
    """Resolve the ``name`` / ``name_range`` pair of option values into a :class:`Param`.

    Raises:
        OptionsError: both are given, the range is not ``[low, high]`` with ``low <= high``, or a
            value is outside ``[minimum, maximum]``.
    """
    if value is not None and value_range is not None:
        raise OptionsError(f"{owner}: give either {name}={value!r} or {name}_range={list(value_range)!r}, not both")
    if value_range is not None:
        try:
            low, high = (float(v) for v in value_range)
        except (TypeError, ValueError):
            raise OptionsError(f"{owner}.{name}_range: expected [low, high], got {value_range!r}") from None
        if low > high:
            raise OptionsError(f"{owner}.{name}_range: low {low:g} is greater than high {high:g}")
        key = f"{name}_range"
    else:
        low = high = float(default if value is None else value)
        key = name
    for bound, ok, word in ((minimum, lambda v, b: v >= b, "at least"), (maximum, lambda v, b: v <= b, "at most")):
        if bound is not None and not (ok(low, bound) and ok(high, bound)):
            shown = [low, high] if value_range is not None else low
            raise OptionsError(f"{owner}.{key}: must be {word} {bound:g}, got {shown!r}")
    return Param(name, low, high)


def per_channel(fn: Any, img: np.ndarray) -> np.ndarray:
    """Apply an OpenCV 2-D operation and restore the ``HWC`` layout (OpenCV drops a size-1 channel)."""
    out = fn(img)
    if out.ndim == 2:
        out = out[:, :, None]
    return out
