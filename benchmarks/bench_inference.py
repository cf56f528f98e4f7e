"""Inference speed: irframe's Restormer / PromptIR / IPT vs a reference forward of the same weights.

    python benchmarks/bench_inference.py [--models restormer,promptir,ipt] [--paper] [--size 128]
                                         [--rounds 5] [--threads N] [--channels-last] [--compile]

For each model (random weights, fixed seed) the same input goes, round after round, through:

- ``reference``: a forward re-written here the way the official code computes it (not the released
  code itself: ``bench_fast.py --official-repo`` times that) (Restormer/PromptIR:
  ``einops.rearrange`` to ``(b, h*w, c)`` around every LayerNorm and for the q/k/v heads, prompt
  weights applied by ``repeat`` + ``sum``; IPT: ``nn.MultiheadAttention`` called with its default
  ``need_weights=True``, ``.repeat``/``.contiguous`` copies), under ``torch.no_grad()`` as in the
  official test scripts, NCHW throughout. It is its own module (official forwards, U-Net wiring
  included) over deep copies of our leaf layers, then loaded from our ``state_dict`` with
  ``strict=True``: same names, same weights.
- ``plain``: our module called directly under ``torch.no_grad()`` (no helper).
- ``restore``: our :func:`irframe.nn.inference.restore` path (spec-driven padding, ``inference_mode``,
  IPT through its one fixed-size tile), i.e. what ``tools/test.py`` and ``tools/infer.py`` run.
- optional ``restore+cl`` (``--channels-last``: conv weights and input stored channels-last; our
  Restormer/PromptIR already run their features channels-last on the CPU) and ``reference+compile`` /
  ``restore+compile`` (``--compile``: ``torch.compile``, default inductor; compilation time is
  excluded by the warm-up).

Rounds of all variants are interleaved; each variant's best round is the estimate (other load on
the machine only adds time) and the median of the per-round ratios is printed next to it. The
outputs of the variants are checked against ``reference`` (max abs difference). FLOPs come from
:func:`irframe.nn.stats.count_flops` (2 per multiply-accumulate, convolutions and matrix products
only); the achieved GFLOP/s are printed as a fraction of this machine's dense float32 matmul
GFLOP/s, measured before and after the models in the same run (best of 1024^3 and 2048^3 products)
two ways: ``torch.mm`` (torch's BLAS, MKL) and oneDNN's GEMM (the library torch's CPU convolutions
use), since the BLAS can be far from the FMA units' peak on some CPUs.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from irframe.nn.inference import restore
from irframe.nn.stats import count_flops

Run = Callable[[], torch.Tensor]


# -- the reference forwards: official computation around deep copies of our layers --------------
class _OfficialBiasFree(nn.Module):
    """Official ``BiasFree_LayerNorm``: normalises the last axis of ``(b, h*w, c)``."""

    def __init__(self, ours: nn.Module) -> None:
        super().__init__()
        self.weight = copy.deepcopy(ours.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sigma = x.var(-1, keepdim=True, unbiased=False)
        return x / torch.sqrt(sigma + 1e-5) * self.weight


class _OfficialWithBias(_OfficialBiasFree):
    """Official ``WithBias_LayerNorm``."""

    def __init__(self, ours: nn.Module) -> None:
        super().__init__(ours)
        self.bias = copy.deepcopy(ours.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(-1, keepdim=True)
        sigma = x.var(-1, keepdim=True, unbiased=False)
        return (x - mu) / torch.sqrt(sigma + 1e-5) * self.weight + self.bias


class OfficialLayerNorm(nn.Module):
    """Official Restormer ``LayerNorm``: ``to_4d(body(to_3d(x)))`` with einops."""

    def __init__(self, ours: nn.Module) -> None:
        super().__init__()
        body = ours.body
        self.body = _OfficialWithBias(body) if hasattr(body, "bias") else _OfficialBiasFree(body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return rearrange(self.body(rearrange(x, "b c h w -> b (h w) c")), "b (h w) c -> b c h w", h=h, w=w)


class OfficialAttention(nn.Module):
    """Official MDTA: q/k/v heads by ``rearrange``, normalize, temperature, softmax."""

    def __init__(self, ours: nn.Module) -> None:
        super().__init__()
        self.num_heads = ours.num_heads
        self.temperature = copy.deepcopy(ours.temperature)
        self.qkv = copy.deepcopy(ours.qkv)
        self.qkv_dwconv = copy.deepcopy(ours.qkv_dwconv)
        self.project_out = copy.deepcopy(ours.project_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        q = rearrange(q, "b (head c) h w -> b head c (h w)", head=self.num_heads)
        k = rearrange(k, "b (head c) h w -> b head c (h w)", head=self.num_heads)
        v = rearrange(v, "b (head c) h w -> b head c (h w)", head=self.num_heads)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1)) * self.temperature
        out = attn.softmax(dim=-1) @ v
        out = rearrange(out, "b head c (h w) -> b (head c) h w", head=self.num_heads, h=h, w=w)
        return self.project_out(out)


class OfficialFeedForward(nn.Module):
    """Official GDFN."""

    def __init__(self, ours: nn.Module) -> None:
        super().__init__()
        self.project_in = copy.deepcopy(ours.project_in)
        self.dwconv = copy.deepcopy(ours.dwconv)
        self.project_out = copy.deepcopy(ours.project_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class OfficialTransformerBlock(nn.Module):
    """Official Restormer ``TransformerBlock``."""

    def __init__(self, ours: nn.Module) -> None:
        super().__init__()
        self.norm1 = OfficialLayerNorm(ours.norm1)
        self.attn = OfficialAttention(ours.attn)
        self.norm2 = OfficialLayerNorm(ours.norm2)
        self.ffn = OfficialFeedForward(ours.ffn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OfficialPromptGenBlock(nn.Module):
    """Official PromptIR ``PromptGenBlock``: weights x ``repeat``-ed prompts, summed, bilinear, conv."""

    def __init__(self, ours: nn.Module) -> None:
        super().__init__()
        self.prompt_param = copy.deepcopy(ours.prompt_param)
        self.linear_layer = copy.deepcopy(ours.linear_layer)
        self.conv3x3 = copy.deepcopy(ours.conv3x3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        weights = F.softmax(self.linear_layer(x.mean(dim=(-2, -1))), dim=1)
        prompt = weights[..., None, None, None] * self.prompt_param.unsqueeze(0).repeat(b, 1, 1, 1, 1, 1).squeeze(1)
        prompt = F.interpolate(torch.sum(prompt, dim=1), (h, w), mode="bilinear")
        return self.conv3x3(prompt)


def _with_pos(t: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
    return t if pos is None else t + pos


class OfficialEncoderLayer(nn.Module):
    """Official IPT encoder layer: attention called with its default ``need_weights=True``."""

    def __init__(self, ours: nn.Module) -> None:
        super().__init__()
        for name in ("self_attn", "linear1", "dropout", "linear2", "norm1", "norm2", "dropout1", "dropout2"):
            setattr(self, name, copy.deepcopy(getattr(ours, name)))

    def forward(self, src: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        src2 = self.norm1(src)
        q = k = _with_pos(src2, pos)
        src = src + self.dropout1(self.self_attn(q, k, src2)[0])
        src2 = self.norm2(src)
        return src + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(src2)))))


class OfficialDecoderLayer(nn.Module):
    """Official IPT decoder layer."""

    def __init__(self, ours: nn.Module) -> None:
        super().__init__()
        for name in ("self_attn", "multihead_attn", "linear1", "dropout", "linear2", "norm1", "norm2", "norm3",
                     "dropout1", "dropout2", "dropout3"):
            setattr(self, name, copy.deepcopy(getattr(ours, name)))

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, query_pos: torch.Tensor | None) -> torch.Tensor:
        tgt2 = self.norm1(tgt)
        q = k = _with_pos(tgt2, query_pos)
        tgt = tgt + self.dropout1(self.self_attn(q, k, value=tgt2)[0])
        tgt2 = self.norm2(tgt)
        tgt = tgt + self.dropout2(self.multihead_attn(query=_with_pos(tgt2, query_pos), key=memory, value=memory)[0])
        tgt2 = self.norm3(tgt)
        return tgt + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(tgt2)))))


class _Layers(nn.Module):
    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)


class OfficialVisionTransformer(nn.Module):
    """Official IPT body (default options: learned positions added once, MLPs on, pre-norm)."""

    def __init__(self, ours: nn.Module) -> None:
        super().__init__()
        if ours.no_mlp or ours.no_pos or ours.pos_every:
            raise ValueError("the reference IPT body covers the official default options only")
        self.patch_dim, self.img_dim = ours.patch_dim, ours.img_dim
        self.embedding_dim, self.flatten_dim = ours.embedding_dim, ours.flatten_dim
        for name in ("linear_encoding", "mlp_head", "query_embed", "position_encoding", "dropout_layer1"):
            setattr(self, name, copy.deepcopy(getattr(ours, name)))
        self.encoder = _Layers([OfficialEncoderLayer(layer) for layer in ours.encoder.layers])
        self.decoder = _Layers([OfficialDecoderLayer(layer) for layer in ours.decoder.layers])

    def forward(self, x: torch.Tensor, query_idx: int) -> torch.Tensor:
        x = F.unfold(x, self.patch_dim, stride=self.patch_dim).transpose(1, 2).transpose(0, 1).contiguous()
        x = self.dropout_layer1(self.linear_encoding(x)) + x
        query_embed = self.query_embed.weight[query_idx].view(-1, 1, self.embedding_dim).repeat(1, x.size(1), 1)
        pos = self.position_encoding().transpose(0, 1)
        x = x + pos
        for layer in self.encoder.layers:
            x = layer(x)
        memory = x
        for layer in self.decoder.layers:
            x = layer(x, memory, query_pos=query_embed)
        x = self.mlp_head(x) + x
        x = x.transpose(0, 1).contiguous().view(x.size(1), -1, self.flatten_dim)
        return F.fold(x.transpose(1, 2).contiguous(), int(self.img_dim), self.patch_dim, stride=self.patch_dim)


class OfficialIPT(nn.Module):
    """Official IPT forward of one patch batch (task 0), wrapped to take and give [0, 1] like ours."""

    def __init__(self, ours: nn.Module) -> None:
        super().__init__()
        self.rgb_range = ours.rgb_range
        for name in ("sub_mean", "add_mean", "head", "tail"):
            setattr(self, name, copy.deepcopy(getattr(ours, name)))
        self.body = OfficialVisionTransformer(ours.body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head[0](self.sub_mean(x * self.rgb_range))
        res = self.body(x, 0)
        res += x
        return self.add_mean(self.tail[0](res)) / self.rgb_range


def _official_blocks(module: nn.Module) -> nn.Module:
    """``module`` with every Restormer ``TransformerBlock`` / PromptIR ``PromptGenBlock`` in it replaced
    by its official-code counterpart (the module itself too, if it is one)."""
    from irframe_promptir.arch import PromptGenBlock
    from irframe_restormer.blocks import TransformerBlock

    swaps = {TransformerBlock: OfficialTransformerBlock, PromptGenBlock: OfficialPromptGenBlock}
    if type(module) in swaps:
        return swaps[type(module)](module)
    for name, child in module.named_children():
        setattr(module, name, _official_blocks(child))
    return module


class OfficialUNet(nn.Module):
    """Official Restormer / PromptIR forward (the U-Net wiring of both official files), NCHW throughout."""

    def __init__(self, ours: nn.Module) -> None:
        super().__init__()
        self.prompted = type(ours).__name__ == "PromptIR"
        self.dual_pixel_task = bool(getattr(ours, "dual_pixel_task", False))
        for name, child in ours.named_children():  # same names, same order: the official state_dict
            setattr(self, name, _official_blocks(copy.deepcopy(child)))

    def forward(self, inp_img: torch.Tensor) -> torch.Tensor:
        inp_enc_level1 = self.patch_embed(inp_img)
        out_enc_level1 = self.encoder_level1(inp_enc_level1)
        out_enc_level2 = self.encoder_level2(self.down1_2(out_enc_level1))
        out_enc_level3 = self.encoder_level3(self.down2_3(out_enc_level2))
        latent = self.latent(self.down3_4(out_enc_level3))
        if self.prompted:
            latent = self.reduce_noise_level3(self.noise_level3(torch.cat([latent, self.prompt3(latent)], 1)))
        inp_dec_level3 = self.reduce_chan_level3(torch.cat([self.up4_3(latent), out_enc_level3], 1))
        out_dec_level3 = self.decoder_level3(inp_dec_level3)
        if self.prompted:
            out_dec_level3 = torch.cat([out_dec_level3, self.prompt2(out_dec_level3)], 1)
            out_dec_level3 = self.reduce_noise_level2(self.noise_level2(out_dec_level3))
        inp_dec_level2 = self.reduce_chan_level2(torch.cat([self.up3_2(out_dec_level3), out_enc_level2], 1))
        out_dec_level2 = self.decoder_level2(inp_dec_level2)
        if self.prompted:
            out_dec_level2 = torch.cat([out_dec_level2, self.prompt1(out_dec_level2)], 1)
            out_dec_level2 = self.reduce_noise_level1(self.noise_level1(out_dec_level2))
        inp_dec_level1 = torch.cat([self.up2_1(out_dec_level2), out_enc_level1], 1)
        out_dec_level1 = self.refinement(self.decoder_level1(inp_dec_level1))
        if self.dual_pixel_task:
            return self.output(out_dec_level1 + self.skip_conv(inp_enc_level1))
        return self.output(out_dec_level1) + inp_img


def official_reference(model: nn.Module) -> nn.Module:
    """The reference module for ``model``, loaded strictly from ``model.state_dict()``."""
    ref: nn.Module = OfficialIPT(model) if type(model).__name__ == "IPT" else OfficialUNet(model)
    ref.load_state_dict(model.state_dict(), strict=True)  # proves: official names, same weights
    return ref.eval()


# -- the cases -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One model configuration and its input."""

    label: str
    cfg: dict
    shape: tuple[int, int, int, int]
    iters: int  # forwards per timed round
    note: str = ""


CASES: dict[str, Case] = {
    "restormer": Case(
        "Restormer small", {"type": "Restormer", "dim": 24, "num_blocks": [2, 2, 2, 2], "num_refinement_blocks": 2},
        (1, 3, 128, 128), 3, "dim 24, blocks [2,2,2,2], refinement 2, heads [1,2,4,8], WithBias",
    ),
    "promptir": Case(
        "PromptIR small",
        {"type": "PromptIR", "dim": 24, "num_blocks": [2, 2, 2, 2], "num_refinement_blocks": 2,
         "prompt_dims": [16, 32, 80], "prompt_sizes": [64, 32, 16]},
        (1, 3, 128, 128), 3, "dim 24, blocks [2,2,2,2], refinement 2, prompt_dims [16,32,80], prompt_len 5",
    ),
    "ipt": Case(
        "IPT small", {"type": "IPT", "n_feats": 64, "num_layers": 2, "num_heads": 12, "scale": [1]},
        (8, 3, 48, 48), 2, "n_feats 64, 12 heads, 2+2 layers, scale [1], a batch of 8 48x48 patches",
    ),
    "restormer-paper": Case(
        "Restormer paper size", {"type": "Restormer"}, (1, 3, 128, 128), 1,
        "official defaults: dim 48, blocks [4,6,6,8], refinement 4, 26.1 M parameters",
    ),
}


@dataclass
class Peak:
    """Dense float32 matmul GFLOP/s of this machine: torch's default ``torch.mm`` and a oneDNN GEMM."""

    mm: float = 0.0
    onednn: float = 0.0

    def update(self, repeats: int = 5) -> Peak:
        """Measure again and keep the best figures (other load only lowers them)."""
        for n in (1024, 2048):
            a, b = torch.randn(n, n), torch.randn(n, n)
            # oneDNN's own GEMM: torch sends float32 mm to the BLAS (MKL here), which on some CPUs
            # (e.g. AMD EPYC) reaches well under the FMA units' peak; convolutions use oneDNN.
            am, bm = a.to_mkldnn(), b.t().contiguous().to_mkldnn()
            self.mm = max(self.mm, _best_rate(torch.mm, (a, b), 2 * n**3, repeats))
            self.onednn = max(self.onednn, _best_rate(torch.ops.aten.mkldnn_linear, (am, bm, None), 2 * n**3, repeats))
        return self


def _best_rate(fn: Callable[..., object], args: tuple, flops: int, repeats: int) -> float:
    """Best GFLOP/s of ``fn(*args)`` over ``repeats`` timed calls after one warm-up call."""
    fn(*args)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def _channels_last(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with its convolution weights stored channels-last (other tensors as they are)."""
    out = copy.deepcopy(model)
    for module in out.modules():
        if isinstance(module, nn.Conv2d):
            module.to(memory_format=torch.channels_last)
    return out


def build_variants(case: Case, args: argparse.Namespace) -> tuple[nn.Module, torch.Tensor, dict[str, Run]]:
    """The model, its input and the named forwards to compare (``reference`` first)."""
    from irframe.registry import ARCHS

    torch.manual_seed(0)
    model = ARCHS.build(case.cfg, path=f"bench.{case.label}").eval()
    x = torch.rand(case.shape, generator=torch.Generator().manual_seed(1))
    ref = official_reference(model)

    def no_grad_call(module: nn.Module, inp: torch.Tensor) -> Run:
        def run() -> torch.Tensor:
            with torch.no_grad():
                return module(inp)
        return run

    variants: dict[str, Run] = {
        "reference": no_grad_call(ref, x),
        "plain": no_grad_call(model, x),
        "restore": lambda: restore(model, x),
    }
    if args.channels_last:
        model_cl = _channels_last(model)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        variants["restore+cl"] = lambda: restore(model_cl, x_cl)
    if args.compile:
        variants["reference+compile"] = no_grad_call(torch.compile(ref), x)
        compiled = torch.compile(model)
        variants["restore+compile"] = lambda: restore(compiled, x)
    return model, x, variants


@dataclass
class Result:
    """Timings (seconds per forward, one per round) and output differences of one case's variants."""

    case: Case
    shape: tuple[int, ...]
    flops: int
    times: dict[str, list[float]]
    diffs: dict[str, float]


def time_round(run: Run, iters: int) -> float:
    """Seconds per call of ``run`` over ``iters`` calls."""
    start = time.perf_counter()
    for _ in range(iters):
        run()
    return (time.perf_counter() - start) / iters


def bench_case(case: Case, args: argparse.Namespace) -> Result:
    """Warm up every variant, then time interleaved rounds of all of them."""
    model, x, variants = build_variants(case, args)
    flops = count_flops(model, x.shape).flops
    outputs = {name: run() for name, run in variants.items()}  # first call: warm-up (and compilation)
    for _ in range(args.warmup - 1):
        for run in variants.values():
            run()
    iters = case.iters if args.iters is None else args.iters
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, run in variants.items():
            times[name].append(time_round(run, iters))
    diffs = {name: (out.float() - outputs["reference"].float()).abs().max().item() for name, out in outputs.items()}
    return Result(case, tuple(x.shape), flops, times, diffs)


def report(result: Result, peak: Peak) -> None:
    case, ref = result.case, result.times["reference"]
    print(f"\n{case.label}: {case.note}; input {'x'.join(map(str, result.shape))}; "
          f"{result.flops / 1e9:.3f} GFLOPs per forward (count_flops)")
    print(f"  {'variant':<17} {'best ms':>9} {'median ms':>10} {'vs reference':>12} {'median ratio':>13} "
          f"{'GFLOP/s':>8} {'of mm':>6} {'of oneDNN':>10} {'max|diff|':>10}")
    for name, ts in result.times.items():
        best = min(ts)
        ratios = [t / r for t, r in zip(ts, ref)]
        rate = result.flops / best / 1e9
        print(f"  {name:<17} {best * 1e3:9.1f} {statistics.median(ts) * 1e3:10.1f} {best / min(ref):11.3f}x "
              f"{statistics.median(ratios):12.3f}x {rate:8.2f} {rate / peak.mm:6.1%} {rate / peak.onednn:10.1%} "
              f"{result.diffs[name]:10.2e}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="restormer,promptir,ipt",
                        help=f"comma list of {', '.join(CASES)} (default restormer,promptir,ipt)")
    parser.add_argument("--paper", action="store_true", help="also the paper-size Restormer at 128x128")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls of every variant first (default 2)")
    parser.add_argument("--iters", type=int, default=None, help="forwards per round (default: per model)")
    parser.add_argument("--size", type=int, default=None,
                        help="image side for Restormer/PromptIR (default 128; a multiple of 8; IPT keeps 48)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--channels-last", action="store_true",
                        help="also restore() with conv weights and input in channels_last")
    parser.add_argument("--compile", action="store_true", help="also torch.compile'd reference and restore")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    if args.paper and "restormer-paper" not in names:
        names.append("restormer-paper")
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    if args.rounds < 1 or args.warmup < 1 or (args.iters is not None and args.iters < 1):
        parser.error("--rounds, --warmup and --iters must be >= 1")

    if args.size is not None and (args.size < 8 or args.size % 8):
        parser.error(f"--size must be a positive multiple of 8, got {args.size}")
    cases = [CASES[name] for name in names]
    if args.size is not None:  # IPT's transformer takes its fixed 48x48 patches only
        cases = [c if c.cfg["type"] == "IPT" else replace(c, shape=(*c.shape[:2], args.size, args.size)) for c in cases]

    peak = Peak().update()
    results = [bench_case(case, args) for case in cases]
    peak.update()  # before and after the models: the best of both is the machine's figure
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; dense fp32 matmul (best of the run): "
          f"torch.mm {peak.mm:.1f} GFLOP/s, oneDNN GEMM {peak.onednn:.1f} GFLOP/s")
    print("ratios: time / reference time (< 1 is faster; the reference is re-written here, see the docstring); "
          "'median ratio' = median of the per-round ratios")
    for result in results:
        report(result, peak)


if __name__ == "__main__":
    main()
