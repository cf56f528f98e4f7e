"""The losses and the scheduler BasicSR / NAFNet files name, with their semantics: a BasicSR file's
``*_opt`` loss goes through the translator and the trainer's weighted sum, and gives the value worked
out by hand from BasicSR's (or NAFNet's) definition."""

from __future__ import annotations

import math

import pytest
import torch

from irframe.errors import OptionsError
from irframe.options import load_options, load_with_bases
from irframe.registry import SCHEDULERS
from irframe.train.loss import WeightedLoss

from .conftest import FIXTURES

# one 1x1x2x2 image: |pred - gt| = 0, 0.5, 1, 0.25
PRED = torch.tensor([[[[0.0, 0.5], [1.0, 0.25]]]])
GT = torch.zeros(1, 1, 2, 2)


def total(pixel_opt: dict, tmp_path, pred: torch.Tensor = PRED, gt: torch.Tensor = GT) -> float:
    """The training loss of ``pred`` for a BasicSR file whose ``train.pixel_opt`` is ``pixel_opt``."""
    import yaml

    raw = load_with_bases(FIXTURES / "train_EDSR_Mx2.yml")
    raw["train"]["pixel_opt"] = pixel_opt
    path = tmp_path / "loss.yml"
    path.write_text(yaml.safe_dump(raw))
    opts = load_options(path, check=True, paths=False)  # as the tools load it: every key checked first
    value, _ = WeightedLoss.from_options(opts.train.losses)(pred, gt, {})
    return float(value)


@pytest.mark.parametrize(
    ("pixel_opt", "expected"),
    [
        ({"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"}, (0 + 0.5 + 1 + 0.25) / 4),
        ({"type": "L1Loss", "loss_weight": 0.5, "reduction": "sum"}, 0.5 * 1.75),
        ({"type": "L1Loss"}, 1.75 / 4),  # BasicSR's defaults: weight 1, mean
        ({"type": "MSELoss", "loss_weight": 2.0, "reduction": "mean"}, 2.0 * (0 + 0.25 + 1 + 0.0625) / 4),
        ({"type": "MSELoss", "loss_weight": 1.0, "reduction": "sum"}, 1.3125),
        # BasicSR's Charbonnier: sqrt(d^2 + eps), eps added unsquared
        ({"type": "CharbonnierLoss", "loss_weight": 1.0, "reduction": "sum", "eps": 0.01},
         math.sqrt(0.01) + math.sqrt(0.26) + math.sqrt(1.01) + math.sqrt(0.0725)),
        ({"type": "CharbonnierLoss", "loss_weight": 3.0, "reduction": "mean"},  # default eps 1e-12
         3.0 * (math.sqrt(1e-12) + math.sqrt(0.25 + 1e-12) + math.sqrt(1 + 1e-12) + math.sqrt(0.0625 + 1e-12)) / 4),
    ],
)
def test_basicsr_pixel_losses(pixel_opt, expected, tmp_path):
    assert total(pixel_opt, tmp_path) == pytest.approx(expected, rel=1e-6)


def offset_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Two RGB images; the prediction is the target plus 0.1 (first) and 0.2 (second) everywhere."""
    gt = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 0.5
    return gt + torch.tensor([0.1, 0.2]).view(2, 1, 1, 1), gt


def test_nafnet_psnr_loss(tmp_path):
    pred, gt = offset_pair()
    # NAFNet: loss_weight * 10/ln(10) * mean_n log(MSE_n + 1e-8); MSE 0.01 and 0.04
    rgb = 10 * (math.log10(0.01 + 1e-8) + math.log10(0.04 + 1e-8)) / 2
    opt = {"type": "PSNRLoss", "loss_weight": 0.5, "reduction": "mean"}
    assert total(opt, tmp_path, pred, gt) == pytest.approx(0.5 * rgb, rel=1e-5)
    # toY: the MSE of BT.601 luma, whose offset is c * (65.481 + 128.553 + 24.966) / 255
    luma = [(c * 219.0 / 255.0) ** 2 for c in (0.1, 0.2)]
    y = 10 * (math.log10(luma[0] + 1e-8) + math.log10(luma[1] + 1e-8)) / 2
    opt = {"type": "PSNRLoss", "loss_weight": 1, "reduction": "mean", "toY": True}
    assert total(opt, tmp_path, pred, gt) == pytest.approx(y, rel=1e-5)


def test_reductions_basicsr_cannot_train_with_are_named(tmp_path):
    with pytest.raises(OptionsError) as info:
        total({"type": "PSNRLoss", "loss_weight": 1, "reduction": "sum"}, tmp_path)
    assert "train.pixel_opt.reduction:" in str(info.value) and "'mean'" in str(info.value)
    with pytest.raises(OptionsError) as info:
        total({"type": "L1Loss", "reduction": "none"}, tmp_path)
    assert "train.pixel_opt.reduction: 'none' (per-pixel values) cannot be a training loss" in str(info.value)


def test_true_cosine_annealing_is_torch_cosine_per_iteration():
    opts = load_options(FIXTURES / "NAFNet-SIDD-width64_train.yml", ["train.scheduler.T_max=10"])
    assert opts.train.scheduler == {"type": "CosineAnnealingLR", "T_max": 10, "eta_min": 1e-7}
    ours_opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    ours = SCHEDULERS.build(opts.train.scheduler, path="train.scheduler", optimizer=ours_opt)
    ref_opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=10, eta_min=1e-7)  # NAFNet's TrueCosineAnnealingLR
    for _ in range(10):
        assert ours.get_last_lr()[0] == pytest.approx(ref.get_last_lr()[0], rel=1e-9, abs=1e-15)
        ours_opt.step(), ref_opt.step()
        ours.step(), ref.step()
    assert ours.get_last_lr()[0] == pytest.approx(1e-7)  # T_max reached: eta_min
