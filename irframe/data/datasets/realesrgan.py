"""Real-ESRGAN's training data: clean GT images, degraded on the fly by the high-order pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np

from irframe.data.backends import Backend
from irframe.data.datasets.base import ImageDataset, build_pipeline, check_dataroot, degrade_to_scale, open_backend
from irframe.data.datasets.paired import PairedImageDataset
from irframe.data.degradations.realesrgan import RealESRGANDegradation
from irframe.data.io import Channels, img2tensor, imread
from irframe.data.transforms import augment, mod_crop, paired_random_crop, random_crop
from irframe.errors import DataError, OptionsError
from irframe.registry import DATASETS, DEGRADATIONS, ExistingFile, ExistingFolder, Nested


class MetaInfoFiles:
    """The GT files a Real-ESRGAN ``meta_info`` list names: one path per line, relative to the data
    root (``DF2K_HR_sub/000001_s001.png``); blank lines are skipped. Every file must exist."""

    def __init__(self, meta_info: str, root: str, owner: str) -> None:
        self.root = root
        try:
            # Lines end at "\n" only (as Real-ESRGAN reads them): a U+2028 inside a file name stays in it.
            lines = [line.removesuffix("\r") for line in Path(meta_info).read_text().split("\n")]
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{owner}.meta_info: cannot read {meta_info} ({exc})") from None
        self.paths: list[str] = []
        for number, line in enumerate(lines, 1):
            rel = line.strip()
            if not rel:
                continue
            if not (Path(root) / rel).is_file():
                raise DataError(f"{owner}.meta_info: {meta_info} line {number} names {rel}, not found in {root}")
            self.paths.append(rel)
        if not self.paths:
            raise DataError(f"{owner}.meta_info: {meta_info} lists no images")

    def keys(self) -> list[str]:
        return self.paths

    def describe(self, key: str) -> str:
        return str(Path(self.root) / key)

    def read(self, key: str, channels: Channels = 3) -> np.ndarray:
        return imread(self.describe(key), channels)


def crop_or_pad(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Real-ESRGAN's GT preparation: pad the bottom/right to at least ``size`` (reflect-101, as its
    ``cv2.copyMakeBorder``), then a random ``size x size`` crop."""
    h, w = img.shape[:2]
    if h < size or w < size:
        img = np.pad(img, ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0)), mode="reflect")
    return random_crop(img, size, rng)


@DATASETS.register()
class RealESRGANDataset(ImageDataset):
    """Real-ESRGAN's synthetic training pairs: GT images, LQ made by the high-order degradation.

    Per sample, all randomness from the sample's generator (``seed`` / sampler keys, see
    :mod:`irframe.data.datasets.base`): read the GT -> flips/rotations -> pad/crop to
    ``crop_pad_size`` (Real-ESRGAN: 400, so its degradations see more than the patch) -> USM-sharpen
    (``gt_usm``) -> ``degradation`` (default: ``RealESRGANDegradation`` with this ``scale``) -> an
    aligned random crop of ``gt_size`` (GT) / ``gt_size / scale`` (LQ). Without a patch size
    (validation) whole images are degraded (mod-cropped to ``scale``).

    With ``degrade_on: device`` the sample stops before the degradation, as Real-ESRGAN's dataset
    does: it carries the ``crop_pad_size`` GT (and its sharpened copy) and ``degradation``, the
    sample's draws (kernels, noise levels and seeds, JPEG qualities, where the patch is cut); the
    training step degrades the whole batch on its device and cuts the patches
    (:func:`irframe.data.degradations.realesrgan_batch.synthesize`), with a pool of past pairs
    (``train.step.queue_size``). The same seed gives the same draws either way.

    Samples carry ``gt`` (as read), ``gt_usm`` (sharpened, when ``gt_usm``) and ``lq``. Real-ESRGAN
    degrades the sharpened GT and trains its pixel and perceptual losses on it (``l1_gt_usm``,
    ``percep_gt_usm``), the discriminator on either (``gan_gt_usm``): the training step picks.

    Args:
        dataroot_gt: folder (or ``.lmdb`` with ``io_backend: {type: lmdb}``) of clean images.
        meta_info: a list of image paths relative to ``dataroot_gt``, one per line (Real-ESRGAN's
            ``meta_info``); without it every image of the folder is used.
        io_backend: ``{type: disk}`` (default) or ``{type: lmdb}``.
        degradation: the pipeline; a ``RealESRGANDegradation`` mapping without ``scale`` gets this
            dataset's.
        scale: GT size / LQ size.
        gt_size: GT patch side (a multiple of ``scale``); ``None`` keeps whole images.
        crop_pad_size: side of the GT region degraded before the patch is cut (a multiple of
            ``scale``, at least ``gt_size``); ``None``: degrade the patch itself (faster, more
            border effects).
        use_flip: random horizontal flips; use_rot: random vertical flips and transposes.
        gt_usm: USM-sharpen the GT before degrading it, and return the sharpened one as ``gt_usm``.
        usm_sharpener: the sharpening (default ``{type: USMSharp}``: weight 0.5, radius 50,
            threshold 10, as Real-ESRGAN).
        channels: 3 (RGB) or 1 (gray).
        skip_bad: warn and use the next image instead of raising on an unreadable file.
        recursive: list images in sub-folders too (no ``meta_info``).
        seed: per-sample seed (``default_rng([seed, index])``) when indexed with plain ints.
        degrade_on: ``workers`` (each sample degraded in the data workers, every choice its own)
            or ``device`` (batched on the training device, Real-ESRGAN's way; needs ``gt_size`` and
            a ``RealESRGANDegradation``).
    """

    def __init__(
        self,
        dataroot_gt: ExistingFolder,
        meta_info: ExistingFile | None = None,
        io_backend: dict[str, Any] | None = None,
        degradation: Annotated[dict[str, Any] | list[dict[str, Any]] | None, Nested("degradation")] = None,
        scale: int = 4,
        gt_size: int | None = 256,
        crop_pad_size: int | None = 400,
        use_flip: bool = True,
        use_rot: bool = False,
        gt_usm: bool = True,
        usm_sharpener: Annotated[dict[str, Any] | None, Nested("degradation")] = None,
        channels: Literal[1, 3] = 3,
        skip_bad: bool = False,
        recursive: bool = False,
        seed: int | None = None,
        degrade_on: Literal["workers", "device"] = "workers",
    ) -> None:
        super().__init__(
            gt_size=gt_size,
            use_flip=use_flip,
            use_rot=use_rot,
            scale=scale,
            channels=channels,
            skip_bad=skip_bad,
            seed=seed,
            task=None,
        )
        owner = type(self).__name__
        if crop_pad_size is not None:
            if crop_pad_size % scale:
                raise OptionsError(f"{owner}.crop_pad_size: {crop_pad_size} is not a multiple of scale {scale}")
            if gt_size is not None and crop_pad_size < gt_size:
                raise OptionsError(f"{owner}.crop_pad_size: {crop_pad_size} is smaller than gt_size {gt_size}")
        self.crop_pad_size = crop_pad_size
        root = check_dataroot(dataroot_gt, "dataroot_gt", owner)
        if degradation is None:
            degradation = {"type": "RealESRGANDegradation", "scale": scale}
        elif isinstance(degradation, Mapping) and degradation.get("type") == "RealESRGANDegradation":
            degradation = {"scale": scale, **degradation}
        self.degradation = build_pipeline(degradation, owner)
        own_scale = getattr(self.degradation, "scale", scale)
        if own_scale != scale:
            raise OptionsError(f"{owner}.degradation.scale: {own_scale} differs from the dataset's scale {scale}")
        if degrade_on not in ("workers", "device"):
            raise OptionsError(f"{owner}.degrade_on: expected workers or device, got {degrade_on!r}")
        self.on_device = degrade_on == "device"
        if self.on_device and not isinstance(self.degradation, RealESRGANDegradation):
            raise OptionsError(
                f"{owner}.degrade_on: device batches RealESRGANDegradation only; a "
                f"{type(self.degradation).__name__} pipeline runs in the workers (degrade_on: workers)"
            )
        if self.on_device and gt_size is None:
            raise OptionsError(
                f"{owner}.degrade_on: device degrades batches of equal patches; set gt_size (whole images, as "
                "for validation, are degraded in the workers: degrade_on: workers)"
            )
        self.gt_usm = bool(gt_usm)
        self.usm = DEGRADATIONS.build(usm_sharpener or {"type": "USMSharp"}, path=f"{owner}.usm_sharpener")
        self.files: Backend | MetaInfoFiles
        if meta_info is not None and (io_backend or {}).get("type", "disk") == "disk":
            if recursive:
                raise OptionsError(f"{owner}.recursive: meta_info lists the files; recursive applies to folders")
            self.files = MetaInfoFiles(meta_info, root, owner)
        else:  # a folder, or an LMDB (whose own meta_info.txt lists its keys)
            self.files = open_backend(io_backend, root, "dataroot_gt", owner, recursive)
        self.keys = self.files.keys()

    def __len__(self) -> int:
        return len(self.keys)

    def load(self, index: int, patch_size: int | None, rng: np.random.Generator) -> dict[str, Any]:
        key = self.keys[index]
        src = self.files.describe(key)
        gt = self.files.read(key, self.channels)
        if self.use_flip or self.use_rot:
            gt = augment([gt], rng, self.use_flip, self.use_rot)[0]
        if patch_size is not None:
            if self.crop_pad_size is not None:
                gt = crop_or_pad(gt, max(self.crop_pad_size, patch_size), rng)
            else:
                gt = random_crop(gt, patch_size, rng, src)
        gt = np.ascontiguousarray(mod_crop(gt, self.scale))
        sharp = self.usm(gt, rng) if self.gt_usm else gt
        if self.on_device:
            assert patch_size is not None  # checked in __init__
            return self._undegraded(gt, sharp, patch_size, rng, src, Path(key).stem)
        lq = degrade_to_scale(type(self).__name__, self.degradation, sharp, self.scale, rng, src)
        if patch_size is not None and gt.shape[:2] != (patch_size, patch_size):
            both = np.concatenate([gt, sharp], axis=2)  # one crop for the GT and its sharpened copy
            both, lq = paired_random_crop(both, lq, patch_size // self.scale, self.scale, rng, src, f"LQ of {src}")
            gt, sharp = both[:, :, : gt.shape[2]], both[:, :, gt.shape[2] :]
        sample = self.to_sample(np.ascontiguousarray(gt), lq, src, src, Path(key).stem)
        if self.gt_usm:
            sample["gt_usm"] = img2tensor(np.ascontiguousarray(sharp))
        return sample

    def _undegraded(
        self, gt: np.ndarray, sharp: np.ndarray, patch: int, rng: np.random.Generator, src: str, name: str
    ) -> dict[str, Any]:
        """``degrade_on: device``: the GT region, its sharpened copy and the draws of its degradation
        and patch (see the class doc), for the training step to degrade with its batch."""
        assert isinstance(self.degradation, RealESRGANDegradation)
        draws = self.degradation.draw(rng)
        lq_h, lq_w, lq_patch = gt.shape[0] // self.scale, gt.shape[1] // self.scale, patch // self.scale
        draws["patch"] = patch
        draws["crop_top"] = int(rng.integers(lq_h - lq_patch + 1))
        draws["crop_left"] = int(rng.integers(lq_w - lq_patch + 1))
        draws["seed"] = int(rng.integers(2**63 - 1))  # the pair pool's shuffles
        sample: dict[str, Any] = {"gt": img2tensor(gt), "gt_path": src, "lq_path": src, "name": name}
        if self.gt_usm:
            sample["gt_usm"] = img2tensor(np.ascontiguousarray(sharp))
        sample["degradation"] = draws
        return sample


class _RootFiles:
    """Images named by paths relative to a folder (what a meta_info list gives): ``describe`` and
    ``read`` as a backend's."""

    def __init__(self, root: str) -> None:
        self.root = root

    def describe(self, key: str) -> str:
        return str(Path(self.root) / key)

    def read(self, key: str, channels: Channels = 3) -> np.ndarray:
        return imread(self.describe(key), channels)


def read_pair_list(meta_info: str, gt_root: str, lq_root: str, owner: str) -> list[tuple[str, str]]:
    """The pairs a Real-ESRGAN paired ``meta_info`` list names: ``gt_path, lq_path`` per line,
    relative to ``dataroot_gt`` and ``dataroot_lq``; blank lines are skipped, every file must exist."""
    try:
        lines = [line.removesuffix("\r") for line in Path(meta_info).read_text().split("\n")]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{owner}.meta_info: cannot read {meta_info} ({exc})") from None
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2 or not all(parts):
            raise DataError(f"{owner}.meta_info: {meta_info} line {number}: expected 'gt_path, lq_path', got {line!r}")
        for rel, root, which in ((parts[0], gt_root, "dataroot_gt"), (parts[1], lq_root, "dataroot_lq")):
            if not (Path(root) / rel).is_file():
                raise DataError(
                    f"{owner}.meta_info: {meta_info} line {number} names {rel}, not found in {which} {root}"
                )
        pairs.append((parts[0], parts[1]))
    if not pairs:
        raise DataError(f"{owner}.meta_info: {meta_info} lists no pairs")
    return pairs


@DATASETS.register()
class RealESRGANPairedDataset(PairedImageDataset):
    """Real-ESRGAN's paired fine-tuning data (its ``high_order_degradation: false`` files): given
    LQ/GT pairs, as :class:`~irframe.data.datasets.paired.PairedImageDataset` reads them, plus
    Real-ESRGAN's ``meta_info`` pair list and the USM-sharpened GT its model trains on.

    Pairs come from ``meta_info`` (one ``gt_path, lq_path`` line per pair, relative to
    ``dataroot_gt`` and ``dataroot_lq``; folders on disk), else from the two folders or LMDBs
    matched by ``filename_tmpl`` (``PairedImageDataset``). Samples carry ``lq``, ``gt`` and, with
    ``gt_usm``, ``gt_usm``: the GT patch sharpened (Real-ESRGAN's ``feed_data`` sharpens the GT
    of paired data on the GPU, for ``l1_gt_usm`` / ``percep_gt_usm`` / ``gan_gt_usm``).

    Args:
        dataroot_gt, dataroot_lq, io_backend, scale, gt_size, use_flip, use_rot, filename_tmpl,
            channels, skip_bad, recursive, seed: as ``PairedImageDataset``.
        meta_info: Real-ESRGAN's pair list (disk only; an LMDB lists its own keys).
        gt_usm: add the sharpened GT as ``gt_usm``.
        usm_sharpener: the sharpening (default ``{type: USMSharp}``, Real-ESRGAN's).
    """

    def __init__(
        self,
        dataroot_gt: ExistingFolder,
        dataroot_lq: ExistingFolder,
        meta_info: ExistingFile | None = None,
        io_backend: dict[str, Any] | None = None,
        scale: int = 4,
        gt_size: int | None = None,
        use_flip: bool = False,
        use_rot: bool = False,
        filename_tmpl: str = "{}",
        gt_usm: bool = True,
        usm_sharpener: Annotated[dict[str, Any] | None, Nested("degradation")] = None,
        channels: Literal[1, 3] = 3,
        skip_bad: bool = False,
        recursive: bool = False,
        seed: int | None = None,
    ) -> None:
        owner = type(self).__name__
        kind = (io_backend or {}).get("type", "disk")
        if meta_info is not None and kind != "disk":
            raise OptionsError(f"{owner}.meta_info: a pair list applies to folders on disk; an LMDB lists its own keys")
        if meta_info is None:
            super().__init__(
                dataroot_gt, dataroot_lq, io_backend, scale, gt_size, use_flip, use_rot, filename_tmpl,
                channels, skip_bad, recursive, seed,
            )  # fmt: skip
        else:
            if recursive:
                raise OptionsError(f"{owner}.recursive: meta_info lists the files; recursive applies to folders")
            ImageDataset.__init__(
                self, gt_size=gt_size, use_flip=use_flip, use_rot=use_rot, scale=scale, channels=channels,
                skip_bad=skip_bad, seed=seed, task=None,
            )  # fmt: skip
            gt_root = check_dataroot(dataroot_gt, "dataroot_gt", owner)
            lq_root = check_dataroot(dataroot_lq, "dataroot_lq", owner)
            self.gt_backend, self.lq_backend = _RootFiles(gt_root), _RootFiles(lq_root)  # type: ignore[assignment]
            self.pairs = read_pair_list(meta_info, gt_root, lq_root, owner)
        self.gt_usm = bool(gt_usm)
        self.usm = DEGRADATIONS.build(usm_sharpener or {"type": "USMSharp"}, path=f"{owner}.usm_sharpener")

    def load(self, index: int, patch_size: int | None, rng: np.random.Generator) -> dict[str, Any]:
        sample = super().load(index, patch_size, rng)
        sample["name"] = Path(self.pairs[index][0]).stem
        if self.gt_usm:
            gt = np.ascontiguousarray(sample["gt"].permute(1, 2, 0).numpy())
            sample["gt_usm"] = img2tensor(np.ascontiguousarray(self.usm(gt, rng)))
        return sample
