"""Single-folder datasets: LQ-only test inputs, and GT images degraded on the fly."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np

from irframe.data.datasets.base import ImageDataset, build_pipeline, check_dataroot, degrade_to_scale, open_backend
from irframe.data.transforms import augment, mod_crop, random_crop
from irframe.registry import DATASETS, ExistingFolder, Nested


@DATASETS.register()
class SingleImageDataset(ImageDataset):
    """LQ images without ground truth (inference, Kaggle test sets): samples carry no ``gt``.

    Args:
        dataroot_lq: folder / ``.lmdb`` of inputs.
        io_backend: ``{type: disk}`` (default) or ``{type: lmdb}``.
        channels: 3 (RGB) or 1 (gray).
        skip_bad: warn and use the next image instead of raising on an unreadable file.
        recursive: list images in sub-folders too.
        task: task name put into every sample.
    """

    def __init__(
        self,
        dataroot_lq: ExistingFolder,
        io_backend: dict[str, Any] | None = None,
        channels: Literal[1, 3] = 3,
        skip_bad: bool = False,
        recursive: bool = False,
        task: str | None = None,
    ) -> None:
        super().__init__(
            gt_size=None, use_flip=False, use_rot=False, scale=1,
            channels=channels, skip_bad=skip_bad, seed=None, task=task,
        )
        owner = type(self).__name__
        root = check_dataroot(dataroot_lq, "dataroot_lq", owner)
        self.backend = open_backend(io_backend, root, "dataroot_lq", owner, recursive)
        self.keys = self.backend.keys()

    def __len__(self) -> int:
        return len(self.keys)

    def load(self, index: int, patch_size: int | None, rng: np.random.Generator) -> dict[str, Any]:
        key = self.keys[index]
        lq = self.backend.read(key, self.channels)
        if patch_size is not None:
            lq = random_crop(lq, patch_size, rng, self.backend.describe(key))
        return self.to_sample(None, lq, None, self.backend.describe(key), key.rsplit("/", 1)[-1])


@DATASETS.register()
class OnlineDegradationDataset(ImageDataset):
    """Clean GT images; the LQ input is synthesised on the fly by a degradation pipeline.

    Order per sample: read GT -> random crop (``gt_size`` or the sampler's patch size) and
    flips/rotations -> mod-crop to a multiple of ``scale`` -> ``degradation(gt, rng)`` -> LQ. All
    randomness comes from one per-sample generator, so validation with ``seed`` set gets the same
    LQ for the same image every time (seed + index), and batch-sampler keys make training
    reproducible too.

    Args:
        dataroot_gt: folder / ``.lmdb`` of clean images.
        degradation: ``{type: Name, ...}`` or a list (a ``Compose``) of degradations.
        io_backend: ``{type: disk}`` (default) or ``{type: lmdb}``.
        scale: GT size / LQ size the pipeline produces (e.g. 4 with ``BicubicDownsample``); checked.
        gt_size: GT patch side for random crops; ``None`` keeps whole images.
        use_flip: random horizontal flips; use_rot: random vertical flips and transposes.
        channels: 3 (RGB) or 1 (gray).
        skip_bad: warn and use the next image instead of raising on an unreadable file.
        recursive: list images in sub-folders too.
        seed: per-sample seed (``default_rng([seed, index])``) when indexed with plain ints.
        task: task name put into every sample.
    """

    def __init__(
        self,
        dataroot_gt: ExistingFolder,
        degradation: Annotated[dict[str, Any] | list[dict[str, Any]], Nested("degradation")],
        io_backend: dict[str, Any] | None = None,
        scale: int = 1,
        gt_size: int | None = None,
        use_flip: bool = False,
        use_rot: bool = False,
        channels: Literal[1, 3] = 3,
        skip_bad: bool = False,
        recursive: bool = False,
        seed: int | None = None,
        task: str | None = None,
    ) -> None:
        super().__init__(
            gt_size=gt_size, use_flip=use_flip, use_rot=use_rot, scale=scale,
            channels=channels, skip_bad=skip_bad, seed=seed, task=task,
        )
        owner = type(self).__name__
        root = check_dataroot(dataroot_gt, "dataroot_gt", owner)
        self.degradation = build_pipeline(degradation, owner)
        self.backend = open_backend(io_backend, root, "dataroot_gt", owner, recursive)
        self.keys = self.backend.keys()

    def __len__(self) -> int:
        return len(self.keys)

    def load(self, index: int, patch_size: int | None, rng: np.random.Generator) -> dict[str, Any]:
        key = self.keys[index]
        src = self.backend.describe(key)
        gt = self.backend.read(key, self.channels)
        if patch_size is not None:
            gt = random_crop(gt, patch_size, rng, src)
        if self.use_flip or self.use_rot:
            gt = augment([gt], rng, self.use_flip, self.use_rot)[0]
        gt = np.ascontiguousarray(mod_crop(gt, self.scale))
        lq = degrade_to_scale(type(self).__name__, self.degradation, gt, self.scale, rng, src)
        return self.to_sample(gt, lq, src, src, key.rsplit("/", 1)[-1])
