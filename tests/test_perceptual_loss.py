"""BasicSR's VGG PerceptualLoss (perceptual + Gram-matrix style terms), without downloading VGG."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from irframe.compat.basicsr import translate
from irframe.errors import CheckpointError, OptionsError
from irframe.losses import PerceptualLoss, gram_matrix
from irframe.nn.vgg import VGG_TYPES, VGGFeatureExtractor, vgg_layer_names
from irframe.options import load_options, load_with_bases
from irframe.registry import LOSSES
from irframe.train.loss import WeightedLoss

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "basicsr_options"
# torchvision's feature configs: convolution widths per layer, "M" = max pooling.
_TV_CFG = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}


def _random_loss(**kwargs) -> PerceptualLoss:
    kwargs.setdefault("layer_weights", {"conv1_2": 1.0, "relu2_1": 0.5})
    return LOSSES.build({"type": "PerceptualLoss", "random_backbone": True, **kwargs})


@pytest.mark.parametrize("vgg_type", VGG_TYPES)
def test_layer_names_follow_torchvision_features(vgg_type):
    from torchvision.models.vgg import cfgs

    batch_norm = vgg_type.endswith("_bn")
    kinds = []
    for item in cfgs[_TV_CFG[vgg_type.removesuffix("_bn")]]:
        kinds += ["pool"] if item == "M" else (["conv", "bn", "relu"] if batch_norm else ["conv", "relu"])
    names = vgg_layer_names(vgg_type)
    assert [n.rstrip("0123456789_") for n in names] == kinds
    assert len(set(names)) == len(names)


def test_layer_name_indices_match_basicsr():
    vgg19 = vgg_layer_names("vgg19")
    assert vgg19.index("conv5_4") == 34 and vgg19.index("relu2_2") == 8 and vgg19[-1] == "pool5"
    assert "conv1_2" not in vgg_layer_names("vgg11") and "conv3_3" in vgg_layer_names("vgg16")
    assert vgg_layer_names("vgg16_bn")[:4] == ["conv1_1", "bn1_1", "relu1_1", "conv1_2"]


def test_identical_images_give_zero_loss():
    x = torch.rand(2, 3, 24, 24)
    for criterion in ("l1", "l2", "fro"):
        loss = _random_loss(criterion=criterion, style_weight=1.0)
        assert loss(x, x.clone()).item() == 0.0
    assert _random_loss()(x, torch.rand(2, 3, 24, 24)).item() > 0


def test_gram_matrix_by_hand():
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # N=1, C=2, H=1, W=2
    expected = torch.tensor([[[1 * 1 + 2 * 2, 1 * 3 + 2 * 4], [3 * 1 + 4 * 2, 3 * 3 + 4 * 4]]]) / (2 * 1 * 2)
    assert torch.equal(gram_matrix(f), expected)


def test_style_and_perceptual_terms_are_weighted_sums():
    pred, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    layers = {"conv1_1": 0.5, "relu2_1": 2.0}
    style = _random_loss(layer_weights=layers, perceptual_weight=0, style_weight=3.0)
    fp, fg = style.vgg(pred), style.vgg(gt)

    def gram_by_einsum(f: torch.Tensor) -> torch.Tensor:
        _, c, h, w = f.shape
        return torch.einsum("nihw,njhw->nij", f, f) / (c * h * w)

    expected = 3.0 * sum(w * (gram_by_einsum(fp[k]) - gram_by_einsum(fg[k])).abs().mean() for k, w in layers.items())
    assert torch.allclose(style(pred, gt), expected, rtol=1e-5)

    both = _random_loss(layer_weights=layers, perceptual_weight=2.0, style_weight=3.0, criterion="l2")
    expected = sum(
        w * (2.0 * F.mse_loss(fp[k], fg[k]) + 3.0 * F.mse_loss(gram_by_einsum(fp[k]), gram_by_einsum(fg[k])))
        for k, w in layers.items()
    )
    assert torch.allclose(both(pred, gt), expected, rtol=1e-5)

    # the two terms, each with its weight, left for the logs; one term alone leaves none (it is the value)
    assert both.last_parts.keys() == {"percep", "style"}
    percep = 2.0 * sum(w * F.mse_loss(fp[k], fg[k]) for k, w in layers.items())
    assert torch.allclose(both.last_parts["percep"], percep, rtol=1e-5)
    assert torch.allclose(both.last_parts["percep"] + both.last_parts["style"], expected, rtol=1e-5)
    assert style.last_parts == {} and style.part_names == () and both.part_names == ("percep", "style")

    fro = _random_loss(layer_weights={"conv1_1": 1.0}, criterion="fro")
    assert torch.allclose(fro(pred, gt), torch.sqrt(((fp["conv1_1"] - fg["conv1_1"]) ** 2).sum()), rtol=1e-5)


def test_input_norm_and_range_norm():
    x = torch.rand(1, 3, 8, 8)
    plain = VGGFeatureExtractor(["conv1_1"], use_input_norm=False, random_backbone=True)
    normed = VGGFeatureExtractor(["conv1_1"], random_backbone=True)
    ranged = VGGFeatureExtractor(["conv1_1"], range_norm=True, random_backbone=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(normed(x)["conv1_1"], plain((x - mean) / std)["conv1_1"], atol=1e-6)
    assert torch.allclose(ranged(x * 2 - 1)["conv1_1"], normed(x)["conv1_1"], atol=1e-5)


def test_gradients_reach_pred_not_vgg_nor_gt():
    loss = _random_loss(vgg_type="vgg13_bn", style_weight=1.0)
    loss.train()
    assert not loss.vgg.training  # frozen batch-norm statistics
    pred = torch.rand(1, 3, 16, 16, requires_grad=True)
    gt = torch.rand(1, 3, 16, 16, requires_grad=True)
    loss(pred, gt).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert gt.grad is None
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())


def test_missing_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    with pytest.raises(CheckpointError, match=r"PerceptualLoss \(vgg19\).*vgg19-dcbb9e9d\.pth.*never downloads"):
        LOSSES.build({"type": "PerceptualLoss", "layer_weights": {"conv5_4": 1}})
    with pytest.raises(CheckpointError, match=r"vgg16_bn-6c64b313\.pth"):
        PerceptualLoss({"conv5_3": 1}, vgg_type="vgg16_bn")
    missing = tmp_path / "nope.pth"
    with pytest.raises(CheckpointError, match=f"backbone_weights: file not found: {missing}"):
        PerceptualLoss({"conv5_4": 1}, backbone_weights=str(missing))


def test_weights_load_from_a_torchvision_file(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        features = make_layers(cfgs["A"], batch_norm=True)  # torchvision's vgg11_bn.features
        for module in features.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # non-trivial statistics to be copied
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    features.eval()
    path = tmp_path / "vgg11_bn.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    extractor = VGGFeatureExtractor(["relu2_1"], vgg_type="vgg11_bn", backbone_weights=str(path))
    assert len(extractor.vgg_net) == vgg_layer_names("vgg11_bn").index("relu2_1") + 1  # built only so deep
    x = torch.rand(1, 3, 16, 16)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = features[: len(extractor.vgg_net)]((x - mean) / std)
    assert torch.allclose(extractor(x)["relu2_1"], expected, atol=1e-5)

    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="bad.pth: not the torchvision backbone PerceptualLoss expects"):
        PerceptualLoss({"conv1_1": 1}, backbone_weights=str(tmp_path / "bad.pth"))


def test_bad_options_name_the_value():
    with pytest.raises(OptionsError, match=r"vgg19 has no layer 'conv5_5'"):
        _random_loss(layer_weights={"conv5_5": 1})
    with pytest.raises(OptionsError, match="at least one VGG layer"):
        _random_loss(layer_weights={})
    with pytest.raises(OptionsError, match=r"vgg_type must be one of .* got 'vgg20'"):
        VGGFeatureExtractor(["conv1_1"], vgg_type="vgg20", random_backbone=True)
    with pytest.raises(ValueError, match="differ in shape"):
        _random_loss()(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


def test_a_bad_layer_is_reported_by_the_option_check_before_any_build():
    # the check that show-options and the one-report load run: no VGG is built, every loss reported
    problems = LOSSES.problems(
        {"type": "PerceptualLoss", "layer_weights": {"conv5_5": 1.0}}, "train.losses.1", paths=False
    )
    assert problems == [
        f"train.losses.1.layer_weights: vgg19 has no layer 'conv5_5' (did you mean 'conv5_4'?); "
        f"its layers are {vgg_layer_names('vgg19')}"
    ]
    vgg16 = {"type": "PerceptualLoss", "layer_weights": {"conv3_4": 1.0}, "vgg_type": "vgg16"}
    assert "vgg16 has no layer 'conv3_4' (did you mean 'conv3_3'?)" in LOSSES.problems(vgg16, "l", paths=False)[0]
    # a wrong vgg_type is the type check's alone (one problem, not two)
    bad_type = {"type": "PerceptualLoss", "layer_weights": {"conv1_1": 1.0}, "vgg_type": "vgg99"}
    (only,) = LOSSES.problems(bad_type, "l", paths=False)
    assert only.startswith("l.vgg_type: ")
    assert LOSSES.problems({"type": "PerceptualLoss", "layer_weights": {"relu5_4": 1.0}}, "l", paths=False) == []


def test_basicsr_file_with_perceptual_opt_trains(tmp_path, monkeypatch):
    data = load_with_bases(FIXTURES / "train_EDSR_Mx2.yml")
    data["network_g"] = {"type": "Restormer"}  # EDSR is not registered here
    data["train"]["perceptual_opt"] = {
        "type": "PerceptualLoss", "layer_weights": {"conv1_2": 1}, "vgg_type": "vgg19", "use_input_norm": True,
        "range_norm": False, "perceptual_weight": 1.0, "style_weight": 0.5, "criterion": "l1",
    }  # fmt: skip
    monkeypatch.chdir(tmp_path)
    for cfg in data["datasets"].values():
        for key, value in cfg.items():
            if key.startswith("dataroot") and isinstance(value, str):
                (tmp_path / value).mkdir(parents=True, exist_ok=True)
    path = tmp_path / "train_percep.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    notes = translate(data, str(path)).notes
    assert any(n.startswith("train.perceptual_opt: the VGG weights") and "never downloaded" in n for n in notes)
    opts = load_options(path, ["train.losses.1.random_backbone=true"], check=True)
    assert opts.train.losses[1].weight is None  # BasicSR has no outer weight: 1
    weighted = WeightedLoss.from_options(opts.train.losses)
    pred, gt = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    total, parts = weighted(pred, gt, {})
    assert list(parts) == weighted.log_names  # what the trainer's loss meter reports, in order
    # both terms on (style_weight 0.5): each is logged as BasicSR logs l_percep / l_style, beside the sum
    assert set(parts) == {"L1Loss", "PerceptualLoss", "PerceptualLoss.percep", "PerceptualLoss.style"}
    assert parts["PerceptualLoss.percep"] > 0 and parts["PerceptualLoss.style"] > 0
    assert torch.allclose(parts["PerceptualLoss.percep"] + parts["PerceptualLoss.style"], parts["PerceptualLoss"])
    assert torch.allclose(total, parts["L1Loss"] + parts["PerceptualLoss"])  # the parts are not added twice


def test_a_loss_declaring_a_part_it_does_not_leave_is_named():
    from irframe.train.loss import LossTerm, loss_signature

    class TwoTerms(torch.nn.Module):
        part_names = ("a", "b")

        def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
            self.last_parts = {"a": (pred - gt).abs().mean()}  # "b" forgotten
            return self.last_parts["a"]

    loss = TwoTerms()
    weighted = WeightedLoss([LossTerm("TwoTerms", loss, 1.0, loss_signature(loss))])
    assert weighted.log_names == ["TwoTerms", "TwoTerms.a", "TwoTerms.b"]
    with pytest.raises(RuntimeError, match=r"train.losses.0 \(TwoTerms\): declares part 'b' in part_names"):
        weighted(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), {})
