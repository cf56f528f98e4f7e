"""The weighted sum of the configured losses (``train.losses``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from irframe.errors import OptionsError
from irframe.losses import LossSignature, adversarial_in_losses, loss_signature
from irframe.options import LossOptions
from irframe.registry import LOSSES


@dataclass(frozen=True)
class LossTerm:
    """One weighted term: its log name, the loss module, its weight and calling convention."""

    name: str
    loss: nn.Module
    weight: float
    signature: LossSignature


class WeightedLoss(nn.Module):
    """``sum_i weight_i * loss_i``, each loss called the way its signature asks.

    Args:
        terms: the terms, in option order.
    """

    def __init__(self, terms: Sequence[LossTerm]) -> None:
        super().__init__()
        if not terms:
            raise OptionsError("train.losses: at least one loss is needed")
        self.terms = list(terms)
        self.modules_ = nn.ModuleList(t.loss for t in self.terms)  # moves LPIPS nets with .to()

    @classmethod
    def from_options(cls, options: Sequence[LossOptions]) -> WeightedLoss:
        """Build every ``train.losses`` entry through the ``LOSSES`` registry."""
        terms = []
        seen: dict[str, int] = {}
        for i, opt in enumerate(options):
            if opt.type in LOSSES and getattr(LOSSES.get(opt.type), "adversarial", False):
                raise OptionsError(adversarial_in_losses(f"train.losses.{i}", opt.type))
            loss = LOSSES.build(opt.loss_cfg(), path=f"train.losses.{i}")
            weight = opt.weight if opt.weight is not None else float(getattr(loss, "default_weight", 1.0))
            count = seen.get(opt.type, 0)
            seen[opt.type] = count + 1
            name = opt.type if count == 0 else f"{opt.type}_{count}"
            terms.append(LossTerm(name, loss, float(weight), loss_signature(loss)))
        return cls(terms)

    @property
    def log_names(self) -> list[str]:
        """The names :meth:`forward` reports, in order: each term, then ``<term>.<part>`` for each
        part a multi-term loss declares in ``part_names`` (it leaves their values in ``last_parts``)."""
        return [n for t in self.terms for n in (t.name, *(f"{t.name}.{p}" for p in _part_names(t.loss)))]

    @property
    def needs_features(self) -> bool:
        """Whether any term takes the model's features (the model must then return them)."""
        return any(t.signature.uses_features for t in self.terms)

    def forward(
        self,
        pred: torch.Tensor,
        gt: torch.Tensor | None,
        batch: Mapping[str, Any],
        features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted total and the unweighted value of every term (detached, for logs), plus
        ``<term>.<part>`` for the parts a loss declares (:attr:`log_names`)."""
        total: torch.Tensor | None = None
        parts: dict[str, torch.Tensor] = {}
        for i, term in enumerate(self.terms):
            kwargs = _batch_inputs(term, batch, i)
            if term.signature.uses_features:
                if features is None:
                    raise RuntimeError(f"train.losses.{i} ({term.name}): the model returned no features")
                value = term.loss(features, **kwargs)
            else:
                if gt is None:
                    raise OptionsError(
                        f"train.losses.{i} ({term.name}): the training batch has no 'gt' (an LQ-only dataset?)"
                    )
                value = term.loss(pred, gt, **kwargs)
            if value.ndim != 0:
                raise RuntimeError(f"train.losses.{i} ({term.name}): expected a scalar, got shape {tuple(value.shape)}")
            parts[term.name] = value.detach()
            left: Any = getattr(term.loss, "last_parts", None)
            for sub in _part_names(term.loss):
                try:
                    parts[f"{term.name}.{sub}"] = left[sub].detach()
                except (TypeError, KeyError):
                    raise RuntimeError(
                        f"train.losses.{i} ({term.name}): declares part {sub!r} in part_names but left no "
                        f"last_parts[{sub!r}] in its forward"
                    ) from None
            weighted = value * term.weight
            total = weighted if total is None else total + weighted
        assert total is not None
        return total, parts


def _part_names(loss: nn.Module) -> tuple[str, ...]:
    """The parts a multi-term loss reports beside its value (its ``part_names``; none by default)."""
    return tuple(str(p) for p in getattr(loss, "part_names", ()))


def _batch_inputs(term: LossTerm, batch: Mapping[str, Any], index: int) -> dict[str, Any]:
    missing = [k for k in term.signature.required if k not in batch]
    if missing:
        raise OptionsError(
            f"train.losses.{index} ({term.name}) needs batch entries {missing}, "
            f"which the training dataset does not provide (it gives {sorted(batch)})"
        )
    keys = term.signature.required + tuple(k for k in term.signature.optional if k in batch)
    return {k: batch[k] for k in keys}
