"""Batch samplers: schedules, determinism, resume, sharding, one task per batch."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from irframe.data.datasets import OnlineDegradationDataset
from irframe.data.samplers import ProgressiveBatchSampler, SampleKey, Stage, TaskBatchSampler
from irframe.errors import OptionsError

STAGES = [(4, 8, 32), (3, 5, 48), (5, 2, 64)]


def batches(sampler) -> list[list[SampleKey]]:
    return [list(b) for b in sampler]


# -- progressive ---------------------------------------------------------------------------------
def test_schedule_batch_and_patch_sizes() -> None:
    s = ProgressiveBatchSampler(37, STAGES, seed=1)
    out = batches(s)
    assert len(s) == len(out) == s.total_iters == 12
    assert [len(b) for b in out] == [8] * 4 + [5] * 3 + [2] * 5
    assert [b[0].patch_size for b in out] == [32] * 4 + [48] * 3 + [64] * 5
    assert all(isinstance(k, SampleKey) and 0 <= k.index < 37 and k.seed is not None for b in out for k in b)
    assert s.stage_at(4) == Stage(3, 5, 48) and s.stage_at(11).patch_size == 64
    with pytest.raises(IndexError):
        s.stage_at(12)


def test_same_seed_same_sequence_other_seed_differs() -> None:
    a, b = batches(ProgressiveBatchSampler(50, STAGES, seed=3)), batches(ProgressiveBatchSampler(50, STAGES, seed=3))
    assert a == b
    assert a != batches(ProgressiveBatchSampler(50, STAGES, seed=4))
    seeds = [k.seed for batch in a for k in batch]
    assert len(set(seeds)) == len(seeds)  # every draw gets its own randomness


@pytest.mark.parametrize("start", [0, 1, 4, 6, 11, 12])
def test_resume_continues_the_uninterrupted_sequence(start: int) -> None:
    full = batches(ProgressiveBatchSampler(23, STAGES, seed=7))
    resumed = ProgressiveBatchSampler(23, STAGES, seed=7, start_iter=start)
    assert len(resumed) == 12 - start
    assert batches(resumed) == full[start:]
    again = ProgressiveBatchSampler(23, STAGES, seed=7)
    again.set_start_iter(start)
    assert batches(again) == full[start:]


def test_every_pass_visits_each_sample_once() -> None:
    s = ProgressiveBatchSampler(10, [(6, 5, None)], seed=0)
    out = batches(s)
    for epoch in range(3):
        indices = [k.index for b in out[2 * epoch : 2 * epoch + 2] for k in b]
        assert sorted(indices) == list(range(10))
    assert [k.index for b in out[:2] for k in b] != [k.index for b in out[2:4] for k in b]  # reshuffled
    ordered = batches(ProgressiveBatchSampler(4, [(3, 2, None)], shuffle=False))
    assert [[k.index for k in b] for b in ordered] == [[0, 1], [2, 3], [0, 1]]


def test_replicas_split_the_single_process_stream() -> None:
    """N ranks with batch b see exactly what one process with batch N*b sees, split in rank order."""
    single = batches(ProgressiveBatchSampler(31, [(4, 6, 16), (3, 4, 24)], seed=2))
    ranks = [
        batches(ProgressiveBatchSampler(31, [(4, 3, 16), (3, 2, 24)], seed=2, num_replicas=2, rank=r)) for r in (0, 1)
    ]
    for it, whole in enumerate(single):
        assert ranks[0][it] + ranks[1][it] == whole


def test_stage_formats_and_errors() -> None:
    from_lists = ProgressiveBatchSampler.from_lists(10, [2, 1], [4, 2], [32, 64], seed=0)
    as_maps = ProgressiveBatchSampler(10, [{"iters": 2, "batch_size": 4, "patch_size": 32}, Stage(1, 2, 64)], seed=0)
    assert batches(from_lists) == batches(as_maps)
    with pytest.raises(OptionsError, match="same length"):
        ProgressiveBatchSampler.from_lists(10, [2, 1], [4], [32, 64])
    with pytest.raises(OptionsError, match=r"stages\[1\]"):
        ProgressiveBatchSampler(10, [(1, 2, 3), (0, 2, 3)])
    with pytest.raises(OptionsError, match="rank"):
        ProgressiveBatchSampler(10, STAGES, num_replicas=2, rank=2)
    with pytest.raises(OptionsError, match="past the schedule"):
        ProgressiveBatchSampler(10, STAGES, start_iter=13)
    with pytest.raises(OptionsError, match="empty"):
        ProgressiveBatchSampler(0, STAGES)
    with pytest.raises(OptionsError, match="seed"):
        ProgressiveBatchSampler(10, STAGES, seed=-1)


def test_resumed_run_gets_identical_samples_including_degradations(image_folder) -> None:
    """Order, crops, flips and online noise of iteration i do not depend on where the run started."""
    ds = OnlineDegradationDataset(
        str(image_folder("clean", n=5, h=40, w=40)),
        {"type": "GaussianNoise", "sigma_range": [0, 50]},
        use_flip=True,
        use_rot=True,
    )
    stages = [(3, 2, 16), (3, 1, 24)]
    full = [[ds[k] for k in b] for b in ProgressiveBatchSampler(len(ds), stages, seed=5)]
    resumed = [[ds[k] for k in b] for b in ProgressiveBatchSampler(len(ds), stages, seed=5, start_iter=2)]
    for got, want in zip(resumed, full[2:], strict=True):
        for g, w in zip(got, want, strict=True):
            assert g["name"] == w["name"]
            torch.testing.assert_close(g["lq"], w["lq"], rtol=0, atol=0)
            torch.testing.assert_close(g["gt"], w["gt"], rtol=0, atol=0)


# -- tasks ---------------------------------------------------------------------------------------
TASKS = {"sr_x2": list(range(0, 10)), "denoise_30": list(range(10, 14)), "derain": list(range(14, 30))}
TASK_OF = {i: t for t, idx in TASKS.items() for i in idx}


def test_one_task_per_batch_and_uniform_task_choice() -> None:
    s = TaskBatchSampler(TASKS, batch_size=4, total_iters=1500, seed=0, patch_size=48)
    counts: Counter[str] = Counter()
    for it, batch in enumerate(s):
        tasks = {TASK_OF[k.index] for k in batch}
        assert len(tasks) == 1 and len(batch) == 4 and batch[0].patch_size == 48
        counts[tasks.pop()] += 1
        if it < 3:
            assert s.task_at(it) == TASK_OF[batch[0].index]
    assert len(s) == 1500
    assert all(abs(c / 1500 - 1 / 3) < 0.05 for c in counts.values())


def test_task_weights_and_per_task_passes() -> None:
    s = TaskBatchSampler(TASKS, batch_size=2, total_iters=400, seed=1, weights={"derain": 3, "sr_x2": 1})
    per_task: dict[str, list[int]] = {t: [] for t in TASKS}
    for batch in s:
        per_task[TASK_OF[batch[0].index]].extend(k.index for k in batch)
    assert not per_task["denoise_30"]  # weight 0
    assert 2.3 < len(per_task["derain"]) / len(per_task["sr_x2"]) < 3.8
    first_pass = per_task["derain"][:16]
    assert sorted(first_pass) == TASKS["derain"]  # each task's stream is a reshuffled pass


@pytest.mark.parametrize("start", [0, 5, 1023, 1024, 1500])
def test_task_sampler_resume_across_blocks(start: int) -> None:
    full = batches(TaskBatchSampler(TASKS, 2, 1600, seed=9))
    resumed = TaskBatchSampler(TASKS, 2, 1600, seed=9, start_iter=start)
    assert batches(resumed) == full[start:]


def test_task_sampler_ranks_agree_on_the_task() -> None:
    ranks = [batches(TaskBatchSampler(TASKS, 2, 50, seed=4, num_replicas=2, rank=r)) for r in (0, 1)]
    single = batches(TaskBatchSampler(TASKS, 4, 50, seed=4))
    for it in range(50):
        assert {TASK_OF[k.index] for k in ranks[0][it] + ranks[1][it]} == {TASK_OF[single[it][0].index]}
        assert ranks[0][it] + ranks[1][it] == single[it]


def test_task_sampler_errors_and_from_dataset() -> None:
    with pytest.raises(OptionsError, match="no samples"):
        TaskBatchSampler({"a": [], "b": [1]}, 2, 10)
    with pytest.raises(OptionsError, match="unknown task"):
        TaskBatchSampler(TASKS, 2, 10, weights={"deblur": 1})
    with pytest.raises(OptionsError, match="task_indices"):
        TaskBatchSampler.from_dataset(object(), 2, 10)

    class Tagged:
        task_indices = {"x": [0, 1], "y": [2]}  # noqa: RUF012 (a stand-in dataset)

    assert len(TaskBatchSampler.from_dataset(Tagged(), 1, 7, seed=0)) == 7
