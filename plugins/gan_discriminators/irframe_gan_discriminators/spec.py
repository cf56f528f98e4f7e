"""What a discriminator declares about itself (it has no ``ModelSpec``: it restores nothing).

A restorer exposes ``spec: ModelSpec`` and the engine pads, tiles, scores and exports it. A
discriminator maps an image to realness logits, so none of that applies; instead it declares

* ``role = "discriminator"`` (a class attribute): tools that list, load or run restorers leave
  such an arch alone (a model without ``role`` is a restorer);
* ``disc_spec: DiscriminatorSpec``: the input it accepts and the output it gives, which the
  adversarial training step checks against the training patch size before any work
  (:meth:`DiscriminatorSpec.check_patch_size`).

It deliberately has no ``spec`` attribute: ``irframe.nn.spec.get_spec`` would otherwise describe it
as a 3-in/3-out restorer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from irframe.errors import OptionsError

ROLE = "discriminator"


@dataclass(frozen=True)
class DiscriminatorSpec:
    """Facts a discriminator declares.

    Attributes:
        in_channels: channels of the images it judges.
        input_size: the only input side it accepts (VGG-style: its linear head fixes it), or
            ``None`` for any size that is a multiple of ``size_multiple``.
        size_multiple: input height and width must be multiples of this.
        output: ``"image"``: one logit per image (``[N, 1]``); ``"pixel"``: one per pixel
            (``[N, 1, H, W]``).
    """

    in_channels: int
    input_size: int | None
    size_multiple: int
    output: Literal["image", "pixel"]

    def check_patch_size(self, height: int, width: int, owner: str, what: str = "input") -> None:
        """Raise an :class:`OptionsError` naming both sizes when ``height x width`` is not accepted."""
        if self.input_size is not None and (height, width) != (self.input_size, self.input_size):
            raise OptionsError(
                f"{owner}: the {what} is {height}x{width} but input_size is {self.input_size}: the discriminator "
                f"judges {self.input_size}x{self.input_size} patches only (set gt_size to {self.input_size}, or "
                f"input_size to {height} if that is 128 or 256)"
            )
        m = self.size_multiple
        if height % m or width % m:
            raise OptionsError(
                f"{owner}: the {what} is {height}x{width}; its height and width must be multiples of {m}"
            )

    def check_input(self, x: torch.Tensor, owner: str) -> None:
        """Check a batch ``[N, C, H, W]`` against the spec (channels and size)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise OptionsError(f"{owner}: expected an [N, {self.in_channels}, H, W] batch, got shape {tuple(x.shape)}")
        self.check_patch_size(int(x.shape[2]), int(x.shape[3]), owner)
