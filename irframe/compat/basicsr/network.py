"""BasicSR's top-level keys, the network (``network_g``/``network_d``) and its weights (``path:``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from irframe.compat.basicsr.base import TranslatorBase

#: ``model_type`` values whose job (one generator, pixel/perceptual losses) irframe's trainer does.
SUPERVISED_MODEL_TYPES = ("ImageCleanModel", "ImageRestorationModel", "SRModel", "SwinIRModel", "EDSRModel")


class NetworkSection(TranslatorBase):
    """``name``, ``manual_seed``, ``model_type``, ``scale``, ``num_gpu``..., ``network_g``/``network_d``
    and ``path.*`` (pre-trained weights, resume state, folders)."""

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

    def network(self, rest: dict[str, Any], native: dict[str, Any]) -> None:
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
