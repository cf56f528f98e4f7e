"""Dual-pixel defocus deblurring: left and right views + a sharp target (Restormer's DPDD task).

The layout of Restormer's ``Dataset_DefocusDeblur_DualPixel_16bit``: three folders (or LMDBs),
``dataroot_lqL`` (left views), ``dataroot_lqR`` (right views) and ``dataroot_gt`` (sharp targets),
matched by file stem (``filename_tmpl`` gives the view stem from the target stem). DPDD stores
16-bit PNGs; they are read to ``[0, 1]`` by dividing by 65535 (as Restormer's ``imfrombytesDP``),
8-bit files by 255. The sample's ``lq`` is the two views stacked on the channel axis,
``cat(L, R)`` (6 channels, left first, as the official dataset), its ``gt`` the 3-channel target:
the input of ``Restormer(inp_channels=6, out_channels=3, dual_pixel_task=True)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from irframe.data.datasets.base import ImageDataset, check_dataroot, check_filename_tmpl, open_backend
from irframe.data.datasets.paired import match_keys
from irframe.errors import DataError
from irframe.registry import DATASETS, ExistingFolder

__all__ = ["DualPixelDataset"]


@DATASETS.register()
class DualPixelDataset(ImageDataset):
    """Dual-pixel triplets: left view, right view, sharp target (6 channels in, 3 out).

    Every target needs both views (``filename_tmpl.format(target_stem)`` in each view folder);
    any unmatched file is an error listing them. The views and the target must have the same size.
    Random crops, flips and rotations are the same for the three images (the views are stacked
    first, then cropped and transformed together with the target).

    Args:
        dataroot_gt: sharp targets (folder, or ``.lmdb`` with ``io_backend: {type: lmdb}``).
        dataroot_lqL: left views.
        dataroot_lqR: right views.
        gt_size: patch side for random crops; ``None`` keeps whole images (validation/test).
        use_flip: random horizontal flips; use_rot: random vertical flips and transposes.
        io_backend: ``{type: disk}`` (default) or ``{type: lmdb}`` (BasicSR layout), for all three.
        filename_tmpl: view stem from the target stem.
        skip_bad: warn and use the next sample instead of raising on an unreadable file.
        recursive: list images in sub-folders too (keys are relative paths).
        seed: per-sample seed for crops/flips when indexed with plain ints (see datasets.base).
        task: task name put into every sample (multi-task models).
    """

    def __init__(
        self,
        dataroot_gt: ExistingFolder,
        dataroot_lqL: ExistingFolder,
        dataroot_lqR: ExistingFolder,
        gt_size: int | None = None,
        use_flip: bool = False,
        use_rot: bool = False,
        io_backend: dict[str, Any] | None = None,
        filename_tmpl: str = "{}",
        skip_bad: bool = False,
        recursive: bool = False,
        seed: int | None = None,
        task: str | None = None,
    ) -> None:
        super().__init__(
            gt_size=gt_size, use_flip=use_flip, use_rot=use_rot, scale=1,
            channels=3, skip_bad=skip_bad, seed=seed, task=task,
        )
        owner = type(self).__name__
        check_filename_tmpl(filename_tmpl, owner, stem="target")
        gt_root = check_dataroot(dataroot_gt, "dataroot_gt", owner)
        left_root = check_dataroot(dataroot_lqL, "dataroot_lqL", owner)
        right_root = check_dataroot(dataroot_lqR, "dataroot_lqR", owner)
        self.gt_backend = open_backend(io_backend, gt_root, "dataroot_gt", owner, recursive)
        self.left_backend = open_backend(io_backend, left_root, "dataroot_lqL", owner, recursive)
        self.right_backend = open_backend(io_backend, right_root, "dataroot_lqR", owner, recursive)
        gt_keys = self.gt_backend.keys()
        left = match_keys(gt_keys, self.left_backend.keys(), filename_tmpl, gt_root, left_root)
        right = match_keys(gt_keys, self.right_backend.keys(), filename_tmpl, gt_root, right_root)
        self.triplets = [(g, lk, rk) for (g, lk), (_g, rk) in zip(left, right)]

    def __len__(self) -> int:
        return len(self.triplets)

    def load(self, index: int, patch_size: int | None, rng: np.random.Generator) -> dict[str, Any]:
        gt_key, left_key, right_key = self.triplets[index]
        gt_src = self.gt_backend.describe(gt_key)
        left_src, right_src = self.left_backend.describe(left_key), self.right_backend.describe(right_key)
        gt = self.gt_backend.read(gt_key, 3)
        left = self.left_backend.read(left_key, 3)
        right = self.right_backend.read(right_key, 3)
        for img, src in ((left, left_src), (right, right_src)):
            if img.shape != gt.shape:
                raise DataError(
                    f"{src} is {img.shape[0]}x{img.shape[1]} but its target {gt_src} is "
                    f"{gt.shape[0]}x{gt.shape[1]}; dual-pixel views and target must have the same size"
                )
        views = np.concatenate([left, right], axis=2)  # cropped and transformed as one: same place, same flip
        gt, lq = self.crop_and_augment(gt, views, patch_size, rng, gt_src, left_src)
        assert lq is not None
        sample = self.to_sample(gt, lq, gt_src, left_src, gt_key.rsplit("/", 1)[-1])
        sample["lqR_path"] = right_src
        return sample
