"""BasicSR's ``train:`` section: iterations, warm-up, optimizer, scheduler, losses, EMA, clipping."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from irframe.compat.basicsr.base import TranslatorBase, as_int

#: Restormer's ``use_grad_clip: true`` is ``clip_grad_norm_(params, 0.01)`` in its ImageCleanModel.
RESTORMER_GRAD_CLIP = 0.01
_TRAIN_GAN_KEYS = ("optim_d", "net_d_iters", "net_d_init_iters", "net_d_reg_every", "gan_opt")
#: BasicSR's ``train:`` keys (for "did you mean"; any ``*_opt`` key is a loss).
TRAIN_KEYS = (
    "total_iter", "warmup_iter", "use_grad_clip", "ema_decay", "optim_g", "scheduler", "mixing_augs",
    "pixel_opt", "perceptual_opt", *_TRAIN_GAN_KEYS,
)
#: BasicSR losses whose ``reduction`` irframe's loss of the same name takes (``mean`` / ``sum``).
_REDUCED_LOSSES = ("L1Loss", "MSELoss", "CharbonnierLoss")


class TrainSection(TranslatorBase):
    """``train.*``: the training loop, ``optim_g``, ``scheduler`` and the ``*_opt`` losses."""

    def train(self, train: Any, native: dict[str, Any], progressive: dict[str, Any] | None) -> None:
        if not isinstance(train, Mapping):
            self.problem("train", f"expected a mapping, got {train!r}")
            return
        rest = dict(train)
        out: dict[str, Any] = native.setdefault("train", {})
        if progressive is not None:
            out["progressive"] = progressive
        if "total_iter" in rest:
            out["total_iter"] = as_int(rest.pop("total_iter"))
            self.map("train.total_iter", "train.total_iter")
        if "warmup_iter" in rest:
            warmup = as_int(rest.pop("warmup_iter"))
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
            elif warmup in (0, -1):
                self.note("train.warmup_iter", f"{warmup}: no warm-up (irframe's default, train.warmup_iter: 0)")
            elif warmup is not None:
                self.problem("train.warmup_iter", f"expected -1 (none) or a number of iterations, got {warmup!r}")
        self.grad_clip(rest, out)
        if "ema_decay" in rest:
            decay = rest.pop("ema_decay")
            if decay:
                out["ema_decay"] = decay
                self.map("train.ema_decay", "train.ema_decay")
            elif decay is not None:
                self.note("train.ema_decay", f"{decay}: no EMA (irframe's default, train.ema_decay: 0)")
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
        self.step(rest, out)
        losses = []
        refused = False
        for key in [k for k in rest if k.endswith("_opt")]:
            given = rest.pop(key)
            loss = self.loss(given, f"train.{key}")
            if loss is not None:
                losses.append(loss)
                index = len(losses) - 1
                self.map(f"train.{key}", f"train.losses.{index}")
                if isinstance(given, Mapping) and "loss_weight" in given:
                    self.rename(f"train.losses.{index}.weight", f"train.{key}.loss_weight")
            refused = refused or (given is not None and loss is None)
        if losses:
            out["losses"] = losses
        elif refused:
            self.omitted.append("train.losses")
        self.unknown("train.", rest, TRAIN_KEYS)

    def step(self, rest: dict[str, Any], out: dict[str, Any]) -> None:
        """The training step of ``model_type``: BasicSR's ``network_d``, ``optim_d``, ``gan_opt``,
        ``net_d_iters``, ``net_d_init_iters`` (``train.step: AdversarialStep``), and Real-ESRGAN's USM
        targets (``l1_gt_usm``, ``percep_gt_usm``, ``gan_gt_usm``; Real-ESRNet's ``gt_usm``)."""
        gan = {k: rest.pop(k) for k in _TRAIN_GAN_KEYS if k in rest}
        usm = self.realesrgan
        if not self.adversarial:
            for key, value in gan.items():
                if value is not None:
                    kind = self.model_type or "(not a supported one)"
                    self.note(f"train.{key}", f"dropped: model_type {kind} trains no discriminator")
            step_g: dict[str, Any] = {"type": "SupervisedStep"}
            sharpened = usm.get("gt_usm", True) is not False and self.realesrgan_synthesis
            if self.model_type == "RealESRNetModel" and sharpened:
                step_g["target"] = "gt_usm"
                self.map("gt_usm", "train.step.target")
            self.queue_size(step_g)
            if len(step_g) > 1:
                out["step"] = step_g
            return
        step: dict[str, Any] = {"type": "AdversarialStep"}
        complete = True
        if self.network_d is not None:
            step["network_d"] = self.network_d
        else:
            complete = False
            self.problem(
                "network_d", f"missing: {self.model_type} trains a discriminator beside network_g; add network_d "
                "(e.g. {type: VGGStyleDiscriminator, num_in_ch: 3, num_feat: 64})",
            )
        for key in ("optim_d", "gan_opt"):
            value = gan.get(key)
            if value is None:
                complete = False
                self.problem(
                    f"train.{key}", f"missing: {self.model_type} trains network_d with "
                    + ("its own optimizer (optim_d)" if key == "optim_d" else "an adversarial loss (gan_opt: {type: "
                       "GANLoss, gan_type: vanilla, loss_weight: 0.1})"),
                )
                continue
            native_key = "optim_d" if key == "optim_d" else "gan"
            step[native_key] = dict(value) if isinstance(value, Mapping) else value
            self.map(f"train.{key}", f"train.step.{native_key}")
        for key in ("net_d_iters", "net_d_init_iters"):
            if gan.get(key) is not None:
                step[key] = as_int(gan[key])
                self.map(f"train.{key}", f"train.step.{key}")
        if gan.get("net_d_reg_every") is not None:
            self.problem(
                "train.net_d_reg_every", "StyleGAN2's lazy R1 regularisation of the discriminator is not supported by "
                "irframe's AdversarialStep",
            )
        if self.model_type == "ESRGANModel":
            step["relativistic"] = True
        if self.model_type == "RealESRGANModel":
            for src, dst in (("l1_gt_usm", "pixel_target"), ("percep_gt_usm", "perceptual_target"),
                             ("gan_gt_usm", "gan_target")):
                # RealESRGANModel reads each as `opt[key] is False`: anything else is the sharpened GT
                step[dst] = "gt" if usm.get(src) is False else "gt_usm"
                if src in usm:
                    self.map(src, f"train.step.{dst}")
        self.queue_size(step)
        if complete:  # a step without its discriminator or loss would only repeat the problems above
            out["step"] = step
        else:
            self.omitted.append("train.step")

    def queue_size(self, step: dict[str, Any]) -> None:
        """Real-ESRGAN's ``queue_size`` (default 180 in its models) -> ``train.step.queue_size``, for a
        file whose model synthesises its batches on the device (``degrade_on: device``)."""
        if not self.realesrgan_synthesis:
            return
        given = self.realesrgan.get("queue_size")
        step["queue_size"] = as_int(given) if given is not None else 180
        if given is not None:
            self.map("queue_size", "train.step.queue_size")
        self.note(
            "queue_size", f"{step['queue_size']}{'' if given is not None else ' (RealESRGANModel default)'}: the "
            "training-pair pool of batches synthesised on the device (train.step.queue_size), as Real-ESRGAN's",
        )

    def grad_clip(self, rest: dict[str, Any], out: dict[str, Any]) -> None:
        """``use_grad_clip``: Restormer's ImageCleanModel clips the gradient norm at 0.01 when it is true;
        NAFNet's ImageRestorationModel does so unless it is false (its default is true)."""
        given = "use_grad_clip" in rest
        value = rest.pop("use_grad_clip", None)
        default = self.model_type == "ImageRestorationModel"
        clip = bool(value) if given and value is not None else default
        if clip:
            out["grad_clip"] = RESTORMER_GRAD_CLIP
            if given:
                self.map("train.use_grad_clip", "train.grad_clip")
            why = "Restormer's and NAFNet's value" if given else "ImageRestorationModel's default"
            self.note(
                "train.use_grad_clip", f"{'true' if given else 'absent'} = clip the gradient norm at "
                f"{RESTORMER_GRAD_CLIP} ({why}; train.grad_clip)",
            )
        elif given:
            self.note("train.use_grad_clip", "false: no clipping (irframe's default, train.grad_clip: null)")

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
        elif out.get("type") == "TrueCosineAnnealingLR":
            out["type"] = "CosineAnnealingLR"
            self.note(
                "train.scheduler.type", "TrueCosineAnnealingLR (NAFNet's name for torch's CosineAnnealingLR, "
                "stepped every iteration) = irframe's CosineAnnealingLR with the same T_max and eta_min; past "
                "T_max torch's rate climbs back up, irframe's stays at eta_min (NAFNet sets T_max = total_iter)",
            )
        for key in ("milestones", "periods", "restarts"):
            if isinstance(out.get(key), list):
                out[key] = [as_int(v) for v in out[key]]
        if "T_max" in out:
            out["T_max"] = as_int(out["T_max"])
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
        kind = out["type"]
        reduction = out.get("reduction")
        if kind in _REDUCED_LOSSES and reduction == "none":
            self.problem(
                f"{where}.reduction", "'none' (per-pixel values) cannot be a training loss; BasicSR's files use "
                "mean or sum",
            )
            return None
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
