"""Restormer's mixing augmentation (``train.mixing_augs``): mixup of a training batch with itself.

With probability 1 (or 1/2 with ``use_identity``, Restormer's identity option) a batch is mixed:
``lam ~ Beta(mixup_beta, mixup_beta)`` and a random permutation ``p`` of the batch give
``gt <- lam * gt + (1 - lam) * gt[p]`` and ``lq <- lam * lq + (1 - lam) * lq[p]`` (the same ``lam``
and ``p`` for both, so each mixed input still matches its mixed target).

Every draw comes from a generator seeded by (run seed, iteration, micro-batch, process), not from a
running random state: the mixing of iteration ``i`` is the same in a resumed run as in an
uninterrupted one, and nothing needs to be saved in checkpoints.

With several processes each one mixes its own share of the batch (as Restormer does per GPU), so a
mixup run on N processes is not the same as a 1-process run of the same global batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from irframe.errors import OptionsError

_TAG_MIX = 11  # keeps this stream apart from the samplers' and the loader's (irframe.data.samplers)


class MixingAugment:
    """Mix ``lq`` and ``gt`` of a batch with a permutation of themselves (see the module doc).

    Args:
        mixup_beta: both parameters of the Beta distribution of the mixing weight (> 0).
        use_identity: leave a batch unmixed with probability 1/2.
        seed: the run's seed.
        rank: this process (processes mix their own shares of the batch differently).
    """

    def __init__(self, mixup_beta: float = 1.2, use_identity: bool = False, seed: int = 0, rank: int = 0) -> None:
        if not mixup_beta > 0:
            raise OptionsError(f"train.mixing_augs.mixup_beta: must be > 0, got {mixup_beta!r}")
        self.mixup_beta = float(mixup_beta)
        self.use_identity = bool(use_identity)
        self.seed, self.rank = int(seed), int(rank)

    @classmethod
    def from_options(cls, opts: Any, seed: int, rank: int = 0) -> MixingAugment | None:
        """Build from ``train.mixing_augs`` (:class:`irframe.options.MixingOptions`); ``None`` if mixup is off."""
        if opts is None or not opts.mixup:
            return None
        return cls(opts.mixup_beta, opts.use_identity, seed, rank)

    def draw(self, iteration: int, micro: int, batch_size: int) -> tuple[float, np.ndarray] | None:
        """The mixing of one micro-batch: ``(lam, permutation)``, or ``None`` for the identity."""
        rng = np.random.default_rng([self.seed, _TAG_MIX, iteration, micro, self.rank])
        if self.use_identity and rng.integers(0, 2) == 1:
            return None
        lam = float(rng.beta(self.mixup_beta, self.mixup_beta))
        return lam, rng.permutation(batch_size)

    def __call__(self, batch: Mapping[str, Any], iteration: int, micro: int = 0) -> dict[str, Any]:
        """``batch`` with ``lq`` and ``gt`` mixed (other entries unchanged); the input is not modified."""
        if "gt" not in batch or batch["gt"] is None:
            raise OptionsError("train.mixing_augs: mixup needs ground-truth images in the training batches")
        lq, gt = batch["lq"], batch["gt"]
        out = dict(batch)
        drawn = self.draw(iteration, micro, gt.shape[0])
        if drawn is None:
            return out
        lam, perm = drawn
        index = torch.as_tensor(perm, device=gt.device)
        out["gt"] = lam * gt + (1.0 - lam) * gt[index]
        out["lq"] = lam * lq + (1.0 - lam) * lq[index]
        return out
