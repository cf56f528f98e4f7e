"""IPT's contrastive pre-training loss, registered as loss ``IPTContrastiveLoss``.

IPT (Sec. 3.2 of the paper) adds ``lambda * L_contrastive`` (lambda = 0.1) to the supervised loss:
the transformer's output features of patches from the same image are pulled together and those of
different images pushed apart, with cosine similarity and a temperature. The MindSpore release of
IPT implements it as a supervised-contrastive (SupCon, NT-Xent with several positives) loss over the
``(N, L, D)`` patch features of a batch, temperature 0.07; that is what this module computes.

How the trainer uses it: build the model with ``con_loss: true`` (or call
``model(x, task=..., return_features=True)``); in training ``forward`` then returns ``(out, feats)``.
Apply the pixel losses to ``out`` and this loss to ``feats`` (``loss(feats)`` or
``loss(feats, image_ids)``), weighted 0.1 in the trainer's weighted sum. ``uses_features = True``
marks losses that take the model's features instead of ``(pred, gt)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from irframe.errors import OptionsError
from irframe.registry import LOSSES


@LOSSES.register()
class IPTContrastiveLoss(nn.Module):
    """Supervised-contrastive loss on patch features; patches of the same image are positives.

    For every anchor patch feature ``a`` (L2-normalised), with ``P(a)`` the other patches of the
    same image and ``A(a)`` every other patch in the batch::

        loss(a) = -1/|P(a)| * sum_{p in P(a)} log( exp(a.p / T) / sum_{k in A(a)} exp(a.k / T) )

    averaged over the anchors that have at least one positive.

    Args:
        temperature: ``T`` (0.07, as in the official MindSpore pre-training code).
        patches_per_image: if set, a random subset of this many patches per image is used, which
            bounds the ``(N*L)^2`` similarity matrix (L = 256 patches per 48x48 input).
    """

    uses_features = True  # takes the model's (N, L, D) features, not (pred, gt)
    default_weight = 0.1  # the paper's lambda, used when the option file gives no weight

    def __init__(self, temperature: float = 0.07, patches_per_image: int | None = None) -> None:
        super().__init__()
        if temperature <= 0:
            raise OptionsError(f"IPTContrastiveLoss.temperature: must be > 0, got {temperature}")
        if patches_per_image is not None and patches_per_image < 1:
            raise OptionsError(f"IPTContrastiveLoss.patches_per_image: must be >= 1, got {patches_per_image}")
        self.temperature = temperature
        self.patches_per_image = patches_per_image

    def forward(self, feats: Tensor, image_ids: Tensor | None = None) -> Tensor:
        """Loss of ``feats`` ``(N, L, D)`` (or ``(N, D)``: one feature per sample).

        Args:
            feats: features; row ``i`` holds the ``L`` patch features of sample ``i``.
            image_ids: ``(N,)`` integer id of the source image of each sample. Samples sharing an id
                (e.g. the same image degraded for different tasks) are positives of each other.
                Default: every sample is its own image.

        Returns:
            A scalar tensor.
        """
        if feats.ndim == 2:
            feats = feats.unsqueeze(1)
        if feats.ndim != 3:
            raise ValueError(f"IPTContrastiveLoss: expected features (N, L, D), got shape {tuple(feats.shape)}")
        n, length, _ = feats.shape
        if image_ids is None:
            image_ids = torch.arange(n, device=feats.device)
        elif image_ids.shape != (n,):
            raise ValueError(
                f"IPTContrastiveLoss: image_ids must have shape ({n},), got {tuple(image_ids.shape)}"
            )
        if self.patches_per_image is not None and self.patches_per_image < length:
            pick = torch.randperm(length, device=feats.device)[: self.patches_per_image]
            feats, length = feats[:, pick], self.patches_per_image

        z = F.normalize(feats.reshape(n * length, -1).float(), dim=1)
        labels = image_ids.to(feats.device).repeat_interleave(length)
        logits = z @ z.t() / self.temperature
        self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(self_mask, float("-inf"))  # an anchor is not its own contrast
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        positives = (labels[:, None] == labels[None, :]) & ~self_mask
        n_pos = positives.sum(1)
        has_pos = n_pos > 0
        if not bool(has_pos.any()):
            raise ValueError(
                "IPTContrastiveLoss: no positive pairs (one patch per image and no shared image_ids)"
            )
        pos_log_prob = log_prob.masked_fill(~positives, 0.0).sum(1)
        return -(pos_log_prob[has_pos] / n_pos[has_pos]).mean()
