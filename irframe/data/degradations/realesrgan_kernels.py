"""Real-ESRGAN's random blur kernels: Gaussian, generalized Gaussian, plateau and sinc.

The kernels of Real-ESRGAN's high-order degradation (Wang et al., ICCVW 2021; BasicSR's
``basicsr/data/degradations.py`` and ``RealESRGANDataset``), with the same parameters:

* a size drawn uniformly from the odd sizes of ``kernel_range`` (Real-ESRGAN: 7, 9, ..., 21);
* with probability ``sinc_prob`` a circular low-pass (sinc) kernel, cut-off frequency uniform in
  ``[pi/3, pi]`` for sizes below 13 and ``[pi/5, pi]`` from 13 on;
* else one of ``kernel_list`` chosen with ``kernel_prob``: ``iso`` / ``aniso`` Gaussians,
  ``generalized_iso`` / ``generalized_aniso`` (``exp(-0.5 q^beta)``, ``beta`` from ``betag_range``)
  and ``plateau_iso`` / ``plateau_aniso`` (``1 / (1 + q^beta)``, ``beta`` from ``betap_range``),
  where ``q = x^T S^-1 x`` and ``S`` is the covariance of standard deviations ``sigma_x``,
  ``sigma_y`` (uniform in ``blur_sigma``) rotated by ``theta`` (uniform in ``[-pi, pi]``); the
  isotropic kinds use ``sigma_y = sigma_x`` and ``theta = 0``. ``beta`` is uniform in
  ``[low, 1]`` or ``[1, high]`` with probability 1/2 each, as Real-ESRGAN draws it.

Every kernel is float64, square, odd-sized and sums to 1 (the sinc kernel has negative lobes).
All randomness comes from the caller's :class:`numpy.random.Generator`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from irframe.errors import OptionsError

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
# Real-ESRGAN's train_realesrgan_x4plus.yml (both degradation stages).
REALESRGAN_KERNEL_PROB = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
REALESRGAN_KERNEL_RANGE = (7, 21)  # the odd sizes 7..21 Real-ESRGAN's dataset hard-codes
_PROB_TOLERANCE = 1e-6


# -- option checks (shared with the pipeline in .realesrgan) ------------------------------------
def check_probability(where: str, key: str, value: Any) -> float:
    """A probability option: a number in ``[0, 1]``."""
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise OptionsError(f"{where}.{key}: expected a probability in [0, 1], got {value!r}") from None
    if not 0.0 <= p <= 1.0:
        raise OptionsError(f"{where}.{key}: a probability must be in [0, 1], got {value!r}")
    return p


def check_distribution(where: str, key: str, values: Any, n: int, of: str) -> tuple[float, ...]:
    """``n`` probabilities (one per entry of ``of``), each in ``[0, 1]``, summing to 1."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != n:
        raise OptionsError(f"{where}.{key}: expected {n} probabilities (one per {of}), got {values!r}")
    probs = tuple(check_probability(where, key, v) for v in values)
    if abs(sum(probs) - 1.0) > _PROB_TOLERANCE:
        raise OptionsError(f"{where}.{key}: the probabilities must sum to 1, got {list(values)!r} (sum {sum(probs):g})")
    return probs


def check_range(
    where: str, key: str, value: Any, minimum: float | None = None, maximum: float | None = None
) -> tuple[float, float]:
    """A ``[low, high]`` option with ``low <= high``, both within ``[minimum, maximum]``."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise OptionsError(f"{where}.{key}: expected [low, high], got {value!r}") from None
    if low > high:
        raise OptionsError(f"{where}.{key}: low {low:g} is greater than high {high:g}")
    if (minimum is not None and low < minimum) or (maximum is not None and high > maximum):
        bounds = f"[{'-inf' if minimum is None else f'{minimum:g}'}, {'inf' if maximum is None else f'{maximum:g}'}]"
        raise OptionsError(f"{where}.{key}: must lie within {bounds}, got {list(value)!r}")
    return low, high


def check_kernel_range(where: str, key: str, value: Any) -> tuple[int, ...]:
    """``[low, high]`` odd kernel sizes (``low <= high``); returns every odd size in between."""
    try:
        low, high = (v for v in value)
    except (TypeError, ValueError):
        raise OptionsError(f"{where}.{key}: expected [smallest, largest] odd kernel sizes, got {value!r}") from None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (low, high)):
        raise OptionsError(f"{where}.{key}: kernel sizes must be integers, got {list(value)!r}")
    if low % 2 == 0 or high % 2 == 0:
        raise OptionsError(f"{where}.{key}: kernel sizes must be odd (a centred kernel), got {list(value)!r}")
    if low < 1 or low > high:
        raise OptionsError(f"{where}.{key}: expected 1 <= smallest <= largest, got {list(value)!r}")
    return tuple(range(int(low), int(high) + 1, 2))


def check_kernel_list(where: str, key: str, value: Any) -> tuple[str, ...]:
    """Kernel type names from :data:`KERNEL_TYPES` (an unknown one is named, with the close match)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise OptionsError(f"{where}.{key}: expected a non-empty list of kernel types, got {value!r}")
    for name in value:
        if name not in KERNEL_TYPES:
            close = difflib.get_close_matches(str(name), KERNEL_TYPES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (expected {', '.join(KERNEL_TYPES)})"
            raise OptionsError(f"{where}.{key}: unknown kernel type {name!r}{hint}")
    return tuple(str(v) for v in value)


# -- kernels -------------------------------------------------------------------------------------
def mesh_grid(size: int) -> np.ndarray:
    """``(size, size, 2)`` coordinates ``(x, y)`` centred on the middle pixel (x: column, y: row)."""
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    xx, yy = np.meshgrid(ax, ax)
    return np.stack([xx, yy], axis=-1)


def sigma_matrix(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """Covariance of standard deviations ``sigma_x``, ``sigma_y`` rotated by ``theta`` radians."""
    d = np.diag([sigma_x**2, sigma_y**2])
    u = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    return u @ d @ u.T


def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    grid = mesh_grid(size)
    inverse = np.linalg.inv(sigma_matrix(sigma_x, sigma_y, theta))
    return np.sum((grid @ inverse) * grid, axis=-1)


def _normalised(kernel: np.ndarray) -> np.ndarray:
    return kernel / np.sum(kernel)


def bivariate_gaussian(size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0) -> np.ndarray:
    """Gaussian kernel ``exp(-0.5 x^T S^-1 x)``, normalised (isotropic when ``sigma_y`` is ``None``)."""
    q = _quadratic_form(size, sigma_x, sigma_x if sigma_y is None else sigma_y, theta)
    return _normalised(np.exp(-0.5 * q))


def bivariate_generalized_gaussian(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """Generalized Gaussian ``exp(-0.5 q^beta)`` (``beta = 1``: the Gaussian), normalised."""
    return _normalised(np.exp(-0.5 * np.power(_quadratic_form(size, sigma_x, sigma_y, theta), beta)))


def bivariate_plateau(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """Plateau-shaped kernel ``1 / (1 + q^beta)``, normalised."""
    return _normalised(np.reciprocal(np.power(_quadratic_form(size, sigma_x, sigma_y, theta), beta) + 1.0))


# J1 by the trapezoidal rule on Bessel's integral J1(x) = (1/2pi) int cos(t - x sin t) dt over one
# period: exponentially accurate for a periodic integrand (error < 1e-14 for x up to 60 with 128
# points; the largest argument here is pi * sqrt(2) * 10 ~ 44).
_BESSEL_NODES = 2.0 * np.pi * np.arange(128) / 128


def bessel_j1(x: np.ndarray) -> np.ndarray:
    """The Bessel function of the first kind of order 1 (float64, |x| <= 60)."""
    x = np.asarray(x, dtype=np.float64)
    t = _BESSEL_NODES.reshape((1,) * x.ndim + (-1,))
    return np.cos(t - x[..., None] * np.sin(t)).mean(axis=-1)


def circular_lowpass_kernel(cutoff: float, size: int, pad_to: int = 0) -> np.ndarray:
    """2-D sinc (circularly symmetric ideal low-pass) kernel of cut-off ``cutoff`` radians (pi: none).

    ``cutoff * J1(cutoff * r) / (2 pi r)`` at radius ``r`` from the centre (``cutoff^2 / 4pi`` at
    ``r = 0``), normalised to sum 1, then zero-padded to ``pad_to`` (odd) when that is larger.
    """
    if size % 2 == 0:
        raise ValueError(f"circular_lowpass_kernel: size must be odd, got {size}")
    grid = mesh_grid(size)
    r = np.hypot(grid[..., 0], grid[..., 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = cutoff * bessel_j1(cutoff * r) / (2.0 * np.pi * r)
    kernel[size // 2, size // 2] = cutoff**2 / (4.0 * np.pi)
    return pad_kernel(_normalised(kernel), pad_to) if pad_to > size else _normalised(kernel)


def pad_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad a square odd kernel to ``size`` (odd, not smaller): the same filter, a common shape."""
    k = kernel.shape[0]
    if size < k or (size - k) % 2:
        raise ValueError(f"pad_kernel: cannot pad a {k}x{k} kernel to {size}x{size}")
    pad = (size - k) // 2
    return np.pad(kernel, ((pad, pad), (pad, pad)))


@dataclass(frozen=True)
class KernelDraw:
    """The random parameters of one kernel (what :meth:`BlurKernelSampler.draw` drew)."""

    kind: str  # one of KERNEL_TYPES, or "sinc"
    size: int
    sigma_x: float = 0.0
    sigma_y: float = 0.0
    theta: float = 0.0
    beta: float = 1.0
    cutoff: float = 0.0  # sinc only, radians

    def kernel(self) -> np.ndarray:
        """The ``size x size`` float64 kernel these parameters describe (sums to 1)."""
        if self.kind == "sinc":
            return circular_lowpass_kernel(self.cutoff, self.size)
        if self.kind in ("iso", "aniso"):
            return bivariate_gaussian(self.size, self.sigma_x, self.sigma_y, self.theta)
        if self.kind.startswith("generalized"):
            return bivariate_generalized_gaussian(self.size, self.sigma_x, self.sigma_y, self.theta, self.beta)
        return bivariate_plateau(self.size, self.sigma_x, self.sigma_y, self.theta, self.beta)


def _draw_beta(rng: np.random.Generator, low: float, high: float) -> float:
    """Real-ESRGAN's shape draw: uniform in ``[low, 1]`` or ``[1, high]`` with probability 1/2 each
    (a range that does not contain 1 is drawn from uniformly)."""
    if low < 1.0 < high:
        return float(rng.uniform(low, 1.0)) if rng.random() < 0.5 else float(rng.uniform(1.0, high))
    return float(rng.uniform(low, high))


def draw_sinc(rng: np.random.Generator, sizes: Sequence[int], final: bool = False) -> KernelDraw:
    """A sinc kernel's size and cut-off, as Real-ESRGAN draws them (``final``: the last filter,
    cut-off in ``[pi/3, pi]`` for every size)."""
    size = int(sizes[int(rng.integers(len(sizes)))])
    low = math.pi / 3 if final or size < 13 else math.pi / 5
    return KernelDraw("sinc", size, cutoff=float(rng.uniform(low, math.pi)))


class BlurKernelSampler:
    """Draws Real-ESRGAN's blur kernels from one stage's options (checked here, named by key).

    Args:
        where: the owner named in error messages (``RealESRGANDegradation``).
        suffix: appended to every key in messages (``"2"`` for the second stage's ``kernel_list2``...).
        kernel_list, kernel_prob, kernel_range, blur_sigma, betag_range, betap_range, sinc_prob: as
            in the module doc. ``kernel_prob`` has one probability per ``kernel_list`` entry and sums to 1.
        blur_kernel_size: the common size kernels are padded to for batching (Real-ESRGAN: 21);
            odd and at least the largest of ``kernel_range``.
    """

    def __init__(
        self,
        where: str,
        *,
        kernel_list: Sequence[str],
        kernel_prob: Sequence[float],
        kernel_range: Sequence[int],
        blur_sigma: Sequence[float],
        betag_range: Sequence[float],
        betap_range: Sequence[float],
        sinc_prob: float,
        blur_kernel_size: int,
        suffix: str = "",
    ) -> None:
        s = suffix
        self.kernel_list = check_kernel_list(where, f"kernel_list{s}", kernel_list)
        self.kernel_prob = check_distribution(
            where, f"kernel_prob{s}", kernel_prob, len(self.kernel_list), f"kernel_list{s} entry"
        )
        self.sizes = check_kernel_range(where, f"kernel_range{s}", kernel_range)
        self.blur_sigma = check_range(where, f"blur_sigma{s}", blur_sigma, minimum=1e-3)
        self.betag_range = check_range(where, f"betag_range{s}", betag_range, minimum=1e-3)
        self.betap_range = check_range(where, f"betap_range{s}", betap_range, minimum=1e-3)
        self.sinc_prob = check_probability(where, f"sinc_prob{s}", sinc_prob)
        if not isinstance(blur_kernel_size, (int, np.integer)) or blur_kernel_size % 2 == 0:
            raise OptionsError(f"{where}.blur_kernel_size{s}: must be an odd integer, got {blur_kernel_size!r}")
        if blur_kernel_size < self.sizes[-1]:
            raise OptionsError(
                f"{where}.blur_kernel_size{s}: {blur_kernel_size} is smaller than the largest kernel of "
                f"kernel_range{s} ({self.sizes[-1]})"
            )
        self.blur_kernel_size = int(blur_kernel_size)

    def draw(self, rng: np.random.Generator) -> KernelDraw:
        """Draw one kernel's type and parameters (Real-ESRGAN's order of choices)."""
        if rng.random() < self.sinc_prob:
            return draw_sinc(rng, self.sizes)
        size = int(self.sizes[int(rng.integers(len(self.sizes)))])
        kind = self.kernel_list[int(rng.choice(len(self.kernel_list), p=self.kernel_prob))]
        sigma_x = float(rng.uniform(*self.blur_sigma))
        if kind.endswith("aniso"):
            sigma_y, theta = float(rng.uniform(*self.blur_sigma)), float(rng.uniform(-math.pi, math.pi))
        else:
            sigma_y, theta = sigma_x, 0.0
        beta = 1.0
        if kind.startswith("generalized"):
            beta = _draw_beta(rng, *self.betag_range)
        elif kind.startswith("plateau"):
            beta = _draw_beta(rng, *self.betap_range)
        return KernelDraw(kind, size, sigma_x, sigma_y, theta, beta)

    def sample(self, rng: np.random.Generator, padded: bool = False) -> np.ndarray:
        """One random kernel (float64, sums to 1); ``padded``: zero-padded to ``blur_kernel_size``."""
        kernel = self.draw(rng).kernel()
        return pad_kernel(kernel, self.blur_kernel_size) if padded else kernel

    def __repr__(self) -> str:
        return (
            f"BlurKernelSampler(kernel_list={list(self.kernel_list)}, kernel_prob={list(self.kernel_prob)}, "
            f"sizes={self.sizes[0]}..{self.sizes[-1]}, blur_sigma={list(self.blur_sigma)}, "
            f"betag_range={list(self.betag_range)}, betap_range={list(self.betap_range)}, sinc_prob={self.sinc_prob})"
        )
