"""``restore`` on the project's real archs (tiny configs), when their plugins are installed.

Restormer's channel attention and PromptIR's pooled prompts see the whole image, so their tiled
output is an approximation: the gap is measured and bounded loosely (mean < 0.05, in [0,1] units),
not asserted to be zero. IPT only accepts 48x48 inputs (``spec.fixed_size``): ``restore`` tiles it.
"""

from __future__ import annotations

import pytest
import torch

from irframe.nn.inference import restore
from irframe.nn.spec import get_spec
from tests.helpers import TINY_ARCHS, build_tiny_arch

CONFIGS = TINY_ARCHS


def _build(name: str) -> torch.nn.Module:
    return build_tiny_arch(name)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_restore_real_arch_odd_size_whole_and_tiled(name: str) -> None:
    model = _build(name)
    spec = get_spec(model)
    seen: list[tuple[int, int]] = []
    model.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape[-2:])))
    x = torch.rand(1, spec.in_channels, 53, 61, generator=torch.Generator().manual_seed(1))
    whole = restore(model, x)
    assert whole.shape == (1, spec.out_channels, 53 * spec.scale, 61 * spec.scale)
    assert torch.isfinite(whole).all()
    if spec.fixed_size is not None:
        assert len(seen) > 1 and set(seen) == {(spec.fixed_size, spec.fixed_size)}
        explicit = restore(model, x, tile=spec.fixed_size, tile_overlap=spec.tile_overlap)
        torch.testing.assert_close(explicit, whole, atol=0, rtol=0)  # the spec's overlap is the default
    else:
        assert all(h % spec.size_multiple == 0 and w % spec.size_multiple == 0 for h, w in seen)
        tiled = restore(model, x, tile=32, tile_overlap=16)
        gap = (tiled - whole).abs().mean().item()
        assert gap < 0.05, f"{name}: mean tiled/whole gap {gap:.4f}"


def test_restore_follows_the_task_scale_of_a_multitask_model() -> None:
    """IPT with x2 and x3 tails: restore(task=...) pads, tiles and crops with that task's scale."""
    from irframe.registry import ARCHS

    torch.manual_seed(0)
    model = ARCHS.build({"type": "IPT", "n_feats": 16, "num_heads": 2, "num_layers": 1, "scale": [2, 3, 1],
                         "num_queries": 3})
    x = torch.rand(1, 3, 50, 61)
    for task, scale in (("sr_x3", 3), ("sr_x2", 2), ("denoise30", 1), ("sr_x3", 3)):
        y = restore(model, x, task=task)
        assert y.shape == (1, 3, 50 * scale, 61 * scale), task
