"""BasicSR's ``datasets:`` section: phases, loader settings, augmentations and the dataset types."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from irframe.compat.basicsr.base import TranslatorBase, as_int, is_off

#: BasicSR / Restormer dataset ``type`` -> irframe dataset.
DATASET_ALIASES: dict[str, str] = {
    "PairedImageDataset": "PairedImageDataset",
    "Dataset_PairedImage": "PairedImageDataset",
    "SingleImageDataset": "SingleImageDataset",
    "Dataset_GaussianDenoising": "OnlineDegradationDataset",
    "Dataset_DefocusDeblur_DualPixel_16bit": "DualPixelDataset",
    "RealESRGANDataset": "RealESRGANDataset",
    "RealESRGANPairedDataset": "RealESRGANPairedDataset",
}

#: Real-ESRGAN's top-level keys other than its degradation keys (which
#: ``irframe.data.degradations.realesrgan.REALESRGAN_MODEL_KEYS`` lists): read by its models.
REALESRGAN_TOP_KEYS = (
    "l1_gt_usm", "percep_gt_usm", "gan_gt_usm", "gt_usm", "gt_size", "queue_size", "high_order_degradation",
)
REALESRGAN_MODEL_TYPES = ("RealESRGANModel", "RealESRNetModel")

BASICSR_LOADER_KEYS = (
    "batch_size_per_gpu", "num_worker_per_gpu", "use_shuffle", "dataset_enlarge_ratio", "prefetch_mode",
    "mini_batch_sizes", "gt_sizes",
)
"""Loader keys only BasicSR files have (one of them marks a file as BasicSR-style)."""

#: Every key of a BasicSR / Restormer dataset phase this section reads (for "did you mean").
DATASET_KEYS = (
    *BASICSR_LOADER_KEYS, "name", "type", "phase", "dataroot_gt", "dataroot_lq", "dataroot_lqL", "dataroot_lqR",
    "filename_tmpl", "io_backend", "meta_info_file", "gt_size", "use_flip", "use_hflip", "use_rot",
    "geometric_augs", "num_prefetch_queue", "pin_memory", "persistent_workers", "iters", "scale", "mean", "std",
    "in_ch", "sigma_type", "sigma_range", "sigma_test", "meta_info",
)


class DatasetSection(TranslatorBase):
    """``datasets.<phase>``: train, val* and test* sets, their loaders and their dataset types."""

    def realesrgan_top(self, rest: dict[str, Any]) -> None:
        """Real-ESRGAN's top-level keys (a ``RealESRGANModel`` / ``RealESRNetModel`` file, or one
        training on ``RealESRGANDataset``): the second half of the degradation (read by its model's
        ``feed_data``), the USM targets, the patch size, the pair pool. They are kept in
        ``self.realesrgan`` for the training set's ``degradation`` and the training step."""
        datasets = rest.get("datasets")
        train = datasets.get("train") if isinstance(datasets, Mapping) else None
        kind = train.get("type") if isinstance(train, Mapping) else None
        uses = kind == "RealESRGANDataset"
        if self.model_type not in REALESRGAN_MODEL_TYPES and not uses:
            return
        from irframe.data.degradations.realesrgan import REALESRGAN_MODEL_KEYS  # torch: only for such a file

        for key in (*REALESRGAN_MODEL_KEYS, *REALESRGAN_TOP_KEYS):
            if key in rest:
                self.realesrgan[key] = rest.pop(key)
        order = self.realesrgan.get("high_order_degradation")
        # RealESRGANModel / RealESRNetModel.feed_data synthesise a training batch on the GPU unless
        # high_order_degradation is false (paired fine-tuning: the batch is used as it comes)
        self.realesrgan_synthesis = self.model_type in REALESRGAN_MODEL_TYPES and order is not False and uses
        if self.model_type in REALESRGAN_MODEL_TYPES and isinstance(train, Mapping):
            if order is False and kind == "RealESRGANDataset":
                self.problem(
                    "high_order_degradation", "false trains on given LQ/GT pairs (RealESRGANPairedDataset, with "
                    "dataroot_lq), but datasets.train is a RealESRGANDataset (clean GT images only)",
                )
            elif order is not False and kind == "RealESRGANPairedDataset":
                self.problem(
                    "high_order_degradation", f"{'absent' if order is None else order} (true: {self.model_type} "
                    "degrades the GT of every batch), but datasets.train is a RealESRGANPairedDataset of given pairs; "
                    "Real-ESRGAN's paired fine-tuning files set high_order_degradation: false",
                )
        if order is False:
            self.note("high_order_degradation", "false: the training pairs are used as given (RealESRGANPairedDataset)")
        elif order is not None:
            self.note("high_order_degradation", f"{order}: the training set's degradation (RealESRGANDataset)")
        queue = self.realesrgan.get("queue_size")
        if queue is not None and not self.realesrgan_synthesis:
            self.note("queue_size", f"{queue} dropped: Real-ESRGAN's pair pool mixes batches it synthesises, and "
                      "this file synthesises none")
        if "gt_usm" in self.realesrgan and self.model_type != "RealESRNetModel":
            self.note("gt_usm", "dropped: RealESRGANModel always sharpens the GT; l1_gt_usm, percep_gt_usm and "
                      "gan_gt_usm say where the sharpened one is used")
        if not uses:
            for key in [k for k in self.realesrgan if k in (*REALESRGAN_MODEL_KEYS, "gt_size")]:
                self.note(key, "dropped: it drives RealESRGANDataset's degradation, and the training set is not one")
        if self.model_type != "RealESRGANModel":
            for key in ("l1_gt_usm", "percep_gt_usm", "gan_gt_usm"):
                if key in self.realesrgan:
                    self.note(key, f"dropped: read by RealESRGANModel only, the file's model_type is {self.model_type}")

    def datasets(self, datasets: Any, native: dict[str, Any]) -> dict[str, Any] | None:
        """Translate ``datasets``; return the progressive schedule (for ``train.progressive``)."""
        if datasets is None:
            return None
        if not isinstance(datasets, Mapping):
            self.problem("datasets", f"expected a mapping of phases (train, val, test_1, ...), got {datasets!r}")
            return None
        progressive = None
        used: set[str] = set()
        for phase, cfg in datasets.items():
            where = f"datasets.{phase}"
            if not isinstance(cfg, Mapping):
                self.problem(where, f"expected a mapping, got {cfg!r}")
                continue
            phase = str(phase)
            if phase == "train":
                kind = "train"
            elif phase.startswith("val") and self.is_train:
                kind = "val"
            elif phase.startswith("val"):
                kind = "test"  # BasicSR's test.py benchmarks every phase of a file without train:
                self.note(where, "a test set: the file has no train section (BasicSR's test.py tests every phase)")
            elif phase.startswith("test"):
                kind = "test"
            else:
                self.problem(where, "unknown phase: BasicSR phases are train, val*, test*")
                continue
            if kind == "train":
                dst = "datasets.train"
            else:
                name = self.dataset_key(cfg.get("name"), phase, used)
                dst = f"datasets.{name}" if kind == "val" else f"test.datasets.{name}"
            loader, prog = self.dataset(dict(cfg), where, dst, kind == "train")
            if loader is None:
                self.omitted.append(dst)
                continue
            self.rename(dst, where)
            node = native
            for part in dst.split(".")[:-1]:
                node = node.setdefault(part, {})
            node[dst.rsplit(".", 1)[-1]] = loader
            if kind == "train":
                progressive = prog
        return progressive

    @staticmethod
    def dataset_key(name: Any, phase: str, used: set[str]) -> str:
        """The native key of a validation/test set: its BasicSR ``name`` (the set shown in logs)."""
        key = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name)).strip("_") if name is not None else ""
        if not key or key == "train" or key in used:
            key = phase
        used.add(key)
        return key

    def dataset(
        self, cfg: dict[str, Any], where: str, dst: str, train: bool
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """One BasicSR dataset phase -> a native loader mapping (and its progressive schedule)."""
        out: dict[str, Any] = {}
        self.dst = dst
        kind_type = cfg.pop("type", None)
        target = DATASET_ALIASES.get(kind_type) if isinstance(kind_type, str) else None
        if target is None:
            self.problem(
                f"{where}.type", f"{kind_type!r} has no irframe equivalent; supported: {', '.join(DATASET_ALIASES)}"
            )
            return None, None
        out["type"] = target
        self.map(f"{where}.type", f"{dst}.type")
        if "name" in cfg:
            cfg.pop("name")
            if train:
                self.note(f"{where}.name", "the set's name in BasicSR's logs; irframe names it by its key, train")
            else:
                self.map(f"{where}.name", dst)
        if "phase" in cfg:
            cfg.pop("phase")
            self.note(f"{where}.phase", "dropped: the phase is the key under datasets")
        self.loader_settings(cfg, where, out, train)
        progressive = self.progressive(cfg, where, train)
        self.augments(cfg, where, out, train)
        if "gt_size" in cfg:
            gt_size = cfg.pop("gt_size")
            if train and gt_size is not None:
                out["gt_size"] = gt_size
                self.map(f"{where}.gt_size", f"{self.dst}.gt_size")
            elif gt_size is not None:
                self.note(f"{where}.gt_size", "dropped: BasicSR crops in the train phase only")

        for key in ("mean", "std"):
            if key in cfg and is_off(cfg[key]):
                cfg.pop(key)
            elif key in cfg:
                cfg.pop(key)
                self.problem(
                    f"{where}.{key}", "mean/std normalisation is not supported: irframe feeds models [0, 1] images"
                )
        if "meta_info_file" in cfg:
            meta = cfg.pop("meta_info_file")
            if meta is not None:
                self.note(
                    f"{where}.meta_info_file", "not read: irframe pairs every image in the data folders, so they "
                    "must hold exactly the images the list names",
                )
        if "io_backend" in cfg:
            out["io_backend"] = cfg.pop("io_backend")
            self.map(f"{where}.io_backend", f"{self.dst}.io_backend")
        if "scale" in cfg:
            self.scale_of(cfg.pop("scale"), where, out, target)
        elif self.scale != 1:
            self.scale_of(self.scale, where, out, target)

        handler = {
            "PairedImageDataset": self.paired,
            "SingleImageDataset": self.single,
            "OnlineDegradationDataset": self.gaussian,
            "DualPixelDataset": self.dual_pixel,
            "RealESRGANDataset": self.realesrgan_dataset,
            "RealESRGANPairedDataset": self.realesrgan_paired,
        }[target]
        handler(cfg, where, out, train)
        self.unknown(f"{where}.", cfg, DATASET_KEYS)
        return out, progressive

    def loader_settings(self, cfg: dict[str, Any], where: str, out: dict[str, Any], train: bool) -> None:
        """DataLoader keys: batch size, workers, shuffling, enlarge ratio, prefetching."""
        for src, key in (("batch_size_per_gpu", "batch_size"), ("num_worker_per_gpu", "num_workers"),
                         ("use_shuffle", "shuffle"), ("pin_memory", "pin_memory"),
                         ("persistent_workers", "persistent_workers")):
            if src in cfg:
                value = cfg.pop(src)
                if value is not None:
                    out[key] = value
                    self.map(f"{where}.{src}", f"{self.dst}.{key}")
        if "dataset_enlarge_ratio" in cfg:
            ratio = as_int(cfg.pop("dataset_enlarge_ratio"))
            if ratio is not None and not train:
                self.note(f"{where}.dataset_enlarge_ratio", f"{ratio} dropped: BasicSR enlarges training sets only")
            elif ratio is not None:
                out["enlarge_ratio"] = ratio
                self.map(f"{where}.dataset_enlarge_ratio", f"{self.dst}.enlarge_ratio")
        if "prefetch_mode" in cfg:
            mode = cfg.pop("prefetch_mode")
            self.note(
                f"{where}.prefetch_mode", f"{mode!r} dropped: the DataLoader's workers prefetch "
                "(num_workers, pin_memory, prefetch_factor)",
            )
        if "num_prefetch_queue" in cfg:
            cfg.pop("num_prefetch_queue")
            self.note(f"{where}.num_prefetch_queue", "dropped: see prefetch_mode")

    def progressive(self, cfg: dict[str, Any], where: str, train: bool) -> dict[str, Any] | None:
        """Restormer's progressive learning keys -> the ``train.progressive`` mapping (training only)."""
        progressive = None
        prog_keys = [k for k in ("mini_batch_sizes", "iters", "gt_sizes") if k in cfg]
        if prog_keys:
            values = {k: cfg.pop(k) for k in prog_keys}
            if not train:
                self.note(where, f"{', '.join(prog_keys)} dropped: progressive learning applies to training only")
            elif len(prog_keys) != 3:
                missing = sorted({"mini_batch_sizes", "iters", "gt_sizes"} - set(prog_keys))
                self.problem(
                    where, f"progressive learning needs mini_batch_sizes, iters and gt_sizes; missing {missing}"
                )
            else:
                progressive = {
                    "iters": values["iters"],
                    "batch_sizes": values["mini_batch_sizes"],
                    "patch_sizes": values["gt_sizes"],
                }
                for src, key in (("iters", "iters"), ("mini_batch_sizes", "batch_sizes"), ("gt_sizes", "patch_sizes")):
                    self.map(f"{where}.{src}", f"train.progressive.{key}")
                self.note(
                    f"{where}.mini_batch_sizes",
                    "each stage loads its mini-batch of gt_sizes patches directly "
                    "(Restormer loads batch_size_per_gpu patches of gt_size and sub-samples them: the same "
                    "distribution)",
                )
        return progressive

    def augments(self, cfg: dict[str, Any], where: str, out: dict[str, Any], train: bool) -> None:
        """Flips/rotations (BasicSR applies them in the train phase only)."""
        flips = {k: cfg.pop(k) for k in ("use_flip", "use_hflip", "use_rot", "geometric_augs") if k in cfg}
        if flips:
            if not train:
                self.note(where, f"{', '.join(flips)} dropped: BasicSR augments in the train phase only")
            else:
                if flips.get("geometric_augs"):
                    out["use_flip"] = out["use_rot"] = True
                    self.map(f"{where}.geometric_augs", f"{self.dst}.use_flip + use_rot")
                    self.note(
                        f"{where}.geometric_augs", "Restormer's 8 random flips/rotations = use_flip + use_rot "
                        "(the same 8 transforms, uniformly)",
                    )
                for src in ("use_flip", "use_hflip"):
                    if src in flips:
                        out["use_flip"] = bool(out.get("use_flip")) or bool(flips[src])
                        self.map(f"{where}.{src}", f"{self.dst}.use_flip")
                if "use_rot" in flips:
                    out["use_rot"] = bool(out.get("use_rot")) or bool(flips["use_rot"])
                    self.map(f"{where}.use_rot", f"{self.dst}.use_rot")

    def scale_of(self, scale: Any, where: str, out: dict[str, Any], target: str) -> None:
        if scale in (None, 1):
            return
        if target in ("PairedImageDataset", "RealESRGANDataset", "RealESRGANPairedDataset"):
            out["scale"] = scale
            self.map(f"{where}.scale", f"{self.dst}.scale")
        else:
            self.note(f"{where}.scale", f"{scale} dropped: {target} has no scale (inputs keep the image size)")

    def roots(self, cfg: dict[str, Any], where: str, out: dict[str, Any], keys: tuple[str, ...]) -> None:
        for key in keys:
            if key in cfg:
                out[key] = cfg.pop(key)
                self.map(f"{where}.{key}", f"{self.dst}.{key}")

    def paired(self, cfg: dict[str, Any], where: str, out: dict[str, Any], train: bool) -> None:
        self.roots(cfg, where, out, ("dataroot_gt", "dataroot_lq", "filename_tmpl"))

    def single(self, cfg: dict[str, Any], where: str, out: dict[str, Any], train: bool) -> None:
        self.roots(cfg, where, out, ("dataroot_lq",))
        if "filename_tmpl" in cfg:
            cfg.pop("filename_tmpl")
            self.note(f"{where}.filename_tmpl", "dropped: a single-folder dataset pairs nothing")

    def realesrgan_dataset(self, cfg: dict[str, Any], where: str, out: dict[str, Any], train: bool) -> None:
        """Real-ESRGAN's ``RealESRGANDataset``: clean GT images (``meta_info`` lists them) degraded on the
        fly. Its kernel keys (here) and the file's top-level degradation keys become one
        ``RealESRGANDegradation`` mapping (``realesrgan_degradation_options``)."""
        from irframe.data.degradations.realesrgan import (  # torch: only for such a file
            REALESRGAN_DATASET_KEYS,
            REALESRGAN_MODEL_KEYS,
            realesrgan_degradation_options,
        )

        self.roots(cfg, where, out, ("dataroot_gt", "meta_info"))
        kernels = {k: cfg.pop(k) for k in REALESRGAN_DATASET_KEYS if k in cfg}
        top = {k: v for k, v in self.realesrgan.items() if k in REALESRGAN_MODEL_KEYS}
        out["degradation"] = realesrgan_degradation_options(kernels, top, scale=out.get("scale", self.scale))
        for key in kernels:
            self.map(f"{where}.{key}", f"{self.dst}.degradation.{key}")
        for key in top:
            self.map(key, f"{self.dst}.degradation.{key}")
        # Real-ESRNet degrades the sharpened GT when gt_usm is true, Real-ESRGAN always
        sharpen = self.model_type != "RealESRNetModel" or self.realesrgan.get("gt_usm") is not False
        out["gt_usm"] = sharpen
        if self.model_type == "RealESRNetModel" and "gt_usm" in self.realesrgan:
            self.map("gt_usm", f"{self.dst}.gt_usm")
        size = self.realesrgan.get("gt_size")
        if train and size is not None:
            given = out.get("gt_size")
            if given is not None and given != size:
                self.note(
                    f"{where}.gt_size", f"{given}: Real-ESRGAN's dataset does not read it (it hands 400x400 crops to "
                    f"the model, which cuts the top-level gt_size {size}); datasets.train.gt_size is {size}",
                )
            out["gt_size"] = size
            self.map("gt_size", f"{self.dst}.gt_size")
        if train and self.realesrgan_synthesis:
            out["degrade_on"] = "device"
            self.map("model_type", f"{self.dst}.degrade_on")
            self.note(
                f"{where}.type", f"{self.model_type}.feed_data degrades each training batch on the GPU: "
                "degrade_on: device (the training step degrades the batch on its device; choices that change a "
                "size or an operation's kind are one per batch, as Real-ESRGAN's; JPEG is libjpeg on the CPU)",
            )
        if not train:  # a fixed degradation per image for a validation/test set
            out["seed"] = 0
            out.pop("gt_size", None)

    def realesrgan_paired(self, cfg: dict[str, Any], where: str, out: dict[str, Any], train: bool) -> None:
        """Real-ESRGAN's ``RealESRGANPairedDataset`` (its paired fine-tuning files): given LQ/GT
        pairs, listed by ``meta_info`` (``gt_path, lq_path`` per line) or matched in the folders.
        ``RealESRGANModel.feed_data`` sharpens their GT for ``l1_gt_usm`` and the others: ``gt_usm``."""
        self.roots(cfg, where, out, ("dataroot_gt", "dataroot_lq", "meta_info", "filename_tmpl"))
        # RealESRNetModel trains on the plain GT of paired data; RealESRGANModel on the sharpened one where told
        out["gt_usm"] = self.model_type != "RealESRNetModel"

    def dual_pixel(self, cfg: dict[str, Any], where: str, out: dict[str, Any], train: bool) -> None:
        self.roots(cfg, where, out, ("dataroot_gt", "dataroot_lqL", "dataroot_lqR", "filename_tmpl"))

    def gaussian(self, cfg: dict[str, Any], where: str, out: dict[str, Any], train: bool) -> None:
        """Restormer's ``Dataset_GaussianDenoising``: clean images, noise added on the fly.

        Restormer adds the noise without clipping, in training (``sigma_type`` constant / random /
        choice over ``sigma_range``) and validation (``sigma_test``, a fixed seed).
        """
        self.roots(cfg, where, out, ("dataroot_gt",))
        if "dataroot_lq" in cfg:
            lq = cfg.pop("dataroot_lq")
            if lq is not None:
                self.note(
                    f"{where}.dataroot_lq", f"{lq!r} dropped: the noisy input is made from dataroot_gt on the fly"
                )
        if "filename_tmpl" in cfg:
            cfg.pop("filename_tmpl")
            self.note(f"{where}.filename_tmpl", "dropped: only clean images are read")
        if "in_ch" in cfg:
            in_ch = cfg.pop("in_ch")
            if in_ch not in (1, 3):
                self.problem(f"{where}.in_ch", f"expected 1 (gray) or 3 (RGB), got {in_ch!r}")
            else:
                out["channels"] = in_ch
                self.map(f"{where}.in_ch", f"{self.dst}.channels")
        sigma_type = cfg.pop("sigma_type", None)
        sigma_range = cfg.pop("sigma_range", None)
        sigma_test = cfg.pop("sigma_test", None)
        noise: dict[str, Any] = {"type": "GaussianNoise", "clip": False}
        if train:
            if sigma_test is not None:
                self.note(f"{where}.sigma_test", "dropped: used by validation/test sets only")
            if sigma_type == "constant":
                value = sigma_range[0] if isinstance(sigma_range, list) and len(sigma_range) == 1 else sigma_range
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    self.problem(
                        f"{where}.sigma_range", f"sigma_type constant needs one noise level, got {sigma_range!r}"
                    )
                    return
                out["degradation"] = {**noise, "sigma": value}
            elif sigma_type == "random":
                if not (isinstance(sigma_range, list) and len(sigma_range) == 2):
                    self.problem(f"{where}.sigma_range", f"sigma_type random needs [low, high], got {sigma_range!r}")
                    return
                out["degradation"] = {**noise, "sigma_range": sigma_range}
            elif sigma_type == "choice":
                if not (isinstance(sigma_range, list) and sigma_range):
                    self.problem(
                        f"{where}.sigma_range", f"sigma_type choice needs a list of levels, got {sigma_range!r}"
                    )
                    return
                out["degradation"] = {
                    "type": "RandomChoice",
                    "degradations": [{**noise, "sigma": s} for s in sigma_range],
                }
            else:
                self.problem(f"{where}.sigma_type", f"expected constant, random or choice, got {sigma_type!r}")
                return
            self.map(f"{where}.sigma_type", f"{self.dst}.degradation")
            self.map(f"{where}.sigma_range", f"{self.dst}.degradation")
        else:
            for key, value in (("sigma_type", sigma_type), ("sigma_range", sigma_range)):
                if value is not None:
                    self.note(f"{where}.{key}", "dropped: validation/test sets use sigma_test")
            if not isinstance(sigma_test, (int, float)) or isinstance(sigma_test, bool):
                self.problem(f"{where}.sigma_test", f"expected the noise level of this set, got {sigma_test!r}")
                return
            out["degradation"] = {**noise, "sigma": sigma_test}
            out["seed"] = 0
            self.map(f"{where}.sigma_test", f"{self.dst}.degradation.sigma")
            self.note(
                f"{where}.sigma_test", "fixed noise from seed 0 per image (seed + index), as Restormer fixes its "
                "validation noise; the noise samples themselves differ from Restormer's",
            )
