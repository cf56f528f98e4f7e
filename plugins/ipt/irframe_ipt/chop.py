"""Patch-wise ("chop") inference for fixed-size models such as IPT.

The image is cut into overlapping ``patch x patch`` crops; every output pixel is a weighted mean of
the crops that "keep" it. Along each axis a crop keeps its centre: ``shave`` input pixels are dropped
on each side, except on sides at the image border. The weight of a crop at a pixel is the product of
its row weight and its column weight (each ``1 / number of crops keeping that row/column``).

Two placements of the crops (``mode``):

- ``"official"`` (default) reproduces the official ``forward_chop`` (huawei-noah/Pretrained-IPT
  ``model/__init__.py``, patch 48, step 12, shave 12), used for the paper's numbers: crops every
  ``step`` pixels from the top/left (the grid), plus one crop flush with the bottom/right edge that
  alone supplies the rows/columns past a seam at ``(patch - remainder) / 2`` pixels before the end of
  the grid (``remainder = (length - patch) % step``). One official quirk is kept: the first ``shave``
  rows of the first ``patch`` columns come from the top-left crop alone.
- ``"mean"``: the same grid plus the flush crop, all averaged where they keep a pixel (no seam, no
  quirk). Identical to ``"official"`` in the interior when ``(length - patch) % step == 0``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

ChopMode = Literal["official", "mean"]


def patch_starts(length: int, patch: int, step: int) -> list[int]:
    """Crop offsets along one axis of ``length >= patch``: every ``step``, plus one flush with the end."""
    starts = list(range(0, length - patch + 1, step))
    if starts[-1] + patch < length:
        starts.append(length - patch)
    return starts


def kept_span(start: int, patch: int, length: int, shave: int) -> tuple[int, int]:
    """Input rows ``[lo, hi)`` of the crop at ``start`` that are kept (``shave`` dropped off inner sides)."""
    lo = start + (shave if start > 0 else 0)
    hi = start + patch - (shave if start + patch < length else 0)
    return lo, hi


@dataclass(frozen=True)
class AxisPlan:
    """Crops along one axis: their offsets (input pixels) and weights over their ``patch*scale`` outputs."""

    starts: list[int]
    weights: list[Tensor]
    seam: int  # output index where the flush crop takes over ("official"), else the output length


def axis_plan(length: int, patch: int, scale: int, shave: int, step: int, mode: ChopMode) -> AxisPlan:
    """Where crops go along an axis of ``length`` input pixels and how their outputs are weighted."""
    out_len = length * scale
    spans: list[tuple[int, int, int]] = []  # (start, output lo, output hi)
    if mode == "official":
        cut = (length - patch) % step
        seam = (length - cut) * scale - int((patch - cut) / 2 * scale)  # as the official stitching
        for s in range(0, length - patch + 1, step):
            lo = (s + shave) * scale if s > 0 else 0
            spans.append((s, lo, min((s + patch - shave) * scale, seam)))
        spans.append((length - patch, seam, out_len))
    elif mode == "mean":
        seam = out_len
        for s in patch_starts(length, patch, step):
            lo, hi = kept_span(s, patch, length, shave)
            spans.append((s, lo * scale, hi * scale))
    else:
        raise ValueError(f"chop: mode must be 'official' or 'mean', got {mode!r}")

    cover = torch.zeros(len(spans), out_len, dtype=torch.float64)
    for k, (_, lo, hi) in enumerate(spans):
        cover[k, lo:max(lo, hi)] = 1
    count = cover.sum(0)
    if bool((count == 0).any()):  # guarded by chop_forward's checks; a bug if it happens
        raise AssertionError(f"chop: crops leave output pixels uncovered (length {length}, mode {mode})")
    cover /= count
    merged: dict[int, Tensor] = {}  # the flush crop may coincide with the last grid crop
    for k, (s, _, _) in enumerate(spans):
        w = cover[k, s * scale : (s + patch) * scale]
        merged[s] = merged[s] + w if s in merged else w
    starts = [s for s, w in merged.items() if bool(w.any())]
    return AxisPlan(starts, [merged[s].float() for s in starts], seam)


def chop_forward(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    *,
    patch: int,
    scale: int,
    shave: int = 12,
    step: int = 12,
    batch: int = 64,
    mode: ChopMode = "official",
) -> Tensor:
    """Run ``fn`` (which takes exactly ``patch x patch`` inputs) over ``x`` of any size.

    Args:
        fn: maps ``(B, C, patch, patch)`` to ``(B, C', patch*scale, patch*scale)``.
        x: ``(N, C, H, W)``; inputs smaller than ``patch`` are replicate-padded, then cropped back.
        patch: crop size.
        scale: output/input size ratio of ``fn``.
        shave: input pixels dropped from each inner side of a crop.
        step: distance between grid crops; ``1 <= step <= patch - 2*shave`` so kept centres tile.
        batch: crops per call of ``fn`` (summed over the ``N`` images).
        mode: ``"official"`` or ``"mean"`` (module docstring).

    Returns:
        ``(N, C', H*scale, W*scale)`` on ``x``'s device, in ``fn``'s output dtype.
    """
    if x.ndim != 4:
        raise ValueError(f"chop_forward: expected an NCHW tensor, got shape {tuple(x.shape)}")
    if step < 1 or shave < 0 or step > patch - 2 * shave:
        raise ValueError(
            f"chop_forward: need 1 <= step <= patch - 2*shave so kept centres cover the image; "
            f"got patch={patch}, shave={shave}, step={step}"
        )
    if batch < 1:
        raise ValueError(f"chop_forward: batch must be >= 1, got {batch}")
    n, _, h, w = x.shape
    pad_h, pad_w = max(patch - h, 0), max(patch - w, 0)
    if pad_h or pad_w:  # replicate: reflect padding fails when the pad exceeds the size
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    hh, ww = x.shape[-2:]
    rows = axis_plan(hh, patch, scale, shave, step, mode)
    cols = axis_plan(ww, patch, scale, shave, step, mode)
    crops = [(i, j) for i in range(len(rows.starts)) for j in range(len(cols.starts))]
    per_call = max(1, batch // n)
    ps = patch * scale

    out: Tensor | None = None
    first: Tensor | None = None  # output of the top-left crop, for the official quirk
    for c0 in range(0, len(crops), per_call):
        chunk = crops[c0 : c0 + per_call]
        inputs = torch.cat(
            [x[..., rows.starts[i] : rows.starts[i] + patch, cols.starts[j] : cols.starts[j] + patch] for i, j in chunk]
        )
        pred = fn(inputs)
        if out is None:
            out = pred.new_zeros(n, pred.shape[1], hh * scale, ww * scale)
            first = pred[:n]
        for k, (i, j) in enumerate(chunk):
            y0, x0 = rows.starts[i] * scale, cols.starts[j] * scale
            weight = (rows.weights[i][:, None] * cols.weights[j][None, :]).to(pred)
            out[..., y0 : y0 + ps, x0 : x0 + ps] += pred[k * n : (k + 1) * n] * weight
    assert out is not None and first is not None  # at least one crop always exists
    if mode == "official":
        q_rows, q_cols = shave * scale, min(ps, cols.seam)
        out[..., :q_rows, :q_cols] = first[..., :q_rows, :q_cols]
    return out[..., : h * scale, : w * scale]
