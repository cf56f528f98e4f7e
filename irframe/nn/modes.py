"""The one save-switch-restore of a module's train/eval mode that inference, export, FLOP counting,
memory probing and validation share."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch.nn as nn


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode for the block, then back in the mode it had (also when the block raises).

    ``model.train(mode)`` sets every submodule, so a model that came in training mode leaves in
    training mode as a whole; one that came in eval mode stays so.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
