"""Real-ESRGAN's training data: clean GT images, degraded on the fly by the high-order pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np

from irframe.data.backends import Backend
from irframe.data.datasets.base import ImageDataset, build_pipeline, check_dataroot, degrade_to_scale, open_backend
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
        lq = degrade_to_scale(type(self).__name__, self.degradation, sharp, self.scale, rng, src)
        if patch_size is not None and gt.shape[:2] != (patch_size, patch_size):
            both = np.concatenate([gt, sharp], axis=2)  # one crop for the GT and its sharpened copy
            both, lq = paired_random_crop(both, lq, patch_size // self.scale, self.scale, rng, src, f"LQ of {src}")
            gt, sharp = both[:, :, : gt.shape[2]], both[:, :, gt.shape[2] :]
        sample = self.to_sample(np.ascontiguousarray(gt), lq, src, src, Path(key).stem)
        if self.gt_usm:
            sample["gt_usm"] = img2tensor(np.ascontiguousarray(sharp))
        return sample
