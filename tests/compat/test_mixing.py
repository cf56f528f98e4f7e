"""Restormer's mixup (train.mixing_augs): shapes, the mixing rule, determinism, the identity option."""

from __future__ import annotations

import pytest
import torch

from irframe.errors import OptionsError
from irframe.options import MixingOptions
from irframe.train.mixing import MixingAugment


def batch(n: int = 4) -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "lq": torch.rand(n, 3, 8, 8, generator=g),
        "gt": torch.rand(n, 3, 8, 8, generator=g),
        "key": list("abcd")[:n],
    }


def test_shapes_and_the_mixing_rule():
    mix = MixingAugment(1.2, use_identity=False, seed=3)
    b = batch()
    out = mix(b, iteration=5, micro=0)
    lam, perm = mix.draw(5, 0, 4)
    assert 0.0 < lam < 1.0 and sorted(perm.tolist()) == [0, 1, 2, 3]
    for key in ("lq", "gt"):
        assert out[key].shape == b[key].shape and out[key].dtype == b[key].dtype
        # the same weight and permutation for input and target
        assert torch.allclose(out[key], lam * b[key] + (1 - lam) * b[key][torch.as_tensor(perm)])
    assert out["key"] == b["key"]
    assert not torch.equal(out["gt"], b["gt"])
    assert torch.equal(b["gt"], batch()["gt"])  # the input batch is not modified


def test_draws_depend_only_on_seed_iteration_micro_and_rank():
    b = batch()
    a1 = MixingAugment(1.2, False, seed=1)(b, 7, 0)
    a2 = MixingAugment(1.2, False, seed=1)(b, 7, 0)  # a fresh object: nothing carried between calls
    assert torch.equal(a1["gt"], a2["gt"]) and torch.equal(a1["lq"], a2["lq"])
    others = [MixingAugment(1.2, False, seed=1)(b, 8, 0), MixingAugment(1.2, False, seed=1)(b, 7, 1),
              MixingAugment(1.2, False, seed=2)(b, 7, 0), MixingAugment(1.2, False, seed=1, rank=1)(b, 7, 0)]
    assert all(not torch.equal(o["gt"], a1["gt"]) for o in others)


def test_identity_option_leaves_about_half_the_batches_unmixed():
    with_id = MixingAugment(1.2, use_identity=True, seed=0)
    without = MixingAugment(1.2, use_identity=False, seed=0)
    unmixed = sum(with_id.draw(i, 0, 4) is None for i in range(400))
    assert 160 < unmixed < 240  # Restormer: randint(0, 1) picks mixup or identity
    assert all(without.draw(i, 0, 4) is not None for i in range(400))
    b = batch()
    it = next(i for i in range(400) if with_id.draw(i, 0, 4) is None)
    out = with_id(b, it, 0)
    assert torch.equal(out["gt"], b["gt"]) and torch.equal(out["lq"], b["lq"])


def test_weight_follows_the_beta_distribution():
    mix = MixingAugment(1.2, False, seed=0)
    lams = torch.tensor([mix.draw(i, 0, 2)[0] for i in range(2000)])
    assert abs(float(lams.mean()) - 0.5) < 0.03  # Beta(a, a) has mean 1/2
    assert abs(float(lams.var()) - 1 / (4 * (2 * 1.2 + 1))) < 0.01  # and variance 1 / (4 (2a + 1))


def test_options_and_errors():
    assert MixingAugment.from_options(None, 0) is None
    assert MixingAugment.from_options(MixingOptions(mixup=False), 0) is None
    built = MixingAugment.from_options(MixingOptions(mixup=True, mixup_beta=0.7, use_identity=True), 5, rank=2)
    assert (built.mixup_beta, built.use_identity, built.seed, built.rank) == (0.7, True, 5, 2)
    with pytest.raises(OptionsError, match="mixup_beta"):
        MixingAugment(0.0)
    with pytest.raises(OptionsError, match="ground-truth"):
        MixingAugment(1.2)({"lq": torch.zeros(2, 3, 4, 4)}, 0)
