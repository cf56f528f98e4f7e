"""``eval_mode``: the one save-switch-restore of train/eval mode, and the callers that rely on it."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from irframe.nn.modes import eval_mode


class _Seen(nn.Module):
    """Records the mode of its dropout child at each forward."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.drop.training)
        return x


@pytest.mark.parametrize("training", [True, False])
def test_eval_inside_and_the_mode_it_came_with_after(training: bool) -> None:
    model = _Seen().train(training)
    with eval_mode(model) as m:
        assert m is model and not model.training and not model.drop.training
    assert model.training is training and model.drop.training is training


def test_mode_restored_when_the_block_raises() -> None:
    model = _Seen().train()
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        raise RuntimeError("boom")
    assert model.training and model.drop.training


def test_restore_runs_in_eval_mode_and_leaves_training_mode() -> None:
    from irframe.nn.inference import restore

    model = _Seen().train()
    restore(model, torch.rand(1, 3, 8, 8))
    assert model.seen == [False] and model.training and model.drop.training
