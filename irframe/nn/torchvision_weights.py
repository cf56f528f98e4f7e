"""Finding and loading torchvision's ImageNet backbone weights, never downloading them.

LPIPS and the VGG perceptual loss both need a torchvision backbone (AlexNet, VGG, SqueezeNet).
torchvision would download its ``IMAGENET1K_V1`` file; irframe never does. The file is taken from
an explicit ``backbone_weights`` path or from the torch hub cache (``$TORCH_HOME/hub/checkpoints``),
and a missing file is a :class:`~irframe.errors.CheckpointError` naming where it was expected,
its download URL and how to pass it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

from irframe.errors import CheckpointError

__all__ = ["torchvision_weights_file", "resolve_torchvision_weights", "load_torchvision_tensors"]


def torchvision_weights_file(enum_name: str) -> tuple[Path, str]:
    """Where the torch hub cache keeps the ``IMAGENET1K_V1`` file of torchvision's ``enum_name``
    (e.g. ``"VGG19_Weights"``), and its download URL."""
    import torchvision.models as tvm  # lazy: torchvision is slow to import

    enum = getattr(tvm, enum_name, None)
    if enum is None:
        raise CheckpointError(f"torchvision has no weight enum {enum_name!r}")
    url = enum.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url), url


def resolve_torchvision_weights(enum_name: str, backbone_weights: str | None, owner: str) -> Path:
    """The weight file to load: ``backbone_weights`` if given (it must exist), else the hub cache's.

    Args:
        enum_name: torchvision weight enum, e.g. ``"VGG19_Weights"``.
        backbone_weights: an explicit file, or ``None`` for the torch hub cache.
        owner: who needs the weights, for the error messages (e.g. ``"LPIPS (alex)"``).

    Raises:
        CheckpointError: the file does not exist; the message names it and how to provide it.
    """
    if backbone_weights is not None:
        path = Path(backbone_weights).expanduser()
        if not path.is_file():
            raise CheckpointError(f"{owner} backbone_weights: file not found: {path}")
        return path
    cached, url = torchvision_weights_file(enum_name)
    if cached.is_file():
        return cached
    raise CheckpointError(
        f"{owner} needs torchvision's ImageNet backbone weights, expected at {cached}, which "
        f"does not exist (irframe never downloads). Fetch {url} on a machine with internet and put it "
        f"there (or set TORCH_HOME), or pass backbone_weights: /path/to/{cached.name}. "
        "random_backbone: true runs without them, for tests only (values not comparable)."
    )


def load_torchvision_tensors(module: nn.Module, path: Path, source_key: Callable[[str], str], owner: str) -> None:
    """Fill every entry of ``module.state_dict()`` from the torchvision file at ``path``.

    ``source_key`` maps an own key (e.g. ``"conv1_1.weight"``) to the file's (``"features.0.weight"``).
    Every own entry must be found with its shape, else one :class:`CheckpointError` lists the problems.
    """
    from irframe.nn.weights import read_checkpoint, unwrap_state_dict

    raw, _ = read_checkpoint(path)
    source = unwrap_state_dict(raw, source=str(path))
    mapped: dict[str, torch.Tensor] = {}
    problems: list[str] = []
    for key, own in module.state_dict().items():
        tv_key = source_key(key)
        value = source.get(tv_key)
        if value is None:
            problems.append(f"missing {tv_key}")
        elif value.shape != own.shape:
            problems.append(f"{tv_key}: file {tuple(value.shape)} vs backbone {tuple(own.shape)}")
        else:
            mapped[key] = value
    if problems:
        shown = "; ".join(problems[:10]) + (f"; ... ({len(problems) - 10} more)" if len(problems) > 10 else "")
        raise CheckpointError(f"{path}: not the torchvision backbone {owner} expects: {shown}")
    module.load_state_dict(mapped, strict=True)
