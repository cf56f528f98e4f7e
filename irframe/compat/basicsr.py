"""The BasicSR / Restormer option-file dialect, translated into irframe's native options.

BasicSR (and Restormer, which ships a copy of it) describes a run with ``network_g``,
``datasets.<phase>.batch_size_per_gpu``, ``train.optim_g``, ``path.pretrain_network_g`` and so on.
:func:`translate_basicsr` maps such a file, key by key, onto the native schema of
:mod:`irframe.options`; the result then goes through the normal native validation (one build path).

* Every key either maps onto a native key (counted), or is accepted with a *note* saying why it
  has no meaning here (``num_gpu``, ``dist_params``, ``prefetch_mode``, ...), never silently given
  another meaning.
* A key this module does not know is a problem naming its dotted path; all problems are collected
  and raised as one :class:`~irframe.errors.OptionsError` naming the file.
* Architectures keep their ``type`` and keyword arguments (Restormer's are the official ones); an
  arch that no plugin registers fails later in the usual way, naming ``model.type``.

:func:`irframe.options.load_options` calls :func:`maybe_translate` after the ``_base_`` merge and
before ``--set`` overrides, so overrides use native keys (``train.optim.lr``, not
``train.optim_g.lr``).
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from irframe.errors import OptionsError

# ----------------------------------------------------------------------------------------------
# What the dialect is made of
# ----------------------------------------------------------------------------------------------

#: BasicSR / Restormer dataset ``type`` -> irframe dataset.
DATASET_ALIASES: dict[str, str] = {
    "PairedImageDataset": "PairedImageDataset",
    "Dataset_PairedImage": "PairedImageDataset",
    "SingleImageDataset": "SingleImageDataset",
    "Dataset_GaussianDenoising": "OnlineDegradationDataset",
    "Dataset_DefocusDeblur_DualPixel_16bit": "DualPixelDataset",
}

#: ``model_type`` values whose job (one generator, pixel/perceptual losses) irframe's trainer does.
SUPERVISED_MODEL_TYPES = ("ImageCleanModel", "ImageRestorationModel", "SRModel", "SwinIRModel", "EDSRModel")

#: BasicSR metric names -> irframe metrics.
METRIC_ALIASES: dict[str, str] = {
    "calculate_psnr": "PSNR",
    "psnr": "PSNR",
    "PSNR": "PSNR",
    "calculate_ssim": "SSIM",
    "ssim": "SSIM",
    "SSIM": "SSIM",
}

#: Restormer's ``use_grad_clip: true`` is ``clip_grad_norm_(params, 0.01)`` in its ImageCleanModel.
RESTORMER_GRAD_CLIP = 0.01

_GAN_KEYS = ("network_d",)
_TRAIN_GAN_KEYS = ("optim_d", "net_d_iters", "net_d_init_iters", "net_d_reg_every", "gan_opt")

_BASICSR_LOADER_KEYS = (
    "batch_size_per_gpu", "num_worker_per_gpu", "use_shuffle", "dataset_enlarge_ratio", "prefetch_mode",
    "mini_batch_sizes", "gt_sizes",
)
_BASICSR_TOP_KEYS = ("network_g", "network_d", "model_type", "manual_seed", "num_gpu", "dist_params")


def is_basicsr(raw: Any) -> bool:
    """Whether ``raw`` (a loaded option mapping) is in BasicSR's layout.

    Recognised by keys native files never have: ``network_g``/``model_type``/``manual_seed``/
    ``num_gpu``/``dist_params`` at the top, ``train.optim_g``/``train.pixel_opt``,
    ``path.pretrain_network_g``/``path.resume_state``, or a dataset with ``batch_size_per_gpu`` and
    friends.
    """
    if not isinstance(raw, Mapping):
        return False
    if any(k in raw for k in _BASICSR_TOP_KEYS):
        return True
    train, path, datasets = raw.get("train"), raw.get("path"), raw.get("datasets")
    if isinstance(train, Mapping) and ("optim_g" in train or "pixel_opt" in train):
        return True
    if isinstance(path, Mapping) and any(k in path for k in ("pretrain_network_g", "resume_state", "strict_load_g")):
        return True
    if isinstance(datasets, Mapping):
        for loader in datasets.values():
            if isinstance(loader, Mapping) and any(k in loader for k in _BASICSR_LOADER_KEYS):
                return True
    return False


@dataclass
class Translation:
    """What :func:`translate` produced: the native options, the notes and the key mapping."""

    native: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # "<basicsr key>: why it was dropped / how it maps"
    mapped: list[tuple[str, str]] = field(default_factory=list)  # (basicsr key, native key)


def translate_basicsr(raw: Mapping[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """Translate a BasicSR-style option mapping into native option data.

    Pure data -> data: nothing is read, built or printed.

    Args:
        raw: the loaded option file (``_base_`` already merged).
        source: the file name, used in error messages.

    Returns:
        ``(native, notes)``: native option data (validate it with
        :func:`irframe.options.validate_options`) and one note per key that was dropped or whose
        mapping needs a word.

    Raises:
        OptionsError: listing every key that has no translation (unknown keys, adversarial training,
            BasicSR training states), each by its dotted path, with ``source``.
    """
    t = translate(raw, source)
    return t.native, t.notes


def translate(raw: Mapping[str, Any], source: str) -> Translation:
    """Like :func:`translate_basicsr`, also returning which BasicSR key went to which native key."""
    return _Translator(source).run(raw)


def maybe_translate(raw: dict[str, Any], source: str, announce: bool = True) -> dict[str, Any]:
    """Translate ``raw`` if it is a BasicSR-style file (else return it unchanged).

    With ``announce``, one line goes to stderr: ``<file>: BasicSR-style option file translated
    (N keys mapped, M notes); see `irframe show-options <file>```.
    """
    if not is_basicsr(raw):
        return raw
    t = translate(raw, source)
    # One line per run, not per process: under torchrun/accelerate only local rank 0 says it.
    if announce and os.environ.get("LOCAL_RANK", "0") == "0":
        print(
            f"{source}: BasicSR-style option file translated ({len(t.mapped)} keys mapped, {len(t.notes)} notes); "
            f"see `irframe show-options {source}`",
            file=sys.stderr,
        )
    return t.native


# ----------------------------------------------------------------------------------------------
# The translator
# ----------------------------------------------------------------------------------------------


def _int(value: Any) -> Any:
    """``4e3`` (BasicSR writes frequencies as ``!!float 4e3``) -> ``4000``; other values unchanged."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _is_off(value: Any) -> bool:
    """BasicSR's "not set": ``~``/null, or the string ``none`` Restormer writes for ``dataroot_lq``."""
    return value is None or (isinstance(value, str) and value.strip().lower() in ("none", "~", ""))


class _Translator:
    def __init__(self, source: str) -> None:
        self.source = source
        self.notes: list[str] = []
        self.problems: list[str] = []
        self.mapped: list[tuple[str, str]] = []
        self.is_train = False
        self.scale = 1
        self.dst = ""  # the native path of the dataset being translated

    # -- bookkeeping ------------------------------------------------------------------------------
    def map(self, src: str, dst: str) -> None:
        self.mapped.append((src, dst))

    def note(self, src: str, text: str) -> None:
        self.notes.append(f"{src}: {text}")

    def problem(self, src: str, text: str) -> None:
        self.problems.append(f"{src}: {text}")

    def unknown(self, prefix: str, keys: Any) -> None:
        from irframe.options import Options

        for key in keys:
            if not prefix and key in Options.model_fields:
                self.problem(key, "a native irframe key in a BasicSR-style file: write the file in one layout")
            else:
                self.problem(f"{prefix}{key}", "unknown BasicSR key (no irframe equivalent is known for it)")

    def section(self, raw: Mapping[str, Any], key: str) -> dict[str, Any] | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.problem(key, f"expected a mapping, got {value!r}")
            return None
        return dict(value)

    # -- the whole file ---------------------------------------------------------------------------
    def run(self, raw: Mapping[str, Any]) -> Translation:
        rest = dict(raw)
        native: dict[str, Any] = {}
        self.is_train = isinstance(rest.get("train"), Mapping)
        self.top(rest, native)
        if "network_d" in rest:
            rest.pop("network_d")
            self.problem(
                "network_d", "adversarial (GAN) training is not supported by irframe: remove network_d and the "
                "train.optim_d/gan_opt/net_d_* keys (the generator then trains with its pixel/perceptual losses)",
            )
        network = rest.pop("network_g", None)
        if isinstance(network, Mapping) and "type" in network:
            native["model"] = dict(network)
            self.map("network_g", "model")
        else:
            self.problem("network_g", f"expected a mapping with a 'type' key naming the network, got {network!r}")
        datasets = rest.pop("datasets", None)
        train = rest.pop("train", None)
        val = rest.pop("val", None)
        path = rest.pop("path", None)
        logger = rest.pop("logger", None)
        progressive = self.datasets(datasets, native)
        if train is not None:
            self.train(train, native, progressive)
        elif progressive is not None:
            self.note("datasets.train.iters", "progressive schedule dropped: the file has no train section")
        self.path(path, native)
        self.val(val, native)
        self.logger(logger, native)
        self.unknown("", rest)
        if self.problems:
            head = f"{self.source}: {len(self.problems)} problem(s) translating this BasicSR-style option file:"
            raise OptionsError(head + "\n  " + "\n  ".join(self.problems))
        return Translation(native, self.notes, self.mapped)

    def top(self, rest: dict[str, Any], native: dict[str, Any]) -> None:
        if "name" in rest:
            native["name"] = rest.pop("name")
            self.map("name", "name")
        else:
            self.problem("name", "missing (the experiment name)")
        if "manual_seed" in rest:
            seed = rest.pop("manual_seed")
            if seed is not None:
                native["seed"] = seed
                self.map("manual_seed", "seed")
        if "model_type" in rest:
            kind = rest.pop("model_type")
            if kind in SUPERVISED_MODEL_TYPES:
                self.note(
                    "model_type", f"{kind}: irframe has one trainer for supervised restoration (no model classes)"
                )
            else:
                self.problem(
                    "model_type", f"{kind!r} has no irframe equivalent; supported: {', '.join(SUPERVISED_MODEL_TYPES)} "
                    "(adversarial and video models are not)",
                )
        if "scale" in rest:
            scale = rest.pop("scale")
            if not isinstance(scale, int) or scale < 1:
                self.problem("scale", f"expected a positive integer, got {scale!r}")
            else:
                self.scale = scale
                self.map("scale", "datasets.*.scale")
        if "num_gpu" in rest:
            n = rest.pop("num_gpu")
            self.note(
                "num_gpu", f"{n} dropped: the number of processes is chosen at launch (accelerate launch / torchrun); "
                "batch sizes stay per process, as in BasicSR",
            )
        if "dist_params" in rest:
            rest.pop("dist_params")
            self.note("dist_params", "dropped: accelerate/torchrun set the backend and port")
        for key in ("is_train", "dist", "rank", "world_size", "auto_resume"):
            if key in rest:
                rest.pop(key)
                self.note(key, "dropped: BasicSR sets it at run time")
        if "find_unused_parameters" in rest:
            value = rest.pop("find_unused_parameters")
            if self.is_train:
                native.setdefault("train", {})["find_unused_parameters"] = value
                self.map("find_unused_parameters", "train.find_unused_parameters")
            else:
                self.note("find_unused_parameters", "dropped: the file has no train section")

    # -- datasets ---------------------------------------------------------------------------------
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
            elif phase.startswith("val"):
                kind = "val"
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
                continue
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
        cfg.pop("name", None)
        cfg.pop("phase", None)
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
            if key in cfg and _is_off(cfg[key]):
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
        }[target]
        handler(cfg, where, out, train)
        self.unknown(f"{where}.", cfg)
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
            ratio = _int(cfg.pop("dataset_enlarge_ratio"))
            if ratio not in (None, 1) and not train:
                self.note(f"{where}.dataset_enlarge_ratio", f"{ratio} dropped: BasicSR enlarges training sets only")
            elif ratio not in (None, 1):
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
        if target == "PairedImageDataset":
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
            if not _is_off(lq):
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

    # -- train ------------------------------------------------------------------------------------
    def train(self, train: Any, native: dict[str, Any], progressive: dict[str, Any] | None) -> None:
        if not isinstance(train, Mapping):
            self.problem("train", f"expected a mapping, got {train!r}")
            return
        rest = dict(train)
        out: dict[str, Any] = native.setdefault("train", {})
        if progressive is not None:
            out["progressive"] = progressive
        if "total_iter" in rest:
            out["total_iter"] = _int(rest.pop("total_iter"))
            self.map("train.total_iter", "train.total_iter")
        if "warmup_iter" in rest:
            warmup = _int(rest.pop("warmup_iter"))
            if isinstance(warmup, int) and warmup > 0:
                out["warmup_iter"] = warmup
                out["warmup_schedule"] = "under"
                self.map("train.warmup_iter", "train.warmup_iter")
                self.note(
                    "train.warmup_iter", "train.warmup_schedule: under: the schedule runs from iteration 0 "
                    "underneath the warm-up, as in BasicSR (irframe's own default starts it after the warm-up)",
                )
                scheduler = train.get("scheduler")
                if isinstance(scheduler, Mapping) and scheduler.get("type") == "MultiStepRestartLR":
                    self.note(
                        "train.scheduler", "after the warm-up BasicSR's MultiStepRestartLR keeps the last warm-up "
                        f"rate ({warmup - 1}/{warmup} of the initial one) until the next milestone or restart; "
                        "irframe returns to the scheduled rate",
                    )
            elif warmup not in (None, 0, -1):
                self.problem("train.warmup_iter", f"expected -1 (none) or a number of iterations, got {warmup!r}")
        if "use_grad_clip" in rest and rest.pop("use_grad_clip"):
            out["grad_clip"] = RESTORMER_GRAD_CLIP
            self.map("train.use_grad_clip", "train.grad_clip")
            self.note(
                "train.use_grad_clip", f"true = clip the gradient norm at {RESTORMER_GRAD_CLIP} (Restormer's value)"
            )
        if "ema_decay" in rest:
            decay = rest.pop("ema_decay")
            if decay:
                out["ema_decay"] = decay
                self.map("train.ema_decay", "train.ema_decay")
        if "optim_g" in rest:
            optim = rest.pop("optim_g")
            out["optim"] = dict(optim) if isinstance(optim, Mapping) else optim
            self.map("train.optim_g", "train.optim")
        if "scheduler" in rest:
            sched = rest.pop("scheduler")
            if sched is not None:
                out["scheduler"] = self.scheduler(sched)
                self.map("train.scheduler", "train.scheduler")
        if "mixing_augs" in rest:
            mix = rest.pop("mixing_augs")
            if isinstance(mix, Mapping):
                out["mixing_augs"] = dict(mix)
                self.map("train.mixing_augs", "train.mixing_augs")
            elif mix is not None:
                self.problem("train.mixing_augs", f"expected {{mixup, mixup_beta, use_identity}}, got {mix!r}")
        for key in _TRAIN_GAN_KEYS:
            if key in rest:
                value = rest.pop(key)
                if value is not None:
                    self.problem(f"train.{key}", "adversarial (GAN) training is not supported by irframe")
        losses = []
        for key in [k for k in rest if k.endswith("_opt")]:
            loss = self.loss(rest.pop(key), f"train.{key}")
            if loss is not None:
                losses.append(loss)
                self.map(f"train.{key}", f"train.losses.{len(losses) - 1}")
        if losses:
            out["losses"] = losses
        self.unknown("train.", rest)

    def scheduler(self, sched: Any) -> Any:
        if not isinstance(sched, Mapping):
            return sched
        out = dict(sched)
        # BasicSR builds MultiStepRestartLR for "MultiStepLR" too; without restarts both are irframe's MultiStepLR.
        if out.get("type") == "MultiStepRestartLR" and not out.get("restarts"):
            out.pop("restarts", None)
            out.pop("restart_weights", None)
            out["type"] = "MultiStepLR"
        elif out.get("type") == "MultiStepLR" and out.get("restarts"):
            out["type"] = "MultiStepRestartLR"
        for key in ("milestones", "periods", "restarts"):
            if isinstance(out.get(key), list):
                out[key] = [_int(v) for v in out[key]]
        return out

    def loss(self, cfg: Any, where: str) -> dict[str, Any] | None:
        if cfg is None:
            return None
        if not isinstance(cfg, Mapping) or "type" not in cfg:
            self.problem(where, f"expected a mapping with a 'type' key naming the loss, got {cfg!r}")
            return None
        out = dict(cfg)
        if "loss_weight" in out:
            out["weight"] = out.pop("loss_weight")
        if out["type"] == "PSNRLoss" and out.get("reduction") == "mean":
            out.pop("reduction")  # irframe's PSNRLoss is always a mean over the batch
        if out["type"] == "PerceptualLoss":
            # BasicSR has no outer weight here: perceptual_weight/style_weight stay inside (weight 1).
            self.note(
                where, "the VGG weights are torchvision's ImageNet file, read from the torch hub cache or "
                "backbone_weights: FILE (never downloaded)",
            )
        if out["type"] == "CharbonnierLoss":
            eps = float(out.pop("eps", 1e-12))
            out["eps"] = math.sqrt(eps)
            self.note(
                f"{where}.eps", f"BasicSR's Charbonnier is sqrt(d^2 + eps) (eps {eps:g}); irframe's is "
                f"sqrt(d^2 + eps^2): eps {out['eps']:g}",
            )
        return out

    # -- path -------------------------------------------------------------------------------------
    def path(self, path: Any, native: dict[str, Any]) -> None:
        if path is None:
            return
        if not isinstance(path, Mapping):
            self.problem("path", f"expected a mapping, got {path!r}")
            return
        rest = dict(path)
        weights = rest.pop("pretrain_network_g", None)
        key = rest.pop("param_key_g", None)
        strict = rest.pop("strict_load_g", None)
        if weights is not None and self.is_train:
            pre: dict[str, Any] = {"path": weights}
            self.map("path.pretrain_network_g", "train.pretrain.path")
            if key is not None:
                pre["key"] = key
                self.map("path.param_key_g", "train.pretrain.key")
            if strict is not None:
                pre["strict"] = bool(strict)
                self.map("path.strict_load_g", "train.pretrain.strict")
            native.setdefault("train", {})["pretrain"] = pre
        elif weights is not None:
            native.setdefault("test", {})["checkpoint"] = weights
            self.map("path.pretrain_network_g", "test.checkpoint")
            if key is not None:
                native["test"]["param_key"] = key
                self.map("path.param_key_g", "test.param_key")
            if strict is False:
                self.note("path.strict_load_g", "false dropped: tools/test.py always loads strictly")
        else:
            for name, value in (("param_key_g", key), ("strict_load_g", strict)):
                if value is not None:
                    self.note(f"path.{name}", "dropped: no pretrain_network_g")
        resume = rest.pop("resume_state", None)
        if resume is not None:
            self.problem(
                "path.resume_state",
                f"{resume!r}: BasicSR training states cannot be resumed by irframe; start from its "
                "weights with pretrain_network_g, or resume an irframe run with --resume",
            )
        for key_d in ("pretrain_network_d", "param_key_d", "strict_load_d"):
            if key_d in rest:
                value = rest.pop(key_d)
                if value is not None and key_d == "pretrain_network_d":
                    self.problem(f"path.{key_d}", "adversarial (GAN) training is not supported by irframe")
        if "experiments_root" in rest:
            native.setdefault("path", {})["experiments_root"] = rest.pop("experiments_root")
            self.map("path.experiments_root", "path.experiments_root")
        if "results_root" in rest:
            native.setdefault("test", {})["results_root"] = rest.pop("results_root")
            self.map("path.results_root", "test.results_root")
        for key_x in ("root", "log", "models", "training_states", "visualization", "ignore_resume_networks"):
            if key_x in rest:
                rest.pop(key_x)
                self.note(f"path.{key_x}", "dropped: irframe lays out experiments/<name>/ itself")
        self.unknown("path.", rest)

    # -- val --------------------------------------------------------------------------------------
    def val(self, val: Any, native: dict[str, Any]) -> None:
        if val is None:
            return
        if not isinstance(val, Mapping):
            self.problem("val", f"expected a mapping, got {val!r}")
            return
        rest = dict(val)
        metrics = self.metrics(rest.pop("metrics", None))
        save = rest.pop("save_img", None)
        if self.is_train:
            out: dict[str, Any] = native.setdefault("val", {})
            if "val_freq" in rest:
                out["freq"] = _int(rest.pop("val_freq"))
                self.map("val.val_freq", "val.freq")
            if metrics:
                out["metrics"] = metrics
                self.map("val.metrics", "val.metrics")
            if save is not None:
                out["save_images"] = bool(save)
                self.map("val.save_img", "val.save_images")
        else:
            test = native.setdefault("test", {})
            if metrics:
                test["metrics"] = metrics
                self.map("val.metrics", "test.metrics")
            if save is not None:
                test["save_images"] = bool(save)
                self.map("val.save_img", "test.save_images")
            if "val_freq" in rest:
                rest.pop("val_freq")
                self.note("val.val_freq", "dropped: the file has no train section")
        if "window_size" in rest:
            rest.pop("window_size")
            self.note("val.window_size", "dropped: inputs are padded to the size multiple the model declares")
        for key in ("rgb2bgr", "use_image", "max_minibatch", "suffix", "pbar", "use_pbar"):
            if key in rest:
                rest.pop(key)
                self.note(f"val.{key}", "dropped: no meaning here (images are RGB, scored whole, one at a time)")
        self.unknown("val.", rest)

    def metrics(self, metrics: Any) -> list[dict[str, Any]]:
        if metrics is None:
            return []
        if not isinstance(metrics, Mapping):
            self.problem("val.metrics", f"expected a mapping of named metrics, got {metrics!r}")
            return []
        out = []
        for name, cfg in metrics.items():
            where = f"val.metrics.{name}"
            if not isinstance(cfg, Mapping):
                self.problem(where, f"expected a mapping with a 'type' key, got {cfg!r}")
                continue
            cfg = dict(cfg)
            kind = cfg.pop("type", None)
            target = METRIC_ALIASES.get(kind) if isinstance(kind, str) else None
            if target is None:
                self.problem(
                    f"{where}.type", f"{kind!r} has no irframe equivalent; supported: {', '.join(METRIC_ALIASES)}"
                )
                continue
            metric: dict[str, Any] = {"type": target}
            for key in ("crop_border", "test_y_channel"):
                if key in cfg:
                    metric[key] = cfg.pop(key)
            if "better" in cfg:
                cfg.pop("better")
                self.note(f"{where}.better", f"dropped: {target} declares its own direction")
            self.unknown(f"{where}.", cfg)
            out.append(metric)
        return out

    # -- logger -----------------------------------------------------------------------------------
    def logger(self, logger: Any, native: dict[str, Any]) -> None:
        if logger is None:
            return
        if not isinstance(logger, Mapping):
            self.problem("logger", f"expected a mapping, got {logger!r}")
            return
        rest = dict(logger)
        out: dict[str, Any] = {}
        for src, dst in (("print_freq", "print_freq"), ("save_checkpoint_freq", "checkpoint_freq"),
                         ("use_tb_logger", "tensorboard")):
            if src in rest:
                value = _int(rest.pop(src))
                if value is not None:
                    out[dst] = value
                    self.map(f"logger.{src}", f"logger.{dst}")
        if "wandb" in rest:
            wandb = rest.pop("wandb")
            project = wandb.get("project") if isinstance(wandb, Mapping) else None
            installed = importlib.util.find_spec("wandb") is not None
            if project is None:
                self.note("logger.wandb", "dropped: no project set")
            else:
                self.note(
                    "logger.wandb", f"project {project!r} dropped: irframe logs to train.log and TensorBoard only"
                    + ("" if installed else " (and wandb is not installed)"),
                )
        if out:
            native["logger"] = out
        self.unknown("logger.", rest)


# ----------------------------------------------------------------------------------------------
# Writing a native file
# ----------------------------------------------------------------------------------------------


def native_yaml(t: Translation, source: str) -> str:
    """The translated options as a commented native YAML file (``irframe convert-options``).

    A header says where the file came from and lists the notes; each top-level section is preceded
    by the BasicSR keys that were mapped into it.
    """
    import yaml

    lines = [f"# Converted from the BasicSR-style option file {source} by `irframe convert-options`.", "#"]
    if t.notes:
        lines.append("# Dropped or changed on the way (notes):")
        lines += [f"#   {n}" for n in t.notes]
    for key, value in t.native.items():
        sources = [f"#   {src} -> {dst}" for src, dst in t.mapped if _top(dst) == key]
        if sources:
            lines += ["#", "# from BasicSR:", *sources]
        flow = None if isinstance(value, (dict, list)) else False  # nested lists inline, top-level scalars plain
        text = yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=flow, width=100)
        lines.append(text.rstrip("\n"))
    return "\n".join(lines) + "\n"


def _top(dst: str) -> str:
    head = dst.split(".", 1)[0]
    return (
        head if head in ("name", "seed", "model", "datasets", "train", "val", "logger", "path", "test") else "datasets"
    )
