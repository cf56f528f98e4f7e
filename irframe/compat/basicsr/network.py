"""BasicSR's top-level keys, the network (``network_g``/``network_d``) and its weights (``path:``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from irframe.compat.basicsr.base import TranslatorBase, as_int

#: ``model_type`` -> what that model class does beyond one generator trained with pixel/perceptual
#: losses (irframe's one trainer), and where irframe keeps it.
MODEL_TYPE_NOTES: dict[str, str] = {
    "SRModel": "",
    "EDSRModel": "",
    "ImageCleanModel": "; Restormer's train.use_grad_clip and train.mixing_augs are translated",
    "SwinIRModel": "; its test reflect-pads the input to network_g.window_size, as irframe's SwinIR does in "
    "its forward (its spec declares the window as the size multiple)",
    "HATModel": "; its test reflect-pads the input to network_g.window_size, as irframe's HAT does in its "
    "forward, and tiles with the top-level tile option (translated to inference.tile)",
    "ImageRestorationModel": "; NAFNet's (and HINet's) clips the gradient norm at 0.01 unless "
    "train.use_grad_clip is false, reads path.param_key and validates with val.grids / val.use_image: all "
    "translated",
}

#: ``model_type`` values whose job (one generator, pixel/perceptual losses) irframe's trainer does.
SUPERVISED_MODEL_TYPES = tuple(MODEL_TYPE_NOTES)

#: ``model_type`` -> how irframe's training steps do that model's job.
REAL_WORLD_MODEL_TYPES: dict[str, str] = {
    "RealESRNetModel": "Real-ESRNet: one generator with its pixel losses on Real-ESRGAN's high-order degradations "
    "(RealESRGANDataset, each batch degraded on the training device; train.step SupervisedStep, its target the "
    "USM-sharpened GT when gt_usm is true)",
}
#: ``model_type`` values that train a discriminator too (:data:`~.base.GAN_MODEL_TYPES`), and how
#: (train.step: AdversarialStep).
ADVERSARIAL_MODEL_TYPES: dict[str, str] = {
    "SRGANModel": "SRGAN: generator and network_d trained against each other, plain GAN loss (train.step: "
    "AdversarialStep)",
    "ESRGANModel": "ESRGAN: generator and network_d with the relativistic average GAN (train.step: AdversarialStep, "
    "relativistic: true)",
    "RealESRGANModel": "Real-ESRGAN: generator and network_d on the high-order degradations, plain GAN loss, the "
    "USM-sharpened GT where l1_gt_usm / percep_gt_usm / gan_gt_usm say (train.step: AdversarialStep)",
}

#: BasicSR's top-level keys (for "did you mean").
TOP_KEYS = (
    "name", "model_type", "scale", "num_gpu", "manual_seed", "dist_params", "is_train", "dist", "rank",
    "world_size", "auto_resume", "find_unused_parameters", "network_g", "network_d", "datasets", "train", "val",
    "path", "logger", "tile",
)
#: BasicSR's ``path:`` keys (``param_key`` is NAFNet's spelling of ``param_key_g``).
PATH_KEYS = (
    "pretrain_network_g", "param_key_g", "param_key", "strict_load_g", "resume_state", "pretrain_network_d",
    "param_key_d", "strict_load_d", "experiments_root", "results_root", "root", "log", "models",
    "training_states", "visualization", "ignore_resume_networks",
)
#: Keys of BasicSR's pre-1.0 test files, which now live under ``val:``.
_OLD_TEST_KEYS = {
    "save_img": "val.save_img",
    "suffix": "val.suffix",
    "crop_border": "val.metrics.<name>.crop_border",
}


class NetworkSection(TranslatorBase):
    """``name``, ``manual_seed``, ``model_type``, ``scale``, ``num_gpu``..., ``network_g``/``network_d``
    and ``path.*`` (pre-trained weights, resume state, folders)."""

    def top(self, rest: dict[str, Any], native: dict[str, Any]) -> None:
        if "name" in rest:
            native["name"] = rest.pop("name")
            self.map("name", "name")
        else:
            self.problem("name", "missing (the experiment name)", omits="name")
        if "manual_seed" in rest:
            seed = rest.pop("manual_seed")
            if seed is not None:
                native["seed"] = seed
                self.map("manual_seed", "seed")
        if "model_type" in rest:
            kind = rest.pop("model_type")
            known = {**REAL_WORLD_MODEL_TYPES, **ADVERSARIAL_MODEL_TYPES}
            if kind in SUPERVISED_MODEL_TYPES:
                self.model_type = kind
                self.note(
                    "model_type", f"{kind}: one generator trained with its pixel/perceptual losses, which is "
                    "irframe's one trainer (no model classes)" + MODEL_TYPE_NOTES[kind],
                )
            elif kind in known:
                self.model_type = kind
                self.note("model_type", f"{kind}: {known[kind]}")
            else:
                self.problem(
                    "model_type", f"{kind!r} has no irframe equivalent; supported: "
                    f"{', '.join([*SUPERVISED_MODEL_TYPES, *known])} (video models are not)",
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
        if "tile" in rest:
            self.tile(rest.pop("tile"), native)
        for key, home in _OLD_TEST_KEYS.items():
            if key in rest:
                rest.pop(key)
                self.problem(
                    key, f"a top-level key of BasicSR's pre-1.0 test files (BasicSR itself no longer reads it "
                    f"there); write it as {home}",
                )

    def tile(self, tile: Any, native: dict[str, Any]) -> None:
        """HAT's ``tile: {tile_size, tile_pad}``: tiled testing (and validation) to bound memory.

        HAT runs each ``tile_size`` square with ``tile_pad`` more input pixels on every side and
        keeps the square's own output. irframe's tiles overlap instead: the same pieces
        (``tile_size + 2 * tile_pad``) overlapping by ``2 * tile_pad``, blended across the overlap.
        """
        if tile is None:
            return
        if not isinstance(tile, Mapping):
            self.problem("tile", f"expected {{tile_size, tile_pad}}, got {tile!r}")
            return
        rest = dict(tile)
        size, pad = as_int(rest.pop("tile_size", None)), as_int(rest.pop("tile_pad", 0))
        self.unknown("tile.", rest, ("tile_size", "tile_pad"))
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            self.problem("tile.tile_size", f"expected a positive number of input pixels, got {size!r}")
            return
        if not isinstance(pad, int) or isinstance(pad, bool) or pad < 0:
            self.problem("tile.tile_pad", f"expected a number of input pixels >= 0, got {pad!r}")
            return
        inference = native.setdefault("inference", {})
        inference["tile"] = size + 2 * pad
        inference["tile_overlap"] = 2 * pad
        self.map("tile.tile_size", "inference.tile")
        self.map("tile.tile_pad", "inference.tile_overlap")
        self.note(
            "tile", f"tile_size {size} + tile_pad {pad} on each side = inference.tile {size + 2 * pad} with "
            f"inference.tile_overlap {2 * pad}: the same pieces as HAT's; HAT keeps each piece's centre, irframe "
            "blends the overlaps (feathered, not cut)",
        )

    def network(self, rest: dict[str, Any], native: dict[str, Any]) -> None:
        if "network_d" in rest:
            network_d = rest.pop("network_d")
            if not self.adversarial:
                self.note(
                    "network_d", f"dropped: model_type {self.model_type or '(not a supported one)'} trains no "
                    f"discriminator (BasicSR does not build it either); {', '.join(ADVERSARIAL_MODEL_TYPES)} do",
                )
            elif isinstance(network_d, Mapping) and "type" in network_d:
                self.network_d = dict(network_d)  # the train section puts it in train.step.network_d
                self.map("network_d", "train.step.network_d")
            else:
                self.problem(
                    "network_d", f"expected a mapping with a 'type' key naming the discriminator, got {network_d!r}"
                )
        network = rest.pop("network_g", None)
        if isinstance(network, Mapping) and "type" in network:
            native["model"] = dict(network)
            self.map("network_g", "model")
        else:
            self.problem(
                "network_g", f"expected a mapping with a 'type' key naming the network, got {network!r}", omits="model"
            )

    # -- path -------------------------------------------------------------------------------------
    def path(self, path: Any, native: dict[str, Any]) -> None:
        if path is None:
            return
        if not isinstance(path, Mapping):
            self.problem("path", f"expected a mapping, got {path!r}")
            return
        rest = dict(path)
        weights = rest.pop("pretrain_network_g", None)
        key_name = "param_key" if "param_key" in rest and "param_key_g" not in rest else "param_key_g"
        key = rest.pop("param_key_g", None)
        if key_name == "param_key":  # NAFNet's ImageRestorationModel reads path.param_key
            key = rest.pop("param_key")
        elif "param_key" in rest:
            rest.pop("param_key")
            self.note("path.param_key", "dropped: param_key_g is given (param_key is NAFNet's name for it)")
        strict = rest.pop("strict_load_g", None)
        if weights is not None and key is None:
            self.note(
                "path.pretrain_network_g", "no param_key_g: BasicSR reads the file's 'params'; irframe's auto "
                "reads 'params_ema' when the file holds both (set param_key_g: params to match)",
            )
        if weights is not None and self.is_train:
            pre: dict[str, Any] = {"path": weights}
            self.map("path.pretrain_network_g", "train.pretrain.path")
            if key is not None:
                pre["key"] = key
                self.map(f"path.{key_name}", "train.pretrain.key")
            if strict is not None:
                pre["strict"] = bool(strict)
                self.map("path.strict_load_g", "train.pretrain.strict")
            native.setdefault("train", {})["pretrain"] = pre
        elif weights is not None:
            native.setdefault("test", {})["checkpoint"] = weights
            self.map("path.pretrain_network_g", "test.checkpoint")
            if key is not None:
                native["test"]["param_key"] = key
                self.map(f"path.{key_name}", "test.param_key")
            if strict is not None:
                self.note(
                    "path.strict_load_g", f"{str(bool(strict)).lower()}: tools/test.py always loads strictly "
                    "(a file that does not fit the model is an error naming its keys)",
                )
        else:
            for name, value in ((key_name, key), ("strict_load_g", strict)):
                if value is not None:
                    self.note(f"path.{name}", "dropped: no pretrain_network_g")
        resume = rest.pop("resume_state", None)
        if resume is not None:
            self.problem(
                "path.resume_state",
                f"{resume!r}: BasicSR training states cannot be resumed by irframe; start from its "
                "weights with pretrain_network_g, or resume an irframe run with --resume",
            )
        self.pretrain_d(rest, native)
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
        self.unknown("path.", rest, PATH_KEYS)

    def pretrain_d(self, rest: dict[str, Any], native: dict[str, Any]) -> None:
        """``pretrain_network_d`` / ``param_key_d`` / ``strict_load_d``: the discriminator's starting
        weights (``train.step.pretrain_d``)."""
        given = {k: rest.pop(k) for k in ("pretrain_network_d", "param_key_d", "strict_load_d") if k in rest}
        weights = given.get("pretrain_network_d")
        step = native.get("train", {}).get("step")
        if weights is None or not isinstance(step, dict) or "network_d" not in step:
            for key, value in given.items():
                if value is not None:
                    why = "no pretrain_network_d" if weights is None else "the file trains no discriminator"
                    self.note(f"path.{key}", f"dropped: {why}")
            return
        pre: dict[str, Any] = {"path": weights}
        self.map("path.pretrain_network_d", "train.step.pretrain_d.path")
        param_key = given.get("param_key_d")
        # BasicSR reads 'params' when param_key_d is not set (irframe's auto would prefer 'params_ema')
        pre["key"] = param_key if param_key is not None else "params"
        if param_key is not None:
            self.map("path.param_key_d", "train.step.pretrain_d.key")
        strict = given.get("strict_load_d")
        if strict is not None:
            pre["strict"] = bool(strict)
            self.map("path.strict_load_d", "train.step.pretrain_d.strict")
        step["pretrain_d"] = pre
