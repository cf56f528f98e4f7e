"""The fast path of ``tools/infer.py --fast``: torch fp32 (default) vs onnxruntime vs bf16 vs compile.

    python benchmarks/bench_fast.py [--sizes 128,256] [--rounds 5] [--threads N] [--no-compile]
                                    [--official-repo PATH] [--psnr] [--psnr-images 8] [--shared ../shared]

Speed: a reduced Restormer and a reduced NAFNet (random weights, fixed seed), one input per size,
each variant through :func:`irframe.nn.inference.restore` (padding, ``inference_mode``), rounds of
all variants interleaved; a variant's best round is its estimate, and the median of its per-round
ratios to ``default`` (torch fp32) is printed beside it, so the ratios come from one run:

- ``default``: torch fp32, what ``tools/infer.py`` runs;
- ``onnxruntime``: the graph exported once (:mod:`irframe.nn.ort`, export time printed, not timed);
- ``bf16``: ``precision="bf16"`` autocast (pays only on CPUs with AVX512-BF16 / AMX);
- ``compile``: :func:`irframe.nn.inference.compile_model` (the first call's compile time printed);
- ``official`` (``--official-repo PATH``): Restormer only, the released model code imported from a
  user's own checkout of https://github.com/swz30/Restormer (``basicsr/models/archs/restormer_arch.py``),
  loaded with the same weights and called under ``torch.no_grad()`` as its test scripts do. Skipped
  with a note without the option.

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
import importlib.util
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from irframe.nn.inference import compile_model, restore
from irframe.registry import ARCHS

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "Restormer (dim 24, blocks 2/2/2/2)": {
        "type": "Restormer", "dim": 24, "num_blocks": [2, 2, 2, 2], "num_refinement_blocks": 2,
    },
    "NAFNet (width 16, 1/1/1/8 enc, 1 mid)": {
        "type": "NAFNet", "width": 16, "enc_blk_nums": [1, 1, 1, 8], "middle_blk_num": 1, "dec_blk_nums": [1, 1, 1, 1],
    },
}
Run = Callable[[], torch.Tensor]


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def _official_restormer(repo: Path, cfg: dict, ours: torch.nn.Module) -> torch.nn.Module:
    """The released ``Restormer`` class from the user's checkout, with our weights (strict)."""
    file = repo / "basicsr" / "models" / "archs" / "restormer_arch.py"
    if not file.is_file():
        raise SystemExit(f"--official-repo {repo}: {file.relative_to(repo)} not found (a Restormer checkout?)")
    spec = importlib.util.spec_from_file_location("official_restormer_arch", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    net = module.Restormer(**kwargs)
    net.load_state_dict(ours.state_dict(), strict=True)
    return net.eval()


def build_variants(
    name: str, cfg: dict, size: int, args: argparse.Namespace, workdir: Path
) -> tuple[dict[str, Run], torch.Tensor]:
    from irframe.nn.ort import onnxruntime_model

    torch.manual_seed(0)
    model = ARCHS.build(cfg, path=name).eval()
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    runs: dict[str, Run] = {"default": lambda: restore(model, x)}
    start = time.perf_counter()
    ort_model = onnxruntime_model(model, checkpoint=None, config=cfg, folder=workdir)
    print(f"  onnxruntime: graph ready in {time.perf_counter() - start:.1f} s (exported once, then from the cache)")
    runs["onnxruntime"] = lambda: restore(ort_model, x)
    runs["bf16"] = lambda: restore(model, x, precision="bf16")
    if not args.no_compile:
        compiled = compile_model(model)
        start = time.perf_counter()
        restore(compiled, x)
        print(f"  compile: first call {time.perf_counter() - start:.1f} s (excluded)")
        runs["compile"] = lambda: restore(compiled, x)
    if args.official_repo and cfg["type"] == "Restormer":
        official = _official_restormer(Path(args.official_repo), cfg, model)

        def run_official() -> torch.Tensor:
            with torch.no_grad():
                return official(x)

        runs["official"] = run_official
    return runs, x


def bench_case(name: str, cfg: dict, size: int, args: argparse.Namespace, workdir: Path) -> None:
    print(f"{name} at {size}x{size}:")
    runs, _x = build_variants(name, cfg, size, args, workdir)
    ref = runs["default"]()
    diffs = {k: (fn() - ref).abs().max().item() for k, fn in runs.items()}  # also the warm-up
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.rounds):
        for k, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    base = times["default"]
    for k in runs:
        ratios = [t / b for t, b in zip(times[k], base, strict=True)]
        print(
            f"  {k:<12} best {min(times[k]) * 1e3:8.1f} ms   median ratio to default {statistics.median(ratios):5.2f}x"
            f"   max|diff| {diffs[k]:.1e}"
        )
    if "official" not in runs and cfg["type"] == "Restormer":
        print("  official: skipped (give --official-repo PATH, a checkout of the Restormer repository)")


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
    for zoo, folder, channels in (
        ("zoo:restormer_gray_denoise_s25", "BSD68", 1),
        ("zoo:restormer_color_denoise_s25", "Kodak24", 3),
    ):
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
    parser.add_argument("--official-repo", default=None, metavar="PATH", help="a checkout of the Restormer repository")
    parser.add_argument("--models", default="restormer,nafnet", help="which cases (restormer, nafnet)")
    parser.add_argument("--psnr", action="store_true", help="also measure bf16's PSNR cost on BSD68/Kodak24")
    parser.add_argument("--psnr-only", action="store_true", help="only the PSNR measurement")
    parser.add_argument("--psnr-images", type=int, default=8)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"), help="folder holding data/ (BSD68, Kodak24)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from irframe.nn.ort import cpu_bf16_flags

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU bf16 flags: "
          f"{', '.join(sorted(cpu_bf16_flags())) or 'none'}; {load_line()}")
    print("command: python benchmarks/bench_fast.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    if not args.psnr_only:
        wanted = {m.strip().lower() for m in args.models.split(",")}
        with tempfile.TemporaryDirectory(prefix="bench_fast_") as tmp:
            for name, cfg in CASES.items():
                if cfg["type"].lower() not in wanted:
                    continue
                if cfg["type"] not in ARCHS:
                    print(f"{name}: skipped (arch {cfg['type']} not registered)")
                    continue
                for size in (int(s) for s in args.sizes.split(",")):
                    bench_case(name, cfg, size, args, Path(tmp))
    if args.psnr or args.psnr_only:
        psnr_cost(Path(args.shared), args.psnr_images)
    print(load_line())


if __name__ == "__main__":
    main()
