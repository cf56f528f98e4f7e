"""The adversarial training step (``train.step: {type: AdversarialStep, ...}``): a generator and a
discriminator, as BasicSR's ``SRGANModel`` / ``ESRGANModel`` and Real-ESRGAN's ``RealESRGANModel``.

Per iteration ``i`` (counted from 1, BasicSR's ``current_iter``), on the iteration's micro-batches:

1. the generator (``model``) restores ``lq``; when ``i % net_d_iters == 0`` and ``i > net_d_init_iters``
   it is updated with ``train.losses`` (pixel losses against ``pixel_target``, perceptual losses
   against ``perceptual_target``) plus the generator's GAN loss, the discriminator frozen
   (``requires_grad`` off) and called as the plain module, outside DDP, since it gets no update here;
   otherwise the generator's output is only computed (no gradient);
2. the discriminator is updated every iteration: real images (``gan_target``) pushed towards real,
   the generator's (detached) output towards fake, each with its own backward, as BasicSR does;
3. both schedules step (one ``train.scheduler`` for both optimizers), then the generator's EMA.

``relativistic: true`` is ESRGAN's relativistic average GAN (``ESRGANModel``): the generator's loss
is ``(gan(D(real) - mean D(fake), fake) + gan(D(fake) - mean D(real), real)) / 2`` and the
discriminator's ``gan(D(real) - mean D(fake), real) / 2 + gan(D(fake) - mean D(real), fake) / 2``;
otherwise the plain form (``SRGANModel``, ``RealESRGANModel``). Logged with BasicSR's names:
``l_g_pix``, ``l_g_percep`` (``l_g_style``), ``l_g_gan``, ``l_d_real``, ``l_d_fake``, ``out_d_real``,
``out_d_fake`` (the discriminator's mean logits); ``loss`` is the generator's weighted total.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from irframe.errors import OptionsError, RegistryError
from irframe.nn.spec import get_spec
from irframe.nn.weights import unwrap_model
from irframe.options import PretrainOptions
from irframe.registry import ARCHS, LOSSES, TRAIN_STEPS
from irframe.train.loss import WeightedLoss
from irframe.train.step import CheckpointedNetwork, StepContext, StepOutput, Target, TrainStep, target_of

DISCRIMINATOR = "discriminator"
D_PARTS = ("l_g_gan", "l_d_real", "l_d_fake", "out_d_real", "out_d_fake")


def discriminator_problem(type_name: Any) -> str | None:
    """Why the arch named ``type_name`` cannot be ``network_d`` (``None``: it can, or it is unknown:
    the registry says so)."""
    try:
        cls = ARCHS.get(type_name)
    except RegistryError:
        return None
    role = getattr(cls, "role", None)
    if role == DISCRIMINATOR:
        return None
    what = f"a {role}" if role else "a restorer (it declares no role = 'discriminator')"
    return (
        f"{type_name} is {what}, not a discriminator; network_d takes a registered discriminator "
        f"({', '.join(discriminators()) or 'none registered'})"
    )


def discriminators() -> list[str]:
    """The registered archs that declare ``role = "discriminator"``."""
    return [e.name for e in ARCHS.entries() if getattr(e.obj, "role", None) == DISCRIMINATOR]


_PARTS = {
    "network_d": "a discriminator, {type: UNetDiscriminatorSN, num_in_ch: 3, ...} or "
    "{type: VGGStyleDiscriminator, ...}",
    "gan": "an adversarial loss, {type: GANLoss, gan_type: vanilla, loss_weight: 0.1}",
    "optim_d": "the discriminator's optimizer, {type: Adam, lr: 1.0e-4, betas: [0.9, 0.99]}",
}


def missing_part(kwargs: Mapping[str, Any]) -> str | None:
    """``key: why`` for the first of ``network_d``, ``gan``, ``optim_d`` that ``kwargs`` lack."""
    for key, what in _PARTS.items():
        if kwargs.get(key) is None:
            others = ", ".join(k for k in _PARTS if k != key)
            return (
                f"{key}: missing; adversarial training needs {what}, besides {others} "
                "(without a discriminator, leave train.step out: the supervised step)"
            )
    return None


def gan_problem(type_name: Any) -> str | None:
    """Why the loss named ``type_name`` cannot be the ``gan`` loss (``None``: it can, or it is unknown)."""
    try:
        cls = LOSSES.get(type_name)
    except RegistryError:
        return None
    if getattr(cls, "adversarial", False):
        return None
    return f"{type_name} is not an adversarial loss (one that declares adversarial = True, e.g. GANLoss)"


def basicsr_names(losses: WeightedLoss) -> dict[str, str | None]:
    """``WeightedLoss`` log names -> BasicSR's (``None``: not logged; a perceptual loss with both a
    feature and a style term is logged as its two parts)."""
    out: dict[str, str | None] = {}
    taken: dict[str, int] = {}

    def unique(name: str) -> str:
        count = taken.get(name, 0)
        taken[name] = count + 1
        return name if count == 0 else f"{name}_{count}"

    for term in losses.terms:
        parts = tuple(str(p) for p in getattr(term.loss, "part_names", ()))
        if type(term.loss).__name__ == "PerceptualLoss":
            if parts:
                out[term.name] = None
                out[f"{term.name}.percep"] = unique("l_g_percep")
                out[f"{term.name}.style"] = unique("l_g_style")
                continue
            base = unique("l_g_style" if term.loss.perceptual_weight == 0 else "l_g_percep")
        elif getattr(term.loss, "perceptual", False):
            base = unique(f"l_g_{term.name}")
        else:
            base = unique("l_g_pix")
        out[term.name] = base
        for part in parts:
            out[f"{term.name}.{part}"] = f"{base}.{part}"
    return out


@TRAIN_STEPS.register()
class AdversarialStep(TrainStep):
    """A generator (``model``) and a discriminator trained against each other (see the module doc).

    Args:
        network_d: the discriminator, ``{type: Name, ...}`` of a registered arch declaring
            ``role = "discriminator"`` (``VGGStyleDiscriminator``, ``UNetDiscriminatorSN``); its
            input size is checked against ``datasets.train.gt_size``.
        gan: the adversarial loss, ``{type: GANLoss, gan_type, real_label_val, fake_label_val,
            loss_weight}`` (``loss_weight`` weighs the generator's GAN term only, as BasicSR).
        optim_d: the discriminator's optimizer (``train.optim`` is the generator's); the
            ``train.scheduler`` and warm-up apply to both.
        relativistic: ESRGAN's relativistic average GAN (``ESRGANModel``); false: the plain form.
        net_d_iters: the generator is updated every ``net_d_iters`` iterations (the discriminator
            every iteration), as BasicSR.
        net_d_init_iters: the generator is not updated in the first ``net_d_init_iters`` iterations.
        grad_clip_d: gradient-norm clipping of the discriminator (``train.grad_clip`` clips the
            generator's).
        pixel_target, perceptual_target, gan_target: what the pixel losses, the perceptual losses
            and the discriminator's real images are: ``gt`` or ``gt_usm`` (Real-ESRGAN's
            ``l1_gt_usm``, ``percep_gt_usm``, ``gan_gt_usm``; a batch without ``gt_usm`` uses ``gt``).
        pretrain_d: start the discriminator from weights, ``{path, key, strict, drop}`` as
            ``train.pretrain`` (BasicSR's ``pretrain_network_d``, ``param_key_d``, ``strict_load_d``).
        queue_size: Real-ESRGAN's training-pair pool for batches degraded on the device (see
            ``SupervisedStep``); 0: none.
    """

    def __init__(
        self,
        context: StepContext,
        network_d: dict[str, Any] | None = None,
        gan: dict[str, Any] | None = None,
        optim_d: dict[str, Any] | None = None,
        relativistic: bool = False,
        net_d_iters: int = 1,
        net_d_init_iters: int = 0,
        grad_clip_d: float | None = None,
        pixel_target: Target = "gt",
        perceptual_target: Target = "gt",
        gan_target: Target = "gt",
        pretrain_d: dict[str, Any] | None = None,
        queue_size: int = 0,
    ) -> None:
        super().__init__(context)
        self.pool_pairs(queue_size)
        where = f"{self.source}: train.step"
        missing = missing_part({"network_d": network_d, "gan": gan, "optim_d": optim_d})
        if missing is not None:
            raise OptionsError(f"{where}.{missing}")
        assert network_d is not None and gan is not None and optim_d is not None
        if net_d_iters < 1:
            raise OptionsError(f"{where}.net_d_iters: expected an integer >= 1, got {net_d_iters}")
        if net_d_init_iters < 0:
            raise OptionsError(f"{where}.net_d_init_iters: expected an integer >= 0, got {net_d_init_iters}")
        if grad_clip_d is not None and not grad_clip_d > 0:
            raise OptionsError(f"{where}.grad_clip_d: expected a positive norm or null, got {grad_clip_d}")
        self.relativistic = bool(relativistic)
        self.net_d_iters, self.net_d_init_iters = int(net_d_iters), int(net_d_init_iters)
        self.grad_clip_d = grad_clip_d
        self.pixel_target, self.perceptual_target, self.gan_target = pixel_target, perceptual_target, gan_target

        # the discriminator: a registered discriminator whose input fits the training patches
        problem = discriminator_problem(network_d.get("type"))
        if problem is not None:
            raise OptionsError(f"{where}.network_d: {problem}")
        self.d_config = dict(network_d)
        self.net_d: nn.Module = ARCHS.build(network_d, path="train.step.network_d")
        self._check_discriminator(where)
        self.has_unused_parameters = bool(getattr(self.net_d, "has_unused_parameters", False))
        if pretrain_d is not None:
            self._load_pretrained_d(pretrain_d, where)

        # the generator's losses: pixel and perceptual terms (each with its target), then the GAN term
        problem = gan_problem(gan.get("type"))
        if problem is not None:
            raise OptionsError(f"{where}.gan: {problem}")
        self.gan: nn.Module = LOSSES.build(gan, path="train.step.gan")
        losses = WeightedLoss.from_options(context.train.losses)
        if losses.needs_features:
            raise OptionsError(
                f"{self.source}: train.losses: a feature loss (uses_features) needs the model's features; "
                "AdversarialStep trains on its output only"
            )
        self.names = basicsr_names(losses)
        pixel = [t for t in losses.terms if not getattr(t.loss, "perceptual", False)]
        percep = [t for t in losses.terms if getattr(t.loss, "perceptual", False)]
        self.pixel = WeightedLoss(pixel) if pixel else None
        self.percep = WeightedLoss(percep) if percep else None
        if len(get_spec(unwrap_model(self.model)).tasks) > 1:
            raise OptionsError(
                f"{self.source}: model: a multi-task model (spec.tasks) cannot be trained by AdversarialStep"
            )
        self.log_names = [n for n in (self.names[k] for k in losses.log_names) if n is not None] + list(D_PARTS)

        # the optimizers: the generator's first (its rate is the one reported)
        self.optimize(self.model, context.train.optim, "train.optim", "optimizer")
        self.optimize(self.net_d, optim_d, "train.step.optim_d", "optimizer_d")
        self._raw_d = self.net_d
        n_params = sum(p.numel() for p in self.net_d.parameters())
        kind = getattr(self.gan, "gan_type", type(self.gan).__name__)
        self.notes.append(
            f"adversarial step: {self.d_config['type']} ({n_params / 1e6:.2f} M parameters) judges {gan_target} "
            f"against the model's output; {kind} GAN loss{' (relativistic average)' if self.relativistic else ''}; "
            f"the discriminator steps every iteration, the model every {self.net_d_iters} after iteration "
            f"{self.net_d_init_iters}"
        )

    @classmethod
    def option_children(cls, kwargs: dict[str, Any]) -> list[tuple[str, str, Any]]:
        """The nested components (``network_d`` an arch, ``gan`` a loss, ``optim_d`` an optimizer),
        checked by ``irframe show-options`` with the rest; a ``network_d`` that is no discriminator
        and a ``gan`` loss that is not adversarial are refused there too."""
        missing = missing_part(kwargs)
        if missing is not None:
            raise OptionsError(f"{cls.__name__}.{missing}")
        children: list[tuple[str, str, Any]] = []
        for key, kind, problem in (
            ("network_d", "arch", discriminator_problem),
            ("gan", "loss", gan_problem),
            ("optim_d", "optimizer", None),
        ):
            value = kwargs.get(key)
            if not isinstance(value, Mapping):
                continue
            why = problem(value.get("type")) if problem is not None else None
            if why is not None:
                raise OptionsError(f"{cls.__name__}.{key}: {why}")
            children.append((key, kind, value))
        return children

    # -- building ---------------------------------------------------------------------------------
    def _check_discriminator(self, where: str) -> None:
        """Its channels against the model's output, its input size against the training patches."""
        spec = getattr(self.net_d, "disc_spec", None)
        if spec is None:
            return
        name = self.d_config["type"]
        out_channels = get_spec(unwrap_model(self.model)).out_channels
        if spec.in_channels != out_channels:
            raise OptionsError(
                f"{where}.network_d: {name} judges {spec.in_channels}-channel images but the model restores "
                f"{out_channels} channels (set num_in_ch: {out_channels})"
            )
        for size in dict.fromkeys(self.patch_sizes or [None]):
            if size is None:
                if spec.input_size is not None:
                    raise OptionsError(
                        f"{where}.network_d: {name} judges {spec.input_size}x{spec.input_size} patches only, but the "
                        "training data gives whole images: set datasets.train.gt_size"
                    )
                continue
            spec.check_patch_size(
                size, size, f"{where}.network_d ({name})", what="training patch (datasets.train.gt_size)"
            )

    def _load_pretrained_d(self, cfg: Mapping[str, Any], where: str) -> None:
        from irframe.options_checks import checkpoint_path_problem
        from irframe.train.finetune import load_pretrained

        try:
            pre = PretrainOptions.model_validate(dict(cfg))
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise OptionsError(f"{where}.pretrain_d{'.' + key if key else ''}: {first['msg']}") from None
        problem = checkpoint_path_problem(pre.path)  # a file, a checkpoint folder or zoo:NAME
        if problem is not None:
            raise OptionsError(f"{where}.pretrain_d.path: {problem}")
        report = load_pretrained(
            self.net_d, pre, config=self.d_config, where="train.step.pretrain_d", model_key="train.step.network_d"
        )
        self.notes.append(f"discriminator: {report.summary()}")

    def prepare(self, accelerator: Any) -> None:
        net_d, opt_d = self.prepare_model(accelerator, self.net_d, self.optimized[1].optimizer)
        self.net_d, self.optimized[1].optimizer = net_d, opt_d
        self._raw_d = unwrap_model(net_d)  # the generator's step calls it outside DDP (it is frozen there)
        device = accelerator.device
        for module in (self.gan, self.pixel, self.percep):
            if module is not None:
                module.to(device)

    def networks(self) -> dict[str, CheckpointedNetwork]:
        return {"net_d": CheckpointedNetwork(self.net_d, self.d_config)}

    @property
    def optimizer_d(self) -> Any:
        return self.optimized[1].optimizer

    # -- the step ---------------------------------------------------------------------------------
    def step(self, batches: Sequence[Mapping[str, Any]], iteration: int) -> StepOutput:
        batches = self.synthesize(batches)  # Real-ESRGAN's feed_data: degrade on the device, the pair pool
        current = iteration + 1  # BasicSR's current_iter
        update_g = current % self.net_d_iters == 0 and current > self.net_d_init_iters
        acc = self.accelerator
        n = len(batches)
        lr = self.lr
        parts: dict[str, torch.Tensor] = {}
        total: torch.Tensor | None = None

        def add(name: str, value: torch.Tensor) -> None:
            value = value.detach() / n
            parts[name] = parts[name] + value if name in parts else value

        # -- the generator, the discriminator frozen
        self._d_requires_grad(False)
        fakes: list[torch.Tensor] = []
        for k, batch in enumerate(batches):
            if not update_g:
                with torch.no_grad(), acc.autocast():
                    fakes.append(self.model(batch["lq"]).detach())
                continue
            sync = contextlib.nullcontext() if k == n - 1 else acc.no_sync(self.model)
            with sync:
                with acc.autocast():
                    output = self.model(batch["lq"])
                    loss, terms = self._g_loss(output, batch)
                if self.train.nan_policy == "skip" and not self.all_finite(loss):
                    self._d_requires_grad(True)
                    return self.skip(iteration, terms)
                acc.backward(loss / n)
            fakes.append(output.detach())
            value = loss.detach() / n
            total = value if total is None else total + value
            for name, term in terms.items():
                add(name, term)
        if update_g:
            if self.train.grad_clip is not None:
                acc.clip_grad_norm_(self.model.parameters(), self.train.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)

        # -- the discriminator
        self._d_requires_grad(True)
        for k, (batch, fake) in enumerate(zip(batches, fakes, strict=True)):
            real = target_of(batch, self.gan_target)
            if real is None:
                raise OptionsError(
                    "train.step: AdversarialStep needs ground-truth images ('gt') in the training batches"
                )
            sync = contextlib.nullcontext() if k == n - 1 else acc.no_sync(self.net_d)
            with sync:
                outcome = self._d_losses(real, fake, n, iteration)
            if isinstance(outcome, StepOutput):
                return outcome
            for name, value in outcome.items():
                add(name, value)
        if self.grad_clip_d is not None:
            acc.clip_grad_norm_(self.net_d.parameters(), self.grad_clip_d)
        self.optimizer_d.step()
        self.optimizer_d.zero_grad(set_to_none=True)

        self.step_schedules()
        self.update_ema()
        return StepOutput(total, parts, lr)

    def _g_loss(self, output: torch.Tensor, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The generator's weighted total and its parts (BasicSR's names), for one micro-batch."""
        total: torch.Tensor | None = None
        terms: dict[str, torch.Tensor] = {}
        for group, target in ((self.pixel, self.pixel_target), (self.percep, self.perceptual_target)):
            if group is None:
                continue
            value, values = group(output, target_of(batch, target), batch)
            total = value if total is None else total + value
            for name, v in values.items():
                shown = self.names.get(name)
                if shown is not None:
                    terms[shown] = v
        if self.relativistic:  # the real images first, as BasicSR (a discriminator's BN and spectral-norm
            # statistics advance with each training-mode forward, so the order is part of the result)
            real = target_of(batch, self.gan_target)
            with torch.no_grad():
                real_pred = self._raw_d(real).detach()
            fake_pred = self._raw_d(output)
            l_real = self.gan(real_pred - torch.mean(fake_pred), False, is_disc=False)
            l_fake = self.gan(fake_pred - torch.mean(real_pred), True, is_disc=False)
            l_gan = (l_real + l_fake) / 2
        else:
            l_gan = self.gan(self._raw_d(output), True, is_disc=False)
        terms["l_g_gan"] = l_gan.detach()
        total = l_gan if total is None else total + l_gan
        return total, terms

    def _d_losses(
        self, real: torch.Tensor, fake: torch.Tensor, n: int, iteration: int
    ) -> dict[str, torch.Tensor] | StepOutput:
        """The discriminator's two backward passes on one micro-batch (real, then fake); its parts,
        or the skipped step's output (``train.nan_policy: skip``)."""
        acc, d, gan = self.accelerator, self.net_d, self.gan
        if self.relativistic:
            with torch.no_grad(), acc.autocast():
                fake_ref = d(fake).detach()  # BasicSR: net_d(output).detach()
            with acc.autocast():
                real_pred = d(real)
                l_real = gan(real_pred - torch.mean(fake_ref), True, is_disc=True) * 0.5
        else:
            with acc.autocast():
                real_pred = d(real)
                l_real = gan(real_pred, True, is_disc=True)
        if self.train.nan_policy == "skip" and not self.all_finite(l_real):
            return self.skip(iteration, {"l_d_real": l_real}, "discriminator step")
        acc.backward(l_real / n)
        with acc.autocast():
            fake_pred = d(fake)
            if self.relativistic:
                l_fake = gan(fake_pred - torch.mean(real_pred.detach()), False, is_disc=True) * 0.5
            else:
                l_fake = gan(fake_pred, False, is_disc=True)
        if self.train.nan_policy == "skip" and not self.all_finite(l_fake):
            return self.skip(iteration, {"l_d_fake": l_fake}, "discriminator step")
        acc.backward(l_fake / n)
        return {
            "l_d_real": l_real.detach(),
            "l_d_fake": l_fake.detach(),
            "out_d_real": torch.mean(real_pred.detach().float()),
            "out_d_fake": torch.mean(fake_pred.detach().float()),
        }

    def _d_requires_grad(self, flag: bool) -> None:
        for p in self._raw_d.parameters():
            p.requires_grad_(flag)
