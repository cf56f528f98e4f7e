"""Real-ESRGAN's high-order degradation: kernel, noise, JPEG and resize statistics, the whole
pipeline's determinism and sizes, the dataset, and the one-line errors for bad options."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from irframe.data.degradations import jpeg as jpeg_module
from irframe.data.degradations.realesrgan import (
    REALESRGAN_DATASET_KEYS,
    REALESRGAN_MODEL_KEYS,
    ResizeSampler,
    filter2d,
    gaussian_noise,
    poisson_noise,
    realesrgan_degradation_options,
    usm_sharp,
)
from irframe.data.degradations.realesrgan_kernels import (
    KERNEL_TYPES,
    BlurKernelSampler,
    KernelDraw,
    bessel_j1,
    bivariate_gaussian,
    bivariate_generalized_gaussian,
    circular_lowpass_kernel,
    mesh_grid,
    sigma_matrix,
)
from irframe.errors import DataError, OptionsError
from irframe.registry import DATASETS, DEGRADATIONS

PIECES = ("RandomKernelBlur", "RandomResize", "GaussianPoissonNoise", "SincFilter", "USMSharp", "RealESRGANDegradation")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def photo(h: int = 64, w: int = 64, c: int = 3, seed: int = 1) -> np.ndarray:
    """A smooth textured float32 image in [0.1, 0.9]."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.3 * np.sin(xx / 3.0)[..., None] * np.cos(yy / 5.0)[..., None]
    noise = rng(seed).uniform(-0.1, 0.1, (h, w, c))
    return np.clip(base + noise, 0.1, 0.9).astype(np.float32)


def sampler(**kw) -> BlurKernelSampler:
    args = dict(
        kernel_list=KERNEL_TYPES,
        kernel_prob=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
        kernel_range=(7, 21),
        blur_sigma=(0.2, 3.0),
        betag_range=(0.5, 4.0),
        betap_range=(1.0, 2.0),
        sinc_prob=0.1,
        blur_kernel_size=21,
    )
    args.update(kw)
    return BlurKernelSampler("test", **args)


def second_moments(kernel: np.ndarray) -> np.ndarray:
    """The 2x2 covariance of a kernel read as a distribution over pixel offsets (x, y)."""
    grid = mesh_grid(kernel.shape[0])
    return np.einsum("ij,ija,ijb->ab", kernel, grid, grid)


def test_registered() -> None:
    for name in PIECES:
        assert DEGRADATIONS.entry(name).provider == "irframe"
    assert DATASETS.entry("RealESRGANDataset").provider == "irframe"


# -- kernels -------------------------------------------------------------------------------------
def test_every_kernel_sums_to_one_with_odd_sizes_in_range() -> None:
    s = sampler(sinc_prob=0.3)
    kinds, sizes = set(), []
    for seed in range(400):
        draw = s.draw(rng(seed))
        kernel = draw.kernel()
        kinds.add(draw.kind)
        sizes.append(kernel.shape[0])
        assert kernel.shape == (draw.size, draw.size)
        assert abs(kernel.sum() - 1.0) < 1e-12
        np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-15)  # point-symmetric: filter = correlation
        if draw.kind != "sinc":
            assert kernel.min() >= 0.0
        padded = s.sample(rng(seed), padded=True)
        assert padded.shape == (21, 21) and abs(padded.sum() - 1.0) < 1e-12
    assert kinds == {*KERNEL_TYPES, "sinc"}
    counts = np.bincount(sizes, minlength=22)
    assert set(np.flatnonzero(counts)) == set(range(7, 22, 2))  # every odd size 7..21 and nothing else
    assert counts[7:22:2].min() > 400 / 8 * 0.5  # roughly uniform


def test_gaussian_second_moments_are_the_covariance() -> None:
    kernel = bivariate_gaussian(21, 2.0, 1.0, 0.5)
    np.testing.assert_allclose(second_moments(kernel), sigma_matrix(2.0, 1.0, 0.5), rtol=1e-3, atol=1e-4)
    # beta 1: the generalized Gaussian is the Gaussian
    np.testing.assert_allclose(bivariate_generalized_gaussian(21, 2.0, 1.0, 0.5, 1.0), kernel, atol=1e-15)


def test_iso_sigma_range_honoured() -> None:
    s = sampler(kernel_list=["iso"], kernel_prob=[1.0], kernel_range=(21, 21), blur_sigma=(1.0, 2.5), sinc_prob=0)
    measured = []
    for seed in range(300):
        draw = s.draw(rng(seed))
        cov = second_moments(draw.kernel())
        sigma = math.sqrt(cov[0, 0])
        assert cov[0, 0] == pytest.approx(cov[1, 1], rel=1e-9) and abs(cov[0, 1]) < 1e-9  # isotropic
        assert sigma == pytest.approx(draw.sigma_x, rel=0.01)  # truncation at 21 px costs < 1 %
        measured.append(sigma)
    assert 0.99 * 1.0 <= min(measured) < 1.1 and 2.4 < max(measured) <= 2.5
    assert np.mean(measured) == pytest.approx(1.75, abs=0.08)  # uniform in [1, 2.5]


def test_aniso_sigma_range_and_rotation_honoured() -> None:
    s = sampler(kernel_list=["aniso"], kernel_prob=[1.0], kernel_range=(21, 21), blur_sigma=(0.8, 2.5), sinc_prob=0)
    thetas = []
    for seed in range(200):
        draw = s.draw(rng(seed))
        eig = np.sqrt(np.linalg.eigvalsh(second_moments(draw.kernel())))
        np.testing.assert_allclose(eig, sorted([draw.sigma_x, draw.sigma_y]), rtol=0.01)
        assert eig[0] >= 0.8 * 0.99 and eig[1] <= 2.5
        thetas.append(draw.theta)
    assert -math.pi <= min(thetas) < -2.5 and 2.5 < max(thetas) <= math.pi


def test_beta_draws_honour_their_ranges() -> None:
    s = sampler(
        kernel_list=["generalized_iso", "plateau_aniso"],
        kernel_prob=[0.5, 0.5],
        sinc_prob=0,
        betag_range=(0.5, 4.0),
        betap_range=(1.0, 2.0),
    )
    betas: dict[str, list[float]] = {"generalized_iso": [], "plateau_aniso": []}
    for seed in range(300):
        draw = s.draw(rng(seed))
        betas[draw.kind].append(draw.beta)
    g, p = np.array(betas["generalized_iso"]), np.array(betas["plateau_aniso"])
    assert g.min() >= 0.5 and g.max() <= 4.0 and 0.3 < (g < 1).mean() < 0.7  # half below 1, half above
    assert p.min() >= 1.0 and p.max() <= 2.0


def test_sinc_kernel_against_the_bessel_formula() -> None:
    special = pytest.importorskip("scipy.special")
    x = np.linspace(0.0, 45.0, 2000)
    np.testing.assert_allclose(bessel_j1(x), special.j1(x), atol=1e-13)
    for cutoff, size in ((math.pi / 3, 7), (2.0, 13), (math.pi, 21)):
        grid = np.indices((size, size)) - (size - 1) / 2
        r = np.hypot(*grid)
        with np.errstate(divide="ignore", invalid="ignore"):
            ref = cutoff * special.j1(cutoff * r) / (2 * np.pi * r)
        ref[size // 2, size // 2] = cutoff**2 / (4 * np.pi)
        np.testing.assert_allclose(circular_lowpass_kernel(cutoff, size), ref / ref.sum(), atol=1e-14)
    padded = circular_lowpass_kernel(1.0, 7, pad_to=21)
    assert padded.shape == (21, 21) and padded[:7].sum() == 0 and abs(padded.sum() - 1) < 1e-12


def test_sinc_cutoff_ranges() -> None:
    s = sampler(sinc_prob=1.0)
    for seed in range(300):
        draw = s.draw(rng(seed))
        assert draw.kind == "sinc"
        low = math.pi / 3 if draw.size < 13 else math.pi / 5
        assert low <= draw.cutoff <= math.pi


# -- filtering, resizing, noise, USM -----------------------------------------------------------------
def torch_filter2d(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Real-ESRGAN's filter2D, written out: reflect padding and a per-channel correlation."""
    k = kernel.shape[0]
    t = torch.from_numpy(img).permute(2, 0, 1)[None].double()
    t = F.pad(t, (k // 2,) * 4, mode="reflect")
    weight = torch.from_numpy(kernel)[None, None].repeat(img.shape[2], 1, 1, 1)
    return F.conv2d(t, weight, groups=img.shape[2])[0].permute(1, 2, 0).numpy()


def test_filter2d_is_realesrgans() -> None:
    img = photo(40, 48)
    for draw in (KernelDraw("aniso", 15, 2.5, 0.7, 0.4), KernelDraw("sinc", 21, cutoff=1.2)):
        kernel = draw.kernel()
        np.testing.assert_allclose(filter2d(img, kernel), torch_filter2d(img, kernel), atol=2e-6)


def test_usm_sharp_is_realesrgans() -> None:
    img = photo(64, 64)
    img[20:40, 20:40] = 0.95  # an edge to sharpen
    # USMSharp(radius=50, sigma=0) of BasicSR: a 51x51 kernel from cv2.getGaussianKernel, filter2D
    g = cv2.getGaussianKernel(51, 0)
    kernel = g @ g.T
    blur = torch_filter2d(img, kernel)
    residual = img - blur
    soft = torch_filter2d((np.abs(residual) * 255 > 10).astype(np.float32), kernel)
    expected = soft * np.clip(img + 0.5 * residual, 0, 1) + (1 - soft) * img
    out = DEGRADATIONS.build({"type": "USMSharp"})(img, rng())
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert out.min() >= 0 and out.max() <= 1
    step = np.full((64, 64, 1), 0.5, np.float32)
    step[:, 32:] = 0.8
    sharp = usm_sharp(step)
    assert sharp[:, 30].max() < 0.5 and sharp[:, 33].min() > 0.8  # overshoot on both sides: more contrast
    flat = np.full((32, 32, 1), 0.4, np.float32)
    np.testing.assert_allclose(usm_sharp(flat), flat, atol=1e-6)


def test_gaussian_noise_variance_and_gray() -> None:
    img = np.full((256, 256, 3), 0.5, np.float32)
    noise = gaussian_noise(img, 20.0, False, rng(), clip=False) - img
    assert noise.std() == pytest.approx(20 / 255, rel=0.01) and abs(noise.mean()) < 1e-3
    assert abs(np.corrcoef(noise[..., 0].ravel(), noise[..., 1].ravel())[0, 1]) < 0.02  # colour: independent
    gray = gaussian_noise(img, 20.0, True, rng(), clip=False) - img
    assert gray.std() == pytest.approx(20 / 255, rel=0.01)
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])  # gray: shared by the channels
    # the registered piece draws sigma from noise_range
    deg = DEGRADATIONS.build(
        {"type": "GaussianPoissonNoise", "gaussian_noise_prob": 1, "noise_range": [10, 10], "gray_noise_prob": 0}
    )
    assert (deg(img, rng(3)) - img).std() == pytest.approx(10 / 255, rel=0.01)


def levels_image(h: int = 256, w: int = 512, c: int = 3) -> np.ndarray:
    """Every 8-bit level, many times: 256 distinct values, so Poisson's photon count is 256."""
    return (np.arange(h * w * c).reshape(h, w, c) % 256 / 255.0).astype(np.float32)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_poisson_noise_scale(scale: float) -> None:
    img = levels_image()
    noise = poisson_noise(img, scale, False, rng(), clip=False) - img
    # Var = scale^2 * x / vals with vals = 256 (the count of distinct levels, a power of two)
    expected = scale**2 * img.astype(np.float64).mean() / 256
    assert (noise.astype(np.float64) ** 2).mean() == pytest.approx(expected, rel=0.03)
    assert abs(noise.mean()) < 5 * math.sqrt(expected / noise.size)  # unbiased
    few = np.repeat(np.array([0.2, 0.4, 0.6], np.float32), 20000).reshape(200, 100, 3)
    noisy = poisson_noise(few, scale, False, rng(), clip=False) - few  # 3 levels: vals = 4, much noisier
    assert (noisy.astype(np.float64) ** 2).mean() == pytest.approx(scale**2 * 0.4 / 4, rel=0.03)


def test_poisson_gray_noise_is_shared() -> None:
    img = levels_image(64, 64)
    noise = poisson_noise(img, 1.0, True, rng(), clip=False) - img
    np.testing.assert_allclose(noise[..., 0], noise[..., 1], atol=1e-6)  # up to float32 round-off
    assert noise.std() > 0


def test_resize_choices_follow_their_probabilities() -> None:
    s = ResizeSampler("test", (0.2, 0.7, 0.1), (0.15, 1.5))
    g = rng()
    factors = np.array([s.draw_scale(g) for _ in range(2000)])
    n = len(factors)
    for frac, p in (((factors > 1).mean(), 0.2), ((factors < 1).mean(), 0.7), ((factors == 1).mean(), 0.1)):
        assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert factors.min() >= 0.15 and factors.max() <= 1.5
    modes = [s.draw_mode(g) for _ in range(900)]
    assert {m: modes.count(m) for m in set(modes)}.keys() == {"area", "bilinear", "bicubic"}
    assert min(modes.count(m) for m in ("area", "bilinear", "bicubic")) > 250
    deg = DEGRADATIONS.build({"type": "RandomResize", "resize_prob": [0, 1, 0], "resize_range": [0.5, 1.0]})
    for seed in range(10):
        h, w = deg(photo(40, 60), rng(seed)).shape[:2]  # floor(40 f) x floor(60 f), f in [0.5, 1]
        assert 20 <= h <= 40 and 30 <= w <= 60 and abs(h / 40 - w / 60) < 1 / 40 + 1 / 60


def test_jpeg_quality_ranges_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    qualities: list[int] = []
    original = jpeg_module.jpeg_roundtrip

    def spy(img: np.ndarray, quality: int) -> np.ndarray:
        assert img.min() >= 0 and img.max() <= 1  # clipped before JPEG, as Real-ESRGAN does
        qualities.append(quality)
        return original(img, quality)

    monkeypatch.setattr(jpeg_module, "jpeg_roundtrip", spy)
    deg = DEGRADATIONS.build(
        {"type": "RealESRGANDegradation", "scale": 2, "jpeg_range": [40, 60], "jpeg_range2": [85, 95]}
    )
    for seed in range(40):
        deg(photo(32, 32), rng(seed))
    first, second = np.array(qualities[0::2]), np.array(qualities[1::2])
    assert len(first) == len(second) == 40
    assert first.min() >= 40 and first.max() <= 60 and second.min() >= 85 and second.max() <= 95
    assert first.max() - first.min() >= 12 and len(set(second)) >= 6  # spread over the range


# -- the whole pipeline ----------------------------------------------------------------------------
@pytest.mark.parametrize(("scale", "c"), [(4, 3), (2, 3), (4, 1)])
def test_pipeline_seeded_sizes_and_levels(scale: int, c: int) -> None:
    deg = DEGRADATIONS.build({"type": "RealESRGANDegradation", "scale": scale})
    img = photo(64, 96, c)
    before = img.copy()
    a, b = deg(img, rng(7)), deg(img, rng(7))
    np.testing.assert_array_equal(a, b)  # fixed seed -> fixed output
    assert a.shape == (64 // scale, 96 // scale, c) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    assert np.abs(a * 255 - np.rint(a * 255)).max() < 1e-4  # 8-bit levels
    np.testing.assert_array_equal(img, before)  # input untouched
    outs = {deg(img, rng(s)).tobytes() for s in range(6)}
    assert len(outs) == 6  # different seeds differ


def test_pipeline_refuses_sizes_not_divisible_by_scale() -> None:
    deg = DEGRADATIONS.build({"type": "RealESRGANDegradation", "scale": 4})
    with pytest.raises(DataError, match="30x32 is not a multiple of the scale"):
        deg(photo(30, 32), rng())


def test_realesrgan_option_keys_build_the_pipeline() -> None:
    dataset_opt = {
        "type": "RealESRGANDataset",
        "blur_kernel_size": 21,
        "kernel_list": list(KERNEL_TYPES),
        "kernel_prob": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
        "sinc_prob": 0.1,
        "blur_sigma": [0.2, 3],
        "betag_range": [0.5, 4],
        "betap_range": [1, 2],
        "blur_kernel_size2": 21,
        "kernel_list2": list(KERNEL_TYPES),
        "kernel_prob2": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
        "sinc_prob2": 0.1,
        "blur_sigma2": [0.2, 1.5],
        "betag_range2": [0.5, 4],
        "betap_range2": [1, 2],
        "final_sinc_prob": 0.8,
        "gt_size": 256,
        "use_hflip": True,
    }
    top_opt = {
        "scale": 4,
        "resize_prob": [0.2, 0.7, 0.1],
        "resize_range": [0.15, 1.5],
        "gaussian_noise_prob": 0.5,
        "noise_range": [1, 30],
        "poisson_scale_range": [0.05, 3],
        "gray_noise_prob": 0.4,
        "jpeg_range": [30, 95],
        "second_blur_prob": 0.8,
        "resize_prob2": [0.3, 0.4, 0.3],
        "resize_range2": [0.3, 1.2],
        "gaussian_noise_prob2": 0.5,
        "noise_range2": [1, 25],
        "poisson_scale_range2": [0.05, 2.5],
        "gray_noise_prob2": 0.4,
        "jpeg_range2": [30, 95],
        "gt_size": 256,
        "queue_size": 180,
    }
    cfg = realesrgan_degradation_options(dataset_opt, top_opt)
    assert set(cfg) == {"type", "scale", *REALESRGAN_DATASET_KEYS, *REALESRGAN_MODEL_KEYS}
    deg = DEGRADATIONS.build(cfg, path="datasets.train.degradation")
    assert deg(photo(32, 32), rng()).shape == (8, 8, 3)


# -- bad options: one line each, naming the key ------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kernel_range": [6, 21]}, r"kernel_range: kernel sizes must be odd .*\[6, 21\]"),
        ({"kernel_range2": [7, 20]}, r"kernel_range2: kernel sizes must be odd"),
        ({"blur_kernel_size": 20}, r"blur_kernel_size: must be an odd integer"),
        ({"blur_kernel_size": 19}, r"blur_kernel_size: 19 is smaller than the largest kernel of kernel_range \(21\)"),
        ({"sinc_prob": 1.5}, r"sinc_prob: a probability must be in \[0, 1\], got 1.5"),
        ({"gray_noise_prob2": -0.1}, r"gray_noise_prob2: a probability must be in \[0, 1\]"),
        ({"second_blur_prob": 2}, r"second_blur_prob: a probability must be in \[0, 1\]"),
        ({"final_sinc_prob": 1.01}, r"final_sinc_prob: a probability"),
        ({"kernel_prob": [0.5, 0.25, 0.12, 0.03, 0.12, 0.03]}, r"kernel_prob: the probabilities must sum to 1"),
        ({"kernel_prob2": [0.5, 0.5]}, r"kernel_prob2: expected 6 probabilities \(one per kernel_list2 entry\)"),
        ({"kernel_prob": [1.2, -0.2, 0, 0, 0, 0]}, r"kernel_prob: a probability must be in \[0, 1\], got 1.2"),
        ({"resize_prob": [0.2, 0.7, 0.2]}, r"resize_prob: the probabilities must sum to 1"),
        ({"resize_range2": [1.1, 1.5]}, r"resize_range2: expected \[low <= 1, high >= 1\]"),
        (
            {"kernel_list": ["iso", "anisso"], "kernel_prob": [0.5, 0.5]},
            r"kernel_list: unknown kernel type 'anisso'; did you mean 'aniso'",
        ),
        ({"noise_range": [30, 1]}, r"noise_range: low 30 is greater than high 1"),
        ({"jpeg_range2": [30, 120]}, r"jpeg_range2: must lie within \[1, 100\]"),
        ({"scale": 0}, r"scale: expected an integer >= 1"),
    ],
)
def test_bad_pipeline_options_are_one_line(options: dict, message: str) -> None:
    with pytest.raises(OptionsError, match=r"RealESRGANDegradation\." + message) as exc:
        DEGRADATIONS.build({"type": "RealESRGANDegradation", **options})
    assert "\n" not in str(exc.value)


def test_bad_piece_options_are_one_line() -> None:
    for cfg, message in (
        (
            {"type": "RandomKernelBlur", "kernel_range": [7, 8]},
            r"RandomKernelBlur\.kernel_range: kernel sizes must be odd",
        ),
        ({"type": "RandomKernelBlur", "blur_prob": 1.5}, r"RandomKernelBlur\.blur_prob: a probability"),
        ({"type": "SincFilter", "kernel_range": [8, 21]}, r"SincFilter\.kernel_range: kernel sizes must be odd"),
        ({"type": "SincFilter", "final_sinc_prob": -1}, r"SincFilter\.final_sinc_prob: a probability"),
        ({"type": "GaussianPoissonNoise", "gaussian_noise_prob": 3}, r"gaussian_noise_prob: a probability"),
        ({"type": "RandomResize", "resize_prob": [0.5, 0.6]}, r"RandomResize\.resize_prob: expected 3 probabilities"),
    ):
        with pytest.raises(OptionsError, match=message) as exc:
            DEGRADATIONS.build(cfg)
        assert "\n" not in str(exc.value)


# -- the dataset -----------------------------------------------------------------------------------
def write_images(folder: Path, n: int = 3, h: int = 90, w: int = 110) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = (photo(h, w, 3, seed=i) * 255).astype(np.uint8)
        paths.append(folder / f"{i:03d}.png")
        assert cv2.imwrite(str(paths[-1]), img)
    return paths


def test_dataset_pairs_are_seeded_and_sized(tmp_path: Path) -> None:
    write_images(tmp_path / "gt")
    cfg = {
        "type": "RealESRGANDataset",
        "dataroot_gt": str(tmp_path / "gt"),
        "gt_size": 32,
        "crop_pad_size": 64,
        "scale": 4,
        "seed": 5,
        "use_rot": True,
    }
    ds = DATASETS.build(cfg, path="datasets.train")
    a, b = ds[1], ds[1]
    for key in ("lq", "gt", "gt_usm"):
        assert torch.equal(a[key], b[key])
    assert a["gt"].shape == (3, 32, 32) and a["gt_usm"].shape == (3, 32, 32) and a["lq"].shape == (3, 8, 8)
    assert not torch.equal(a["gt"], a["gt_usm"])  # sharpened
    assert a["name"] == "001" and a["gt_path"].endswith("001.png")
    assert not torch.equal(ds[0]["lq"], a["lq"])
    assert not torch.equal(ds[(1, 32, 123)]["lq"], ds[(1, 32, 124)]["lq"])  # sampler seeds differ
    whole = DATASETS.build({**cfg, "gt_size": None, "scale": 2, "gt_usm": False})[2]
    assert whole["gt"].shape == (3, 90, 110) and whole["lq"].shape == (3, 45, 55) and "gt_usm" not in whole


def test_dataset_reads_meta_info(tmp_path: Path) -> None:
    write_images(tmp_path / "DF2K" / "HR_sub", n=3)
    meta = tmp_path / "meta_info.txt"
    meta.write_text("HR_sub/002.png\nHR_sub/000.png\n\n")
    ds = DATASETS.build(
        {
            "type": "RealESRGANDataset",
            "dataroot_gt": str(tmp_path / "DF2K"),
            "meta_info": str(meta),
            "gt_size": 32,
            "crop_pad_size": None,
            "seed": 0,
        }
    )
    assert len(ds) == 2 and ds[0]["name"] == "002" and ds[0]["lq"].shape == (3, 8, 8)
    meta.write_text("HR_sub/000.png\nHR_sub/missing.png\n")
    with pytest.raises(DataError, match=r"meta_info: .* line 2 names HR_sub/missing.png, not found"):
        DATASETS.build({"type": "RealESRGANDataset", "dataroot_gt": str(tmp_path / "DF2K"), "meta_info": str(meta)})


def test_dataset_bad_sizes_are_one_line(tmp_path: Path) -> None:
    write_images(tmp_path / "gt", n=1)
    base = {"type": "RealESRGANDataset", "dataroot_gt": str(tmp_path / "gt")}
    for extra, message in (
        ({"gt_size": 250, "scale": 4}, r"gt_size: 250 is not a multiple of scale 4"),
        ({"gt_size": 256, "crop_pad_size": 402}, r"crop_pad_size: 402 is not a multiple of scale 4"),
        ({"gt_size": 256, "crop_pad_size": 200}, r"crop_pad_size: 200 is smaller than gt_size 256"),
        (
            {"scale": 2, "degradation": {"type": "RealESRGANDegradation", "scale": 4}},
            r"degradation.scale: 4 differs from the dataset's scale 2",
        ),
        ({"degradation": {"type": "RealESRGANDegradation", "sinc_prob2": 7}}, r"sinc_prob2: a probability"),
    ):
        with pytest.raises(OptionsError, match=message) as exc:
            DATASETS.build({**base, **extra}, path="datasets.train")
        assert "\n" not in str(exc.value)


def test_bad_values_are_reported_before_anything_is_built(tmp_path: Path) -> None:
    """show-options' check (``problems``: no file read, nothing built) names a bad nested value."""
    write_images(tmp_path / "gt", n=1)
    cfg = {
        "type": "RealESRGANDataset",
        "dataroot_gt": str(tmp_path / "gt"),
        "degradation": {"type": "RealESRGANDegradation", "kernel_range2": [7, 22], "kernel_prob": [0.5, 0.5]},
    }
    problems = DATASETS.problems(cfg, "datasets.train")
    assert problems == [
        "datasets.train.degradation.kernel_prob: expected 6 probabilities (one per kernel_list entry), got [0.5, 0.5]"
    ]
    assert DEGRADATIONS.problems({"type": "SincFilter", "kernel_range": [4, 9]}, "deg") == [
        "deg.kernel_range: kernel sizes must be odd (a centred kernel), got [4, 9]"
    ]
    assert DEGRADATIONS.problems({"type": "RealESRGANDegradation"}, "deg") == []
