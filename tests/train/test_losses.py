"""Generic losses and the weighted loss sum."""

from __future__ import annotations

import math

import pytest
import torch

from irframe.errors import OptionsError
from irframe.losses import loss_signature
from irframe.options import LossOptions
from irframe.registry import LOSSES
from irframe.train.loss import WeightedLoss


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)


def build(name, **kw):
    return LOSSES.build({"type": name, **kw})


def test_pixel_losses_match_their_formulas(pair):
    pred, gt = pair
    d = pred - gt
    assert build("L1Loss")(pred, gt) == pytest.approx(d.abs().mean().item())
    assert build("L1Loss", reduction="sum")(pred, gt) == pytest.approx(d.abs().sum().item(), rel=1e-6)
    assert build("MSELoss")(pred, gt) == pytest.approx((d**2).mean().item())
    assert build("CharbonnierLoss")(pred, gt) == pytest.approx(torch.sqrt(d**2 + 1e-6).mean().item())
    assert build("CharbonnierLoss").eps == 1e-3
    fft = torch.view_as_real(torch.fft.fft2(pred) - torch.fft.fft2(gt)).abs().mean()
    assert build("FFTLoss")(pred, gt) == pytest.approx(fft.item(), rel=1e-5)


def test_psnr_loss_is_minus_mean_psnr(pair):
    pred, gt = pair
    mse = ((pred - gt) ** 2).mean(dim=(1, 2, 3))
    psnr = 10 * torch.log10(1 / mse)  # per image, peak 1
    assert build("PSNRLoss")(pred, gt).item() == pytest.approx(-psnr.mean().item(), rel=1e-5)
    coef = torch.tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    y = lambda t: (t * coef).sum(1, keepdim=True) / 255 + 16 / 255
    mse_y = ((y(pred) - y(gt)) ** 2).mean(dim=(1, 2, 3))
    expected = 10 / math.log(10) * torch.log(mse_y + 1e-8).mean()
    assert build("PSNRLoss", toY=True)(pred, gt).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="differ in shape"):
        build("PSNRLoss")(pred, gt[:, :, :4])


def test_lpips_loss_has_gradients_and_stays_frozen(pair):
    pred, gt = pair
    pred = pred.clone().requires_grad_(True)
    loss = build("LPIPSLoss", net="alex", random_backbone=True)
    loss.train()
    assert not loss.net.training and not any(p.requires_grad for p in loss.parameters())
    value = loss(torch.nn.functional.interpolate(pred, 32), torch.nn.functional.interpolate(gt, 32))
    value.backward()
    assert value.ndim == 0 and pred.grad is not None and pred.grad.abs().sum() > 0


class FeatureLoss(torch.nn.Module):
    uses_features = True
    default_weight = 0.1

    def forward(self, feats, image_ids=None):
        return feats.mean() + (0 if image_ids is None else image_ids.float().sum())


class NeedsLQ(torch.nn.Module):
    def forward(self, pred, gt, lq):
        return (pred - lq).abs().mean()


def test_loss_signatures():
    assert loss_signature(build("L1Loss")) == loss_signature(build("PSNRLoss"))
    sig = loss_signature(FeatureLoss())
    assert sig.uses_features and sig.required == () and sig.optional == ("image_ids",)
    assert loss_signature(NeedsLQ()).required == ("lq",)


def test_weighted_loss_sums_terms(pair, registry_sandbox):
    LOSSES.register("FeatureLoss", FeatureLoss)
    LOSSES.register("NeedsLQ", NeedsLQ)
    pred, gt = pair
    options = [LossOptions(type="L1Loss", weight=2.0), LossOptions(type="L1Loss"), LossOptions(type="FeatureLoss")]
    wl = WeightedLoss.from_options(options)
    assert [t.name for t in wl.terms] == ["L1Loss", "L1Loss_1", "FeatureLoss"]
    assert [t.weight for t in wl.terms] == [2.0, 1.0, 0.1]  # the feature loss's own default weight
    assert wl.needs_features
    feats = torch.ones(2, 4, 5)
    total, parts = wl(pred, gt, {"image_ids": torch.tensor([1, 2])}, feats)
    l1 = (pred - gt).abs().mean()
    assert total.item() == pytest.approx((3 * l1 + 0.1 * (1 + 3)).item(), rel=1e-6)
    assert parts["FeatureLoss"].item() == pytest.approx(4.0)
    needs = WeightedLoss.from_options([LossOptions(type="NeedsLQ")])
    with pytest.raises(OptionsError, match=r"needs batch entries \['lq'\]"):
        needs(pred, gt, {"gt": gt})
    assert needs(pred, gt, {"lq": gt}).__getitem__(0).item() == pytest.approx(l1.item())
