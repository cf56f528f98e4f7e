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

import os
import warnings
from pathlib import Path
from typing import Literal

import torch
import torch.nn as nn

from irframe.errors import CheckpointError, OptionsError
from irframe.metrics.base import Metric
from irframe.metrics.functional import check_pair, crop_borders, to_255
from irframe.registry import METRICS, ExistingFile

__all__ = ["LPIPS", "build_lpips_net", "backbone_weights_file"]

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
    import torchvision.models as tvm  # lazy: torchvision is slow to import

    url = getattr(tvm, _TORCHVISION_WEIGHTS[net]).IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url), url


def _resolve_backbone(net: str, backbone_weights: str | None) -> Path:
    cached, url = backbone_weights_file(net)
    if backbone_weights is not None:
        path = Path(backbone_weights).expanduser()
        if not path.is_file():
            raise CheckpointError(f"LPIPS backbone_weights: file not found: {path}")
        return path
    if cached.is_file():
        return cached
    raise CheckpointError(
        f"LPIPS ({net}) needs torchvision's ImageNet backbone weights, expected at {cached}, which "
        f"does not exist (irframe never downloads). Fetch {url} on a machine with internet and put it "
        f"there (or set TORCH_HOME), or pass backbone_weights: /path/to/{cached.name}. "
        "random_backbone: true runs without them, for tests only (values not comparable)."
    )


def _load_backbone(lpips_model: nn.Module, path: Path) -> None:
    """Copy torchvision ``features.<i>.*`` tensors into lpips' ``slice<k>.<i>.*`` modules."""
    from irframe.nn.checkpoint import read_checkpoint, unwrap_state_dict

    raw, _ = read_checkpoint(path)
    source = unwrap_state_dict(raw, source=str(path))
    backbone = lpips_model.net
    wanted = backbone.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    problems: list[str] = []
    for key, own in wanted.items():
        tv_key = "features." + key.split(".", 1)[1]  # drop "slice<k>."
        value = source.get(tv_key)
        if value is None:
            problems.append(f"missing {tv_key}")
        elif value.shape != own.shape:
            problems.append(f"{tv_key}: file {tuple(value.shape)} vs backbone {tuple(own.shape)}")
        else:
            mapped[key] = value
    if problems:
        shown = "; ".join(problems[:10]) + (f"; ... ({len(problems) - 10} more)" if len(problems) > 10 else "")
        raise CheckpointError(f"{path}: not the torchvision backbone LPIPS expects: {shown}")
    backbone.load_state_dict(mapped, strict=True)


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
