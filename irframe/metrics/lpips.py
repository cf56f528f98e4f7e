"""LPIPS (Zhang et al. 2018) through the ``lpips`` package, without any download.

The ``lpips`` package ships its calibrated linear layers, but its AlexNet/VGG/SqueezeNet backbone
normally comes from torchvision's pretrained download. We never download: the backbone is built
randomly initialised and then filled from the torchvision weight file found in the torch hub cache
or given as ``backbone_weights``. If neither exists the error names the expected file and how to
provide it. ``random_backbone=True`` skips the backbone weights (tests only: values are then not
comparable with published LPIPS numbers).

:func:`build_lpips_net` is shared with the LPIPS training loss.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn as nn

from irframe.errors import OptionsError
from irframe.metrics.base import Metric
from irframe.metrics.functional import check_pair, crop_borders, to_255
from irframe.nn.torchvision_weights import (
    load_torchvision_tensors,
    resolve_torchvision_weights,
    torchvision_weights_file,
)
from irframe.registry import METRICS, ExistingFile

__all__ = ["LPIPS", "backbone_weights_file", "build_lpips_net"]

LPIPSNet = Literal["alex", "vgg", "squeeze"]

# torchvision weight enums whose IMAGENET1K_V1 file the lpips package would download.
_TORCHVISION_WEIGHTS = {
    "alex": "AlexNet_Weights",
    "vgg": "VGG16_Weights",
    "squeeze": "SqueezeNet1_1_Weights",
}


def backbone_weights_file(net: str) -> tuple[Path, str]:
    """Where the torch hub cache keeps ``net``'s torchvision weights, and their download URL."""
    if net not in _TORCHVISION_WEIGHTS:
        raise OptionsError(f"LPIPS net must be one of {sorted(_TORCHVISION_WEIGHTS)}, got {net!r}")
    return torchvision_weights_file(_TORCHVISION_WEIGHTS[net])


def _resolve_backbone(net: str, backbone_weights: str | None) -> Path:
    return resolve_torchvision_weights(_TORCHVISION_WEIGHTS[net], backbone_weights, owner=f"LPIPS ({net})")


def _load_backbone(lpips_model: Any, path: Path) -> None:  # an lpips.LPIPS (the package is untyped)
    """Copy torchvision ``features.<i>.*`` tensors into lpips' ``slice<k>.<i>.*`` modules."""
    # drop "slice<k>." from the own key
    load_torchvision_tensors(lpips_model.net, path, lambda key: "features." + key.split(".", 1)[1], "LPIPS")


def build_lpips_net(
    net: LPIPSNet = "alex", backbone_weights: str | None = None, random_backbone: bool = False
) -> nn.Module:
    """The ``lpips.LPIPS`` network (v0.1, calibrated linear layers) in eval mode, all weights frozen.

    Call it as ``net(x, y)`` with inputs in [-1,1] (or ``normalize=True`` for [0,1]); it returns
    ``[N,1,1,1]`` distances and is differentiable in its inputs (usable as a loss).

    Args:
        net: backbone, ``"alex"`` (the usual metric), ``"vgg"`` (the usual loss) or ``"squeeze"``.
        backbone_weights: torchvision weight file for the backbone; default: the torch hub cache.
        random_backbone: keep the backbone randomly initialised (tests only).
    """
    if net not in _TORCHVISION_WEIGHTS:
        raise OptionsError(f"LPIPS net must be one of {sorted(_TORCHVISION_WEIGHTS)}, got {net!r}")
    path = None if random_backbone else _resolve_backbone(net, backbone_weights)
    import lpips as lpips_pkg  # lazy: pulls torchvision in

    # Random init must neither depend on nor disturb the global RNG (the run's seed policy).
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(0)
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        model = lpips_pkg.LPIPS(net=net, pnet_rand=True, verbose=False)
    if path is not None:
        _load_backbone(model, path)
    model.eval()
    model.requires_grad_(False)
    return model


@METRICS.register()
class LPIPS(Metric):
    """Learned perceptual distance (lower is better), per image.

    Inputs are [0,1] (RGB, or 1 channel repeated to 3); LPIPS' own convention maps them to [-1,1].

    Args:
        net: ``"alex"`` (default, the usual metric), ``"vgg"`` or ``"squeeze"``.
        backbone_weights: torchvision weight file; default: the torch hub cache (never downloaded).
        random_backbone: random backbone (tests only; values not comparable).
        crop_border: pixels cut from every side first.
        quantize: round to 8 bit first, as metrics on saved images see them.
    """

    name = "LPIPS"
    higher_is_better = False

    def __init__(
        self,
        net: LPIPSNet = "alex",
        backbone_weights: ExistingFile | None = None,
        random_backbone: bool = False,
        crop_border: int = 0,
        quantize: bool = True,
    ) -> None:
        super().__init__(crop_border=crop_border, test_y_channel=False, quantize=quantize)
        self.net_name = net
        self.random_backbone = random_backbone
        self.net = build_lpips_net(net, backbone_weights, random_backbone)

    @property
    def protocol(self) -> str:
        depth = "8bit" if self.quantize else "float"
        extra = " random-backbone" if self.random_backbone else ""
        return f"LPIPS-{self.net_name} crop{self.crop_border} {depth}{extra}"

    def prepare(self, pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_pair(pred, gt, self.name)
        if pred.shape[1] not in (1, 3):
            raise ValueError(f"LPIPS needs 1 or 3 channels, got {pred.shape[1]}")
        a = crop_borders(to_255(pred.detach(), self.quantize), self.crop_border)
        b = crop_borders(to_255(gt.detach(), self.quantize), self.crop_border)
        return a, b

    def compute(self, a255: torch.Tensor, b255: torch.Tensor) -> torch.Tensor:
        if a255.shape[1] == 1:
            a255, b255 = a255.expand(-1, 3, -1, -1), b255.expand(-1, 3, -1, -1)
        param = next(self.net.parameters())
        if param.device != a255.device:
            self.net.to(a255.device)
        a = (a255 / 127.5 - 1.0).to(param.dtype)
        b = (b255 / 127.5 - 1.0).to(param.dtype)
        return self.net(a, b).flatten().to(torch.float64)

    def __repr__(self) -> str:
        return (
            f"LPIPS(net={self.net_name!r}, random_backbone={self.random_backbone}, "
            f"crop_border={self.crop_border}, quantize={self.quantize})"
        )
