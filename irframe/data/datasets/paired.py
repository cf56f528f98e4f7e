"""GT/LQ pairs stored side by side (folders or LMDBs), matched by file stem."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from irframe.data.datasets.base import ImageDataset, check_dataroot, check_filename_tmpl, open_backend
from irframe.errors import DataError
from irframe.registry import DATASETS, ExistingFolder

_SHOW = 10  # unmatched names listed in an error


def match_keys(
    gt_keys: list[str], lq_keys: list[str], filename_tmpl: str, gt_root: str, lq_root: str
) -> list[tuple[str, str]]:
    """Pair GT keys with LQ keys ``filename_tmpl.format(gt_key)``; every file must have a partner.

    Raises:
        DataError: listing the GT files without LQ partner and the LQ files without GT partner.
    """
    lq_set = set(lq_keys)
    pairs = [(g, filename_tmpl.format(g)) for g in gt_keys]
    missing_lq = [f"{g} (expected LQ {lq!r})" for g, lq in pairs if lq not in lq_set]
    used = {lq for _g, lq in pairs}
    orphan_lq = [k for k in lq_keys if k not in used]
    if missing_lq or orphan_lq:
        parts = [f"GT {gt_root} and LQ {lq_root} do not pair up (filename_tmpl {filename_tmpl!r})"]
        for what, names in (("GT images without LQ", missing_lq), ("LQ images without GT", orphan_lq)):
            if names:
                more = f" ... and {len(names) - _SHOW} more" if len(names) > _SHOW else ""
                parts.append(f"{len(names)} {what}: {', '.join(names[:_SHOW])}{more}")
        raise DataError("; ".join(parts))
    return pairs


@DATASETS.register()
class PairedImageDataset(ImageDataset):
    """Paired GT/LQ images (deraining, deblurring, real denoising, SR with stored LR images).

    GT and LQ are matched by key (file stem; the LQ stem is ``filename_tmpl.format(gt_stem)``, e.g.
    ``"{}x4"`` for ``baby.png`` / ``babyx4.png``); any unmatched file on either side is an error
    listing them. For SR (``scale > 1``) the GT must be ``scale`` times the LQ (up to ``scale - 1``
    extra pixels, cropped).

    Args:
        dataroot_gt: GT folder, or ``.lmdb`` database with ``io_backend: {type: lmdb}``.
        dataroot_lq: LQ folder / database.
        io_backend: ``{type: disk}`` (default) or ``{type: lmdb}`` (BasicSR layout).
        scale: GT size / LQ size.
        gt_size: GT patch side for random crops (LQ patch ``gt_size // scale``); ``None`` keeps
            whole images (validation/test).
        use_flip: random horizontal flips; use_rot: random vertical flips and transposes (rotations).
        filename_tmpl: LQ stem from the GT stem.
        channels: 3 (RGB) or 1 (gray).
        skip_bad: warn and use the next sample instead of raising on an unreadable file.
        recursive: list images in sub-folders too (keys are relative paths).
        seed: per-sample seed for crops/flips when indexed with plain ints (see datasets.base).
        task: task name put into every sample (multi-task models).
    """

    def __init__(
        self,
        dataroot_gt: ExistingFolder,
        dataroot_lq: ExistingFolder,
        io_backend: dict[str, Any] | None = None,
        scale: int = 1,
        gt_size: int | None = None,
        use_flip: bool = False,
        use_rot: bool = False,
        filename_tmpl: str = "{}",
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
        check_filename_tmpl(filename_tmpl, owner)
        gt_root = check_dataroot(dataroot_gt, "dataroot_gt", owner)
        lq_root = check_dataroot(dataroot_lq, "dataroot_lq", owner)
        self.gt_backend = open_backend(io_backend, gt_root, "dataroot_gt", owner, recursive)
        self.lq_backend = open_backend(io_backend, lq_root, "dataroot_lq", owner, recursive)
        self.pairs = match_keys(self.gt_backend.keys(), self.lq_backend.keys(), filename_tmpl, gt_root, lq_root)

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int, patch_size: int | None, rng: np.random.Generator) -> dict[str, Any]:
        gt_key, lq_key = self.pairs[index]
        gt_src, lq_src = self.gt_backend.describe(gt_key), self.lq_backend.describe(lq_key)
        gt = self.gt_backend.read(gt_key, self.channels)
        lq = self.lq_backend.read(lq_key, self.channels)
        if patch_size is None:
            gt = self.fit_gt_to_lq(gt, lq, self.scale, gt_src, lq_src)
        gt, lq_out = self.crop_and_augment(gt, lq, patch_size, rng, gt_src, lq_src)
        assert lq_out is not None
        return self.to_sample(gt, lq_out, gt_src, lq_src, gt_key.rsplit("/", 1)[-1])
