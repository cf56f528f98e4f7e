"""Inference helpers: padding, tiling, self-ensemble, and the spec-driven ``restore``.

Tolerances: tiled vs whole-image output of conv-only models agree to 1e-6 absolute (float32
rounding of the blend weights; about 3e-8 is seen); ensembles of equivariant models to 1e-6.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from irframe.nn.inference import crop_to, pad_to_multiple, restore, self_ensemble, tile_starts, tiled_forward
from irframe.nn.spec import ModelSpec

TOL = dict(atol=1e-6, rtol=0)


class TinyConv(nn.Module):
    """Conv-only model: receptive-field radius 3 (three 3x3 convs)."""

    def __init__(self, scale: int = 1) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 3 * scale * scale, 3, padding=1),
        )
        self.up = nn.PixelShuffle(scale) if scale > 1 else nn.Identity()
        self.spec = ModelSpec(scale=scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.body(x))


class StrictShape(nn.Module):
    """Fake model that refuses inputs not matching its spec and upsamples by nearest neighbour."""

    def __init__(self, multiple: int = 8, scale: int = 2, fixed: int | None = None) -> None:
        super().__init__()
        self.spec = ModelSpec(scale=scale, size_multiple=multiple, fixed_size=fixed, tile_overlap=8)
        self.seen: list[tuple[int, int]] = []
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        self.seen.append((h, w))
        if h % self.spec.size_multiple or w % self.spec.size_multiple:
            raise AssertionError(f"size {h}x{w} not a multiple of {self.spec.size_multiple}")
        if self.spec.fixed_size is not None and (h, w) != (self.spec.fixed_size,) * 2:
            raise AssertionError(f"size {h}x{w} is not the fixed size")
        return F.interpolate(x * self.w, scale_factor=self.spec.scale, mode="nearest")


class Identity(nn.Module):
    spec = ModelSpec()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


class Symmetric(nn.Module):
    """A conv whose kernel is invariant under flips and transposes: x8-equivariant."""

    def __init__(self) -> None:
        super().__init__()
        k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
        self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(k.expand(3, 3, 3, 3) * torch.tensor([0.2, 0.5, 0.3]).view(1, 3, 1, 1))
        self.spec = ModelSpec()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


# -- padding -----------------------------------------------------------------------------------
@pytest.mark.parametrize("h,w", [(1, 1), (7, 13), (8, 8), (3, 17)])
def test_pad_to_multiple_shapes_and_crop_back(h: int, w: int) -> None:
    x = torch.rand(2, 3, h, w)
    padded, size = pad_to_multiple(x, 8)
    assert size == (h, w)
    assert padded.shape[-2] % 8 == 0 and padded.shape[-1] % 8 == 0
    assert padded.shape[-2] - h < 8 and padded.shape[-1] - w < 8
    torch.testing.assert_close(crop_to(padded, size), x)  # original pixels untouched


def test_pad_reflects_and_falls_back_to_replicate() -> None:
    x = torch.arange(5.0).view(1, 1, 1, 5)
    padded, _ = pad_to_multiple(x, 8)  # width pad 3 < 5: reflect; height pad 7 >= 1: replicate
    assert padded[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 3, 2, 1]
    assert torch.equal(padded[0, 0, 7], padded[0, 0, 0])
    one = torch.full((1, 3, 1, 1), 0.25)
    assert torch.equal(pad_to_multiple(one, 8)[0], torch.full((1, 3, 8, 8), 0.25))
    assert pad_to_multiple(torch.rand(1, 1, 5, 5), 4, min_size=48)[0].shape[-2:] == (48, 48)
    with pytest.raises(ValueError, match="mode"):
        pad_to_multiple(x, 8, mode="circular")  # type: ignore[arg-type]


def test_crop_to_is_scale_aware() -> None:
    assert crop_to(torch.rand(1, 3, 16, 32), (7, 13), scale=2).shape[-2:] == (14, 26)


# -- tiling ------------------------------------------------------------------------------------
def test_tile_starts_cover_with_overlap() -> None:
    assert tile_starts(10, 16, 4) == [0]
    starts = tile_starts(100, 32, 8)
    assert starts[0] == 0 and starts[-1] == 100 - 32
    assert all(b - a <= 32 - 8 for a, b in itertools.pairwise(starts))


@pytest.mark.parametrize("blend", ["linear", "average"])
@pytest.mark.parametrize("scale", [1, 2])
def test_tiled_equals_whole_for_conv_model(blend: str, scale: int) -> None:
    model = TinyConv(scale).eval()
    x = torch.rand(2, 3, 61, 77)
    with torch.no_grad():
        whole = model(x)
    tiled = tiled_forward(model, x, tile=24, overlap=12, blend=blend)  # margin 3 = receptive radius
    assert tiled.shape == whole.shape
    torch.testing.assert_close(tiled, whole, **TOL)


def test_tiled_without_margin_differs_at_seams() -> None:
    """Sanity check of the test above: with no guard band, tile borders leak into the result."""
    model = TinyConv().eval()
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        whole = model(x)
    tiled = tiled_forward(model, x, tile=16, overlap=4, margin=0)
    assert (tiled - whole).abs().max() > 1e-3


def test_tiled_output_on_cpu_from_other_device_setting() -> None:
    model = TinyConv().eval()
    x = torch.rand(1, 3, 30, 30)
    out = tiled_forward(model, x, tile=16, overlap=8, out_device="cpu")
    assert out.device.type == "cpu" and out.dtype == x.dtype


def test_tiled_argument_errors() -> None:
    model = StrictShape(multiple=8, scale=2)
    x = torch.rand(1, 3, 20, 20)
    with pytest.raises(ValueError, match="multiple of spec.size_multiple=8"):
        tiled_forward(model, x, tile=12, overlap=4)
    with pytest.raises(ValueError, match="overlap 16"):
        tiled_forward(model, x, tile=16, overlap=16)
    with pytest.raises(ValueError, match="fixed input size"):
        tiled_forward(StrictShape(multiple=1, fixed=16), x, tile=8, overlap=2)


# -- restore -----------------------------------------------------------------------------------
@pytest.mark.parametrize("h,w", [(1, 1), (7, 13), (16, 16), (9, 30)])
def test_restore_pads_to_multiple_and_crops_scaled(h: int, w: int) -> None:
    model = StrictShape(multiple=8, scale=2)
    x = torch.rand(1, 3, h, w)
    y = restore(model, x)
    assert y.shape == (1, 3, 2 * h, 2 * w)
    assert all(a % 8 == 0 and b % 8 == 0 for a, b in model.seen)
    # nearest upsampling of the original pixels: padding never leaks into the cropped output
    torch.testing.assert_close(y, F.interpolate(x, scale_factor=2, mode="nearest"))


@pytest.mark.parametrize("h,w", [(7, 13), (33, 50)])
def test_restore_tiled_with_multiple_and_scale(h: int, w: int) -> None:
    model = StrictShape(multiple=8, scale=2)
    x = torch.rand(2, 3, h, w)
    y = restore(model, x, tile=16, tile_overlap=8)
    assert y.shape == (2, 3, 2 * h, 2 * w)
    assert all(a % 8 == 0 and b % 8 == 0 and a <= 16 and b <= 16 for a, b in model.seen)  # tile-sized pieces
    torch.testing.assert_close(y, F.interpolate(x, scale_factor=2, mode="nearest"), **TOL)


@pytest.mark.parametrize("h,w", [(1, 1), (20, 20), (48, 48), (50, 97)])
def test_restore_fixed_size_model_tiles_automatically(h: int, w: int) -> None:
    model = StrictShape(multiple=1, scale=2, fixed=48)
    x = torch.rand(1, 3, h, w)
    y = restore(model, x)  # no tile given: the spec requires it
    assert y.shape == (1, 3, 2 * h, 2 * w)
    assert set(model.seen) == {(48, 48)}
    torch.testing.assert_close(y, F.interpolate(x, scale_factor=2, mode="nearest"), **TOL)
    with pytest.raises(ValueError, match="fixed input size 48"):
        restore(model, x, tile=32)


def test_restore_conv_tiled_matches_whole_and_never_clamps() -> None:
    model = TinyConv(scale=2)
    x = torch.rand(1, 3, 45, 38) * 3 - 1  # out-of-range values stay out of range
    whole = restore(model, x)
    tiled = restore(model, x, tile=16, tile_overlap=12)
    torch.testing.assert_close(tiled, whole, **TOL)
    with torch.no_grad():
        torch.testing.assert_close(whole, model(x), **TOL)
    assert whole.min() < 0 or whole.max() > 1


def test_restore_keeps_mode_runs_inference_and_checks_inputs() -> None:
    model = TinyConv().train()
    x = torch.rand(3, 20, 20)
    y = restore(model, x)
    assert y.shape == (3, 20, 20) and model.training and not y.requires_grad
    with pytest.raises(ValueError, match="spec.in_channels=3"):
        restore(model, torch.rand(1, 1, 8, 8))
    with pytest.raises(TypeError, match="float"):
        restore(model, torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_restore_passes_task_and_checks_it() -> None:
    class TwoTasks(nn.Module):
        spec = ModelSpec(tasks=("denoise", "derain"))

        def forward(self, x: torch.Tensor, task: str | int | None = None) -> torch.Tensor:
            return x + (1.0 if task == "derain" else 0.0)

    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(restore(TwoTasks(), x, task="derain"), x + 1)
    torch.testing.assert_close(restore(TwoTasks(), x, task="derain", self_ensemble=True, tile=8, tile_overlap=2), x + 1)
    with pytest.raises(ValueError, match="unknown task 'sr'.*denoise, derain"):
        restore(TwoTasks(), x, task="sr")


def test_restore_detects_wrong_spec_scale() -> None:
    class Upx2(nn.Module):
        spec = ModelSpec(scale=3)  # wrong: the model upsamples by 2

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, scale_factor=2)

    with pytest.raises(ValueError, match="spec.scale=3"):
        restore(Upx2(), torch.rand(1, 3, 8, 8))


# -- self-ensemble -----------------------------------------------------------------------------
def test_self_ensemble_identity_and_equivariant_model() -> None:
    x = torch.rand(2, 3, 11, 17)
    torch.testing.assert_close(self_ensemble(Identity(), x), x)
    sym = Symmetric()
    with torch.no_grad():
        torch.testing.assert_close(self_ensemble(sym, x), sym(x), **TOL)
        torch.testing.assert_close(restore(sym, x, self_ensemble=True), sym(x), **TOL)


def test_self_ensemble_averages_the_eight_transforms() -> None:
    x = torch.rand(1, 3, 8, 8)
    model = TinyConv().eval()
    with torch.no_grad():
        plain = model(x)
        ens = self_ensemble(model, x)
        manual = torch.zeros_like(plain)
        for flip in (False, True):
            xf = x.flip(-1) if flip else x
            for k in range(4):
                y = torch.rot90(model(torch.rot90(xf, k, (-2, -1))), -k, (-2, -1))
                manual += y.flip(-1) if flip else y
    torch.testing.assert_close(ens, manual / 8, **TOL)
    assert (ens - plain).abs().max() > 1e-4  # a generic conv is not equivariant
    # ensemble on scaled models keeps the output geometry
    up = TinyConv(scale=2).eval()
    assert self_ensemble(up, torch.rand(1, 3, 6, 10)).shape == (1, 3, 12, 20)
