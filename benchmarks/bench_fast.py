"""The fast path of ``tools/infer.py --fast`` (torch fp32 vs onnxruntime vs bf16 vs compile), and
irframe vs the released code of Restormer, PromptIR and IPT.

    python benchmarks/bench_fast.py [--sizes 128,256] [--rounds 5] [--threads N] [--no-compile] [--no-onnx]
                                    [--paper] [--models restormer,nafnet,promptir,ipt] [--official-repo PATH]
                                    [--promptir-repo PATH] [--ipt-repo PATH]
                                    [--isolated] [--heap default|keep|tools]
                                    [--faults] [--psnr] [--psnr-images 8] [--shared ../shared]

Speed: reduced models (random weights, fixed seed), one input per size, each variant through
:func:`irframe.nn.inference.restore` (padding, ``inference_mode``) unless said otherwise, rounds of
all variants interleaved; a variant's best round is its estimate, and the median of its per-round
ratios to ``default`` (torch fp32) is printed beside it, so the ratios come from one run.

Cases (``--models``; default ``restormer,nafnet``, plus ``promptir`` / ``ipt`` when ``--promptir-repo``
/ ``--ipt-repo`` is given; naming one without its repository runs it without ``official``):

- ``restormer``: Restormer dim 24, blocks 2/2/2/2, refinement 2 (``--paper``: the paper's size instead);
- ``nafnet``: NAFNet width 16, encoder blocks 1/1/1/8, 1 middle block;
- ``promptir``: PromptIR dim 48, blocks 2/2/2/2, refinement 2, the released prompts (widths 64/128/320,
  sizes 64/32/16, 5 components). Depth is cut, not width: the released class builds and runs at dim 48
  only (it hard-codes the prompt widths and writes its channel sums for dim 48), so
  ``bench_inference.py``'s dim-24 "PromptIR small" has no released counterpart;
- ``ipt``: IPT n_feats 64, 12 heads, 2 encoder + 2 decoder layers, one task (x2), on a 60x84 input
  whatever ``--sizes`` says: the transformer takes 48x48 crops only, and 60x84 is what ``restore``
  covers with 2 x 4 = 8 of them.

Variants:

- ``default``: torch fp32, what ``tools/infer.py`` runs;
- ``onnxruntime``: the graph exported once (:mod:`irframe.nn.ort`, export time printed, not timed);
- ``bf16``: ``precision="bf16"`` autocast (pays only on CPUs with AVX512-BF16 / AMX);
- ``compile``: :func:`irframe.nn.inference.compile_model` (the first call's compile time printed);
- ``chop`` (IPT only): ``model(x)`` under ``inference_mode``, i.e. ``IPT.forward_chop``, which stitches
  its crops as the released ``forward_chop`` does;
- ``official``: the released model code imported from a user's own checkout, loaded with our weights
  (``strict=True``) and called under ``torch.no_grad()`` as its test scripts do. Skipped with a note
  without its option:

  - ``--official-repo PATH``: https://github.com/swz30/Restormer (``basicsr/models/archs/restormer_arch.py``);
  - ``--promptir-repo PATH``: https://github.com/va1shn9v/PromptIR (``net/model.py``), built as its
    train/test scripts build it, ``PromptIR(decoder=True, ...)`` (``decoder=False``, the constructor's
    default, has no working forward);
  - ``--ipt-repo PATH``: https://github.com/huawei-noah/Pretrained-IPT: ``model/ipt.py``'s ``ipt`` built by
    the released wrapper ``model.Model`` (``model/__init__.py``) from an ``argparse.Namespace`` of
    ``option.py``'s defaults with our sizes (``--cpu``, nothing loaded from disk), then our weights
    (strict), called as its ``trainer.test`` calls it: ``Model(lr, idx_scale)`` in eval mode, which runs
    ``set_scale(idx_scale)`` and the released patch-wise ``forward_chop`` (crop 48, step 12, crop sides
    trimmed by 12, ``crop_batch_size`` 64). Its input is ours times 255 (the released code computes in
    ``[0, rgb_range]``; our IPT takes and gives [0, 1] and scales inside ``forward``) and its output is
    divided by 255 for the comparison. The released chop is GPU code: during its call ``Tensor.cuda`` is
    the identity and its module's ``P.data_parallel(model, batch, range(1))`` is ``model(batch)`` (what it
    does for one GPU), so it runs on the CPU like every other variant.

IPT's patch schemes (the line ``patches:`` prints the counts of the run). All three variants cut the
60x84 input into the same 8 crops of 48x48 (rows at 0 and 12, columns at 0, 12, 24 and 36), but

- ``default`` (``restore``) runs them one at a time (:func:`irframe.nn.inference.tiled_forward`, overlap
  36 = the model's ``spec.tile_overlap``) and blends them with linear ramps, weight 0 on the 9 pixels
  at inner crop edges;
- ``chop`` runs them in one batch and stitches as the released code: the centre of each crop (12 pixels
  trimmed off inner sides) averaged with equal weights, the flush bottom/right crops taking over past a
  seam;
- ``official`` runs 21 crops in 6 calls: its grid of 8 in one batch, plus the bottom-right corner (1) and,
  one strip per call, the bottom rows (4), the right columns (2), the top rows (4) and the left columns
  (2), which at this size are crops of the grid again (computed twice).

So ``official`` and ``chop`` compute the same output: their max|diff| is printed after the table
(~1e-6 in [0, 1]). ``default`` blends differently and a random-weight IPT's crops disagree where they
overlap, so the max|diff| of both to ``default`` is large (~0.3) and says nothing about correctness.

Processes and the allocator. By default every variant runs in this one process, with glibc's default
``malloc``, which maps and unmaps large blocks: a forward's big temporaries then cost page faults on every
call, and how many depends on what else the process allocated, so the released code's time moves with
the variants run beside it (``--faults`` counts them). Two options make the comparison say what it means:

- ``--isolated``: each variant runs in a process of its own (spawned; rounds still interleaved, one
  variant at a time), as a user runs either code. With it ``--heap`` defaults to ``tools``: irframe's
  variants keep freed memory for reuse (:mod:`irframe.heap`), as ``tools/infer.py`` and ``tools/test.py``
  set it, while the released code runs with glibc's default, as its test scripts do. IPT's network-only
  pair runs the same way, in two more processes.
- ``--heap keep``: every variant keeps freed memory, the released code's too: both codes run without
  page faults on blocks up to glibc's 32 MiB limit, so the ratio is that of the computations themselves.
  ``--heap default`` leaves glibc's default everywhere.

The max abs difference of each variant's output to ``default`` is printed too. The machine's load
(``os.getloadavg()``) is printed before and after: other processes only add time.

``--psnr``: bf16's cost on real images: ``zoo:restormer_gray_denoise_s25`` on the first N BSD68 images
and ``zoo:restormer_color_denoise_s25`` on the first N Kodak24 images (from ``<shared>/data``), sigma 25
Gaussian noise from the registered ``GaussianNoise`` (seeded, unclipped as Restormer's test noise),
restored in fp32 and in bf16: mean PSNR to the clean image (8-bit quantised outputs, RGB/gray as
stored) of each, their difference, and the PSNR of the bf16 output against the fp32 one. Skipped
with a note when the shared data are absent.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import math
import resource
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from common import (
    REDUCED_NAFNET,
    REDUCED_RESTORMER,
    RELEASED,
    add_heap_argument,
    cpu_line,
    heap_setting,
    keeps_heap,
    load_line,
    released_file,
    released_net,
)

from irframe.nn.inference import compile_model, restore
from irframe.registry import ARCHS

ROOT = Path(__file__).resolve().parents[1]
CASES: dict[str, dict[str, Any]] = {
    "Restormer (dim 24, blocks 2/2/2/2)": REDUCED_RESTORMER,
    "NAFNet (width 16, 1/1/1/8 enc, 1 mid)": REDUCED_NAFNET,
    # The released PromptIR (net/model.py) hard-codes the prompt widths 64/128/320 and the prompt
    # blocks' Linear inputs 96/192/384 (dim*2/4/8 at dim 48), and writes its channel sums for dim 48
    # (reduce_chan_level3 takes dim*2 + 192, noise_level3 dim*4 + 512): it builds and runs at dim 48
    # only. So depth is reduced, not width: dim 48 and our default prompts (prompt_dims 64/128/320,
    # prompt_sizes 64/32/16, prompt_len 5, decoder True), for which our state_dict and the released
    # PromptIR(decoder=True, dim=48, num_blocks=[2, 2, 2, 2], num_refinement_blocks=2)'s match name for
    # name and shape for shape (loaded strict). bench_inference.py's "PromptIR small" (dim 24,
    # prompt_dims 16/32/80) does not load: prompt1.linear_layer is 5x48 there, 5x96 in the released class.
    "PromptIR (dim 48, blocks 2/2/2/2, prompts 64/128/320)": {
        "type": "PromptIR", "dim": 48, "num_blocks": [2, 2, 2, 2], "num_refinement_blocks": 2,
    },
    # bench_inference.py's "IPT small" with one x2 task instead of scale [1].
    "IPT (n_feats 64, 12 heads, 2+2 layers, x2)": {
        "type": "IPT", "n_feats": 64, "num_layers": 2, "num_heads": 12, "scale": [2],
    },
}
# Inputs not taken from --sizes: IPT's transformer takes 48x48 only; restore covers 60x84 with 2 x 4 tiles
# of 48 at its overlap of 36 (rows 0/12, columns 0/12/24/36), i.e. 8 patches.
FIXED_INPUT: dict[str, tuple[int, int]] = {"IPT": (60, 84)}
Run = Callable[[], torch.Tensor]


@dataclass
class Variants:
    """One case's input and its named forwards (``default`` first)."""

    x: torch.Tensor
    runs: dict[str, Run]
    # variant -> a module called once per batch of patches (IPT's head), to count them in the first pass
    probes: dict[str, torch.nn.Module] = field(default_factory=dict)
    # IPT with --ipt-repo: our model and the released ``ipt`` module, for the network-only line
    networks: tuple[Any, Any] | None = None


@contextlib.contextmanager
def _checkout_on_path(repo: Path, package: str) -> Iterator[None]:
    """``repo`` first on ``sys.path`` and no cached module named ``package`` (or below it), for the
    duration; ``sys.path`` and ``sys.modules`` are put back afterwards."""

    def named(key: str) -> bool:
        return key == package or key.startswith(package + ".")

    saved = {key: sys.modules.pop(key) for key in [k for k in sys.modules if named(k)]}
    sys.path.insert(0, str(repo))
    try:
        yield
    finally:
        sys.path.remove(str(repo))
        for key in [k for k in sys.modules if named(k)]:
            del sys.modules[key]
        sys.modules.update(saved)


@contextlib.contextmanager
def _cuda_is_identity() -> Iterator[None]:
    """``Tensor.cuda`` returns the tensor itself, for the duration (the released IPT chop calls it)."""
    cuda = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.cuda = cuda  # type: ignore[method-assign]


def _official_ipt(repo: Path, ours: torch.nn.Module) -> torch.nn.Module:
    """The released ``model.Model`` wrapper around the released ``ipt`` from the user's checkout, our
    weights loaded strict; ``wrapper(x_0_255, idx_scale)`` is the released test-time inference."""
    for rel in ("model/__init__.py", "model/ipt.py", "model/common.py"):
        released_file("IPT", repo, rel)
    ipt: Any = ours
    cfg = ipt.config  # IPT's build config, under the released option names
    # option.py's defaults, our sizes; --cpu, and resume 0 without pre_train loads nothing from disk.
    args = argparse.Namespace(
        model="ipt", cpu=True, n_GPUs=1, precision="single", self_ensemble=False, save_models=False, resume=0,
        crop_batch_size=64, shift_mean=True,
        **{k: cfg[k] for k in ("n_feats", "patch_size", "patch_dim", "num_heads", "num_layers", "num_queries",
                               "scale", "rgb_range", "n_colors", "dropout_rate", "no_norm", "freeze_norm",
                               "post_norm", "no_mlp", "pos_every", "no_pos")},
    )
    ckp = types.SimpleNamespace(get_path=lambda *parts: "", log_file=io.StringIO())  # where it prints the model
    # model/ipt.py does "from model import common", and Model imports "model.ipt" by name.
    with _checkout_on_path(repo, "model"):
        package: Any = importlib.import_module("model")
        if Path(str(package.__file__)).resolve() != (repo / "model" / "__init__.py").resolve():
            raise SystemExit(f"--ipt-repo {repo}: imported 'model' from {package.__file__}, not from the checkout")
        with contextlib.redirect_stdout(io.StringIO()):  # "Making model..."
            wrapper = package.Model(args, ckp)
    # One GPU's P.data_parallel(model, batch, range(1)) is model(batch); torch's raises without CUDA.
    package.P = types.SimpleNamespace(data_parallel=lambda module, inputs, device_ids=None: module(inputs))
    wrapper.model.load_state_dict(ours.state_dict(), strict=True)
    return wrapper.eval()


def variant_names(cfg: dict, args: argparse.Namespace) -> list[str]:
    """The variants a case runs, in the order of its rounds (``default`` first)."""
    arch = cfg["type"]
    names = ["default"] + ["onnxruntime"] * (not args.no_onnx) + ["bf16"] + ["compile"] * (not args.no_compile)
    names += ["chop"] * (arch == "IPT")
    return names + ["official"] * bool(_released_repo(arch, args))


def _released_repo(arch: str, args: argparse.Namespace) -> str | None:
    """The user's checkout of ``arch``'s released code (its ``--*-repo`` option), if given."""
    return getattr(args, RELEASED[arch].option.lstrip("-").replace("-", "_"), None) if arch in RELEASED else None


def build_variants(
    name: str, cfg: dict, shape: tuple[int, int], args: argparse.Namespace, workdir: Path, only: str | None = None
) -> Variants:
    """The case's variants (``only``: ``default`` and that one, for a worker of ``--isolated``)."""
    from irframe.nn.ort import onnxruntime_model

    def wanted(variant: str) -> bool:
        return only is None or only == variant

    torch.manual_seed(0)
    model = ARCHS.build(cfg, path=name).eval()
    x = torch.rand(1, 3, *shape, generator=torch.Generator().manual_seed(1))
    runs: dict[str, Run] = {"default": lambda: restore(model, x)}
    if not args.no_onnx and wanted("onnxruntime"):
        start = time.perf_counter()
        ort_model = onnxruntime_model(model, checkpoint=None, config=cfg, folder=workdir)
        print(f"  onnxruntime: graph ready in {time.perf_counter() - start:.1f} s (exported once, then from the cache)")
        runs["onnxruntime"] = lambda: restore(ort_model, x)
    if wanted("bf16"):
        runs["bf16"] = lambda: restore(model, x, precision="bf16")
    if not args.no_compile and wanted("compile"):
        compiled = compile_model(model)
        start = time.perf_counter()
        restore(compiled, x)
        print(f"  compile: first call {time.perf_counter() - start:.1f} s (excluded)")
        runs["compile"] = lambda: restore(compiled, x)
    variants = Variants(x, runs)
    arch = cfg["type"]
    if arch == "IPT" and wanted("chop"):

        def run_chop() -> torch.Tensor:
            with torch.inference_mode():
                return model(x)

        runs["chop"] = run_chop
        variants.probes.update(default=model.get_submodule("head.0"), chop=model.get_submodule("head.0"))
    repo = _released_repo(arch, args) if wanted("official") else None
    if repo and arch in ("Restormer", "PromptIR"):
        official = released_net(Path(repo), cfg, model).eval()

        def run_official() -> torch.Tensor:
            with torch.no_grad():
                return official(x)

        runs["official"] = run_official
    elif repo and arch == "IPT":
        released = _official_ipt(Path(repo), model)
        variants.networks = (model, released.model)
        rgb_range = float(model.rgb_range)
        x_released = x * rgb_range  # the released data loader's range

        def run_released_ipt() -> torch.Tensor:
            with torch.no_grad(), _cuda_is_identity():
                return released(x_released, 0) / rgb_range  # Model(lr, idx_scale), as trainer.test

        runs["official"] = run_released_ipt
        # the head, not the ipt module: the released chop also calls model.forward directly (no hooks)
        variants.probes["official"] = released.get_submodule("model.head.0")
    return variants


def _first_pass(variants: Variants) -> tuple[dict[str, torch.Tensor], dict[str, list[int]]]:
    """Each variant's output (also the warm-up) and, for the probed ones, its batches of patches."""
    outs: dict[str, torch.Tensor] = {}
    batches: dict[str, list[int]] = {}
    for k, fn in variants.runs.items():
        probe = variants.probes.get(k)
        if probe is None:
            outs[k] = fn()
            continue
        sizes: list[int] = []
        handle = probe.register_forward_pre_hook(lambda _m, inputs, sizes=sizes: sizes.append(len(inputs[0])))
        try:
            outs[k] = fn()
        finally:
            handle.remove()
        batches[k] = sizes
    return outs, batches


def _faults(fn: Callable[[], object]) -> str:
    """Minor page faults and system time of one ``fn()`` (after the timed rounds: warm), as text.

    A forward whose large temporaries glibc maps and unmaps on every call pays page faults in the
    kernel; their cost follows the machine's page handling, which moves between runs on a VM.
    """
    before = resource.getrusage(resource.RUSAGE_SELF)
    fn()
    after = resource.getrusage(resource.RUSAGE_SELF)
    faults = after.ru_minflt - before.ru_minflt
    return f"{faults} minor faults, {(after.ru_stime - before.ru_stime) * 1e3:.0f} ms system time"


def bench_case(name: str, cfg: dict, shape: tuple[int, int], args: argparse.Namespace, workdir: Path) -> None:
    fixed = " (a fixed input: --sizes does not apply)" if cfg["type"] in FIXED_INPUT else ""
    print(f"{name} at {shape[0]}x{shape[1]}{fixed}:")
    variants = build_variants(name, cfg, shape, args, workdir)
    runs = variants.runs
    ref = runs["default"]()
    outs, batches = _first_pass(variants)
    diffs = {k: (out - ref).abs().max().item() for k, out in outs.items()}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.rounds):
        for k, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    if batches:
        print("  patches: " + "; ".join(
            f"{k} {sum(b)} of 48x48 in {len(b)} call{'s' if len(b) != 1 else ''}" for k, b in batches.items()
        ) + " (which crops, how stitched: module docstring)")
    base = times["default"]
    for k in runs:
        ratios = [t / b for t, b in zip(times[k], base, strict=True)]
        print(
            f"  {k:<12} best {min(times[k]) * 1e3:8.1f} ms   median ratio to default {statistics.median(ratios):5.2f}x"
            f"   max|diff| {diffs[k]:.1e}"
        )
    if args.faults:
        print("  one call each, getrusage: " + "; ".join(f"{k} {_faults(fn)}" for k, fn in runs.items()))
    if "official" in outs and "chop" in outs:
        same = (outs["official"] - outs["chop"]).abs().max().item()
        print(f"  official vs chop (same crops, same stitching): max|diff| {same:.1e} in [0, 1], "
              f"{same * float(cfg.get('rgb_range', 255)):.1e} on the released [0, 255] scale")
    arch = cfg["type"]
    if variants.networks is not None:
        ipt_arch_line(*variants.networks, args.rounds)
    if "official" not in runs and arch in RELEASED:
        print(f"  official: skipped (give {RELEASED[arch].option} PATH, a checkout of {RELEASED[arch].url})")


# -- --isolated: each variant in a process of its own ----------------------------------------------
# IPT's network-only pair under --isolated: worker variant -> key of ipt_network_runs
NETWORK = {"network:ours": "ours", "network:released": "released"}


def _worker(conn: Any, name: str, cfg: dict, shape: tuple[int, int], args: argparse.Namespace, workdir: Path,
            variant: str) -> None:
    """One variant, in this process: its output first, then a time per ``"run"``, faults per ``"faults"``."""
    from irframe.heap import keep_freed_memory

    if args.threads:
        torch.set_num_threads(args.threads)
    kept = keep_freed_memory() if keeps_heap(variant, args.heap) else "glibc's default"
    if variant in NETWORK:
        networks = build_variants(name, cfg, shape, args, workdir, only="official").networks
        assert networks is not None  # IPT with --ipt-repo
        fn = ipt_network_runs(*networks)[NETWORK[variant]]
    else:
        fn = build_variants(name, cfg, shape, args, workdir, only=variant).runs[variant]
    conn.send((fn(), kept))
    while (cmd := conn.recv()) != "stop":
        if cmd == "run":
            start = time.perf_counter()
            fn()
            conn.send(time.perf_counter() - start)
        else:
            conn.send(_faults(fn))


def _isolated_rounds(
    name: str, cfg: dict, shape: tuple[int, int], args: argparse.Namespace, workdir: Path, variants: list[str]
) -> tuple[dict[str, torch.Tensor], dict[str, str], dict[str, list[float]], dict[str, str]]:
    """Each of ``variants`` in a spawned process of its own, rounds interleaved across them: their outputs,
    heap settings, times per round and (``--faults``) one call's page faults."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    conns: dict[str, Any] = {}
    procs = []
    outs: dict[str, torch.Tensor] = {}
    heaps: dict[str, str] = {}
    times: dict[str, list[float]] = {k: [] for k in variants}
    faults: dict[str, str] = {}
    try:
        for k in variants:  # one at a time: a worker builds while the others wait
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, name, cfg, shape, args, workdir, k), daemon=True)
            proc.start()
            procs.append(proc)
            conns[k] = parent
            outs[k], heaps[k] = parent.recv()
        for _ in range(args.rounds):
            for k, conn in conns.items():
                conn.send("run")
                times[k].append(conn.recv())
        if args.faults:
            for k, conn in conns.items():
                conn.send("faults")
                faults[k] = conn.recv()
    finally:
        for conn in conns.values():
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send("stop")
        for proc in procs:
            proc.join(timeout=30)
    return outs, heaps, times, faults


def bench_case_isolated(name: str, cfg: dict, shape: tuple[int, int], args: argparse.Namespace, workdir: Path) -> None:
    """:func:`bench_case` with each variant in a process of its own, rounds interleaved across them (and,
    for IPT with ``--ipt-repo``, the network-only pair the same way)."""
    print(f"{name} at {shape[0]}x{shape[1]} (each variant in its own process):")
    names = variant_names(cfg, args)
    outs, heaps, times, faults = _isolated_rounds(name, cfg, shape, args, workdir, names)
    ref = outs["default"]
    for k in names:
        ratios = [t / b for t, b in zip(times[k], times["default"], strict=True)]
        print(
            f"  {k:<12} best {min(times[k]) * 1e3:8.1f} ms   median ratio to default {statistics.median(ratios):5.2f}x"
            f"   max|diff| {(outs[k] - ref).abs().max().item():.1e}   heap: {heaps[k]}"
        )
    if faults:
        print("  one call each, getrusage: " + "; ".join(f"{k} {f}" for k, f in faults.items()))
    arch = cfg["type"]
    if arch == "IPT" and "official" in names:
        outs, heaps, times, faults = _isolated_rounds(name, cfg, shape, args, workdir, list(NETWORK))
        keyed = {NETWORK[k]: v for k, v in outs.items()}
        line = _network_line(keyed, {NETWORK[k]: v for k, v in times.items()})
        print(line + f"; heap: ours {heaps['network:ours']}, released {heaps['network:released']}")
        if faults:
            print("  network only, one call each, getrusage: " + "; ".join(f"{k} {f}" for k, f in faults.items()))
    if "official" not in names and arch in RELEASED:
        print(f"  official: skipped (give {RELEASED[arch].option} PATH, a checkout of {RELEASED[arch].url})")


def ipt_network_runs(ours: Any, released: Any) -> dict[str, Run]:
    """IPT's network alone, no patch scheme: our ``forward_patch`` (``ours``) and the released ``ipt``
    module (``released``, same weights) on the same batch of 8 crops of 48x48 (in [0, 255], as both take it)."""
    released.set_scale(0)
    crops = torch.rand(8, 3, 48, 48, generator=torch.Generator().manual_seed(1)) * float(ours.rgb_range)

    def run_ours() -> torch.Tensor:
        with torch.inference_mode():
            return ours.forward_patch(crops, 0)

    def run_released() -> torch.Tensor:
        with torch.no_grad():
            return released(crops)

    return {"ours": run_ours, "released": run_released}


def _network_line(outs: dict[str, torch.Tensor], times: dict[str, list[float]]) -> str:
    diff = (outs["ours"] - outs["released"]).abs().max().item()
    ratio = statistics.median(a / b for a, b in zip(times["ours"], times["released"], strict=True))
    return (f"  network only, the same 8 crops in one batch: ours best {min(times['ours']) * 1e3:.1f} ms, released "
            f"{min(times['released']) * 1e3:.1f} ms, median ratio ours/released {ratio:.2f}x, "
            f"max|diff| {diff:.1e} on the [0, 255] scale")


def ipt_arch_line(ours: Any, released: Any, rounds: int) -> None:
    """:func:`ipt_network_runs` in interleaved rounds in this process, printed as one line."""
    runs = ipt_network_runs(ours, released)
    outs = {k: fn() for k, fn in runs.items()}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for k, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    print(_network_line(outs, times))


# -- bf16's PSNR cost on real images ------------------------------------------------------------
def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _q8(t: torch.Tensor) -> np.ndarray:
    return np.rint(t.clamp(0, 1).numpy() * 255.0)


def psnr_cost(shared: Path, images: int) -> None:
    from irframe.data.io import img2tensor, imread
    from irframe.nn.autoload import load_model
    from irframe.nn.weights import resolve_weights_file
    from irframe.registry import DEGRADATIONS

    data = shared / "data"
    if not data.is_dir():
        print(f"psnr: skipped ({data} not found; give --shared PATH)")
        return
    noise = DEGRADATIONS.build({"type": "GaussianNoise", "sigma": 25, "clip": False}, path="bench_fast.noise")
    sets: tuple[tuple[str, str, Literal[1, 3]], ...] = (
        ("zoo:restormer_gray_denoise_s25", "BSD68", 1),
        ("zoo:restormer_color_denoise_s25", "Kodak24", 3),
    )
    for zoo, folder, channels in sets:
        files = sorted((data / folder / "clean").glob("*.png"))[:images]
        if not files:
            print(f"psnr: {folder}: no images under {data / folder / 'clean'}; skipped")
            continue
        model = load_model(resolve_weights_file(zoo)).eval()
        rows = []
        start = time.perf_counter()
        for i, file in enumerate(files):
            clean = imread(file, channels=channels)
            noisy = noise(clean, np.random.default_rng(i))
            x = img2tensor(noisy).unsqueeze(0)
            y32 = restore(model, x)[0]
            y16 = restore(model, x, precision="bf16")[0]
            gt = np.rint(img2tensor(clean).numpy() * 255.0)
            rows.append((_psnr(_q8(y32), gt), _psnr(_q8(y16), gt), _psnr(_q8(y16), _q8(y32)),
                         (y16 - y32).abs().max().item()))
        p32, p16, between, worst = (np.array([r[k] for r in rows]) for k in range(4))
        print(
            f"psnr {zoo} on {len(files)} {folder} images (sigma 25, seeds 0..{len(files) - 1}): "
            f"fp32 {p32.mean():.3f} dB, bf16 {p16.mean():.3f} dB, change {np.mean(p16 - p32):+.3f} dB "
            f"(worst image {np.min(p16 - p32):+.3f}); "
            f"bf16 vs fp32 output {between.mean():.1f} dB, max|diff| {worst.max():.1e}  "
            f"[{time.perf_counter() - start:.0f} s]"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="128,256", help="square input sides (default 128,256)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant (slow first call)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime variant (export: ~1 min a case)")
    parser.add_argument("--paper", action="store_true", help="the Restormer case at the paper's size (26 M parameters)")
    parser.add_argument("--official-repo", default=None, metavar="PATH", help="a checkout of the Restormer repository")
    parser.add_argument("--promptir-repo", default=None, metavar="PATH", help="a checkout of the PromptIR repository")
    parser.add_argument("--ipt-repo", default=None, metavar="PATH", help="a checkout of the Pretrained-IPT repository")
    parser.add_argument(
        "--models", default=None,
        help="which cases (restormer, nafnet, promptir, ipt; default restormer,nafnet plus promptir/ipt when "
             "--promptir-repo/--ipt-repo is given)",
    )
    parser.add_argument(
        "--isolated", action="store_true",
        help="each variant in a process of its own (spawned), rounds interleaved across them (IPT's "
             "network-only pair too)",
    )
    add_heap_argument(parser, "tools/infer.py")
    parser.add_argument("--faults", action="store_true",
                        help="also print each variant's page faults and system time of one call (getrusage)")
    parser.add_argument("--psnr", action="store_true", help="also measure bf16's PSNR cost on BSD68/Kodak24")
    parser.add_argument("--psnr-only", action="store_true", help="only the PSNR measurement")
    parser.add_argument("--psnr-images", type=int, default=8)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"), help="folder holding data/ (BSD68, Kodak24)")
    args = parser.parse_args(argv)
    heap = heap_setting(parser, args, "tools/infer.py")
    if args.threads:
        torch.set_num_threads(args.threads)
    from irframe.nn.ort import cpu_bf16_flags

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_line()}, bf16 flags: "
          f"{', '.join(sorted(cpu_bf16_flags())) or 'none'}; malloc: {heap}; {load_line()}")
    print("command: python benchmarks/bench_fast.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    if not args.psnr_only:
        if args.models is None:
            args.models = ",".join(["restormer", "nafnet"] + ["promptir"] * bool(args.promptir_repo)
                                   + ["ipt"] * bool(args.ipt_repo))
        wanted = {m.strip().lower() for m in args.models.split(",") if m.strip()}
        unknown = wanted - {cfg["type"].lower() for cfg in CASES.values()}
        if unknown:
            parser.error(f"--models: unknown {', '.join(sorted(unknown))} (restormer, nafnet, promptir, ipt)")
        cases = dict(CASES)
        if args.paper:
            del cases["Restormer (dim 24, blocks 2/2/2/2)"]
            cases = {"Restormer (paper size: dim 48, blocks 4/6/6/8)": {"type": "Restormer"}, **cases}
        with tempfile.TemporaryDirectory(prefix="bench_fast_") as tmp:
            for name, cfg in cases.items():
                if cfg["type"].lower() not in wanted:
                    continue
                if cfg["type"] not in ARCHS:
                    print(f"{name}: skipped (arch {cfg['type']} not registered)")
                    continue
                fixed = FIXED_INPUT.get(cfg["type"])
                shapes = [fixed] if fixed else [(int(s), int(s)) for s in args.sizes.split(",")]
                for shape in shapes:
                    (bench_case_isolated if args.isolated else bench_case)(name, cfg, shape, args, Path(tmp))
    if args.psnr or args.psnr_only:
        psnr_cost(Path(args.shared), args.psnr_images)
    print(load_line())


if __name__ == "__main__":
    main()
