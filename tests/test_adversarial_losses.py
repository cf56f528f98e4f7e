"""GANLoss (BasicSR's semantics) against values worked out by hand, and PerceptualLoss with
Real-ESRGAN's per-layer weights (random VGG weights: ImageNet weights cannot be downloaded here)."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from irframe.errors import OptionsError
from irframe.losses import GANLoss, PerceptualLoss
from irframe.registry import LOSSES

# Logits used throughout: mean 0.375.
X = [-1.0, 0.5, 2.0, 0.0]


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


# (gan_type, target_is_real, is_disc) -> the unweighted loss, by hand from the definitions.
BY_HAND = {
    # BCE with logits, label 1: mean(softplus(-x)); label 0: mean(softplus(x))
    ("vanilla", True): mean(softplus(-v) for v in X),  # 0.65185...
    ("vanilla", False): mean(softplus(v) for v in X),  # 1.02685...
    # MSE to 1: (4 + 0.25 + 1 + 1) / 4; to 0: (1 + 0.25 + 4 + 0) / 4
    ("lsgan", True): 1.5625,
    ("lsgan", False): 1.3125,
    ("wgan", True): -0.375,
    ("wgan", False): 0.375,
    ("wgan_softplus", True): mean(softplus(-v) for v in X),
    ("wgan_softplus", False): mean(softplus(v) for v in X),
}
# hinge, discriminator: relu(1 - x) = (2, 0.5, 0, 1) -> 0.875; relu(1 + x) = (0, 1.5, 3, 1) -> 1.375
HINGE_D = {True: 0.875, False: 1.375}


def logits() -> torch.Tensor:
    return torch.tensor(X, dtype=torch.float64).reshape(2, 1, 1, 2)


@pytest.mark.parametrize("gan_type", ["vanilla", "lsgan", "wgan", "wgan_softplus", "hinge"])
@pytest.mark.parametrize("target_is_real", [True, False])
@pytest.mark.parametrize("is_disc", [True, False])
def test_gan_loss_values_by_hand(gan_type: str, target_is_real: bool, is_disc: bool) -> None:
    loss = LOSSES.build({"type": "GANLoss", "gan_type": gan_type, "loss_weight": 0.1})
    if gan_type == "hinge":
        expected = HINGE_D[target_is_real] if is_disc else -0.375  # G: -mean(x) whatever the target
    else:
        expected = BY_HAND[(gan_type, target_is_real)]
    if not is_disc:
        expected *= 0.1  # loss_weight: the generator's loss only
    value = loss(logits(), target_is_real, is_disc=is_disc)
    assert value.shape == ()
    assert float(value) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_label_values() -> None:
    # BCE with label y: y * softplus(-x) + (1 - y) * softplus(x)
    loss = GANLoss("vanilla", real_label_val=0.9, fake_label_val=0.1)
    expected_real = mean(0.9 * softplus(-v) + 0.1 * softplus(v) for v in X)
    expected_fake = mean(0.1 * softplus(-v) + 0.9 * softplus(v) for v in X)
    assert float(loss(logits(), True, is_disc=True)) == pytest.approx(expected_real, rel=1e-12)
    assert float(loss(logits(), False, is_disc=True)) == pytest.approx(expected_fake, rel=1e-12)
    ls = GANLoss("lsgan", real_label_val=0.5, fake_label_val=-0.5)
    assert float(ls(logits(), True, is_disc=True)) == pytest.approx(mean((v - 0.5) ** 2 for v in X))
    assert float(ls(logits(), False, is_disc=True)) == pytest.approx(mean((v + 0.5) ** 2 for v in X))
    # wgan / hinge ignore the label values
    assert float(GANLoss("wgan", real_label_val=7.0)(logits(), True, is_disc=True)) == pytest.approx(-0.375)


def test_gradients_push_the_logits_the_right_way() -> None:
    for gan_type in ("vanilla", "lsgan", "wgan", "wgan_softplus", "hinge"):
        x = torch.full((3, 1), 0.5, requires_grad=True)  # between lsgan's labels 0 and 1
        GANLoss(gan_type)(x, True).backward()  # generator wants its fakes judged real: logits up
        assert x.grad is not None and bool((x.grad < 0).all()), gan_type
        x = torch.full((3, 1), 0.5, requires_grad=True)
        GANLoss(gan_type)(x, False, is_disc=True).backward()  # D wants fakes judged fake: logits down
        assert x.grad is not None and bool((x.grad > 0).all()), gan_type


def test_gan_loss_options_and_misuse() -> None:
    with pytest.raises(OptionsError, match=r"gan_type: unknown GAN type 'vanila' .*did you mean 'vanilla'\?") as exc:
        LOSSES.build({"type": "GANLoss", "gan_type": "vanila"}, path="train.gan_opt")
    assert "\n" not in str(exc.value)
    with pytest.raises(OptionsError, match="gan_type"):
        LOSSES.build({"type": "GANLoss"}, path="train.gan_opt")  # required, as in BasicSR
    assert GANLoss("hinge").adversarial is True  # the trainer keeps it out of train.losses
    with pytest.raises(TypeError, match="target_is_real must be a bool"):
        GANLoss("vanilla")(torch.zeros(2, 1), torch.ones(2, 1))  # type: ignore[arg-type]


# Real-ESRGAN's train_realesrgan_x4plus.yml, train.perceptual_opt, as the YAML loader gives it.
REALESRGAN_PERCEPTUAL = yaml.safe_load(
    """
type: PerceptualLoss
layer_weights:
  # before relu
  'conv1_2': 0.1
  'conv2_2': 0.1
  'conv3_4': 1
  'conv4_4': 1
  'conv5_4': 1
vgg_type: vgg19
use_input_norm: true
perceptual_weight: !!float 1.0
style_weight: 0
range_norm: false
criterion: l1
"""
)


def test_perceptual_loss_takes_realesrgan_layer_weights() -> None:
    cfg = dict(REALESRGAN_PERCEPTUAL)
    assert PerceptualLoss.option_children(cfg) == []  # the layer names pass show-options' check
    loss = LOSSES.build({**cfg, "random_backbone": True}, path="train.perceptual_opt")
    assert loss.layer_weights == {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
    assert loss.part_names == ()  # style_weight 0: the perceptual term alone is the value
    assert not any(p.requires_grad for p in loss.vgg.parameters())
    torch.manual_seed(0)
    pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    gt = torch.rand(2, 3, 32, 32)
    value = loss(pred, gt)
    with torch.no_grad():
        fp, fg = loss.vgg(pred), loss.vgg(gt)
    expected = sum(w * (fp[k] - fg[k]).abs().mean() for k, w in cfg["layer_weights"].items())
    assert torch.allclose(value, expected, rtol=1e-5)
    assert fp["conv5_4"].shape == (2, 512, 2, 2)  # 32 px after four poolings
    value.backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0
