"""Real-ESRGAN's batched path on the training device: synthesise the LQ of a batch, cut the
patches, and mix batches through a pool of past pairs (its ``RealESRGANModel.feed_data`` and
``_dequeue_and_enqueue``).

A batch of ``RealESRGANDataset`` with ``degrade_on: device`` carries the GT regions (``gt``,
``gt_usm``) and ``degradation``, the collated draws of its samples (:func:`has_draws`). The
training step calls :func:`synthesize` on it (already on the device) and, with a
``queue_size``, passes the result through its :class:`PairPool`.

Everything random comes from the samples' draws (made by the dataset from each sample's seeded
generator), never from a global random state: a fixed seed gives a fixed batch, and a resumed run
synthesises iteration ``i`` exactly as an uninterrupted one (the pool's content and fill level are
part of the step's checkpointed state).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from irframe.data.degradations.realesrgan import degrade_batch
from irframe.errors import DataError, OptionsError

DRAWS = "degradation"
"""The batch entry holding the samples' draws (``RealESRGANDataset`` with ``degrade_on: device``)."""
POOLED = ("lq", "gt", "gt_usm")
"""The batch entries the pair pool keeps (the others, file names and paths, no longer match after a swap)."""


def has_draws(batch: Mapping[str, Any]) -> bool:
    """Whether ``batch`` still has to be degraded (it carries the draws, no ``lq``)."""
    return DRAWS in batch


def synthesize(batch: Mapping[str, Any]) -> dict[str, Any]:
    """``batch`` with its ``lq`` made on the device of its ``gt``: the degradation of ``gt_usm``
    (``gt`` when the dataset does not sharpen) with the samples' draws
    (:func:`~.realesrgan.degrade_batch`), then each sample's patch cut from ``lq``, ``gt`` and
    ``gt_usm`` where its draws say. ``pair_seed`` (one per sample) seeds the pool's shuffles."""
    draws = batch[DRAWS]
    gt = batch["gt"]
    source = batch.get("gt_usm", gt)
    with torch.no_grad():
        lq = degrade_batch(source, draws)
    scale = int(draws["scale"][0])
    patches = {int(p) for p in draws["patch"]}
    if len(patches) != 1:
        raise DataError(f"a batch degraded on the device mixes patch sizes {sorted(patches)}; one per batch is needed")
    patch = patches.pop()
    lq_patch = patch // scale
    tops, lefts = draws["crop_top"].tolist(), draws["crop_left"].tolist()
    out = {k: v for k, v in batch.items() if k != DRAWS}
    corners = list(enumerate(zip(tops, lefts, strict=True)))
    out["lq"] = torch.stack([lq[i, :, t : t + lq_patch, left : left + lq_patch] for i, (t, left) in corners])
    for key in ("gt", "gt_usm"):
        if key in batch:
            img, s = batch[key], scale
            out[key] = torch.stack([img[i, :, t * s : t * s + patch, x * s : x * s + patch] for i, (t, x) in corners])
    out["pair_seed"] = draws["seed"]
    return out


class PairPool:
    """Real-ESRGAN's training-pair pool (``queue_size``): batch synthesis on the device draws one
    resize factor, noise kind and order per batch, so batches mix through a pool of past pairs.

    The first ``queue_size / batch`` batches fill the pool and train as they are; from then on
    every batch shuffles the pool, trains on its first ``batch`` pairs and takes their places.
    The shuffle is seeded by the batch's samples (``pair_seed``) and the number of swaps so far,
    so it is reproducible and survives a resume with the pool's :meth:`state_dict`.

    Args:
        size: how many pairs the pool holds (a multiple of the batch size); 0: no pool.
        where: the option's name in messages (``train.step.queue_size``).
    """

    def __init__(self, size: int, where: str = "queue_size") -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise OptionsError(f"{where}: expected a number of pairs >= 0 (Real-ESRGAN: 180), got {size!r}")
        self.size, self.where = size, where
        self.pool: dict[str, torch.Tensor] = {}
        self.filled = 0
        self.swaps = 0

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """The batch to train on: ``batch`` itself while the pool fills, then pairs from the pool."""
        keys = [k for k in POOLED if isinstance(batch.get(k), torch.Tensor)]
        if self.size == 0 or "lq" not in keys:
            return dict(batch)
        b = int(batch["lq"].shape[0])
        if self.size % b:
            raise OptionsError(
                f"{self.where}: {self.size} is not a multiple of the batch size {b} (Real-ESRGAN: 180 and 12)"
            )
        with torch.no_grad():
            if not self.pool or set(self.pool) != set(keys):
                self.pool = {k: batch[k].new_zeros((self.size, *batch[k].shape[1:])) for k in keys}
                self.filled = 0
            self.pool = {k: v.to(batch[k].device) for k, v in self.pool.items()}
            if self.filled < self.size:
                for k in keys:
                    self.pool[k][self.filled : self.filled + b] = batch[k]
                self.filled += b
                return dict(batch)
            seeds = batch.get("pair_seed")
            entropy = [self.swaps, *(seeds.tolist() if isinstance(seeds, torch.Tensor) else [])]
            order = torch.from_numpy(np.random.default_rng(entropy).permutation(self.size))
            self.swaps += 1
            out = {k: v for k, v in batch.items() if k not in ("name", "gt_path", "lq_path")}
            for k in keys:
                shuffled = self.pool[k][order.to(self.pool[k].device)]
                out[k] = shuffled[:b].clone()
                shuffled[:b] = batch[k]
                self.pool[k] = shuffled
            return out

    def state_dict(self) -> dict[str, Any]:
        """The pool's pairs (on the CPU), fill level and number of swaps."""
        return {
            "size": self.size,
            "filled": self.filled,
            "swaps": self.swaps,
            "pairs": {k: v.detach().cpu() for k, v in self.pool.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if int(state.get("size", self.size)) != self.size:
            raise OptionsError(
                f"{self.where}: the checkpoint's pool holds {state['size']} pairs, the options say {self.size}"
            )
        self.filled, self.swaps = int(state["filled"]), int(state["swaps"])
        self.pool = {k: v.clone() for k, v in state["pairs"].items()}
