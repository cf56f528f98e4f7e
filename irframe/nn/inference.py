"""Shared inference helpers, driven by what each model declares in its :class:`ModelSpec`.

Nobody pads for a particular architecture: :func:`restore` reads ``get_spec(model)`` and

1. pads the [0,1] input at the bottom/right to ``spec.size_multiple`` (reflect; replicate where the
   image is too small to reflect), and up to ``spec.fixed_size`` for fixed-size models;
2. runs the model on the whole image, or tile by tile (:func:`tiled_forward`) when asked or when
   ``spec.fixed_size`` requires it, optionally with the x8 self-ensemble on each piece;
3. crops the output back to ``scale`` times the input size, under ``torch.inference_mode()``.

Outputs are never clamped: quantisation to 8 bit belongs to image saving and the metrics.

Precision: ``restore(..., precision="bf16" | "fp16")`` runs the model under ``torch.autocast``
(matrix products and convolutions in half precision, reductions and norms kept in float32 by
autocast's op lists); the model's weights are not touched and the output is float32 again. fp16
autocast is refused on the CPU with an error (many CPU kernels lack fp16 and would be slow or fail):
use bf16 there, which torch supports on CPUs.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from irframe.nn.modes import eval_mode
from irframe.nn.spec import ModelSpec, get_spec, resolve_task, spec_for_task

__all__ = [
    "pad_to_multiple", "crop_to", "tile_starts", "tiled_forward", "self_ensemble", "autocast_context", "compile_model",
    "restore",
]

Forward = Callable[[torch.Tensor], torch.Tensor]
PadMode = Literal["reflect", "replicate", "constant"]
Blend = Literal["linear", "average"]
Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


# -- padding -----------------------------------------------------------------------------------
def _pad_dim(x: torch.Tensor, amount: int, dim: int, mode: str) -> torch.Tensor:
    if amount == 0:
        return x
    # reflect needs pad < size: a 1x1 input padded to 8 falls back to edge replication
    if mode == "reflect" and amount >= x.shape[dim]:
        mode = "replicate"
    pads = (0, amount, 0, 0) if dim == -1 else (0, 0, 0, amount)
    return F.pad(x, pads, mode=mode)


def pad_to_multiple(
    x: torch.Tensor, multiple: int, mode: PadMode = "reflect", *, min_size: int | None = None
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad an (N)CHW tensor at the bottom/right so height and width are multiples of ``multiple``.

    Args:
        x: ``[N,C,H,W]`` or ``[C,H,W]``.
        multiple: the size multiple (``1`` pads nothing).
        mode: ``"reflect"`` (falls back to ``"replicate"`` in a dimension where the pad is not smaller
            than the image), ``"replicate"`` or ``"constant"`` (zeros).
        min_size: also pad each side up to at least this (fixed-size models).
    Returns:
        ``(padded, (h, w))`` with the original height and width, for :func:`crop_to`.
    """
    if x.ndim not in (3, 4):
        raise ValueError(f"pad_to_multiple: expected [N,C,H,W] or [C,H,W], got shape {tuple(x.shape)}")
    if multiple < 1:
        raise ValueError(f"pad_to_multiple: multiple must be >= 1, got {multiple}")
    if mode not in ("reflect", "replicate", "constant"):
        raise ValueError(f"pad_to_multiple: mode must be reflect, replicate or constant, got {mode!r}")
    h, w = x.shape[-2:]
    target_h, target_w = math.ceil(h / multiple) * multiple, math.ceil(w / multiple) * multiple
    if min_size is not None:
        target_h, target_w = max(target_h, min_size), max(target_w, min_size)
    out = _pad_dim(x, target_w - w, -1, mode)
    out = _pad_dim(out, target_h - h, -2, mode)
    return out, (h, w)


def crop_to(y: torch.Tensor, size: tuple[int, int], scale: int = 1) -> torch.Tensor:
    """Crop a (padded) output back to ``scale`` times the original ``(h, w)`` (top-left)."""
    h, w = size
    return y[..., : h * scale, : w * scale]


# -- tiling ------------------------------------------------------------------------------------
def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering ``size`` pixels with at least ``overlap`` pixels of overlap.

    The last tile is aligned to the end, so it may overlap its neighbour more.
    """
    if size <= tile:
        return [0]
    stride = tile - overlap
    return [*list(range(0, size - tile, stride)), size - tile]


def _profile(n: int, lead: bool, trail: bool, margin: int, ramp: int, blend: str) -> torch.Tensor:
    """1-D tile weights: zero on a guard ``margin`` and then a rise over ``ramp`` at inner edges."""
    w = torch.ones(n, dtype=torch.float32)
    rise = torch.arange(1, ramp + 1, dtype=torch.float32) / (ramp + 1) if blend == "linear" else torch.ones(ramp)
    if lead:
        edge = torch.ones(n)
        edge[:margin] = 0
        edge[margin : margin + ramp] = rise
        w = w * edge
    if trail:
        edge = torch.ones(n)
        edge[n - margin :] = 0
        edge[n - margin - ramp : n - margin] = rise.flip(0)
        w = w * edge
    return w


def _model_device(model: object, fallback: torch.device) -> torch.device:
    if isinstance(model, nn.Module):
        for p in model.parameters():
            return p.device
        for b in model.buffers():
            return b.device
    return fallback


def _run_checked(fn: Forward, x: torch.Tensor, scale: int) -> torch.Tensor:
    y = fn(x)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"the model returned {type(y).__name__}, expected a tensor")
    want = (x.shape[0], x.shape[-2] * scale, x.shape[-1] * scale)
    got = (y.shape[0], y.shape[-2], y.shape[-1]) if y.ndim == 4 else None
    if got != want:
        raise ValueError(
            f"model output shape {tuple(y.shape)} does not match input {tuple(x.shape)} at "
            f"spec.scale={scale} (expected [N, C, H*scale, W*scale]); is the spec right?"
        )
    return y


def tiled_forward(
    model: nn.Module | Forward,
    x: torch.Tensor,
    tile: int,
    overlap: int,
    *,
    spec: ModelSpec | None = None,
    blend: Blend = "linear",
    margin: int | None = None,
    device: torch.device | str | None = None,
    out_device: torch.device | str | None = None,
) -> torch.Tensor:
    """Run ``model`` over overlapping ``tile`` x ``tile`` pieces of ``x`` and blend the outputs.

    Only one tile at a time lives on the model's device; the output (and a weight map) is
    accumulated on ``out_device`` (default: ``x``'s device, CPU is fine for huge images).

    Blending: at each inner tile edge the outer ``margin`` input pixels (default ``overlap // 4``)
    get weight 0, since tile borders are the least reliable pixels, and the rest of the overlap
    rises linearly (``"linear"``, a feathered seam) or is weighted 1 (``"average"``). Hence a model
    whose receptive-field radius is at most ``margin`` gives exactly its whole-image output (up to
    float rounding); models with global attention or pooling (Restormer's channel attention,
    PromptIR's prompts) give an approximation, measured not guaranteed.

    Args:
        model: an ``nn.Module`` or any ``tensor -> tensor`` callable.
        x: ``[N,C,H,W]`` input in the model's expected range.
        tile: tile side in input pixels; a multiple of ``spec.size_multiple``, equal to
            ``spec.fixed_size`` if the model has one.
        overlap: input pixels shared by neighbouring tiles (``0 <= overlap < tile``).
        spec: the model's facts (default ``get_spec(model)``; ``ModelSpec()`` for a plain callable).
        blend: ``"linear"`` or ``"average"``.
        margin: guard band in input pixels at inner edges, ``0 <= 2 * margin <= overlap``.
        device: where tiles run (default: the model's parameters, else ``x.device``).
        out_device: where the output is accumulated (default ``x.device``).
    Returns:
        ``[N, C_out, H*scale, W*scale]`` in ``x``'s dtype on ``out_device``.
    """
    if spec is None:
        spec = get_spec(model) if isinstance(model, nn.Module) else ModelSpec()
    if x.ndim != 4:
        raise ValueError(f"tiled_forward: expected [N,C,H,W], got shape {tuple(x.shape)}")
    if blend not in ("linear", "average"):
        raise ValueError(f"tiled_forward: blend must be 'linear' or 'average', got {blend!r}")
    if spec.fixed_size is not None and tile != spec.fixed_size:
        raise ValueError(f"tile {tile} must equal the model's fixed input size (spec.fixed_size={spec.fixed_size})")
    if tile < 1 or tile % spec.size_multiple:
        raise ValueError(f"tile {tile} must be a positive multiple of spec.size_multiple={spec.size_multiple}")
    if not 0 <= overlap < tile:
        raise ValueError(f"tile overlap {overlap} must be >= 0 and smaller than the tile ({tile})")
    margin = overlap // 4 if margin is None else margin
    if margin < 0 or 2 * margin > overlap:
        raise ValueError(f"tile margin {margin} must satisfy 0 <= 2 * margin <= overlap ({overlap})")
    device = torch.device(device) if device is not None else _model_device(model, x.device)
    out_device = torch.device(out_device) if out_device is not None else x.device
    s = spec.scale

    xp, (h, w) = pad_to_multiple(x, spec.size_multiple, min_size=spec.fixed_size)
    hp, wp = xp.shape[-2:]
    rows, cols = tile_starts(hp, tile, overlap), tile_starts(wp, tile, overlap)
    th, tw = min(tile, hp), min(tile, wp)
    ramp = (overlap - 2 * margin) * s
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    out: torch.Tensor | None = None
    weight = torch.zeros(1, 1, hp * s, wp * s, dtype=acc, device=out_device)
    with torch.no_grad():
        for r in rows:
            wr = _profile(th * s, r > 0, r + th < hp, margin * s, ramp, blend)
            for c in cols:
                wc = _profile(tw * s, c > 0, c + tw < wp, margin * s, ramp, blend)
                piece = xp[..., r : r + th, c : c + tw].to(device)
                y = _run_checked(model, piece, s).to(out_device, acc)
                if out is None:  # output channels are known after the first tile
                    out = torch.zeros(x.shape[0], y.shape[1], hp * s, wp * s, dtype=acc, device=out_device)
                mask = (wr[:, None] * wc[None, :]).to(out_device, acc)
                out[..., r * s : (r + th) * s, c * s : (c + tw) * s] += y * mask
                weight[..., r * s : (r + th) * s, c * s : (c + tw) * s] += mask
                del piece, y
    assert out is not None  # at least one tile always runs
    out /= weight
    return crop_to(out, (h, w), s).to(x.dtype)


# -- self-ensemble -----------------------------------------------------------------------------
def _ensemble_x8(fn: Forward, x: torch.Tensor) -> torch.Tensor:
    total: torch.Tensor | None = None
    for flip in (False, True):
        xf = x.flip(-1) if flip else x
        for k in range(4):
            y = fn(torch.rot90(xf, k, dims=(-2, -1)))
            y = torch.rot90(y, -k, dims=(-2, -1))
            y = y.flip(-1) if flip else y
            total = y.clone() if total is None else total.add_(y)
    assert total is not None
    return total / 8


def self_ensemble(fn: Forward, x: torch.Tensor) -> torch.Tensor:
    """x8 geometric self-ensemble: average of ``fn`` over the 4 rotations x 2 flips, each undone.

    Non-square inputs are rotated too, so ``fn`` must accept the transposed size.
    """
    return _ensemble_x8(fn, x)


# -- precision ---------------------------------------------------------------------------------
def autocast_context(device: torch.device | str, precision: Precision = "fp32") -> AbstractContextManager[object]:
    """The autocast context that runs a model on ``device`` in ``precision``.

    ``"fp32"`` gives a no-op context. ``"bf16"``/``"fp16"`` give ``torch.autocast``; a combination
    torch cannot run is an error rather than a silent float32 run: fp16 on the CPU, bf16 on a CUDA
    GPU without bf16 support, or a device type without autocast.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    device = torch.device(device)
    if device.type == "cpu" and precision == "fp16":
        raise ValueError(
            "precision 'fp16' is not supported on the CPU (many CPU kernels lack float16); "
            "use precision='bf16' on the CPU, or run on a GPU"
        )
    if not torch.amp.is_autocast_available(device.type):
        raise ValueError(f"precision {precision!r}: torch has no autocast for device type {device.type!r}")
    if device.type == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(device)
        raise ValueError(f"precision 'bf16': {name} does not support bfloat16; use 'fp16'")
    return torch.autocast(device_type=device.type, dtype=PRECISIONS[precision])


def compile_model(model: nn.Module) -> nn.Module:
    """``torch.compile(model)`` (inductor) for inference (``inference.compile``, ``--compile``).

    The compiled wrapper shares the weights; :func:`irframe.nn.weights.unwrap_model` and
    :func:`~irframe.nn.spec.get_spec` look through it, so checkpoints saved from it keep the plain
    parameter names. The first call at each input size compiles (torch marks height and width
    dynamic after a second size), which takes seconds to minutes: worth it for many images of one
    size, not for one image.

    Compiled kernels are cached on disk (:func:`use_compile_cache`), so a later process compiling
    the same model at the same size skips code generation and pays only the tracing
    (benchmarks/bench_fast.py ``--compile-cache`` measures both).
    """
    from irframe.nn.weights import unwrap_model

    use_compile_cache()
    return torch.compile(unwrap_model(model))  # type: ignore[return-value]  # an OptimizedModule


def use_compile_cache() -> Path:
    """Keep torch.compile's kernels between processes under ``$IRFRAME_CACHE/inductor``.

    Points inductor's cache (``TORCHINDUCTOR_CACHE_DIR``, unless the user set it) at irframe's cache
    folder instead of a temporary one that does not outlive a reboot, and turns on its FX graph and
    AOT-autograd caches (keyed by graph, shapes, torch version and CPU). Returns the folder in use.
    """
    import os

    from irframe.utils import cache_root

    folder = os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root() / "inductor"))
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = True
    inductor_config.autotune_local_cache = True
    try:
        import torch._functorch.config as functorch_config

        functorch_config.enable_autograd_cache = True
    except (ImportError, AttributeError):  # older torch: the FX graph cache alone
        pass
    return Path(folder)


# -- entry point -------------------------------------------------------------------------------
def restore(
    model: nn.Module,
    x: torch.Tensor,
    *,
    tile: int | None = None,
    tile_overlap: int | None = None,
    self_ensemble: bool = False,
    task: str | int | None = None,
    blend: Blend = "linear",
    out_device: torch.device | str | None = None,
    precision: Precision = "fp32",
) -> torch.Tensor:
    """Restore ``x`` (``[N,C,H,W]`` or ``[C,H,W]``, float in [0,1]) with ``model``, spec-driven.

    Args:
        model: an arch exposing ``spec`` (wrappers are looked through); it is run in eval mode and
            its train/eval mode is restored afterwards.
        x: the input, on any device (pieces are moved to the model's device).
        tile: tile side (input pixels) for tiled inference; defaults to ``spec.fixed_size`` for a
            fixed-size model, otherwise ``None`` runs the whole image at once.
        tile_overlap: overlap between tiles; default ``spec.tile_overlap`` (``tile // 2`` if that
            is not smaller than the tile).
        self_ensemble: average the x8 flips/rotations (applied to each tile when tiling).
        task: passed as ``model(x, task=task)`` for multi-task models; checked against ``spec.tasks``.
            A model whose spec depends on the task (IPT's ``scale``) offers ``set_task(task)``: it
            is called first, so padding, tiling and cropping use that task's spec.
        blend: tile blending, see :func:`tiled_forward`.
        out_device: where the result goes (default ``x.device``).
        precision: ``"fp32"`` (default), or ``"bf16"``/``"fp16"`` autocast (see
            :func:`autocast_context`; fp16 is refused on the CPU). Tile blending, the self-ensemble
            average and the result stay in float32 (``x``'s dtype).
    Returns:
        The output, ``scale`` times the input size, in ``x``'s dtype, never clamped.
    """
    task = resolve_task(model, task)  # the model's own name for a spelling it accepts (IPT: sr2 -> sr_x2)
    spec = spec_for_task(model, task)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = getattr(x, "dtype", type(x).__name__)
        raise TypeError(f"restore: x must be a float tensor in [0,1], got {got}")
    unbatched = x.ndim == 3
    if unbatched:
        x = x.unsqueeze(0)
    if x.ndim != 4:
        raise ValueError(f"restore: x must be [N,C,H,W] or [C,H,W], got shape {tuple(x.shape)}")
    if x.shape[1] != spec.in_channels:
        raise ValueError(
            f"restore: input has {x.shape[1]} channels but the model takes spec.in_channels={spec.in_channels}"
        )
    if isinstance(task, str) and spec.tasks and task not in spec.tasks:
        raise ValueError(f"restore: unknown task {task!r}; the model's tasks are {', '.join(spec.tasks)}")
    if spec.fixed_size is not None:
        if tile is not None and tile != spec.fixed_size:
            raise ValueError(f"restore: tile {tile} must equal the model's fixed input size {spec.fixed_size}")
        tile = spec.fixed_size
    device = _model_device(model, x.device)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), x.dtype)
    out_device = torch.device(out_device) if out_device is not None else x.device
    autocast_context(device, precision)  # refuse an unsupported precision before any work

    def forward(t: torch.Tensor) -> torch.Tensor:
        t = t.to(device=device, dtype=dtype)
        with autocast_context(device, precision):  # a fresh context per call: they are not re-entrant
            y = model(t) if task is None else model(t, task=task)
        # back to float32 at once, so blending and the ensemble average never accumulate in 16 bits
        return y if precision == "fp32" else y.float()

    run: Forward = (lambda t: _ensemble_x8(forward, t)) if self_ensemble else forward
    with eval_mode(model), torch.inference_mode():
        if tile is not None:
            overlap = tile_overlap
            if overlap is None:  # the model's own default, unless it does not fit this tile
                overlap = spec.tile_overlap if spec.tile_overlap < tile else tile // 2
            y = tiled_forward(
                run, x, tile, overlap, spec=spec, blend=blend, device=device, out_device=out_device
            )
        else:
            xp, size = pad_to_multiple(x.to(device), spec.size_multiple)
            y = crop_to(_run_checked(run, xp, spec.scale), size, spec.scale)
        y = y.to(out_device, x.dtype)
    return y.squeeze(0) if unbatched else y
