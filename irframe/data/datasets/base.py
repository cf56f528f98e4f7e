"""Shared machinery of the image datasets: sample keys, per-sample randomness, bad-file handling.

Keys: ``dataset[i]`` takes an int or a :class:`~irframe.data.samplers.SampleKey`-like tuple
``(index, patch_size[, seed])`` (what the batch samplers yield). Randomness of one sample (crop,
flips, online degradation) comes from one :class:`numpy.random.Generator`:

* the key's ``seed`` when present (batch samplers: reproducible and different at every draw);
* else ``default_rng([seed, index])`` when the dataset has a ``seed`` option (validation: the same
  sample gets the same degradation every time: "seed + index");
* else fresh OS entropy (a plain training DataLoader: different at every draw, not reproducible).

Bad files (missing, empty, truncated, not an image) raise :class:`DataError` naming the file, unless
the dataset has ``skip_bad=True``. Then:

* ``dataset[key]`` (training) warns and uses the next good sample in its place: the dataset length
  does not change, so samplers stay valid and batches stay full;
* :class:`EvalSamples` (validation, ``tools/test.py``) gives every sample exactly once and a bad one
  as a :class:`SkippedSample`, which :func:`collate_good` leaves out: an evaluation never scores a
  neighbour twice in a bad sample's place.

The warnings are summarised per dataset and process: the first :data:`SHOW_BAD` bad samples are
named one by one, then only a running count is printed (at 10, 100, 1000... bad samples), so a
folder of 100k empty files prints a dozen lines, not 100k.
"""

from __future__ import annotations

import os
import string
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset, default_collate

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
    """``filename_tmpl`` maps a ``stem`` (GT, target) stem to the paired file's stem: it holds ``{}``
    (or ``{0}``) exactly once and no other replacement field (``'{}_{}'``, ``'{}{x}'``, ``'{}}'`` are one-line
    :class:`OptionsError` naming the option, not an ``IndexError``/``KeyError`` while pairing).
    Literal braces are written ``{{`` and ``}}``, as in :meth:`str.format`."""
    expect = f"must contain '{{}}' exactly once (the {stem} stem; literal braces are written '{{{{' and '}}}}')"
    if not isinstance(value, str):
        raise OptionsError(f"{owner}.filename_tmpl: {expect}, got {value!r}")
    try:
        fields = [(name, spec, conv) for _text, name, spec, conv in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:  # "Single '}' encountered in format string"
        raise OptionsError(f"{owner}.filename_tmpl: {expect}, got {value!r} ({exc})") from None
    if fields not in ([("", "", None)], [("0", "", None)]):
        found = ", ".join("{" + n + (f"!{c}" if c else "") + (f":{f}" if f else "") + "}" for n, f, c in fields)
        raise OptionsError(f"{owner}.filename_tmpl: {expect}, got {value!r} (replacement fields: {found or 'none'})")


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


SHOW_BAD = 5  # bad samples named one by one per dataset and process under skip_bad; then only counted


@dataclass(frozen=True)
class SkippedSample:
    """What :meth:`ImageDataset.sample_or_skip` gives for a bad sample under ``skip_bad``: its index
    and why (picklable, so it crosses DataLoader workers); :func:`collate_good` leaves it out."""

    index: int
    reason: str


def sample_or_skip(dataset: Any, key: Any) -> dict[str, Any] | SkippedSample:
    """Exactly sample ``key`` of ``dataset``, never a replacement: the dataset's own
    ``sample_or_skip`` when it has one (irframe datasets), else ``dataset[key]``."""
    exact = getattr(dataset, "sample_or_skip", None)
    return exact(key) if callable(exact) else dataset[key]


class EvalSamples(Dataset):
    """Every sample of ``dataset`` once, in order (or the samples ``indices``), for validation and
    testing: under ``skip_bad`` a bad sample comes as a :class:`SkippedSample` instead of being
    replaced by its neighbour (which would then be scored twice). Load it with
    ``DataLoader(EvalSamples(ds), collate_fn=collate_good)``: a batch is ``None`` when all of its
    samples were skipped."""

    def __init__(self, dataset: Any, indices: Sequence[int] | None = None) -> None:
        self.dataset = dataset
        self.indices = list(range(len(dataset))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any] | SkippedSample:
        return sample_or_skip(self.dataset, self.indices[i])


def collate_good(batch: list[Any]) -> Any:
    """``default_collate`` of the samples that were not skipped (:class:`SkippedSample`), or ``None``."""
    good = [sample for sample in batch if not isinstance(sample, SkippedSample)]
    return default_collate(good) if good else None


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
        self._bad_count = 0  # how many were warned about (see _warn_bad)

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int, patch_size: int | None, rng: np.random.Generator) -> dict[str, Any]:
        """Build the sample ``index`` (subclasses); ``patch_size`` is the GT patch or ``None``."""
        raise NotImplementedError

    def __getitem__(self, key: Any) -> dict[str, Any]:
        """Sample ``key``; under ``skip_bad`` a bad sample is replaced by the next good one (training:
        batches stay full). Evaluation uses :meth:`sample_or_skip`, which never replaces."""
        owner = type(self).__name__
        key, patch, rng = self._prepare(key)
        index = key.index
        for _attempt in range(len(self)):
            if index not in self._bad:
                sample = self._try_load(index, patch, rng)
                if not isinstance(sample, SkippedSample):
                    return sample
            index = (index + 1) % len(self)
        raise DataError(f"{owner}: every sample is unreadable (skip_bad found no good file)")

    def sample_or_skip(self, key: Any) -> dict[str, Any] | SkippedSample:
        """Exactly sample ``key``: a bad one is a :class:`SkippedSample` under ``skip_bad`` (warned
        about, never replaced by another sample), else its :class:`DataError` is raised."""
        key, patch, rng = self._prepare(key)
        if key.index in self._bad:
            return SkippedSample(key.index, "found unreadable before (warned then)")
        return self._try_load(key.index, patch, rng)

    def _prepare(self, key: Any) -> tuple[SampleKey, int | None, np.random.Generator]:
        owner = type(self).__name__
        key = parse_key(key, len(self), owner)
        patch = key.patch_size if key.patch_size is not None else self.gt_size
        if patch is not None and int(patch) % self.scale:
            raise DataError(f"{owner}: patch size {patch} is not a multiple of scale {self.scale}")
        return key, None if patch is None else int(patch), sample_rng(key, self.seed)

    def _try_load(self, index: int, patch: int | None, rng: np.random.Generator) -> dict[str, Any] | SkippedSample:
        """Sample ``index``, or (under ``skip_bad``) a :class:`SkippedSample` after a summarised warning."""
        try:
            sample = self.load(index, patch, rng)
        except DataError as exc:
            if not self.skip_bad:
                raise
            self._bad.add(index)
            self._warn_bad(index, exc)
            return SkippedSample(index, str(exc))
        if self.task is not None:
            sample["task"] = self.task
        return sample

    def _warn_bad(self, index: int, exc: DataError) -> None:
        """Name the first :data:`SHOW_BAD` bad samples, then print a running count at 10, 100, 1000..."""
        owner = type(self).__name__
        self._bad_count += 1
        n = self._bad_count
        if n <= SHOW_BAD:
            more = (
                f" (further bad samples are counted, not named; this process has found {n} so far)"
                if n == SHOW_BAD
                else ""
            )
            warnings.warn(f"{owner}: skipping sample {index}: {exc}{more}", RuntimeWarning, stacklevel=4)
        elif n >= 10 and str(n).rstrip("0") == "1":  # 10, 100, 1000, ...
            warnings.warn(
                f"{owner}: {n} bad samples skipped so far in this process (the last: sample {index}: {exc})",
                RuntimeWarning,
                stacklevel=4,
            )

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


def degrade_to_scale(
    owner: str,
    degradation: Callable[[np.ndarray, np.random.Generator], np.ndarray],
    image: np.ndarray,
    scale: int,
    rng: np.random.Generator,
    src: str,
) -> np.ndarray:
    """``degradation(image, rng)``, checked to be ``image`` shrunk by ``scale``.

    Both failures are configuration errors, not bad data (the file was read fine), so they raise
    :class:`OptionsError`, which ``skip_bad`` never swallows: e.g. a ``BicubicDownsample`` scale that
    differs from the dataset's ``scale``.
    """
    try:
        lq = degradation(image, rng)
    except DataError as exc:
        raise OptionsError(f"{owner}.degradation failed on {src}: {exc}") from None
    expected = (image.shape[0] // scale, image.shape[1] // scale, image.shape[2])
    if lq.shape != expected:
        raise OptionsError(
            f"{owner}: the degradation turned {src} ({image.shape[0]}x{image.shape[1]}) into "
            f"{lq.shape[0]}x{lq.shape[1]}x{lq.shape[2]}, expected {expected[0]}x{expected[1]}x{expected[2]} "
            f"for scale {scale}"
        )
    return lq


def build_pipeline(cfg: Any, owner: str) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """Build a dataset's ``degradation`` option (a mapping, or a list meaning ``Compose``)."""
    from irframe.data.degradations.compose import build_degradation

    return build_degradation(cfg, f"{owner}.degradation")


__all__ = [
    "SHOW_BAD",
    "EvalSamples",
    "ImageDataset",
    "SkippedSample",
    "build_pipeline",
    "check_dataroot",
    "collate_good",
    "open_backend",
    "parse_key",
    "sample_or_skip",
    "sample_rng",
]
