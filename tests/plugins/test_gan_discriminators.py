"""Discriminators plugin: official state_dict layout, golden parity, size rules, declaration."""

from __future__ import annotations

import pytest
import torch
from irframe_gan_discriminators import IRFRAME_PLUGIN_API
from irframe_gan_discriminators.spec import DiscriminatorSpec
from irframe_gan_discriminators.unet_discriminator import UNetDiscriminatorSN
from irframe_gan_discriminators.vgg_discriminator import VGGStyleDiscriminator

from irframe.errors import OptionsError
from irframe.registry import ARCHS, PLUGIN_API_VERSION
from tests.helpers import golden_breadth_configs, load_golden_breadth

# The golden cases (tests/fixtures/golden/breadth/index.json, a copy of ../shared's).
GOLDEN = golden_breadth_configs("VGGStyleDiscriminator", "UNetDiscriminatorSN")


def load_golden(name: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    config, x, expected, state = load_golden_breadth(name)
    model = ARCHS.build(config)
    model.load_state_dict(state, strict=True)  # a name or shape that differs from the official one fails here
    return model.eval(), x, expected


def test_registered_by_the_plugin() -> None:
    for name in ("VGGStyleDiscriminator", "UNetDiscriminatorSN"):
        assert ARCHS.entry(name).provider == "gan_discriminators"
    assert IRFRAME_PLUGIN_API == PLUGIN_API_VERSION


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_parity(name: str) -> None:
    model, x, expected = load_golden(name)
    with torch.no_grad():
        out = model(x)
    assert out.shape == expected.shape
    tolerance = 1e-5 * max(1.0, float(expected.abs().max()))
    assert float((out - expected).abs().max()) < tolerance


def test_spectral_norm_state_is_the_official_one() -> None:
    model, x, _ = load_golden("unet_discriminator_sn")
    names = set(model.state_dict())
    for i in range(1, 9):
        assert {f"conv{i}.weight_orig", f"conv{i}.weight_u", f"conv{i}.weight_v"} <= names
        assert f"conv{i}.weight" not in names and f"conv{i}.bias" not in names
    assert {"conv0.weight", "conv0.bias", "conv9.weight", "conv9.bias"} <= names
    # A training-mode pass advances the power iteration (u changes); eval mode then uses the new
    # vectors, so the output moves a little: the stored u/v are what makes the golden reproducible.
    u_before = model.conv1.weight_u.clone()
    model.train()
    with torch.no_grad():
        model(x)
    assert not torch.equal(model.conv1.weight_u, u_before)


def test_vgg_256_layout_and_gradients() -> None:
    model = VGGStyleDiscriminator(num_in_ch=3, num_feat=2, input_size=256)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["conv5_1.weight"] == (16, 16, 4, 4) and shapes["linear1.weight"] == (100, 16 * 4 * 4)
    assert "conv5_0.weight" not in VGGStyleDiscriminator(3, 2, 128).state_dict()
    x = torch.rand(2, 3, 256, 256, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 1)
    out.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_unet_output_per_pixel_without_skips() -> None:
    model = UNetDiscriminatorSN(num_in_ch=1, num_feat=4, skip_connection=False)
    assert model(torch.rand(2, 1, 24, 40)).shape == (2, 1, 24, 40)


def test_declared_as_discriminator_not_restorer() -> None:
    vgg = ARCHS.build(GOLDEN["vgg_discriminator_128"])
    unet = ARCHS.build(GOLDEN["unet_discriminator_sn"])
    for model in (vgg, unet):
        assert model.role == "discriminator"
        assert not hasattr(model, "spec")  # get_spec must not describe it as a 3->3 restorer
    assert vgg.disc_spec == DiscriminatorSpec(in_channels=3, input_size=128, size_multiple=1, output="image")
    assert unet.disc_spec == DiscriminatorSpec(in_channels=3, input_size=None, size_multiple=8, output="pixel")
    # what the adversarial step checks against gt_size before any work
    vgg.disc_spec.check_patch_size(128, 128, "network_d")
    with pytest.raises(OptionsError, match=r"network_d: the gt_size patch is 96x96 but input_size is 128"):
        vgg.disc_spec.check_patch_size(96, 96, "network_d", what="gt_size patch")
    with pytest.raises(OptionsError, match="multiples of 8"):
        unet.disc_spec.check_patch_size(36, 36, "network_d")


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_bad_options_and_inputs_are_one_line_errors() -> None:
    with pytest.raises(OptionsError, match=r"input_size: must be 128 or 256, got 192") as exc:
        ARCHS.build({"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 4, "input_size": 192})
    one_line(exc)
    with pytest.raises(OptionsError, match="num_feat"):
        ARCHS.build({"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": "wide"}, path="network_d")
    with pytest.raises(OptionsError, match="num_feta"):
        ARCHS.build({"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feta": 8}, path="network_d")
    vgg = VGGStyleDiscriminator(3, 4, 128)
    with pytest.raises(OptionsError, match=r"input is 64x64 but input_size is 128") as exc:
        vgg(torch.rand(1, 3, 64, 64))
    one_line(exc)
    with pytest.raises(OptionsError, match=r"input is 128x96 but input_size is 128"):
        vgg(torch.rand(1, 3, 128, 96))  # BasicSR checks the height only; a wrong width fails here too
    with pytest.raises(OptionsError, match=r"\[N, 3, H, W\]"):
        vgg(torch.rand(1, 1, 128, 128))
    with pytest.raises(OptionsError, match=r"30x32; its height and width must be multiples of 8"):
        UNetDiscriminatorSN(3, 4)(torch.rand(1, 3, 30, 32))
