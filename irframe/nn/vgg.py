"""A frozen VGG feature extractor with BasicSR's layer names (``conv5_4``, ``relu2_2``, ``pool3``, ...).

The layers are those of torchvision's ``vgg*.features`` (same order, so ``features.<i>`` of a
torchvision weight file is the ``i``-th named layer here), built only up to the deepest requested
layer. Weights come from torchvision's ImageNet file, found by
:func:`irframe.nn.torchvision_weights.resolve_torchvision_weights` (never downloaded).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from irframe.errors import OptionsError
from irframe.nn.torchvision_weights import load_torchvision_tensors, resolve_torchvision_weights
from irframe.text import suggest

__all__ = ["VGGType", "VGG_TYPES", "check_layer_names", "vgg_layer_names", "VGGFeatureExtractor"]

VGGType = Literal["vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]

# Convolutions per block (5 blocks of 64, 128, 256, 512, 512 channels), torchvision's configs A/B/D/E.
_CONVS_PER_BLOCK = {
    "vgg11": (1, 1, 2, 2, 2),
    "vgg13": (2, 2, 2, 2, 2),
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}
_BLOCK_CHANNELS = (64, 128, 256, 512, 512)
VGG_TYPES: tuple[str, ...] = tuple(_CONVS_PER_BLOCK) + tuple(f"{t}_bn" for t in _CONVS_PER_BLOCK)

# ImageNet statistics of [0, 1] RGB images (torchvision's and BasicSR's input normalisation).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_type(vgg_type: str) -> None:
    if vgg_type not in VGG_TYPES:
        raise OptionsError(f"vgg_type must be one of {list(VGG_TYPES)}, got {vgg_type!r}")


def check_layer_names(layer_names: Iterable[str], vgg_type: str, owner: str) -> list[str]:
    """``layer_names`` without repeats, in their order; an OptionsError (``owner``'s wording, with a
    close match offered) when one is not a layer of ``vgg_type`` or none is given."""
    all_names = vgg_layer_names(vgg_type)
    names = list(dict.fromkeys(str(n) for n in layer_names))
    if not names:
        raise OptionsError(f"{owner}: at least one VGG layer is needed (e.g. conv5_4)")
    unknown = [n for n in names if n not in all_names]
    if unknown:
        close = suggest(unknown[0], all_names)
        hint = f" (did you mean {close!r}?)" if close else ""
        raise OptionsError(f"{owner}: {vgg_type} has no layer {unknown[0]!r}{hint}; its layers are {all_names}")
    return names


def vgg_layer_names(vgg_type: str) -> list[str]:
    """The names of ``vgg_type``'s feature layers, in torchvision's ``features`` order.

    ``conv<b>_<i>`` (then ``bn<b>_<i>`` for ``*_bn``), ``relu<b>_<i>``, and ``pool<b>`` closing block ``b``.
    """
    _check_type(vgg_type)
    batch_norm = vgg_type.endswith("_bn")
    names: list[str] = []
    for block, convs in enumerate(_CONVS_PER_BLOCK[vgg_type.removesuffix("_bn")], start=1):
        for i in range(1, convs + 1):
            names.append(f"conv{block}_{i}")
            if batch_norm:
                names.append(f"bn{block}_{i}")
            names.append(f"relu{block}_{i}")
        names.append(f"pool{block}")
    return names


def _torchvision_enum(vgg_type: str) -> str:
    base = vgg_type.removesuffix("_bn").upper()
    return f"{base}_BN_Weights" if vgg_type.endswith("_bn") else f"{base}_Weights"


def _build_layers(names: list[str]) -> nn.Sequential:
    """torchvision's layers for ``names``, initialised as torchvision does (kaiming, zero bias)."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels = 3
    for name in names:
        kind = name.rstrip("0123456789_")
        block = int(name[len(kind)])
        if kind == "conv":
            conv = nn.Conv2d(channels, _BLOCK_CHANNELS[block - 1], kernel_size=3, padding=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            assert conv.bias is not None
            nn.init.zeros_(conv.bias)
            channels = conv.out_channels
            layers[name] = conv
        elif kind == "bn":
            layers[name] = nn.BatchNorm2d(channels)
        elif kind == "relu":
            layers[name] = nn.ReLU()  # not in place: its input may be a returned feature
        else:
            layers[name] = nn.MaxPool2d(kernel_size=2, stride=2)
    return nn.Sequential(layers)


class VGGFeatureExtractor(nn.Module):
    """Frozen VGG features at named layers (BasicSR's ``VGGFeatureExtractor`` semantics).

    ``forward(x)`` returns ``{layer name: feature}`` for the requested layers. The network stays
    in eval mode and its parameters never require gradients; gradients flow to ``x``.

    Args:
        layer_names: the layers to return (see :func:`vgg_layer_names`).
        vgg_type: ``vgg11``/``13``/``16``/``19``, optionally ``_bn``.
        use_input_norm: normalise the [0,1] input with ImageNet's mean and std.
        range_norm: map a [-1,1] input to [0,1] first.
        backbone_weights: torchvision's weight file of ``vgg_type``; default: the torch hub cache.
        random_backbone: keep random weights (tests only; features then mean nothing).
        owner: who uses the extractor, for error messages.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        layer_names: Iterable[str],
        vgg_type: str = "vgg19",
        use_input_norm: bool = True,
        range_norm: bool = False,
        backbone_weights: str | None = None,
        random_backbone: bool = False,
        owner: str = "VGGFeatureExtractor",
    ) -> None:
        super().__init__()
        all_names = vgg_layer_names(vgg_type)
        self.layer_names = check_layer_names(layer_names, vgg_type, owner)
        self.vgg_type = vgg_type
        self.use_input_norm = use_input_norm
        self.range_norm = range_norm
        depth = max(all_names.index(n) for n in self.layer_names) + 1
        path: Path | None = None
        if not random_backbone:
            path = resolve_torchvision_weights(
                _torchvision_enum(vgg_type), backbone_weights, owner=f"{owner} ({vgg_type})"
            )
        # Random init must neither depend on nor disturb the global RNG (the run's seed policy).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.vgg_net = _build_layers(all_names[:depth])
        if path is not None:
            index = {name: i for i, name in enumerate(all_names)}
            load_torchvision_tensors(
                self.vgg_net, path, lambda key: f"features.{index[key.split('.', 1)[0]]}.{key.split('.', 1)[1]}", owner
            )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        """Stays in eval mode whatever ``mode`` (frozen batch-norm statistics)."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{layer name: feature}`` of an ``[N,3,H,W]`` batch (1 channel is repeated to 3)."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"VGG features need [N,3,H,W] (or 1-channel) images, got shape {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.range_norm:
            x = (x + 1) / 2
        if self.use_input_norm:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        wanted = set(self.layer_names)
        out: dict[str, torch.Tensor] = {}
        for name, layer in self.vgg_net.named_children():
            x = layer(x)
            if name in wanted:
                out[name] = x
        return out
