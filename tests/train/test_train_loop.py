"""The training loop end to end on toy components: outputs, resume, NaN, accumulation, EMA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from irframe.errors import CheckpointError
from irframe.train.build import run_training
from irframe.train.checkpoint_folders import latest_checkpoint, list_checkpoints, load_state
from irframe.train.trainer import TrainingDiverged


def weights(folder: Path, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    return load_file(str(folder / name))


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        assert torch.equal(v, b[k]), k


def test_run_writes_experiment_folder(toys, make_options):
    opts = make_options(val={"save_images": True, "max_images": 2}, logger={"tensorboard": True})
    result = run_training(opts)
    root = result.experiment
    assert result.iteration == 8
    assert (root / "options.yml").is_file() and "ToyNet" in (root / "options.yml").read_text()
    assert "global batch" in (root / "train.log").read_text()
    assert list((root / "tensorboard" / "irframe").glob("events.out.tfevents.*"))  # <logger.project>
    assert [i for i, _ in list_checkpoints(root / "checkpoints")] == [4, 8]
    last = latest_checkpoint(root / "checkpoints")
    assert last is not None and last.name == "iter_000008"
    assert {p.name for p in last.iterdir()} == {"model.safetensors", "ema.safetensors", "trainer_state.pt"}
    state = load_state(last)
    assert state["iteration"] == 8 and state["micro_step"] == 8 and len(state["rng"]) == 1
    # the safetensors metadata names the arch and its build config
    from safetensors import safe_open

    with safe_open(str(last / "model.safetensors"), "pt") as f:
        assert f.metadata()["arch"] == "ToyNet"
    assert (root / "checkpoints" / "best" / "best.json").is_file()
    saved = sorted(p.name for p in (root / "visualization" / "val").iterdir())
    assert saved == ["toy000_000004.png", "toy000_000008.png", "toy001_000004.png", "toy001_000008.png"]
    assert result.val is not None and result.val.scores["val"]["PSNR"] > 0
    assert result.val.baseline["val"]["PSNR"] > 0  # degraded input vs GT, shown for comparison


def test_resume_is_bit_identical(toys, make_options, tmp_path):
    # Uninterrupted 8 iterations vs 4 iterations, stop, resume to 8 (same options otherwise).
    full = run_training(make_options(name="full"))
    part = make_options(name="part", train={"total_iter": 4})
    run_training(part)
    resumed = run_training(make_options(name="part"), resume="auto")
    assert resumed.iteration == 8 and resumed.experiment.name == "part"
    a, b = full.last_checkpoint, resumed.last_checkpoint
    assert_same(weights(a), weights(b))
    assert_same(weights(a, "ema.safetensors"), weights(b, "ema.safetensors"))
    sa, sb = load_state(a), load_state(b)
    assert sa["scheduler"]["last_epoch"] == sb["scheduler"]["last_epoch"] == 8
    for ka, kb in zip(sa["optimizer"]["state"].values(), sb["optimizer"]["state"].values()):
        assert torch.equal(ka["exp_avg"], kb["exp_avg"])
    # resuming a finished run trains nothing and says so
    again = run_training(make_options(name="part"), resume="auto")
    assert again.iteration == 8 and "nothing to train" in (again.experiment / "train.log").read_text()


def test_existing_experiment_is_never_overwritten(toys, make_options, capsys):
    first = run_training(make_options(train={"total_iter": 2}))
    before = weights(first.last_checkpoint)
    second = run_training(make_options(train={"total_iter": 2}))
    assert first.experiment.name == "toy" and second.experiment.name == "toy_1"
    assert "toy_1" in capsys.readouterr().out  # the new name is announced
    assert_same(before, weights(first.last_checkpoint))


def test_nan_loss_stops_with_iteration_and_keeps_good_checkpoint(toys, make_options):
    # Batch 3 (iteration 3) holds sample 5 with a NaN input: batch_size 16 = whole dataset per batch.
    opts = make_options(
        datasets={"train": {"type": "ToyPairs", "batch_size": 16, "nan_at": [5]}},
        train={"total_iter": 6},
        logger={"checkpoint_freq": 1},
    )
    with pytest.raises(TrainingDiverged, match=r"iteration 1: the loss is not finite"):
        run_training(opts)
    # nothing was saved before the first step; now with a good first checkpoint:
    # The check is lazy (no host sync per step) but runs before every report and save: sample 11
    # is in batch 3; iteration 2 was saved; the check before saving iteration 4 stops the run.
    opts2 = make_options(
        name="toy2",
        datasets={"train": {"type": "ToyPairs", "batch_size": 4, "length": 12, "nan_at": [11], "shuffle": False}},
        train={"total_iter": 6, "scheduler": None},
        logger={"checkpoint_freq": 2, "print_freq": 5},
        val=None,
    )
    with pytest.raises(TrainingDiverged) as info:
        run_training(opts2)
    root = Path(opts2.path.experiments_root) / "toy2" / "checkpoints"
    assert [i for i, _ in list_checkpoints(root)] == [2]
    assert "iteration 3:" in str(info.value) and "last good checkpoint is" in str(info.value)
    for _, folder in list_checkpoints(root):
        assert all(torch.isfinite(t).all() for t in weights(folder).values())


def test_nan_policy_skip_skips_steps(toys, make_options):
    opts = make_options(
        datasets={"train": {"type": "ToyPairs", "batch_size": 4, "length": 8, "nan_at": [0, 1, 2, 3, 4, 5, 6, 7]}},
        train={"total_iter": 3, "nan_policy": "skip", "ema_decay": 0.0},
        val=None,
    )
    result = run_training(opts)
    state = load_state(result.last_checkpoint)
    assert state["skipped_steps"] == 3 and state["iteration"] == 3
    assert "step skipped" in (result.experiment / "train.log").read_text()


def test_nan_weights_are_never_checkpointed(toys, make_options):
    from irframe.train.training_state import Checkpointer

    net = toys.ToyNet()
    with torch.no_grad():
        net.body[0].weight[0, 0, 0, 0] = float("inf")
    ck = Checkpointer(Path(make_options().path.experiments_root) / "c", 2, {"type": "ToyNet"})
    with pytest.raises(CheckpointError, match="non-finite values in body.0.weight"):
        ck.save(1, net, None, {})
    assert not (ck.root / "iter_000001").exists()


def test_grad_accumulation_matches_larger_batch(toys, make_options):
    big = run_training(make_options(name="big", datasets={"train": {"type": "ToyPairs", "batch_size": 4}},
                                    train={"optim": {"type": "SGD", "lr": 0.1}}))
    acc = run_training(make_options(name="acc", datasets={"train": {"type": "ToyPairs", "batch_size": 2}},
                                    train={"optim": {"type": "SGD", "lr": 0.1}, "grad_accum": 2}))
    wa, wb = weights(big.last_checkpoint), weights(acc.last_checkpoint)
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)


def test_multitask_batches_pass_one_task_and_features(toys, make_options, monkeypatch):
    seen: list = []
    original = toys.ToyMultiTaskNet.forward

    def spy(self, x, task=None, return_features=False):
        if self.training:
            seen.append((task, return_features))
        return original(self, x, task=task, return_features=return_features)

    monkeypatch.setattr(toys.ToyMultiTaskNet, "forward", spy)
    opts = make_options(
        model={"type": "ToyMultiTaskNet", "tasks": ["a", "b"]},
        datasets={"train": {"type": "ToyPairs", "batch_size": 2, "tasks": ["a", "b"]}, "val": {"tasks": ["a", "b"]}},
        train={"total_iter": 4, "losses": [{"type": "L1Loss"}, {"type": "ToyFeatureLoss", "weight": 0.1}]},
    )
    from irframe.registry import LOSSES

    LOSSES.register("ToyFeatureLoss", toys.ToyFeatureLoss)
    result = run_training(opts)
    assert len(seen) == 4 and all(t in ("a", "b") and f for t, f in seen)
    assert "ToyFeatureLoss" in (result.experiment / "train.log").read_text()


def test_best_checkpoint_follows_metric_direction(toys, make_options):
    # RMSE: lower is better. Validate every 2 iterations; best/ must hold the lowest RMSE seen.
    opts = make_options(
        train={"total_iter": 8, "optim": {"type": "SGD", "lr": 5.0}, "scheduler": None, "ema_decay": 0.0},
        val={"freq": 2, "metrics": [{"type": "PSNR"}, {"type": "RMSE"}], "best_metric": "RMSE"},
    )
    result = run_training(opts)
    lines = [line for line in (result.experiment / "train.log").read_text().splitlines() if "val @" in line]
    rmse = [float(line.split("RMSE ")[1].split()[0].rstrip(",")) for line in lines]
    assert len(rmse) == 4
    import json

    best = json.loads((result.experiment / "checkpoints" / "best" / "best.json").read_text())
    assert best["metric"] == "RMSE" and best["higher_is_better"] is False
    assert best["value"] == pytest.approx(min(rmse), abs=1e-4)
    assert best["iteration"] == 2 * (rmse.index(min(rmse)) + 1)


def test_unknown_best_metric_fails_before_training(toys, make_options):
    from irframe.errors import OptionsError

    with pytest.raises(OptionsError, match="val.best_metric: 'SSIM' is not a validated metric"):
        run_training(make_options(val={"best_metric": "SSIM"}))


def test_ema_update_rule(toys):
    from irframe.train.ema import ModelEMA

    net = toys.ToyNet()
    ema = ModelEMA(net, 0.9)
    before = {k: v.clone() for k, v in ema.model.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ema.update(net)
    for k, v in ema.model.state_dict().items():
        torch.testing.assert_close(v, 0.9 * before[k] + 0.1 * net.state_dict()[k])
    assert ema.updates == 1 and not any(p.requires_grad for p in ema.model.parameters())
