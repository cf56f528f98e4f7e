"""Real-ESRGAN's two stages on a CPU, shrunk: PSNR-first, then a GAN fine-tune, scored on held-out photos.

    python tools/realesrgan_demo.py [--train DIR] [--heldout DIR] [--iters N] [--out DIR]

1. held-out GT: the centre ``--crop`` of the first ``--heldout-count`` images of ``--heldout``
   (default ``../shared/data/Kodak24/clean``), degraded once by the pipeline with seed 0;
2. stage 1, ``options/realesrgan_demo_psnr.yml``: a small SRVGGNetCompact x4 with L1 against the
   USM-sharpened GT of Real-ESRGAN's high-order degradations of ``--train`` (default
   ``../shared/data/CBSD68/clean``; without ``../shared``, generated textures);
3. stage 2, ``options/realesrgan_demo_gan.yml``: the same generator from stage 1's EMA weights,
   against a U-Net discriminator (spectral norm), L1 + GAN loss (+ VGG19 perceptual loss when
   torchvision's weights are in the torch hub cache);
4. both generators restore the held-out inputs: PSNR and SSIM (crop 4, RGB, 8-bit), LPIPS when its
   weights exist, the share of spectral energy above half the Nyquist frequency (high-frequency
   energy: a GAN's output is expected to have more of it than the PSNR model's, closer to the GT),
   and the stage-2 discriminator's per-pixel accuracy on real GT vs each stage's output (a
   discriminator that learned something is above 50 %). ``report.md``, ``compare.png`` (crops:
   input, stage 1, stage 2, GT) and ``d_logits.png`` (``out_d_real`` / ``out_d_fake`` over
   training) go to ``--out``; the report says which losses and metrics were used.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from irframe.errors import IrframeError, report_error
from irframe.threads import add_threads_argument, configure_threads

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = ROOT / "options"
SHARED = Path(os.environ.get("IRFRAME_SHARED", ROOT.parent / "shared"))
DESCRIPTION = "Real-ESRGAN's two stages on a CPU: PSNR-first, then GAN fine-tuned; scored on held-out photos."
HF_CUTOFF = 0.25  # cycles per pixel: half the Nyquist frequency


@dataclass
class Scores:
    """One generator's held-out numbers (means over the images)."""

    name: str
    psnr: float
    ssim: float
    hf: float  # share of spectral energy above HF_CUTOFF
    d_says_real: float  # share of output pixels the stage-2 discriminator calls real
    lpips: float | None = None


@dataclass
class DemoResult:
    stages: list[Scores]
    gt_hf: float
    d_accuracy: dict[str, float]  # per stage: (real pixels called real + fake pixels called fake) / 2
    used: list[str] = field(default_factory=list)
    report: Path | None = None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="realesrgan_demo.py", description=DESCRIPTION)
    parser.add_argument("--train", type=Path, help="clean training photos (default: ../shared/data/CBSD68/clean)")
    parser.add_argument("--heldout", type=Path, help="clean held-out photos (default: ../shared/data/Kodak24/clean)")
    parser.add_argument("--heldout-count", type=int, default=8, help="held-out images used (default 8)")
    parser.add_argument("--crop", type=int, default=256, help="centre crop of each held-out image (default 256)")
    parser.add_argument("--iters", type=int, default=None, help="iterations of each stage (default: the option files')")
    parser.add_argument("--out", type=Path, default=Path("results/realesrgan_demo"))
    parser.add_argument("--experiments", type=Path, default=Path("experiments"))
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for both stages")
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    try:
        result = run(args.train, args.heldout, args.out, args.experiments, iters=args.iters,
                     count=args.heldout_count, crop=args.crop, overrides=args.set)
    except IrframeError as exc:
        return report_error(exc)
    for line in summary(result):
        print(line)
    return 0


def run(
    train: Path | None, heldout: Path | None, out: Path, experiments: Path, *, iters: int | None = None,
    count: int = 8, crop: int = 256, overrides: Sequence[str] = (),
) -> DemoResult:
    """Both stages and the comparison (see the module doc); returns the numbers, writes the report."""
    from irframe.options import load_options
    from irframe.train.build import run_training

    data = experiments / "realesrgan_demo_data"
    train = train or _default(SHARED / "data" / "CBSD68" / "clean", data / "train", 12, 96, seed=1)
    heldout = heldout or _default(SHARED / "data" / "Kodak24" / "clean", data / "heldout_source", 4, crop, seed=2)
    held = _heldout_crops(heldout, data / "heldout", count, crop)
    used = [f"training photos: {train}", f"held-out: {len(held)} centre crops ({crop} px) of {heldout}"]
    common = [f"datasets.train.dataroot_gt={train}", f"datasets.heldout.dataroot_gt={data / 'heldout'}",
              f"path.experiments_root={experiments}", "logger.progress_bar=false", *overrides]
    if iters is not None:
        common += [f"train.total_iter={iters}", f"train.scheduler.T_max={iters}", f"val.freq={iters}",
                   f"logger.checkpoint_freq={iters}"]
    stage1 = run_training(load_options(OPTIONS / "realesrgan_demo_psnr.yml", common), resume="auto")
    first = _last_checkpoint(stage1)
    extra = [f"train.pretrain.path={first}"]
    percep = _perceptual_available()
    if percep:
        extra.append("train.losses=[{type: L1Loss, weight: 1.0}, {type: PerceptualLoss, layer_weights: "
                     "{conv1_2: 0.1, conv2_2: 0.1, conv3_4: 1, conv4_4: 1, conv5_4: 1}}]")
    used.append("stage 2 losses: L1 + GAN" + (" + VGG19 perceptual" if percep else
                " (no VGG19 ImageNet weights in the torch hub cache: no perceptual loss)"))
    gan_opts = load_options(OPTIONS / "realesrgan_demo_gan.yml", [*common, *extra])
    stage2 = run_training(gan_opts, resume="auto")
    out.mkdir(parents=True, exist_ok=True)
    stages = [("stage 1 (PSNR)", first), ("stage 2 (GAN)", _last_checkpoint(stage2))]
    result = compare(gan_opts, stages, used, figure=out / "compare.png")
    _logit_curve(stage2.experiment / "train.log", out / "d_logits.png")
    result.report = _write_report(result, out, stage1.experiment, stage2.experiment)
    return result


def compare(opts: Any, stages: Sequence[tuple[str, Path]], used: list[str], figure: Path | None = None) -> DemoResult:
    """Restore the held-out set with each stage's EMA weights; score and judge the outputs (the last
    stage's discriminator judges); ``figure``: where the crops of the first images go."""
    import numpy as np
    import torch

    from irframe.evaluate.models import load_for_eval
    from irframe.nn.inference import restore
    from irframe.nn.weights import load_weights
    from irframe.registry import ARCHS, DATASETS, METRICS

    heldout = DATASETS.build(opts.datasets["heldout"].dataset_cfg(), path="datasets.heldout")
    samples = [heldout[i] for i in range(len(heldout))]
    metrics = {name: METRICS.build({"type": name, "crop_border": 4}) for name in ("PSNR", "SSIM")}
    lpips = _lpips(used)
    d = ARCHS.build(opts.train.step["network_d"]).eval()
    load_weights(d, stages[-1][1] / "net_d.safetensors")
    gt_batch = [s["gt"][None] for s in samples]
    with torch.no_grad():
        real_called_real = float(np.mean([(d(g) > 0).float().mean().item() for g in gt_batch]))
    result = DemoResult([], float(np.mean([high_frequency_share(g) for g in gt_batch])), {}, used)
    outputs: list[list[torch.Tensor]] = []
    for name, folder in stages:
        model = load_for_eval(None, folder).model
        outs = [restore(model, s["lq"][None]).clamp(0, 1) for s in samples]
        outputs.append(outs)
        with torch.no_grad():
            fake_called_real = float(np.mean([(d(o) > 0).float().mean().item() for o in outs]))
        scores = Scores(
            name,
            psnr=float(np.mean([metrics["PSNR"](o, g).item() for o, g in zip(outs, gt_batch, strict=True)])),
            ssim=float(np.mean([metrics["SSIM"](o, g).item() for o, g in zip(outs, gt_batch, strict=True)])),
            hf=float(np.mean([high_frequency_share(o) for o in outs])),
            d_says_real=fake_called_real,
            lpips=(float(np.mean([lpips(o, g).item() for o, g in zip(outs, gt_batch, strict=True)]))
                   if lpips is not None else None),
        )
        result.stages.append(scores)
        result.d_accuracy[name] = (real_called_real + 1.0 - fake_called_real) / 2
    result.used.append(f"the discriminator calls {real_called_real:.1%} of real GT pixels real")
    if figure is not None:
        _mosaic(samples, outputs, figure)
    return result


def high_frequency_share(img: Any) -> float:
    """Share of the luma's spectral energy (mean removed) above :data:`HF_CUTOFF` cycles per pixel."""
    import numpy as np

    x = img.detach().float().cpu().numpy().reshape(-1, *img.shape[-2:])
    luma = x.mean(axis=0) if x.shape[0] != 3 else 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    spectrum = np.abs(np.fft.fft2(luma - luma.mean())) ** 2
    fy = np.fft.fftfreq(luma.shape[0])[:, None]
    fx = np.fft.fftfreq(luma.shape[1])[None, :]
    high = np.sqrt(fy**2 + fx**2) > HF_CUTOFF
    total = spectrum.sum()
    return float(spectrum[high].sum() / total) if total > 0 else 0.0


def summary(result: DemoResult) -> list[str]:
    lines = [f"{s.name}: PSNR {s.psnr:.2f} dB, SSIM {s.ssim:.4f}"
             + (f", LPIPS {s.lpips:.4f}" if s.lpips is not None else "")
             + f", high-frequency energy {s.hf:.2%} (GT {result.gt_hf:.2%}), discriminator accuracy "
             f"{result.d_accuracy[s.name]:.1%}" for s in result.stages]
    if result.report is not None:
        lines.append(f"report: {result.report}")
    return lines


# -- pieces ---------------------------------------------------------------------------------------
def _last_checkpoint(result: Any) -> Path:
    """The run's newest checkpoint (a finished run that was run again trained nothing and saved none)."""
    from irframe.train.checkpoint_folders import latest_checkpoint

    found = result.last_checkpoint or latest_checkpoint(result.experiment / "checkpoints")
    if found is None:
        raise IrframeError(f"{result.experiment}: no checkpoint")
    return Path(found)


def _default(shared: Path, generated: Path, count: int, size: int, seed: int) -> Path:
    """``shared`` when it holds images, else ``count`` generated textures of ``size`` px."""
    if shared.is_dir() and any(shared.glob("*.png")):
        return shared
    if not generated.is_dir():
        from irframe.train.synthetic import write_textured_images

        write_textured_images(generated, count, size, seed=seed)
    return generated


def _heldout_crops(src: Path, dst: Path, count: int, crop: int) -> list[Path]:
    from irframe.data.io import imread, imwrite

    files = sorted(p for p in src.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif"))
    if not files:
        raise IrframeError(f"--heldout: no images in {src}")
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for path in files[:count]:
        img = imread(path)
        h, w = img.shape[:2]
        side = min(crop, h, w) // 8 * 8  # a multiple of the scale (4) and the discriminator's 8
        top, left = (h - side) // 2, (w - side) // 2
        target = dst / f"{path.stem}.png"
        if not target.exists():
            imwrite(target, img[top : top + side, left : left + side])
        out.append(target)
    return out


def _perceptual_available() -> bool:
    try:
        from irframe.nn.vgg import VGGFeatureExtractor

        VGGFeatureExtractor({"conv1_2": 1.0}, vgg_type="vgg19", owner="realesrgan_demo")
    except Exception:
        return False
    return True


def _lpips(used: list[str]) -> Any:
    try:
        from irframe.registry import METRICS

        metric = METRICS.build({"type": "LPIPS"})
    except Exception as exc:
        used.append(f"LPIPS: not measured ({str(exc).splitlines()[0]})")
        return None
    used.append("LPIPS: measured (AlexNet)")
    return metric


def _mosaic(samples: Sequence[Any], outputs: Sequence[Sequence[Any]], path: Path, rows: int = 3) -> None:
    """Crops of the first ``rows`` images: input (nearest x4), each stage, GT, side by side."""
    import numpy as np
    import torch.nn.functional as F

    from irframe.data.io import imwrite, tensor2img

    lines = []
    for i, sample in enumerate(samples[:rows]):
        gt = sample["gt"][None]
        lq = F.interpolate(sample["lq"][None], size=gt.shape[-2:], mode="nearest")
        tiles = [lq, *(stage[i] for stage in outputs), gt]
        side = min(128, gt.shape[-2], gt.shape[-1])
        top, left = (gt.shape[-2] - side) // 2, (gt.shape[-1] - side) // 2
        crops = [tensor2img(t[0, :, top : top + side, left : left + side].clamp(0, 1)) for t in tiles]
        lines.append(np.concatenate([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=1.0) for c in crops], 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    imwrite(path, np.concatenate(lines, 0))


def _logit_curve(log: Path, path: Path, size: tuple[int, int] = (240, 480)) -> None:
    """``out_d_real`` (green) and ``out_d_fake`` (red) of the stage-2 log, drawn as two polylines."""
    import cv2
    import numpy as np

    points = [
        (int(m.group(1)), float(m.group(2)), float(m.group(3)))
        for m in re.finditer(r"iter (\d+)/\d+ .*?out_d_real ([-\d.e]+), out_d_fake ([-\d.e]+)", log.read_text())
    ]
    canvas = np.full((*size, 3), 255, np.uint8)
    if len(points) >= 2:
        its = np.array([p[0] for p in points], float)
        vals = np.array([[p[1], p[2]] for p in points], float)
        lo, hi = float(vals.min()), float(vals.max())
        span = hi - lo or 1.0
        xs = 20 + (its - its.min()) / max(its.max() - its.min(), 1) * (size[1] - 40)
        for column, colour in ((0, (0, 160, 0)), (1, (0, 0, 200))):
            ys = size[0] - 20 - (vals[:, column] - lo) / span * (size[0] - 40)
            cv2.polylines(canvas, [np.stack([xs, ys], 1).astype(np.int32)], False, colour, 2)
        zero = size[0] - 20 - (0 - lo) / span * (size[0] - 40)
        if 0 <= zero < size[0]:
            cv2.line(canvas, (20, int(zero)), (size[1] - 20, int(zero)), (160, 160, 160), 1)
    cv2.imwrite(str(path), canvas)


def _write_report(result: DemoResult, out: Path, stage1: Path, stage2: Path) -> Path:
    rows = [
        f"| {s.name} | {s.psnr:.2f} | {s.ssim:.4f} | {'' if s.lpips is None else f'{s.lpips:.4f}'} | {s.hf:.2%} | "
        f"{s.d_says_real:.1%} | {result.d_accuracy[s.name]:.1%} |"
        for s in result.stages
    ]
    text = "\n".join([
        "# Real-ESRGAN's two stages on a CPU (irframe.recipes.realesrgan_demo)",
        "",
        f"Stage 1: {stage1}; stage 2: {stage2}.",
        "",
        "| generator | PSNR (dB) | SSIM | LPIPS | high-frequency energy | output called real by D | D accuracy |",
        "|---|---|---|---|---|---|---|",
        *rows,
        f"| ground truth | | | | {result.gt_hf:.2%} | | |",
        "",
        "High-frequency energy: share of the luma's spectral energy above half the Nyquist frequency. "
        "D accuracy: the stage-2 discriminator's per-pixel accuracy on the real GT and that stage's output "
        "(50 % is chance).",
        "",
        "Used: " + "; ".join(result.used) + ".",
        "",
        "![input | stage 1 | stage 2 | GT](compare.png)",
        "",
        "![out_d_real (green) and out_d_fake (red) over the GAN stage](d_logits.png)",
        "",
    ])
    report = out / "report.md"
    report.write_text(text, encoding="utf-8")
    return report


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
