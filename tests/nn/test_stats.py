"""Parameter and FLOP counting."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from irframe.nn.spec import ModelSpec
from irframe.nn.stats import count_flops, count_params


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 3, 1)
        self.spec = ModelSpec(size_multiple=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


def test_count_params_total_and_trainable() -> None:
    model = Small()
    assert count_params(model) == (3 * 8 * 9 + 8) + (8 * 3 + 3)
    model.b.requires_grad_(False)
    assert count_params(model, trainable_only=True) == 3 * 8 * 9 + 8
    tied = nn.Sequential(model.a, model.a)
    assert count_params(tied) == 3 * 8 * 9 + 8  # shared parameters once


def test_count_flops_matches_hand_count() -> None:
    model = Small().train()
    result = count_flops(model, (3, 16, 12))
    macs = 16 * 12 * (3 * 8 * 9 + 8 * 3)  # bias adds are not counted by FlopCounterMode
    assert result.macs == macs and result.flops == 2 * macs
    assert result.input_shape == (1, 3, 16, 12)
    assert result.by_operator == {"convolution": 2 * macs}
    assert result.gmacs == pytest.approx(macs / 1e9)
    assert "GMACs" in str(result) and "GFLOPs" in str(result) and "1x3x16x12" in str(result)
    assert model.training  # mode restored
    assert count_flops(model, (2, 3, 16, 12)).flops == 4 * macs


def test_count_flops_counts_attention_matmuls_and_checks_shape() -> None:
    class Attn(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q = x.flatten(2)  # N, C, HW
            return (q @ q.transpose(1, 2)).softmax(-1) @ q

    result = count_flops(Attn(), (1, 4, 3, 5))  # two (4x15)(15x4)-sized products
    assert result.macs == 2 * 4 * 15 * 4
    with pytest.raises(ValueError, match="multiple of spec.size_multiple=4"):
        count_flops(Small(), (3, 10, 12))
    with pytest.raises(ValueError, match="input_shape"):
        count_flops(Small(), (16, 16))
