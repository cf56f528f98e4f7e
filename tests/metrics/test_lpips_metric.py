"""LPIPS metric and the shared network builder, without network access (random backbone)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from irframe.errors import CheckpointError
from irframe.metrics.lpips import backbone_weights_file, build_lpips_net
from irframe.registry import METRICS


@pytest.fixture(scope="module")
def lpips_metric():
    return METRICS.build({"type": "LPIPS", "random_backbone": True})


def test_direction_protocol_and_values(lpips_metric) -> None:
    assert lpips_metric.higher_is_better is False
    assert lpips_metric.protocol == "LPIPS-alex crop0 8bit random-backbone"
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 3, 64, 64, generator=g)
    slightly = gt + 0.02 * torch.randn(gt.shape, generator=g)
    badly = gt + 0.3 * torch.randn(gt.shape, generator=g)
    same = lpips_metric(gt, gt)
    near, far = lpips_metric(slightly, gt), lpips_metric(badly, gt)
    assert same.shape == (2,) and same.dtype == torch.float64
    assert torch.all(same.abs() < 1e-6)
    assert torch.all(near > 0) and torch.all(far > near)


def test_single_channel_is_repeated(lpips_metric) -> None:
    gt = torch.rand(1, 1, 48, 48)
    pred = (gt + 0.1).clamp(0, 1)
    expected = lpips_metric(pred.expand(-1, 3, -1, -1), gt.expand(-1, 3, -1, -1))
    torch.testing.assert_close(lpips_metric(pred, gt), expected)


def test_missing_backbone_weights_error_names_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(CheckpointError, match=r"alexnet-owt-7be5be79\.pth.*never downloads.*backbone_weights"):
        METRICS.build({"type": "LPIPS"})
    with pytest.raises(CheckpointError, match="file not found"):
        build_lpips_net("vgg", backbone_weights=str(tmp_path / "nope.pth"))


def test_backbone_loaded_from_hub_cache_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A torchvision-format file in the hub cache is found and mapped onto lpips' slices."""
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached, url = backbone_weights_file("alex")
    assert cached.name == Path(url).name and str(cached).startswith(str(tmp_path))
    torch.manual_seed(123)
    reference = torchvision.models.alexnet(weights=None)
    cached.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), cached)
    net = build_lpips_net("alex")
    torch.testing.assert_close(getattr(net.net.slice1, "0").weight, reference.features[0].weight)
    torch.testing.assert_close(getattr(net.net.slice5, "10").bias, reference.features[10].bias)
    assert not any(p.requires_grad for p in net.parameters())


def test_wrong_backbone_file_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(CheckpointError, match="bad.pth.*not the torchvision backbone"):
        build_lpips_net("alex", backbone_weights=str(bad))


def test_builder_is_deterministic_keeps_global_rng_and_passes_gradients() -> None:
    torch.manual_seed(7)
    before = torch.rand(3)
    torch.manual_seed(7)
    a = build_lpips_net("alex", random_backbone=True)
    after = torch.rand(3)
    torch.testing.assert_close(before, after)  # building did not consume the global RNG
    b = build_lpips_net("alex", random_backbone=True)
    torch.testing.assert_close(getattr(a.net.slice2, "3").weight, getattr(b.net.slice2, "3").weight)
    pred = torch.rand(1, 3, 32, 32, requires_grad=True)
    a(pred, torch.rand(1, 3, 32, 32), normalize=True).sum().backward()  # usable as a loss
    assert pred.grad is not None and pred.grad.abs().sum() > 0
