"""dataset_enlarge_ratio keeps BasicSR's meaning: one pass = every sample ratio times, in one shuffled order."""

from __future__ import annotations

from collections import Counter

import pytest

from irframe.data.samplers import ProgressiveBatchSampler
from irframe.errors import OptionsError
from irframe.options import load_options
from irframe.train.data import Shard, build_batch_sampler

from .conftest import FIXTURES


def indices(sampler: ProgressiveBatchSampler, iters: int) -> list[int]:
    return [k.index for i in range(iters) for k in sampler.batch_at(i)]


def test_a_pass_holds_every_sample_ratio_times():
    s = ProgressiveBatchSampler(3, [(8, 3, None)], seed=0, enlarge_ratio=2)
    seen = indices(s, 8)
    for start in (0, 6, 12, 18):  # each pass of 6 positions: every sample twice
        assert Counter(seen[start:start + 6]) == {0: 2, 1: 2, 2: 2}
    # one shuffle over 6 positions, not two passes of 3 shuffled apart: some seed repeats a sample early
    repeats = [len(set(indices(ProgressiveBatchSampler(3, [(1, 3, None)], seed=k, enlarge_ratio=2), 1))) < 3
               for k in range(20)]
    assert any(repeats)
    # ratio 1 is exactly the old order
    assert indices(ProgressiveBatchSampler(5, [(4, 2, None)], seed=4), 4) == indices(
        ProgressiveBatchSampler(5, [(4, 2, None)], seed=4, enlarge_ratio=1), 4)
    with pytest.raises(OptionsError, match="enlarge_ratio"):
        ProgressiveBatchSampler(3, [(1, 1, None)], enlarge_ratio=0)


def test_translated_ratio_reaches_the_training_sampler(capsys):
    opts = load_options(FIXTURES / "train_EDSR_Mx2.yml")  # dataset_enlarge_ratio: 100, batch_size_per_gpu: 16
    loader = opts.datasets["train"]
    assert loader.enlarge_ratio == 100
    sampler = build_batch_sampler(list(range(3)), loader, opts, Shard(), start=0)
    assert Counter(indices(sampler, 19)[:300]) == {0: 100, 1: 100, 2: 100}
