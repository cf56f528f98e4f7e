"""The document-denoising option files: what the recipe promises is what the files say."""

from __future__ import annotations

import pytest
import torch

from irframe.nn.inference import restore
from irframe.nn.spec import get_spec
from irframe.options import check_components, load_options, load_yaml
from irframe.registry import ARCHS, METRICS
from tests.recipes.documents import FULL_OPTIONS, TINY_OPTIONS


@pytest.mark.parametrize("path", [FULL_OPTIONS, TINY_OPTIONS], ids=["full", "tiny"])
def test_recipe(path) -> None:
    opts = load_options(path)
    check_components(opts)  # every {type: ...} against the registered signatures
    assert opts.model["type"] == "Restormer"
    assert opts.model["inp_channels"] == 1 and opts.model["out_channels"] == 1
    train_set, val_set = opts.datasets["train"].dataset_cfg(), opts.datasets["val"].dataset_cfg()
    for cfg in (train_set, val_set):
        assert cfg["type"] == "PairedImageDataset" and cfg["channels"] == 1
    assert train_set["gt_size"] and train_set["use_flip"]  # random crops of the pages
    assert "gt_size" not in val_set  # whole pages
    assert {train_set["dataroot_lq"], train_set["dataroot_gt"]}.isdisjoint(
        {val_set["dataroot_lq"], val_set["dataroot_gt"]}
    )

    train = opts.train
    assert train is not None and [loss.type for loss in train.losses] == ["L1Loss"]
    assert train.optim["type"] == "AdamW"
    assert train.scheduler is not None and train.scheduler["type"] == "CosineAnnealingLR"
    assert train.warmup_iter + train.scheduler["T_max"] == train.total_iter  # the cosine ends with the run

    assert opts.val is not None and [m["type"] for m in opts.val.metrics] == ["RMSE", "PSNR"]
    rmse = METRICS.build(opts.val.metrics[0])
    assert opts.val.best_metric == "RMSE" and rmse.higher_is_better is False


def test_tiny_inherits_the_full_recipe() -> None:
    raw = load_yaml(TINY_OPTIONS)
    assert raw["_base_"] == [FULL_OPTIONS.name]
    full, tiny = load_options(FULL_OPTIONS), load_options(TINY_OPTIONS)
    assert tiny.name != full.name
    assert tiny.val is not None and full.val is not None and tiny.val.metrics == full.val.metrics
    assert tiny.model["LayerNorm_type"] == full.model["LayerNorm_type"]
    # the tiny split lives under experiments/ (git-ignored), apart from the full recipe's
    assert tiny.datasets["train"].dataset_cfg()["dataroot_lq"].startswith("experiments/")


def test_tiny_model_restores_a_gray_page_of_any_size() -> None:
    model = ARCHS.build(load_options(TINY_OPTIONS).model).eval()
    spec = get_spec(model)
    assert (spec.in_channels, spec.out_channels, spec.value_range) == (1, 1, 1.0)
    page = torch.rand(1, 1, 43, 61)  # not a multiple of Restormer's 8: the helper pads and crops
    assert restore(model, page).shape == page.shape
