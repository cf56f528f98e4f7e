"""BasicSR's ``val:`` (validation during training, or the test protocol) and ``logger:`` sections."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from irframe.compat.basicsr.base import TranslatorBase, as_int

#: BasicSR metric names -> irframe metrics.
METRIC_ALIASES: dict[str, str] = {
    "calculate_psnr": "PSNR",
    "psnr": "PSNR",
    "PSNR": "PSNR",
    "calculate_ssim": "SSIM",
    "ssim": "SSIM",
    "SSIM": "SSIM",
}


class ValLoggerSection(TranslatorBase):
    """``val.*`` (frequency, metrics, saved images) and ``logger.*`` (print/checkpoint frequency)."""

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
                out["freq"] = as_int(rest.pop("val_freq"))
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
                value = as_int(rest.pop(src))
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

