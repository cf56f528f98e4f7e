"""Shared machinery of the image datasets: sample keys, per-sample randomness, bad-file handling.

Keys: ``dataset[i]`` takes an int or a :class:`~irframe.data.samplers.SampleKey`-like tuple
``(index, patch_size[, seed])`` (what the batch samplers yield). Randomness of one sample (crop,
flips, online degradation) comes from one :class:`numpy.random.Generator`:

* the key's ``seed`` when present (batch samplers: reproducible and different at every draw);
* else ``default_rng([seed, index])`` when the dataset has a ``seed`` option (validation: the same
  sample gets the same degradation every time: "seed + index");
* else fresh OS entropy (a plain training DataLoader: different at every draw, not reproducible).

Bad files (missing, empty, truncated, not an image) raise :class:`DataError` naming the file, unless
the dataset has ``skip_bad=True``: then a warning names the file and the next good sample is used
in its place (the dataset length does not change, so samplers stay valid).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from irframe.data.backends import Backend, build_backend
from irframe.data.io import Channels, img2tensor
from irframe.data.samplers import SampleKey
from irframe.data.transforms import augment, paired_random_crop
from irframe.errors import DataError, OptionsError


def parse_key(key: Any, length: int, owner: str) -> SampleKey:
    """Normalise ``dataset[key]`` (int or ``(index, patch_size[, seed])``) to a :class:`SampleKey`."""
    if isinstance(key, (int, np.integer)):
        key = SampleKey(int(key))
    elif isinstance(key, (tuple, list)) and len(key) in (2, 3):
        key = SampleKey(*key)
    else:
        raise TypeError(f"{owner}: index must be an int or (index, patch_size[, seed]), got {key!r}")
    index = int(key.index)
    if not -length <= index < length:
        raise IndexError(f"{owner}: index {index} out of range for {length} samples")
    return SampleKey(index % length, key.patch_size, key.seed)


def sample_rng(key: SampleKey, seed: int | None) -> np.random.Generator:
    """The generator of one sample's randomness (see the module doc for the precedence)."""
    if key.seed is not None:
        return np.random.default_rng(key.seed)
    if seed is not None:
        return np.random.default_rng([seed, key.index])
    return np.random.default_rng()


def check_dataroot(value: Any, key: str, owner: str) -> str:
    """A dataroot option must be a non-empty path string."""
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise OptionsError(f"{owner}.{key}: expected a folder or .lmdb path, got {value!r}")
    return str(value)


def check_filename_tmpl(value: str, owner: str, stem: str = "GT") -> None:
    """``filename_tmpl`` maps a ``stem`` (GT, target) stem to the paired file's stem: it needs ``{}``."""
    if "{}" not in value:
        raise OptionsError(f"{owner}.filename_tmpl: must contain '{{}}' (the {stem} stem), got {value!r}")


def open_backend(io_backend: Mapping[str, Any] | None, root: str, key: str, owner: str, recursive: bool) -> Backend:
    """Build the backend for option ``key`` and make sure it lists at least one image."""
    backend = build_backend(io_backend, root, where=f"{owner}.io_backend", recursive=recursive)
    try:
        keys = backend.keys()
    except DataError as exc:
        raise DataError(f"{owner}.{key}: {exc}") from None
    if not keys:
        raise DataError(f"{owner}.{key}: no images in {root}")
    return backend


class ImageDataset(Dataset):
    """Base of the irframe datasets: key parsing, crops/augmentations, ``skip_bad`` retries."""

    def __init__(
        self,
        *,
        gt_size: int | None,
        use_flip: bool,
        use_rot: bool,
        scale: int,
        channels: int,
        skip_bad: bool,
        seed: int | None,
        task: str | None,
    ) -> None:
        owner = type(self).__name__
        if gt_size is not None and gt_size < 1:
            raise OptionsError(f"{owner}.gt_size: must be a positive patch size, got {gt_size!r}")
        if scale < 1:
            raise OptionsError(f"{owner}.scale: must be >= 1, got {scale!r}")
        if gt_size is not None and gt_size % scale:
            raise OptionsError(f"{owner}.gt_size: {gt_size} is not a multiple of scale {scale}")
        if channels not in (1, 3):
            raise OptionsError(f"{owner}.channels: expected 1 or 3, got {channels!r}")
        if seed is not None and seed < 0:
            raise OptionsError(f"{owner}.seed: expected a non-negative integer, got {seed!r}")
        self.gt_size, self.use_flip, self.use_rot = gt_size, bool(use_flip), bool(use_rot)
        self.scale, self.skip_bad = int(scale), bool(skip_bad)
        self.channels: Channels = 1 if channels == 1 else 3
        self.seed, self.task = seed, task
        self._bad: set[int] = set()  # indices found unreadable in this process (skip_bad)

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int, patch_size: int | None, rng: np.random.Generator) -> dict[str, Any]:
        """Build the sample ``index`` (subclasses); ``patch_size`` is the GT patch or ``None``."""
        raise NotImplementedError

    def __getitem__(self, key: Any) -> dict[str, Any]:
        owner = type(self).__name__
        key = parse_key(key, len(self), owner)
        patch = key.patch_size if key.patch_size is not None else self.gt_size
        if patch is not None and int(patch) % self.scale:
            raise DataError(f"{owner}: patch size {patch} is not a multiple of scale {self.scale}")
        rng = sample_rng(key, self.seed)
        index = key.index
        for _attempt in range(len(self)):
            if index not in self._bad:
                try:
                    sample = self.load(index, None if patch is None else int(patch), rng)
                except DataError as exc:
                    if not self.skip_bad:
                        raise
                    self._bad.add(index)
                    warnings.warn(f"{owner}: skipping sample {index}: {exc}", RuntimeWarning, stacklevel=2)
                else:
                    if self.task is not None:
                        sample["task"] = self.task
                    return sample
            index = (index + 1) % len(self)
        raise DataError(f"{owner}: every sample is unreadable (skip_bad found no good file)")

    # -- helpers for subclasses ------------------------------------------------------------------
    def crop_and_augment(
        self,
        gt: np.ndarray,
        lq: np.ndarray | None,
        patch: int | None,
        rng: np.random.Generator,
        gt_source: str,
        lq_source: str,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Aligned random crop (GT patch ``patch``, LQ ``patch // scale``) and flips/rotations."""
        if patch is not None:
            if lq is None:
                raise AssertionError("crop_and_augment without LQ: crop the GT with random_crop")
            gt, lq = paired_random_crop(gt, lq, patch // self.scale, self.scale, rng, gt_source, lq_source)
        if self.use_flip or self.use_rot:
            imgs = augment([gt] if lq is None else [gt, lq], rng, self.use_flip, self.use_rot)
            gt, lq = imgs[0], (imgs[1] if lq is not None else None)
        return gt, lq

    @staticmethod
    def fit_gt_to_lq(gt: np.ndarray, lq: np.ndarray, scale: int, gt_source: str, lq_source: str) -> np.ndarray:
        """Crop GT to exactly ``scale x`` the LQ size when it is larger by less than ``scale`` pixels
        (BasicSR's validation rule for GT sizes that are not multiples of the scale)."""
        lh, lw = lq.shape[:2]
        gh, gw = gt.shape[:2]
        if (gh, gw) == (lh * scale, lw * scale):
            return gt
        if lh * scale <= gh < (lh + 1) * scale and lw * scale <= gw < (lw + 1) * scale:
            return gt[: lh * scale, : lw * scale]
        raise DataError(
            f"{gt_source} is {gh}x{gw} but {lq_source} is {lh}x{lw}; with scale {scale} the GT must be "
            f"{lh * scale}x{lw * scale} (up to {scale - 1} extra pixels)"
        )

    @staticmethod
    def to_sample(
        gt: np.ndarray | None, lq: np.ndarray, gt_path: str | None, lq_path: str, name: str
    ) -> dict[str, Any]:
        """The sample dict of the project contract (tensors CHW float32 in [0, 1])."""
        sample: dict[str, Any] = {"lq": img2tensor(lq), "lq_path": lq_path, "name": name}
        if gt is not None:
            sample["gt"] = img2tensor(gt)
            sample["gt_path"] = gt_path
        return sample


def build_pipeline(cfg: Any, owner: str) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """Build a dataset's ``degradation`` option (a mapping, or a list meaning ``Compose``)."""
    from irframe.data.degradations.compose import build_degradation

    return build_degradation(cfg, f"{owner}.degradation")


__all__ = ["ImageDataset", "build_pipeline", "check_dataroot", "open_backend", "parse_key", "sample_rng"]
