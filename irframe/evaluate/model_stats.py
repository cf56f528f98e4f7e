"""Parameter counts and FLOPs per model, beside the figures the papers quote.

Our numbers are computed (:mod:`irframe.nn.stats`); the papers' are quoted, clearly labelled, from
:data:`PAPER_FIGURES`. The papers' "FLOPs" come from layer-hook tools (ptflops/thop style): they
count multiply-accumulates of convolution and linear layers and skip the attention matrix products
(``q @ k^T``, ``attn @ v``). The table therefore prints our total GMACs, our GFLOPs (= 2 x GMACs)
and our layer-only GMACs, the figure comparable with the papers' (Restormer: 140.99 exactly).

Models are built on the ``meta`` device by default: no memory for weights and no arithmetic, so
the full-size Restormer at 256x256 is counted in a second on a laptop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from irframe.nn.spec import get_spec

__all__ = ["LAYER_OPS", "PAPER_FIGURES", "PaperFigure", "StatsRow", "build_on_meta", "measure", "stats_table"]

# aten operators behind nn.Conv*/nn.Linear: what layer-hook counters see. ``baddbmm``: a 1x1
# projection computed with its residual added in the product (Restormer's token-layout blocks).
LAYER_OPS = frozenset({"convolution", "_convolution", "addmm", "mm", "linear", "baddbmm"})


@dataclass(frozen=True)
class PaperFigure:
    """What a paper reports for its model (``None`` where it reports nothing)."""

    params_m: float
    gflops: float | None = None
    size: int | None = None
    source: str = ""


PAPER_FIGURES: dict[str, PaperFigure] = {
    "Restormer": PaperFigure(26.1, 140.99, 256, "Zamir et al., CVPR 2022 (26.13M params, 140.99G FLOPs at 256x256)"),
    "PromptIR": PaperFigure(35.59, None, None, "Potlapalli et al., NeurIPS 2023 (35.59M params)"),
    "IPT": PaperFigure(
        115.5,
        None,
        None,
        "Chen et al., CVPR 2021 (115.5M params: the shared body with one task's head and tail, as --arch IPT "
        "builds; options/ipt_pretrain.yml's 6 heads/tails count 118.89M)",
    ),
}


@dataclass(frozen=True)
class StatsRow:
    """Our measurements of one model."""

    name: str
    arch: str
    params: int
    height: int
    width: int
    flops: int | None
    layer_flops: int | None = None
    note: str = ""

    @property
    def gmacs(self) -> float | None:
        return None if self.flops is None else self.flops / 2e9

    @property
    def gflops(self) -> float | None:
        return None if self.flops is None else self.flops / 1e9

    @property
    def layer_gmacs(self) -> float | None:
        """Multiply-accumulates of convolution/linear layers only (the papers' convention)."""
        return None if self.layer_flops is None else self.layer_flops / 2e9


def measure(
    model: nn.Module,
    name: str,
    arch: str,
    size: int = 256,
    *,
    task: str | int | None = None,
    flops: bool = True,
) -> StatsRow:
    """Count ``model``'s parameters and the FLOPs of one ``size`` x ``size`` forward pass.

    A fixed-size model (IPT) is measured at its own input size (noted in the row); other sizes are
    rounded up to the model's size multiple.
    """
    from irframe.nn.stats import count_flops, count_params

    spec = get_spec(model)
    note = ""
    if spec.fixed_size is not None and size != spec.fixed_size:
        note = "one patch: the fixed input size"
        size = spec.fixed_size
    multiple = spec.size_multiple
    if size % multiple:
        size += multiple - size % multiple
        note = note or f"size rounded up to a multiple of {multiple}"
    total = layers = None
    if flops:
        counted = count_flops(model, (spec.in_channels, size, size), task=task)
        total = counted.flops
        layers = sum(n for op, n in counted.by_operator.items() if op in LAYER_OPS)
    return StatsRow(name, arch, count_params(model), size, size, total, layers, note)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def stats_table(rows: Sequence[StatsRow], papers: Mapping[str, PaperFigure] = PAPER_FIGURES) -> str:
    """A Markdown table: ours (computed) and the papers' (quoted) side by side."""
    lines = [
        "| Model | Arch | Params (M), ours | Params (M), paper | Input | GMACs, ours | GFLOPs, ours "
        "| layer GMACs, ours | FLOPs (G), paper |",
        "|:---|:---|---:|---:|:---|---:|---:|---:|---:|",
    ]
    used: list[str] = []
    for r in rows:
        paper = papers.get(r.arch)
        if paper is not None and r.arch not in used:
            used.append(r.arch)
        paper_flops = "–"
        if paper is not None and paper.gflops is not None:
            paper_flops = f"{paper.gflops:.2f} @{paper.size}x{paper.size}"
        size = f"{r.height}x{r.width}" + (f" ({r.note})" if r.note else "")
        lines.append(
            f"| {r.name} | {r.arch} | {r.params / 1e6:.2f} | {_fmt(paper.params_m if paper else None)} | {size} | "
            f"{_fmt(r.gmacs)} | {_fmt(r.gflops)} | {_fmt(r.layer_gmacs)} | {paper_flops} |"
        )
    lines.append("")
    lines.append(
        "Ours: computed here (torch FlopCounterMode: convolutions and matrix products, 2 FLOPs per "
        "multiply-accumulate; element-wise work not counted). Layer GMACs: convolution/linear layers only, "
        "as layer-hook tools count them (no attention matrix products): the figure to compare with the "
        "papers' \"FLOPs\". Paper: quoted, not measured."
    )
    for arch in used:
        lines.append(f"- {arch}: {papers[arch].source}")
    return "\n".join(lines) + "\n"


def build_on_meta(cfg: Mapping[str, Any], path: str = "model") -> nn.Module:
    """Build ``cfg`` without allocating weights (``meta`` tensors): enough to count params and FLOPs."""
    from irframe.registry import ARCHS

    with torch.device("meta"):
        return ARCHS.build(dict(cfg), path=path)
