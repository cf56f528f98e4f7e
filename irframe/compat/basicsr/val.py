"""BasicSR's ``val:`` (validation during training, or the test protocol) and ``logger:`` sections."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from irframe.compat.basicsr.base import TranslatorBase, as_int
from irframe.text import suggest

#: BasicSR metric names -> irframe metrics.
METRIC_ALIASES: dict[str, str] = {
    "calculate_psnr": "PSNR",
    "psnr": "PSNR",
    "PSNR": "PSNR",
    "calculate_ssim": "SSIM",
    "ssim": "SSIM",
    "SSIM": "SSIM",
}
#: BasicSR's no-reference metrics irframe does not compute: dropped (with a note) from the validation of a
#: training file, whose scores only go to the log; refused in a test file, whose scores are its output.
NO_REFERENCE_METRICS = ("calculate_niqe", "niqe", "NIQE")

#: BasicSR's / NAFNet's ``val:`` keys and a metric's keys (for "did you mean").
VAL_KEYS = (
    "val_freq", "save_img", "metrics", "window_size", "rgb2bgr", "use_image", "max_minibatch", "suffix", "pbar",
    "use_pbar", "grids", "crop_size", "crop_size_h", "crop_size_w", "crop_size_h_ratio", "crop_size_w_ratio",
)
METRIC_KEYS = ("type", "crop_border", "test_y_channel", "better")
LOGGER_KEYS = ("print_freq", "save_checkpoint_freq", "use_tb_logger", "wandb")
WANDB_KEYS = ("project", "resume_id")


class ValLoggerSection(TranslatorBase):
    """``val.*`` (frequency, metrics, saved images) and ``logger.*`` (print/checkpoint frequency,
    TensorBoard, wandb)."""

    def val(self, val: Any, native: dict[str, Any]) -> None:
        if val is None:
            return
        if not isinstance(val, Mapping):
            self.problem("val", f"expected a mapping, got {val!r}")
            return
        rest = dict(val)
        metrics = self.metrics(rest.pop("metrics", None))
        self.use_image(rest, metrics)
        self.grids(rest, native)
        save = rest.pop("save_img", None)
        if self.is_train:
            out: dict[str, Any] = native.setdefault("val", {})
            if "val_freq" in rest:
                out["freq"] = as_int(rest.pop("val_freq"))
                self.map("val.val_freq", "val.freq")
            if metrics:
                out["metrics"] = [m for _, m in metrics]
                self.map("val.metrics", "val.metrics")
                for i, (name, _) in enumerate(metrics):
                    self.rename(f"val.metrics.{i}", f"val.metrics.{name}")
            if save is not None:
                out["save_images"] = bool(save)
                self.map("val.save_img", "val.save_images")
        else:
            test = native.setdefault("test", {})
            if metrics:
                test["metrics"] = [m for _, m in metrics]
                self.map("val.metrics", "test.metrics")
                for i, (name, _) in enumerate(metrics):
                    self.rename(f"test.metrics.{i}", f"val.metrics.{name}")
            if save is not None:
                test["save_images"] = bool(save)
                self.map("val.save_img", "test.save_images")
            if "val_freq" in rest:
                rest.pop("val_freq")
                self.note("val.val_freq", "dropped: the file has no train section")
        if "window_size" in rest:
            rest.pop("window_size")
            self.note("val.window_size", "dropped: inputs are padded to the size multiple the model declares")
        for key in ("rgb2bgr", "max_minibatch", "suffix", "pbar", "use_pbar"):
            if key in rest:
                rest.pop(key)
                self.note(f"val.{key}", "dropped: no meaning here (images are RGB, scored whole, one at a time)")
        self.unknown("val.", rest, VAL_KEYS)

    def use_image(self, rest: dict[str, Any], metrics: list[tuple[str, dict[str, Any]]]) -> None:
        """NAFNet's ``val.use_image``: score the 8-bit images (true, its default) or the float output."""
        if "use_image" not in rest:
            return
        value = rest.pop("use_image")
        if value is None or bool(value):
            self.note("val.use_image", "true: the metrics score 8-bit images (irframe's default, quantize: true)")
            return
        for _, metric in metrics:
            metric["quantize"] = False
        self.map("val.use_image", "val.metrics.*.quantize")
        self.note(
            "val.use_image", "false = every metric's quantize: false: the float output is scored unrounded, peak 1 "
            "(NAFNet switches to peak 255 for an output above 1; irframe does not copy that)",
        )

    def grids(self, rest: dict[str, Any], native: dict[str, Any]) -> None:
        """NAFNet's ``val.grids`` (with ``crop_size_h``/``crop_size_w``): run overlapping crops, average them."""
        keys = ("crop_size", "crop_size_h", "crop_size_w", "crop_size_h_ratio", "crop_size_w_ratio")
        crops = {k: as_int(rest.pop(k)) for k in keys if k in rest}
        if "grids" not in rest:
            for key in crops:
                self.note(f"val.{key}", "dropped: used by val.grids only, which is not set")
            return
        grids = rest.pop("grids")
        if not grids:
            self.note("val.grids", f"{grids}: whole images (irframe's default, inference.tile: null)")
            for key in crops:
                self.note(f"val.{key}", "dropped: val.grids is off")
            return
        size_h = crops.get("crop_size_h", crops.get("crop_size"))
        size_w = crops.get("crop_size_w", crops.get("crop_size"))
        if any(k.endswith("_ratio") for k in crops) or size_h is None or size_h != size_w:
            self.problem(
                "val.grids", f"irframe tiles with square tiles of a fixed size; give crop_size_h and crop_size_w, "
                f"equal (got {', '.join(f'{k}={v!r}' for k, v in crops.items()) or 'no crop size'})",
            )
            return
        if not isinstance(size_h, int) or isinstance(size_h, bool) or size_h // self.scale < 1:
            self.problem("val.crop_size_h", f"expected a positive number of output pixels, got {size_h!r}")
            return
        inference = native.setdefault("inference", {})
        inference["tile"], inference["tile_overlap"] = size_h // self.scale, 0
        for key in crops:
            self.map(f"val.{key}", "inference.tile")
        self.map("val.grids", "inference.tile_overlap")
        self.note(
            "val.grids", f"true: crops of {size_h} output pixels = inference.tile {size_h // self.scale} (input "
            "pixels), tile_overlap 0: the last crop of a row or column is aligned to the image edge and overlaps "
            "its neighbour, where both are averaged (NAFNet spreads that overlap over all crops)",
        )

    def metrics(self, metrics: Any) -> list[tuple[str, dict[str, Any]]]:
        """``val.metrics`` -> ``[(name, native metric)]`` in file order."""
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
            if target is None and kind in NO_REFERENCE_METRICS and self.is_train:
                cfg.pop("crop_border", None)
                cfg.pop("better", None)
                self.note(where, f"{kind} dropped: irframe has no NIQE; validation only logs scores, so training "
                          "is the same without it")
                self.unknown(f"{where}.", cfg, METRIC_KEYS)
                continue
            if target is None and kind in NO_REFERENCE_METRICS:
                self.problem(
                    f"{where}.type", f"{kind!r}: irframe has no NIQE; remove it from val.metrics (PSNR and SSIM "
                    "are measured: calculate_psnr, calculate_ssim)",
                )
                continue
            if target is None:
                hint = suggest(kind, list(METRIC_ALIASES))
                self.problem(
                    f"{where}.type", f"{kind!r} has no irframe equivalent"
                    + (f"; did you mean {hint!r}?" if hint else f"; supported: {', '.join(METRIC_ALIASES)}"),
                )
                continue
            metric: dict[str, Any] = {"type": target}
            for key in ("crop_border", "test_y_channel"):
                if key in cfg:
                    metric[key] = cfg.pop(key)
            if "better" in cfg:
                cfg.pop("better")
                self.note(f"{where}.better", f"dropped: {target} declares its own direction")
            self.unknown(f"{where}.", cfg, METRIC_KEYS)
            out.append((str(name), metric))
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
            self.wandb(rest.pop("wandb"), out)
        if out:
            native["logger"] = out
        self.unknown("logger.", rest, LOGGER_KEYS)

    def wandb(self, wandb: Any, out: dict[str, Any]) -> None:
        """``logger.wandb.{project, resume_id}``: BasicSR logs to wandb when a project is set; here
        that is ``logger.trackers: [wandb]`` with ``logger.project`` (and ``logger.wandb.resume_id``)."""
        if wandb is None:
            return
        if not isinstance(wandb, Mapping):
            self.problem("logger.wandb", f"expected a mapping with project and resume_id, got {wandb!r}")
            return
        rest = dict(wandb)
        project, resume_id = rest.pop("project", None), rest.pop("resume_id", None)
        self.unknown("logger.wandb.", rest, WANDB_KEYS)
        if project is None:
            self.note("logger.wandb", "dropped: no project set (BasicSR logs to wandb only with one)")
            return
        out["trackers"] = ["wandb"]
        out["project"] = str(project)
        self.map("logger.wandb.project", "logger.project")
        self.note("logger.wandb.project", f"{project!r}: logger.trackers: [wandb] with logger.project {project!r}"
                  + ("" if importlib.util.find_spec("wandb") is not None
                     else "; wandb is not installed: pip install 'irframe[wandb]' before training"))
        if resume_id is not None:
            out["wandb"] = {"resume_id": str(resume_id)}
            self.map("logger.wandb.resume_id", "logger.wandb.resume_id")
