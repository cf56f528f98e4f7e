"""Generic training losses, registered in ``LOSSES`` (arch-specific losses live in their plugins).

The loss protocol the trainer relies on:

* A loss is an ``nn.Module`` returning a scalar tensor. Its weight is not its business: the
  trainer multiplies by ``train.losses[i].weight`` (default: the class attribute
  ``default_weight`` if the loss defines one, else 1).
* A *pixel* loss is called as ``loss(pred, gt)``; a *feature* loss (class attribute
  ``uses_features = True``, e.g. IPT's contrastive loss) as ``loss(features)``, and the trainer
  then asks the model for them (``model(x, ..., return_features=True)`` returns ``(out, features)``).
* Further keyword parameters of ``forward`` name batch entries the loss wants (``lq``, ``task``,
  ``image_ids``, ...): the trainer passes those the batch has (see :func:`loss_signature`).
* Inputs are float tensors in [0, 1] (NCHW); no loss clamps them.
* ``perceptual = True`` marks a loss in a network's feature space (``PerceptualLoss``,
  ``LPIPSLoss``): an adversarial step logs it as BasicSR's ``l_g_percep`` and compares it with
  its ``perceptual_target`` (Real-ESRGAN's ``percep_gt_usm``); the others are pixel losses
  (``l_g_pix``, ``pixel_target``).
* ``adversarial = True`` marks a loss of a discriminator's logits (``GANLoss``): it belongs to an
  adversarial step's ``gan`` option, never to ``train.losses``.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from irframe.errors import OptionsError
from irframe.nn.vgg import VGG_TYPES, VGGFeatureExtractor, VGGType, check_layer_names
from irframe.registry import LOSSES, ExistingFile

Reduction = Literal["mean", "sum"]

# BT.601 luma from RGB in [0, 1], as BasicSR / HINet compute it (on the 0..255 scale, then / 255).
_Y_COEF = (65.481, 128.553, 24.966)


@dataclass(frozen=True)
class LossSignature:
    """How the trainer calls a loss: on features or on (pred, gt), plus which batch entries."""

    uses_features: bool
    required: tuple[str, ...]  # batch entries the loss cannot do without
    optional: tuple[str, ...]  # batch entries passed when the batch has them


def loss_signature(loss: nn.Module) -> LossSignature:
    """Read a loss's calling convention from ``uses_features`` and ``forward``'s parameters."""
    feature_loss = bool(getattr(loss, "uses_features", False))
    params = [
        p
        for p in inspect.signature(loss.forward).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    extra = params[1 if feature_loss else 2 :]
    return LossSignature(
        uses_features=feature_loss,
        required=tuple(p.name for p in extra if p.default is p.empty),
        optional=tuple(p.name for p in extra if p.default is not p.empty),
    )


def adversarial_in_losses(where: str, name: str) -> str:
    """The line refusing an adversarial loss (``GANLoss``) among ``train.losses``."""
    return (
        f"{where}: {name} judges a discriminator's logits, so it needs a discriminator: use "
        f"train.step: {{type: AdversarialStep, network_d: {{type: ...}}, optim_d: {{...}}, "
        f"gan: {{type: {name}, ...}}}} "
        "instead of listing it in train.losses"
    )


def _check_shapes(name: str, pred: torch.Tensor, gt: torch.Tensor) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"{name}: prediction {tuple(pred.shape)} and target {tuple(gt.shape)} differ in shape")


def _reduce(value: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    return value.mean() if reduction == "mean" else value.sum()


@LOSSES.register("L1Loss")
class L1Loss(nn.Module):
    """Mean (or summed) absolute error: BasicSR's ``L1Loss`` (its ``loss_weight`` is ``train.losses[i].weight``)."""

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        _check_shapes("L1Loss", pred, gt)
        return F.l1_loss(pred, gt, reduction=self.reduction)


@LOSSES.register("MSELoss")
class MSELoss(nn.Module):
    """Mean (or summed) squared error: BasicSR's ``MSELoss`` (its ``loss_weight`` is ``train.losses[i].weight``)."""

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        _check_shapes("MSELoss", pred, gt)
        return F.mse_loss(pred, gt, reduction=self.reduction)


@LOSSES.register("CharbonnierLoss")
class CharbonnierLoss(nn.Module):
    """``sqrt((pred - gt)^2 + eps^2)``, a differentiable L1 (MPRNet's form, eps 1e-3), mean or sum.

    BasicSR's (and Restormer's) ``CharbonnierLoss`` adds ``eps`` unsquared: ``sqrt(d^2 + eps)`` with
    ``eps`` 1e-12. The same loss here is ``eps: sqrt(eps_basicsr)`` (1e-6 for the default); the
    BasicSR translator (:mod:`irframe.compat.basicsr`) converts a BasicSR file's ``eps`` so, with a
    note, and its ``loss_weight`` becomes ``train.losses[i].weight``.
    """

    def __init__(self, eps: float = 1e-3, reduction: Reduction = "mean") -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"CharbonnierLoss.eps must be > 0, got {eps}")
        self.eps = eps
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        _check_shapes("CharbonnierLoss", pred, gt)
        diff = pred - gt
        return _reduce(torch.sqrt(diff * diff + self.eps * self.eps), self.reduction)


@LOSSES.register("PSNRLoss")
class PSNRLoss(nn.Module):
    """Negative PSNR as a loss (HINet / NAFNet): ``10/ln10 * mean_n log(MSE_n + 1e-8)``.

    Minimising it maximises the mean per-image PSNR (up to a constant). With ``toY`` the MSE is
    taken on BT.601 luma (RGB input, BasicSR's coefficients, not rounded). NAFNet's
    ``PSNRLoss(loss_weight, reduction, toY)`` is this loss with ``train.losses[i].weight`` for its
    ``loss_weight``; its ``reduction`` must be ``mean`` (NAFNet asserts so), the only one here.
    """

    coef: torch.Tensor

    def __init__(self, toY: bool = False, reduction: Literal["mean"] = "mean") -> None:
        super().__init__()
        if reduction != "mean":
            raise OptionsError(f"PSNRLoss.reduction must be 'mean' (a mean of per-image PSNRs), got {reduction!r}")
        self.toY = toY
        self.reduction = reduction
        self.register_buffer("coef", torch.tensor(_Y_COEF).reshape(1, 3, 1, 1), persistent=False)

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        _check_shapes("PSNRLoss", pred, gt)
        if pred.ndim != 4:
            raise ValueError(f"PSNRLoss: expected NCHW tensors, got shape {tuple(pred.shape)}")
        if self.toY:
            if pred.shape[1] != 3:
                raise ValueError(f"PSNRLoss(toY=True): expected 3 RGB channels, got {pred.shape[1]}")
            coef = self.coef.to(pred.dtype)
            # Y = 16 + coef . RGB (0..255 scale); the 16 cancels in pred - gt, so it is left out.
            pred = (pred * coef).sum(dim=1, keepdim=True) / 255.0
            gt = (gt * coef).sum(dim=1, keepdim=True) / 255.0
        mse = ((pred - gt) ** 2).mean(dim=(1, 2, 3))
        return (10.0 / math.log(10.0)) * torch.log(mse + 1e-8).mean()


@LOSSES.register("FFTLoss")
class FFTLoss(nn.Module):
    """L1 distance between the 2-D Fourier transforms (real and imaginary parts) of pred and gt."""

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        _check_shapes("FFTLoss", pred, gt)
        # FFT in float32: half-precision FFTs need power-of-two sizes and lose the low bits.
        pred_f = torch.view_as_real(torch.fft.fft2(pred.float(), dim=(-2, -1)))
        gt_f = torch.view_as_real(torch.fft.fft2(gt.float(), dim=(-2, -1)))
        return F.l1_loss(pred_f, gt_f, reduction=self.reduction)


@LOSSES.register("LPIPSLoss")
class LPIPSLoss(nn.Module):
    """Perceptual distance (LPIPS, Zhang et al. 2018) via :func:`irframe.metrics.lpips.build_lpips_net`.

    The network is frozen (and stays in eval mode); gradients flow to the prediction only.
    Inputs in [0, 1].

    Args:
        net: the backbone; ``vgg`` is the usual choice for a loss, ``alex`` for the metric.
        backbone_weights: torchvision weight file of the backbone (default: the torch hub cache).
        random_backbone: random backbone weights instead of the pretrained ones (tests only;
            useless for real training).
    """

    perceptual = True  # a distance in a network's feature space (logged as l_g_percep by an adversarial step)

    def __init__(
        self,
        net: Literal["alex", "vgg", "squeeze"] = "vgg",
        backbone_weights: ExistingFile | None = None,
        random_backbone: bool = False,
    ) -> None:
        super().__init__()
        from irframe.metrics.lpips import (
            build_lpips_net,  # heavy (torchvision); only when used
        )

        self.net = build_lpips_net(net=net, backbone_weights=backbone_weights, random_backbone=random_backbone)

    def train(self, mode: bool = True) -> LPIPSLoss:
        super().train(mode)
        self.net.eval()  # frozen: never switch its dropout on
        return self

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        _check_shapes("LPIPSLoss", pred, gt)
        return self.net(pred, gt, normalize=True).mean()


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """``[N,C,C]`` Gram matrices of ``[N,C,H,W]`` features, divided by ``C*H*W`` (BasicSR's style)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat.bmm(flat.transpose(1, 2)) / (c * h * w)


@LOSSES.register("PerceptualLoss")
class PerceptualLoss(nn.Module):
    """VGG perceptual loss with an optional style (Gram matrix) term, as BasicSR's ``PerceptualLoss``.

    ``perceptual_weight * sum_k w_k * crit(f_k(pred), f_k(gt)) + style_weight * sum_k w_k *
    crit(G(f_k(pred)), G(f_k(gt)))`` over the layers ``k`` of ``layer_weights``, where ``f_k`` are
    frozen VGG features (:class:`irframe.nn.vgg.VGGFeatureExtractor`; the gt's are computed
    without gradient) and ``G`` is :func:`gram_matrix`. ``crit`` is the mean absolute (``l1``) or
    squared (``l2``) error, or the Frobenius norm of the difference (``fro``). A weight of 0 skips
    its term. BasicSR returns the two terms separately and adds them; this loss returns their sum
    (the trainer's outer ``weight`` defaults to 1, as BasicSR has none). When both are on, it
    declares ``part_names`` ``("percep", "style")`` and leaves their values in ``last_parts``; the
    trainer logs them as ``PerceptualLoss.percep`` / ``PerceptualLoss.style``.

    Args:
        layer_weights: ``{layer name: weight}``, e.g. ``{conv5_4: 1}`` (before ReLU) or ``relu5_4``.
        vgg_type: ``vgg11``/``13``/``16``/``19``, optionally ``_bn``.
        use_input_norm: normalise inputs with ImageNet's mean/std (they are [0,1]).
        range_norm: inputs are in [-1,1]: map them to [0,1] first (BasicSR's option; irframe's
            tensors are [0,1], so keep it false unless the model works in [-1,1]).
        perceptual_weight: weight of the feature term.
        style_weight: weight of the Gram-matrix (style) term.
        criterion: ``l1``, ``l2`` or ``fro``.
        backbone_weights: torchvision's weight file of ``vgg_type`` (default: the torch hub cache;
            never downloaded).
        random_backbone: random VGG weights (tests only; useless for real training).
    """

    perceptual = True  # a distance in VGG's feature space (logged as l_g_percep by an adversarial step)

    def __init__(
        self,
        layer_weights: dict[str, float],
        vgg_type: VGGType = "vgg19",
        use_input_norm: bool = True,
        range_norm: bool = False,
        perceptual_weight: float = 1.0,
        style_weight: float = 0.0,
        criterion: Literal["l1", "l2", "fro"] = "l1",
        backbone_weights: ExistingFile | None = None,
        random_backbone: bool = False,
    ) -> None:
        super().__init__()
        if criterion not in ("l1", "l2", "fro"):
            raise OptionsError(f"PerceptualLoss.criterion must be 'l1', 'l2' or 'fro', got {criterion!r}")
        self.layer_weights = {str(k): float(v) for k, v in layer_weights.items()}
        self.perceptual_weight = float(perceptual_weight)
        self.style_weight = float(style_weight)
        self.criterion = criterion
        # one term alone is the loss's value; two are reported apart as well (irframe.train.loss)
        both = self.perceptual_weight > 0 and self.style_weight > 0
        self.part_names: tuple[str, ...] = ("percep", "style") if both else ()
        self.last_parts: dict[str, torch.Tensor] = {}
        self.vgg = VGGFeatureExtractor(
            self.layer_weights,
            vgg_type=vgg_type,
            use_input_norm=use_input_norm,
            range_norm=range_norm,
            backbone_weights=backbone_weights,
            random_backbone=random_backbone,
            owner="PerceptualLoss",
        )

    @classmethod
    def option_children(cls, kwargs: dict[str, Any]) -> list[tuple[str, str, Any]]:
        """No nested components; checks the layer names against ``vgg_type`` before anything is
        built, so ``show-options`` and the one-report check name a bad layer (a wrong type of
        ``layer_weights`` / ``vgg_type`` is the type check's to report)."""
        layers, vgg_type = kwargs.get("layer_weights"), kwargs.get("vgg_type", "vgg19")
        if isinstance(layers, dict) and vgg_type in VGG_TYPES:
            check_layer_names(layers, vgg_type, f"{cls.__name__}.layer_weights")
        return []

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.criterion == "fro":
            return torch.linalg.vector_norm(a - b)
        return F.l1_loss(a, b) if self.criterion == "l1" else F.mse_loss(a, b)

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        _check_shapes("PerceptualLoss", pred, gt)
        pred_feats = self.vgg(pred)
        with torch.no_grad():
            gt_feats = self.vgg(gt.detach())
        percep, style = pred.new_zeros(()), pred.new_zeros(())
        for name, weight in self.layer_weights.items():
            if self.perceptual_weight > 0:
                percep = percep + self.perceptual_weight * weight * self._distance(pred_feats[name], gt_feats[name])
            if self.style_weight > 0:
                gram = self._distance(gram_matrix(pred_feats[name]), gram_matrix(gt_feats[name]))
                style = style + self.style_weight * weight * gram
        if self.part_names:  # both terms on: the trainer logs each (BasicSR's l_percep / l_style)
            self.last_parts = {"percep": percep.detach(), "style": style.detach()}
        return percep + style


GAN_TYPES = ("vanilla", "lsgan", "wgan", "wgan_softplus", "hinge")


@LOSSES.register("GANLoss")
class GANLoss(nn.Module):
    """The adversarial loss of a discriminator's logits, as BasicSR's ``GANLoss`` (same name, semantics).

    Called ``loss(logits, target_is_real, is_disc=False)`` by an adversarial training step (not as
    a pixel loss ``loss(pred, gt)``: ``adversarial = True`` says so). ``target_is_real`` is a bool:
    the label the logits are pushed towards. By ``gan_type``:

    * ``vanilla``: ``BCEWithLogits(x, label)``, label ``real_label_val`` or ``fake_label_val``;
    * ``lsgan``: ``MSE(x, label)`` with the same labels;
    * ``wgan``: ``-mean(x)`` for real, ``mean(x)`` for fake;
    * ``wgan_softplus``: ``mean(softplus(-x))`` for real, ``mean(softplus(x))`` for fake (StyleGAN2's
      logistic / non-saturating loss);
    * ``hinge``: for the discriminator (``is_disc``) ``mean(relu(1 - x))`` for real and
      ``mean(relu(1 + x))`` for fake; for the generator ``-mean(x)`` whatever the target.

    ``loss_weight`` scales the generator's loss only (``is_disc=False``); the discriminator's is
    never weighted. The adversarial step therefore applies no outer weight of its own.

    Args:
        gan_type: one of ``vanilla``, ``lsgan``, ``wgan``, ``wgan_softplus``, ``hinge``.
        real_label_val: target of real logits (``vanilla``, ``lsgan``).
        fake_label_val: target of fake logits (``vanilla``, ``lsgan``).
        loss_weight: weight of the generator's adversarial loss (ESRGAN: 5e-3, Real-ESRGAN: 0.1).
    """

    adversarial = True  # takes (logits, target_is_real, is_disc): the adversarial step's, not train.losses'

    def __init__(
        self, gan_type: str, real_label_val: float = 1.0, fake_label_val: float = 0.0, loss_weight: float = 1.0
    ) -> None:
        super().__init__()
        if gan_type not in GAN_TYPES:
            import difflib

            close = difflib.get_close_matches(str(gan_type), GAN_TYPES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise OptionsError(
                f"GANLoss.gan_type: unknown GAN type {gan_type!r} (expected one of {', '.join(GAN_TYPES)}){hint}"
            )
        self.gan_type = gan_type
        self.real_label_val = float(real_label_val)
        self.fake_label_val = float(fake_label_val)
        self.loss_weight = float(loss_weight)

    def forward(self, input: torch.Tensor, target_is_real: bool, is_disc: bool = False) -> torch.Tensor:
        if not isinstance(target_is_real, bool):
            kind = type(target_is_real).__name__
            raise TypeError(f"GANLoss: target_is_real must be a bool (push towards real or fake), got {kind}")
        x, real = input, target_is_real
        if self.gan_type == "hinge":
            loss = (F.relu(1 - x) if real else F.relu(1 + x)).mean() if is_disc else -x.mean()
        elif self.gan_type == "wgan":
            loss = -x.mean() if real else x.mean()
        elif self.gan_type == "wgan_softplus":
            loss = F.softplus(-x if real else x).mean()
        else:
            label = torch.full_like(x, self.real_label_val if real else self.fake_label_val)
            criterion = F.binary_cross_entropy_with_logits if self.gan_type == "vanilla" else F.mse_loss
            loss = criterion(x, label)
        return loss if is_disc else loss * self.loss_weight
