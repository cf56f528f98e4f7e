"""Automatic tile size: a tile whose estimated peak memory fits a budget, the fastest on a CPU.

:func:`choose_tile` = :func:`probe_memory` (run the model on two small square inputs and measure
the peak memory each forward adds) + :func:`plan_tile` (extrapolate to every legal tile of the
image and choose among those that fit) + :func:`check_tile` (measure the chosen tile's exact
shape, two forwards in a row as the run meets it, and plan again with that measurement until the
choice is a measured shape). :func:`restore` then runs with ``choice.restore_kwargs()``.

Why the check: a straight line through two probes does not see what a new shape costs. On the CPU,
oneDNN's fused inference kernels (Restormer, PromptIR) meet each new input shape with fresh
per-shape buffers, and sizes whose feature maps are odd at the lowest level took about twice the
probes' peak per pixel (a reduced Restormer's 152-192 pixel tiles: 12-14 KiB per pixel against 6-10
at the 128 and 256 probes, ``benchmarks/RESULTS.md``). A measured shape is planned with
``CHECKED_MARGIN`` (its run-to-run spread) and raises the line for the others
(:meth:`MemoryProfile.with_check`). Each plan measures at most ``MAX_CHECKS`` shapes, and
:class:`AutoTiler` keeps them for the next images.

Which tile, among those that fit (``prefer``):

- GPU (``"largest"``): the largest tile (or the whole image): fewer, larger forwards keep the
  device busy.
- CPU (``"fastest"``): the tile with the least estimated work, :func:`cpu_work`: the pixels all tiles
  process (overlaps counted) times the relative cost of a pixel at that tile size
  (:func:`cpu_pixel_cost`). On a CPU the time per pixel grows with the tile beyond a moderate size
  (larger working sets: fresh memory pages, cache and TLB misses; measured with
  ``benchmarks/bench_autotile.py --tiles``, figures in ``benchmarks/RESULTS.md``), while small
  tiles pay for their overlaps and a per-call overhead. So a 3000x3000 image gets even tiles of
  about 400 pixels (sized so that the last row and column do not process a mostly redundant tile),
  rather than the whole image just because the memory allows it (issue 30 measured the whole image
  2.1x slower than 512 tiles, using 6.3 GB instead of 1.3 GB).

Memory model (bytes, batch ``N``, tile or image area ``P`` in input pixels):

- forward peak ``f(P) = c + b * N * P``, fitted through the two probes (secant slope ``b``,
  intercept ``c`` clamped at 0 so the line lies on or above both measurements). Restormer's channel
  attention and the convolutions are linear in ``P``. The ``margin`` (default x1.4 on ``f``)
  covers the run-to-run noise of the CPU measurement (about 10-25%) and the heap fragmentation of
  many tile forwards: calibrated on the CPU with ``benchmarks/bench_autotile.py --tiles`` (measured
  peak RSS of whole restorations, ``benchmarks/RESULTS.md``), the estimate is within 0.9-1.0x of the
  measured peak for tiles up to about 1.5x the largest probe's side, the sizes the CPU rule picks.
  Larger tiles it overstates, increasingly (1.5x at 512, 2.3x for a whole 2048x2048 image with a
  dim-16 Restormer): glibc serves tensors above its largest mmap threshold (32 MiB) with fresh
  mappings returned as soon as they are freed, so a large input's peak per pixel is lower than the
  small probes' (where freed blocks stay in the heap and fragment it). That conservative side only
  matters to the largest-tile rule (GPUs, where the allocator's measurement is exact and linear);
- plus what :func:`~irframe.nn.inference.restore` allocates beside the model, computed exactly
  from the shapes: the padded input copy, and for tiling the float32 output accumulator, the weight
  map and two tile-sized temporaries (the x8 self-ensemble adds two tile outputs). Buffers on
  another device than the model's (a CPU image with a GPU model) are not counted against the
  device's budget.

Measuring the peak of one forward:

- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (exact for tensors;
  cuDNN workspaces are allocated through the caching allocator, so they count too);
- CPU (Linux): the rise of the process's resident-set high-water mark (``VmHWM`` in
  ``/proc/self/status``) over the resident size before the call, after ``malloc_trim(0)`` returned
  freed heap pages to the system and ``/proc/self/clear_refs`` reset the mark. Without the trim,
  memory freed by an earlier run would be reused without raising the resident size and the peak
  would be underestimated. This counts everything the forward touches (oneDNN scratch, thread
  buffers), and also anything another thread of the process allocates meanwhile, so probe on a
  quiet process. Other platforms: pass ``tile`` explicitly.

Default budget: CUDA: free device memory (``mem_get_info``, plus what torch's caching allocator
holds unused) x 0.85; CPU: ``MemAvailable`` of ``/proc/meminfo`` (lowered to the cgroup's limit
when the process runs in a memory-limited container) x 0.6 (memory is shared with other programs,
and the allocator fragments).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn as nn

from irframe.errors import IrframeError
from irframe.heap import malloc_trim
from irframe.nn.inference import Precision, _model_device, autocast_context
from irframe.nn.modes import eval_mode
from irframe.nn.spec import ModelSpec, spec_for_task
from irframe.nn.weights import unwrap_model

__all__ = [
    "MemoryBudgetError",
    "MemoryProbeError",
    "ProbePoint",
    "TileCheck",
    "MemoryProfile",
    "TileChoice",
    "available_memory",
    "parse_memory",
    "format_bytes",
    "measure_peak",
    "probe_memory",
    "plan_tile",
    "estimate_peak",
    "choose_tile",
    "check_tile",
    "cpu_pixel_cost",
    "cpu_work",
    "AutoTiler",
    "tile_arg",
]

CPU_SAFETY = 0.6
CUDA_SAFETY = 0.85
DEFAULT_MARGIN = 1.4  # readings vary run to run; tiled CPU runs fragment the heap (benchmarks/RESULTS.md)
CHECKED_MARGIN = 1.15  # on a peak measured at the tile's own shape (check_tile): run-to-run spread only
MAX_CHECKS = 4  # tile shapes check_tile measures for one plan
DEFAULT_PROBE_SIDES = (128, 256)  # big enough that per-pixel costs have settled
_FLOAT_BYTES = 4  # restore() accumulates and returns float32

# The CPU's time per pixel as a function of the tile's pixels (benchmarks/bench_autotile.py --tiles,
# benchmarks/RESULTS.md): flat up to CPU_FAST_PIXELS, then CPU_SLOWDOWN more per doubling of the
# tile's area for CPU_SLOWDOWN_DOUBLINGS doublings (measured: 1.24x at 512, 1.39x at 768, 1.46x at
# 1024, 1.3-1.7x for a whole 2048x2048 image, per pixel, vs 384 tiles); each forward also costs as
# much as CPU_CALL_PIXELS pixels (set-up, small kernels: 256 tiles 1.08x).
CPU_FAST_PIXELS = 384 * 384
CPU_SLOWDOWN = 0.2
CPU_SLOWDOWN_DOUBLINGS = 2.5
CPU_CALL_PIXELS = 8192
Preference = Literal["auto", "largest", "fastest"]


class MemoryBudgetError(IrframeError, MemoryError):
    """Not even the smallest legal tile fits the memory budget."""


class MemoryProbeError(IrframeError, RuntimeError):
    """Peak memory cannot be measured, or the available memory cannot be read, on this platform."""


# -- units ---------------------------------------------------------------------------------------
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_memory(text: str | int | float) -> int:
    """Bytes from ``"8GB"``, ``"8G"``, ``"8GiB"``, ``"512MB"``, ``"1.5e9"`` or a number.

    Units are binary (1 GB = 1 GiB = 2**30 bytes), as ``free -g`` and ``nvidia-smi`` count.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.I)
        if match is None:
            raise ValueError(f"memory size {text!r}: expected a number with an optional unit K/M/G/T(B), e.g. '8GB'")
        value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"memory size {text!r} must be positive")
    return int(value)


def format_bytes(n: float) -> str:
    """``1.50 GiB``-style text."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


# -- available memory ----------------------------------------------------------------------------
def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_available() -> int | None:
    """Bytes left under this container's memory limit (cgroup v2, then v1); ``None`` if unlimited."""
    root = Path("/sys/fs/cgroup")
    for limit_file, usage_file, stat_file, inactive_key in (
        (root / "memory.max", root / "memory.current", root / "memory.stat", "inactive_file"),
        (root / "memory/memory.limit_in_bytes", root / "memory/memory.usage_in_bytes",
         root / "memory/memory.stat", "total_inactive_file"),
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is None or usage is None or limit >= 2**60:  # "max" or the v1 "unlimited" value
            continue
        inactive = 0  # reclaimable page cache counts as usage but is freed under pressure
        try:
            match = re.search(rf"^{inactive_key} (\d+)$", stat_file.read_text(), re.M)
            inactive = int(match.group(1)) if match else 0
        except OSError:
            pass
        return max(limit - (usage - inactive), 0)
    return None


def available_memory(device: torch.device | str) -> int:
    """Memory the process can still use on ``device`` (before any safety factor).

    CUDA: free memory (``torch.cuda.mem_get_info``) plus memory torch's caching allocator has
    reserved but not allocated. CPU: ``MemAvailable`` from ``/proc/meminfo``, lowered to what the
    container's cgroup limit leaves.

    Raises:
        MemoryProbeError: another device type, or no ``/proc/meminfo`` (non-Linux): pass a budget.
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + max(cached, 0))
    if device.type == "cpu":
        try:
            meminfo = Path("/proc/meminfo").read_text()
        except OSError:
            raise MemoryProbeError(
                "cannot read /proc/meminfo to find the available memory: pass max_memory_bytes (--max-memory)"
            ) from None
        match = re.search(r"^MemAvailable:\s+(\d+) kB", meminfo, re.M)
        if match is None:
            raise MemoryProbeError("/proc/meminfo has no MemAvailable line: pass max_memory_bytes (--max-memory)")
        available = int(match.group(1)) * 1024
        limited = _cgroup_available()
        return available if limited is None else min(available, limited)
    raise MemoryProbeError(f"no way to read the free memory of device {device}: pass max_memory_bytes (--max-memory)")


def _default_budget(device: torch.device) -> int:
    safety = CUDA_SAFETY if device.type == "cuda" else CPU_SAFETY
    return int(available_memory(device) * safety)


# -- measuring -----------------------------------------------------------------------------------
def _status_bytes(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    if match is None:
        raise MemoryProbeError(f"/proc/self/status has no {field} line")
    return int(match.group(1)) * 1024


def measure_peak(fn: Callable[[], object], device: torch.device | str) -> int:
    """Peak memory (bytes) that ``fn()`` adds on ``device``, beyond what is allocated before it.

    See the module docstring for the method (CUDA allocator peak; on the CPU the resident-set
    high-water mark, Linux only). ``fn``'s return value is dropped before returning.

    Raises:
        MemoryProbeError: the CPU method is unavailable (no writable ``/proc/self/clear_refs``).
    """
    device = torch.device(device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        result = fn()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - base
        del result
        return max(int(peak), 0)
    if device.type != "cpu":
        raise MemoryProbeError(f"cannot measure peak memory on device {device}; pass the tile size explicitly")
    malloc_trim()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM to the current RSS
        base = _status_bytes("VmRSS")
    except OSError as exc:
        raise MemoryProbeError(
            f"cannot measure CPU peak memory here ({exc}); it needs Linux's /proc/self/clear_refs. "
            "Pass the tile size explicitly"
        ) from None
    result = fn()
    peak = _status_bytes("VmHWM") - base
    del result
    return max(peak, 0)


# -- probing -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProbePoint:
    """One measurement: a forward on a batch-1 ``height`` x ``width`` input added ``peak_bytes``."""

    height: int
    width: int
    peak_bytes: int

    @property
    def pixels(self) -> int:
        return self.height * self.width


@dataclass(frozen=True)
class TileCheck:
    """A measured input shape: ``batch`` x ``height`` x ``width`` inputs added ``peak_bytes``, over two
    forwards in a row (:func:`check_tile`, before a run) or in the worst single forward (a probe)."""

    batch: int
    height: int
    width: int
    peak_bytes: int


@dataclass(frozen=True)
class MemoryProfile:
    """A model's measured forward memory: ``peak(P, N) ~ fixed_bytes + bytes_per_pixel * N * P``,
    times ``calibration`` (>= 1: raised when a checked tile needed more than the line says), and the
    exact measurements of the tile sizes checked so far (:func:`check_tile`)."""

    device: torch.device
    spec: ModelSpec
    probes: tuple[ProbePoint, ...]
    fixed_bytes: float
    bytes_per_pixel: float
    checks: tuple[TileCheck, ...] = ()
    calibration: float = 1.0

    def forward_peak(self, pixels: int, batch: int = 1) -> float:
        """Estimated peak of one forward on ``batch`` inputs of ``pixels`` pixels (no margin)."""
        return self.calibration * (self.fixed_bytes + self.bytes_per_pixel * batch * pixels)

    def checked_peak(self, batch: int, height: int, width: int) -> int | None:
        """The measured peak of this exact tile shape, if :func:`check_tile` measured it."""
        return next(
            (c.peak_bytes for c in self.checks if (c.batch, c.height, c.width) == (batch, height, width)), None
        )

    def with_check(self, check: TileCheck) -> MemoryProfile:
        """This profile plus ``check``, its line scaled up if the check needed more than it says."""
        line = self.fixed_bytes + self.bytes_per_pixel * check.batch * check.height * check.width
        calibration = max(self.calibration, check.peak_bytes / line) if line > 0 else self.calibration
        return dataclasses.replace(self, checks=(*self.checks, check), calibration=calibration)


def _fit(points: Sequence[ProbePoint]) -> tuple[float, float]:
    """``(c, b)`` of the conservative line through the measurements (see the module docstring)."""
    largest = max(points, key=lambda p: p.pixels)
    proportional = largest.peak_bytes / largest.pixels
    if len({p.pixels for p in points}) < 2:
        return 0.0, proportional
    small = min(points, key=lambda p: p.pixels)
    slope = (largest.peak_bytes - small.peak_bytes) / (largest.pixels - small.pixels)
    if slope <= 0:  # measurement noise: fall back to the (steeper) line through the origin
        return 0.0, proportional
    intercept = max(p.peak_bytes - slope * p.pixels for p in points)  # the line lies above all points
    return max(intercept, 0.0), slope


def _warm_up_side(spec: ModelSpec, sides: Sequence[int]) -> tuple[int, int]:
    """A legal input size (h, w) that none of the probe ``sides`` uses (the fixed size if the model
    has one): half the smallest probe, rounded to ``spec.size_multiple``, stepped up past any probe."""
    if spec.fixed_size is not None:
        return spec.fixed_size, spec.fixed_size
    m = spec.size_multiple
    side = max(m, m * round(min(sides) / 2 / m))
    while side in sides:
        side += m
    return side, side


def _forward_fn(
    model: nn.Module, device: torch.device, precision: Precision, task: str | int | None
) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.dtype]:
    """The forward the probes measure (as :func:`~irframe.nn.inference.restore` runs it: eval mode,
    ``inference_mode``, the precision's autocast; the model's mode restored after each call), and the
    model's floating-point dtype for its inputs."""
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)

    def forward(x: torch.Tensor) -> torch.Tensor:
        with eval_mode(model), torch.inference_mode(), autocast_context(device, precision):
            return model(x) if task is None else model(x, task=task)

    return forward, dtype


def _repeat(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, times: int) -> None:
    """``forward(x)`` ``times`` times in a row, each output dropped before the next call (as tiles run)."""
    for _ in range(times):
        forward(x)


def probe_memory(
    model: nn.Module,
    *,
    task: str | int | None = None,
    precision: Precision = "fp32",
    probe_sides: Sequence[int] | None = None,
    repeats: int = 2,
) -> MemoryProfile:
    """Measure the forward peak of ``model`` on small square inputs, on its own device.

    Args:
        model: an arch exposing ``spec``; run in eval mode under ``inference_mode`` (mode restored).
        task: passed as ``model(x, task=task)`` to multi-task models.
        precision: run under the same autocast as :func:`~irframe.nn.inference.restore`.
        probe_sides: square sides to measure (rounded up to ``spec.size_multiple``); default
            128 and 256. Fixed-size models are measured at ``spec.fixed_size`` only.
        repeats: measurements per size; the largest is kept (CPU readings vary by about 25%
            with the allocator's state, and an underestimate is the costly error).
    """
    # A torch.compile'd model is probed uncompiled (no compilation per probe size): its eager peak
    # is the estimate; inductor's fused kernels usually need less (benchmarks/gpu measures both).
    model = unwrap_model(model)
    spec = spec_for_task(model, task)
    device = _model_device(model, torch.device("cpu"))
    autocast_context(device, precision)  # refuse an unsupported precision first
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if spec.fixed_size is not None:
        sides = [spec.fixed_size]
    else:
        m = spec.size_multiple
        given = DEFAULT_PROBE_SIDES if probe_sides is None else probe_sides
        if not given or any(int(s) < 1 for s in given):
            raise ValueError(f"probe_sides must be positive sizes, got {list(given)}")
        sides = sorted({m * math.ceil(int(s) / m) for s in given})
    forward, dtype = _forward_fn(model, device, precision, task)
    points: list[ProbePoint] = []
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.rand(1, spec.in_channels, s, s, generator=gen).to(device, dtype) for s in sides]
    # Warm-up (lazy kernel and thread-pool set-up is not part of a tile's cost) at a size no probe
    # uses, so that each probe's first forward meets its shapes cold, as the first tile of a run
    # does: oneDNN keeps per-shape kernels and buffers in a cache (the CPU's fused inference
    # path: up to 2x a warm forward's peak at a new shape, benchmarks/RESULTS.md).
    forward(torch.rand(1, spec.in_channels, *_warm_up_side(spec, sides), generator=gen).to(device, dtype))
    for x in reversed(inputs):
        peak = max(measure_peak(lambda x=x: forward(x), device) for _ in range(repeats))  # type: ignore[misc]
        points.insert(0, ProbePoint(x.shape[-2], x.shape[-1], peak))
    fixed, slope = _fit(points)
    # A probe's shape is a measured shape too (with repeats, the worst reading of it)
    checks = tuple(TileCheck(1, p.height, p.width, p.peak_bytes) for p in points) if repeats >= 2 else ()
    return MemoryProfile(device, spec, tuple(points), fixed, slope, checks)


def check_tile(
    model: nn.Module,
    profile: MemoryProfile,
    batch: int,
    height: int,
    width: int,
    *,
    task: str | int | None = None,
    precision: Precision = "fp32",
) -> MemoryProfile:
    """Measure two forwards in a row on ``batch`` x ``height`` x ``width`` inputs (a planned tile's
    exact shape, as the run will meet it: the first time, then again) and return ``profile`` with
    that measurement (:meth:`MemoryProfile.with_check`).

    Why: the probes' straight line does not know what a new shape costs. On the CPU, oneDNN's fused
    inference kernels meet every new shape with fresh per-shape buffers and the heap fragments
    from tile to tile; a reduced Restormer's tiles of 152-192 pixels took 2x the peak per pixel of
    the 128 and 256 probes (benchmarks/RESULTS.md), which the 1.4x margin did not cover.
    """
    model = unwrap_model(model)
    forward, dtype = _forward_fn(model, profile.device, precision, task)
    x = torch.rand(batch, profile.spec.in_channels, height, width, generator=torch.Generator().manual_seed(0))
    x = x.to(profile.device, dtype)
    peak = measure_peak(lambda: _repeat(forward, x, 2), profile.device)
    return profile.with_check(TileCheck(batch, height, width, peak))


def _plan_checked(
    model: nn.Module,
    profile: MemoryProfile,
    image_shape: Sequence[int],
    budget: int,
    *,
    task: str | int | None,
    precision: Precision,
    overlap: int | None,
    self_ensemble: bool,
    image_device: torch.device | str | None,
    margin: float | None,
    prefer: Preference,
) -> tuple[MemoryProfile, TileChoice]:
    """:func:`plan_tile`, then measure the chosen tile's shape (:func:`check_tile`) and plan again
    until the choice is a measured shape (at most ``MAX_CHECKS`` measurements). The whole image is
    not re-measured: the line overstates large inputs (module docstring)."""

    def plan(p: MemoryProfile) -> TileChoice:
        return plan_tile(p, image_shape, budget, overlap=overlap, self_ensemble=self_ensemble,
                         image_device=image_device, margin=margin, prefer=prefer)

    choice = plan(profile)
    for _ in range(MAX_CHECKS):
        if choice.tile is None:
            break
        est = _estimates(profile, image_shape, overlap, self_ensemble, image_device, margin)
        batch, (height, width) = est.shape[0], est.tile_shape(choice.tile)
        if profile.checked_peak(batch, height, width) is not None:
            break
        profile = check_tile(model, profile, batch, height, width, task=task, precision=precision)
        choice = plan(profile)
    return profile, choice


# -- planning ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TileChoice:
    """The chosen tiling and why.

    Attributes:
        tile: tile side in input pixels, or ``None`` for the whole image at once.
        overlap: overlap between tiles (``None`` for the whole image).
        estimated_peak_bytes: estimated peak memory the restoration adds on ``device``.
        budget_bytes: the budget it had to fit.
        measured_probe: the probe measurements the estimate comes from.
        device: where the model runs.
        image_shape: ``(N, C, H, W)`` planned for.
        rule: how it was chosen among the tilings that fit: ``"largest"`` or ``"fastest"``.
        tiles: the number of tiles (1 for the whole image).
    """

    tile: int | None
    overlap: int | None
    estimated_peak_bytes: int
    budget_bytes: int
    measured_probe: tuple[ProbePoint, ...]
    device: str
    image_shape: tuple[int, int, int, int]
    rule: str = "largest"
    tiles: int = 1

    def restore_kwargs(self) -> dict[str, int | None]:
        """``tile`` and ``tile_overlap`` for :func:`~irframe.nn.inference.restore`."""
        return {"tile": self.tile, "tile_overlap": self.overlap}

    def message(self) -> str:
        """One line: the choice, the estimated peak and the budget."""
        _, _, h, w = self.image_shape
        what = "whole image" if self.tile is None else f"tile {self.tile} (overlap {self.overlap}, {self.tiles} tiles)"
        why = "the fastest that fits on the CPU" if self.rule == "fastest" else "the largest that fits"
        probes = ", ".join(f"{p.height}x{p.width}: {format_bytes(p.peak_bytes)}" for p in self.measured_probe)
        return (
            f"auto tile for {h}x{w} on {self.device}: {what}, {why}; estimated peak "
            f"{format_bytes(self.estimated_peak_bytes)} of a {format_bytes(self.budget_bytes)} budget "
            f"(probe {probes})"
        )


def _image_shape(shape: Sequence[int], spec: ModelSpec) -> tuple[int, int, int, int]:
    dims = tuple(int(d) for d in shape)
    if len(dims) == 2:
        dims = (1, spec.in_channels, *dims)
    elif len(dims) == 3:
        dims = (1, *dims)
    if len(dims) != 4 or min(dims) < 1:
        raise ValueError(f"image_shape must be (H, W), (C, H, W) or (N, C, H, W) of positive sizes, got {tuple(shape)}")
    return dims


def cpu_pixel_cost(pixels: int) -> float:
    """Relative CPU time per pixel of one forward on a tile of ``pixels`` pixels (1.0 at the fastest
    sizes): ``CPU_CALL_PIXELS / pixels`` for the per-forward overhead, plus ``CPU_SLOWDOWN`` per
    doubling of the area beyond ``CPU_FAST_PIXELS``, up to ``CPU_SLOWDOWN_DOUBLINGS`` doublings
    (see ``benchmarks/RESULTS.md``, the tile sweep)."""
    if pixels <= 0:
        raise ValueError(f"pixels must be positive, got {pixels}")
    doublings = min(max(math.log2(pixels / CPU_FAST_PIXELS), 0.0), CPU_SLOWDOWN_DOUBLINGS)
    return 1.0 + CPU_SLOWDOWN * doublings + CPU_CALL_PIXELS / pixels


def _tile_count(size: int, tile: int, overlap: int) -> int:
    """How many tiles :func:`~irframe.nn.inference.tile_starts` places along ``size`` pixels."""
    return 1 if size <= tile else math.ceil((size - tile) / (tile - overlap)) + 1


def cpu_work(height: int, width: int, tile: int | None, overlap: int) -> float:
    """Estimated CPU work of restoring a (padded) ``height`` x ``width`` image in ``tile`` tiles
    (``None``: at once), in pixel-forwards: the pixels every tile processes, overlaps included,
    times :func:`cpu_pixel_cost` of the tile's size. Lower is faster."""
    if tile is None:
        return height * width * cpu_pixel_cost(height * width)
    th, tw = min(tile, height), min(tile, width)
    tiles = _tile_count(height, tile, overlap) * _tile_count(width, tile, overlap)
    return tiles * th * tw * cpu_pixel_cost(th * tw)


@dataclass(frozen=True)
class _Estimates:
    """The peak-memory estimates of one image on one profile (see :func:`plan_tile`)."""

    profile: MemoryProfile
    shape: tuple[int, int, int, int]
    padded: tuple[int, int]
    overlap: int
    self_ensemble: bool
    same_device: bool
    margin: float

    def _tile_out(self, pixels: int) -> int:
        n, s = self.shape[0], self.profile.spec.scale
        return n * self.profile.spec.out_channels * pixels * s * s * _FLOAT_BYTES

    def _forward(self, height: int, width: int) -> float:
        """One forward on a ``height`` x ``width`` input: measured (:func:`check_tile`) times
        ``CHECKED_MARGIN``, else extrapolated times the margin; plus the self-ensemble's buffers."""
        pixels = height * width
        extra = 2 * self._tile_out(pixels) if self.self_ensemble else 0  # the running sum and one output
        checked = self.profile.checked_peak(self.shape[0], height, width)
        if checked is not None:
            return CHECKED_MARGIN * checked + extra
        return self.margin * self.profile.forward_peak(pixels, self.shape[0]) + extra

    def tile_shape(self, tile: int) -> tuple[int, int]:
        """The input size of each tile of side ``tile`` (tiles never exceed the padded image)."""
        return min(tile, self.padded[0]), min(tile, self.padded[1])

    def peak(self, tile: int | None) -> float:
        """Estimated peak of restoring the image in ``tile`` tiles (``None``: whole)."""
        n, c, h, w = self.shape
        hp, wp = self.padded
        pad_copy = n * c * hp * wp * _FLOAT_BYTES if (hp, wp) != (h, w) else 0
        if tile is None:
            moved = 0 if self.same_device else n * c * h * w * _FLOAT_BYTES  # x copied to the model's device
            return pad_copy + moved + self._forward(hp, wp)
        th, tw = self.tile_shape(tile)
        pixels = th * tw
        if not self.same_device:  # only the tile travels; accumulators stay with the image
            return n * c * pixels * _FLOAT_BYTES + self._forward(th, tw)
        s = self.profile.spec.scale
        accumulators = self._tile_out(hp * wp) + hp * wp * s * s * _FLOAT_BYTES  # output and weight map
        return pad_copy + accumulators + 2 * self._tile_out(pixels) + self._forward(th, tw)  # y*mask, mask


def _estimates(
    profile: MemoryProfile, image_shape: Sequence[int], overlap: int | None, self_ensemble: bool,
    image_device: torch.device | str | None, margin: float | None,
) -> _Estimates:
    spec = profile.spec
    n, c, h, w = _image_shape(image_shape, spec)
    m = spec.size_multiple
    hp, wp = m * math.ceil(h / m), m * math.ceil(w / m)
    if spec.fixed_size is not None:
        hp, wp = max(hp, spec.fixed_size), max(wp, spec.fixed_size)
    overlap = spec.tile_overlap if overlap is None else overlap
    if overlap < 0:
        raise ValueError(f"tile overlap must be >= 0, got {overlap}")
    margin = DEFAULT_MARGIN if margin is None else margin
    same_device = torch.device(image_device or profile.device) == profile.device
    return _Estimates(profile, (n, c, h, w), (hp, wp), overlap, self_ensemble, same_device, margin)


def estimate_peak(
    profile: MemoryProfile,
    image_shape: Sequence[int],
    tile: int | None,
    *,
    overlap: int | None = None,
    self_ensemble: bool = False,
    image_device: torch.device | str | None = None,
    margin: float | None = None,
) -> int:
    """Estimated peak memory (bytes) of restoring ``image_shape`` in ``tile`` tiles (``None``: the
    whole image at once): what :func:`plan_tile` compares with the budget (arguments as there)."""
    return int(_estimates(profile, image_shape, overlap, self_ensemble, image_device, margin).peak(tile))


def plan_tile(
    profile: MemoryProfile,
    image_shape: Sequence[int],
    budget_bytes: int,
    *,
    overlap: int | None = None,
    self_ensemble: bool = False,
    image_device: torch.device | str | None = None,
    margin: float | None = None,
    prefer: Preference = "auto",
) -> TileChoice:
    """A legal tile (or the whole image) whose estimated peak fits ``budget_bytes``: the largest,
    or on a CPU the fastest (see the module docstring).

    Legal tiles are multiples of ``spec.size_multiple`` of at least twice the overlap (so tiles
    advance by at least the overlap), or exactly ``spec.fixed_size``.

    Args:
        profile: from :func:`probe_memory`.
        image_shape: ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)`` of the input.
        budget_bytes: memory the restoration may add on the profile's device.
        overlap: tile overlap (default ``spec.tile_overlap``).
        self_ensemble: plan for the x8 self-ensemble (two more tile outputs alive).
        image_device: where the input and the output accumulator live (default: the model's
            device); buffers elsewhere do not count against the budget.
        margin: factor on the extrapolated forward peak (default ``DEFAULT_MARGIN``).
        prefer: ``"largest"`` tile that fits, the ``"fastest"`` (least :func:`cpu_work`) that fits,
            or ``"auto"``: fastest on a CPU, largest elsewhere.
    Raises:
        MemoryBudgetError: even the smallest legal tile does not fit.
    """
    spec = profile.spec
    est = _estimates(profile, image_shape, overlap, self_ensemble, image_device, margin)
    n, c, h, w = est.shape
    hp, wp = est.padded
    overlap = est.overlap
    if budget_bytes <= 0:
        raise ValueError(f"memory budget must be positive, got {budget_bytes}")
    if prefer not in ("auto", "largest", "fastest"):
        raise ValueError(f"prefer must be 'auto', 'largest' or 'fastest', got {prefer!r}")
    rule = ("fastest" if profile.device.type == "cpu" else "largest") if prefer == "auto" else prefer

    def choice(tile: int | None, ov: int | None) -> TileChoice:
        tiles = 1 if tile is None or ov is None else _tile_count(hp, tile, ov) * _tile_count(wp, tile, ov)
        return TileChoice(
            tile, ov, int(est.peak(tile)), int(budget_bytes), profile.probes, str(profile.device), (n, c, h, w),
            rule, tiles,
        )

    if spec.fixed_size is not None:
        t = spec.fixed_size
        if est.peak(t) > budget_bytes:
            raise MemoryBudgetError(
                f"the model's fixed tile {t}x{t} needs an estimated {format_bytes(est.peak(t))} for a {h}x{w} "
                f"image, more than the {format_bytes(budget_bytes)} budget; raise the budget (--max-memory) or "
                "free memory"
            )
        return choice(t, overlap if overlap < t else t // 2)
    m = spec.size_multiple
    smallest = m * max(1, math.ceil(2 * overlap / m))
    sides = range(m * ((max(hp, wp) - 1) // m), smallest - 1, -m)  # largest first
    if rule == "largest":
        if est.peak(None) <= budget_bytes:
            return choice(None, None)
        for t in sides:
            if est.peak(t) <= budget_bytes:
                return choice(t, overlap)
    else:
        fitting: list[int | None] = [None] if est.peak(None) <= budget_bytes else []
        fitting += [t for t in sides if est.peak(t) <= budget_bytes]
        if fitting:  # the least work; among equals the first listed, i.e. the largest tile
            best = min(fitting, key=lambda t: cpu_work(hp, wp, t, overlap))
            return choice(best, None if best is None else overlap)
    raise MemoryBudgetError(
        f"no tile fits the {format_bytes(budget_bytes)} budget for a {h}x{w} image: the smallest legal tile "
        f"{smallest} (2 x overlap {overlap}, multiple of {m}) needs an estimated "
        f"{format_bytes(est.peak(smallest))}; raise the budget (--max-memory), free memory or lower the overlap"
    )


def choose_tile(
    model: nn.Module,
    image_shape: Sequence[int],
    max_memory_bytes: int | None = None,
    device: torch.device | str | None = None,
    *,
    overlap: int | None = None,
    task: str | int | None = None,
    precision: Precision = "fp32",
    self_ensemble: bool = False,
    probe_sides: Sequence[int] | None = None,
    image_device: torch.device | str | None = None,
    margin: float | None = None,
    prefer: Preference = "auto",
    log: Callable[[str], object] | None = print,
) -> TileChoice:
    """Probe ``model`` and choose a tile for ``image_shape`` that fits the memory budget (the
    largest, or on a CPU the fastest: see :func:`plan_tile`).

    Args:
        model: the model, already on the device it will run on.
        image_shape: ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)``.
        max_memory_bytes: the budget; default: the free memory of ``device`` times a safety factor
            (see the module docstring).
        device: the device the budget is about; must be the model's (default).
        overlap, self_ensemble, image_device, margin, prefer: see :func:`plan_tile`.
        task, precision, probe_sides: see :func:`probe_memory`.
        log: receives the one-line summary (default ``print``; ``None`` for silence).
    Returns:
        A :class:`TileChoice`; pass ``**choice.restore_kwargs()`` to ``restore``.
    """
    model_device = _model_device(model, torch.device("cpu"))
    if device is not None and torch.device(device) != model_device:
        raise ValueError(
            f"choose_tile: device {device} differs from the model's device {model_device}; move the model first"
        )
    if max_memory_bytes is not None and max_memory_bytes <= 0:
        raise ValueError(f"max_memory_bytes must be positive, got {max_memory_bytes}")
    budget = int(max_memory_bytes) if max_memory_bytes is not None else _default_budget(model_device)
    profile = probe_memory(model, task=task, precision=precision, probe_sides=probe_sides)
    _, choice = _plan_checked(
        model, profile, image_shape, budget, task=task, precision=precision, overlap=overlap,
        self_ensemble=self_ensemble, image_device=image_device, margin=margin, prefer=prefer,
    )
    if log is not None:
        log(choice.message())
    return choice


# -- tools -----------------------------------------------------------------------------------------
def tile_arg(value: str) -> int | Literal["auto"]:
    """``argparse`` type of a ``--tile`` option: a positive tile side, or ``auto``.

    Raises ``argparse.ArgumentTypeError``, whose message argparse shows as it is.
    """
    if value.strip().lower() == "auto":
        return "auto"
    try:
        tile = int(value)
    except ValueError:
        tile = 0
    if tile < 1:
        raise argparse.ArgumentTypeError(f"expected a positive tile size or 'auto', got {value!r}")
    return tile


class AutoTiler:
    """``--tile auto`` for tools that restore many images: probe once (per task), plan per image.

    ``tiler(x)`` returns the :class:`TileChoice` for tensor ``x`` (or a shape; on a CPU the fastest
    tiling that fits, elsewhere the largest: :func:`plan_tile`); the memory probe
    runs on the first call for each task and is reused, and the default budget is re-read at
    every call (free memory changes). A choice is logged when it differs from the previous one.

    Args:
        model: the model, on the device it runs on.
        max_memory_bytes: the budget (default: free memory times the safety factor).
        overlap, self_ensemble, margin, prefer: see :func:`plan_tile`.
        precision, probe_sides: see :func:`probe_memory`.
        log: receives the one-line choices (``None``: silent).
    """

    def __init__(
        self,
        model: nn.Module,
        max_memory_bytes: int | None = None,
        *,
        overlap: int | None = None,
        precision: Precision = "fp32",
        self_ensemble: bool = False,
        probe_sides: Sequence[int] | None = None,
        margin: float | None = None,
        prefer: Preference = "auto",
        log: Callable[[str], object] | None = print,
    ) -> None:
        if max_memory_bytes is not None and max_memory_bytes <= 0:
            raise ValueError(f"max_memory_bytes must be positive, got {max_memory_bytes}")
        self.model = model
        self.max_memory_bytes = max_memory_bytes
        self.overlap = overlap
        self.precision = precision
        self.self_ensemble = self_ensemble
        self.probe_sides = probe_sides
        self.margin = margin
        self.prefer: Preference = prefer
        self.log = log
        self._profiles: dict[str | int | None, MemoryProfile] = {}
        self._last: tuple[int | None, int | None] | None = None

    def __call__(self, x: torch.Tensor | Sequence[int], task: str | int | None = None) -> TileChoice:
        """The tiling for input ``x`` (a tensor, whose device holds the image buffers, or a shape)."""
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else tuple(x)
        image_device = x.device if isinstance(x, torch.Tensor) else None
        if task not in self._profiles:
            self._profiles[task] = probe_memory(
                self.model, task=task, precision=self.precision, probe_sides=self.probe_sides
            )
        profile = self._profiles[task]
        budget = self.max_memory_bytes if self.max_memory_bytes is not None else _default_budget(profile.device)
        # the checked tile shapes are kept for the next images
        self._profiles[task], choice = _plan_checked(
            self.model, profile, shape, budget, task=task, precision=self.precision, overlap=self.overlap,
            self_ensemble=self.self_ensemble, image_device=image_device, margin=self.margin, prefer=self.prefer,
        )
        if self.log is not None and (choice.tile, choice.overlap) != self._last:
            self.log(choice.message())
        self._last = (choice.tile, choice.overlap)
        return choice
