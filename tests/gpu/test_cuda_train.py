"""CUDA cases of every training path that chooses a device, dtype or memory format.

Marked ``cuda``: skipped where torch sees no GPU (tests/conftest.py), run by benchmarks/gpu/run.sh.

- accelerate's device placement (model, optimizer state, batches moved with ``non_blocking``);
- ``train.mixed_precision``: bf16 autocast, fp16 autocast with the GradScaler (its state saved in
  ``trainer_state.pt`` and restored on resume);
- EMA of CUDA weights, the loss meter's device-side sums, checkpoints of CUDA tensors that load
  on the CPU;
- ``pin_memory: true`` loaders (with workers);
- CUDA RNG states in checkpoints (``irframe.utils.get_rng_state``) and a bit-identical resume;
- ``train.compile: true`` with inductor on the GPU;
- NCCL through accelerate (2 processes; needs 2 GPUs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from irframe.train.build import run_training
from irframe.train.checkpoint_folders import load_state

pytestmark = pytest.mark.cuda
ROOT = Path(__file__).resolve().parents[2]


def _weights(folder: Path, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    return load_file(str(folder / name))


@pytest.mark.parametrize("precision", ["no", "bf16", "fp16"])
def test_cuda_training_in_each_precision_checkpoints_load_on_cpu(toys, make_options, precision):
    opts = make_options(name=f"p_{precision}", train={"total_iter": 8, "mixed_precision": precision})
    result = run_training(opts)
    log = (result.experiment / "train.log").read_text()
    assert "device cuda" in log and f"mixed precision {precision}" in log
    assert result.val is not None and result.val.scores["val"]["PSNR"] > 0
    state = load_state(result.last_checkpoint)
    assert "cuda" in state["rng"][0]  # the CUDA generator is part of the resume state
    assert (state["scaler"] is not None) == (precision == "fp16")  # loss scaling only for fp16
    for name in ("model.safetensors", "ema.safetensors"):
        weights = _weights(result.last_checkpoint, name)
        assert all(t.device.type == "cpu" and torch.isfinite(t).all() for t in weights.values())
    model = toys.ToyNet()
    model.load_state_dict(_weights(result.last_checkpoint), strict=True)  # CUDA-trained, loads on the CPU


@pytest.mark.parametrize("precision", ["no", "fp16"])
def test_cuda_resume_is_bit_identical(toys, make_options, precision):
    # Uninterrupted 8 iterations vs 4 + resume to 8, with the GradScaler's state for fp16.
    train = {"mixed_precision": precision}
    full = run_training(make_options(name="full", train={**train}))
    run_training(make_options(name="part", train={**train, "total_iter": 4}))
    resumed = run_training(make_options(name="part", train={**train}), resume="auto")
    a, b = _weights(full.last_checkpoint), _weights(resumed.last_checkpoint)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_cuda_pinned_memory_loader_with_workers(toys, make_options):
    opts = make_options(
        name="pinned", train={"total_iter": 4},
        datasets={"train": {"type": "ToyPairs", "batch_size": 4, "num_workers": 2, "pin_memory": True,
                            "persistent_workers": True}},
    )
    result = run_training(opts)
    assert result.iteration == 4 and result.last_checkpoint is not None


def test_cuda_train_compile_with_inductor(toys, make_options):
    eager = run_training(make_options(name="eager", train={"total_iter": 4}, val=None))
    compiled = run_training(make_options(name="compiled", train={"total_iter": 4, "compile": True}, val=None))
    assert "torch.compile" in (compiled.experiment / "train.log").read_text()
    a, b = _weights(eager.last_checkpoint), _weights(compiled.last_checkpoint)
    assert a.keys() == b.keys() and not any(k.startswith("_orig_mod.") for k in b)
    for k in a:  # fused kernels round differently, the training is the same
        torch.testing.assert_close(b[k], a[k], rtol=1e-3, atol=1e-4)


def test_cuda_ema_and_meter_stay_on_device(toys, make_options):
    from irframe.train.build import (
        build_model,
        build_trainer,
        make_accelerator,
        prepare_experiment,
    )

    opts = make_options(name="dev", train={"total_iter": 2})
    model = build_model(opts)
    accelerator = make_accelerator(opts, False)
    try:
        exp = prepare_experiment(opts, None, accelerator)
        trainer = build_trainer(opts, accelerator, model, exp)
        out = trainer.run_iteration()
        assert out.loss.device.type == "cuda"  # no host sync per step
        assert trainer.ema is not None and next(trainer.ema.model.parameters()).device.type == "cuda"
        assert next(trainer.model.parameters()).device.type == "cuda"
        trainer.logger.close()
    finally:
        from irframe.train.build import _shutdown

        _shutdown(accelerator)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL needs one GPU per process: 2 GPUs")
def test_cuda_two_process_nccl_training(toys, tmp_path):
    import yaml

    opts = toys.toy_options(tmp_path / "experiments", name="nccl", train={"total_iter": 4})
    path = tmp_path / "nccl.yml"
    path.write_text(yaml.safe_dump(opts))
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", str(ROOT / "tests" / "train" / "toy_train.py"),
           "-opt", str(path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "device cuda:0" in proc.stdout and "finished at iteration 4" in proc.stdout
    state = load_state(tmp_path / "experiments" / "nccl" / "checkpoints" / "iter_000004")
    assert state["world_size"] == 2


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_adversarial_step_with_two_optimizers_resumes_bit_identical(toys, make_options, precision):
    # Two optimizers under one GradScaler (fp16): each optimizer step unscales, steps and updates the
    # scale on its own; the scaler's state is saved and restored with both optimizers' states.
    step = {
        "type": "AdversarialStep",
        "network_d": {"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 8},
        "optim_d": {"type": "Adam", "lr": 1e-3},
        "gan": {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1},
        "grad_clip_d": 1.0,
    }
    train = {"mixed_precision": precision, "grad_clip": 1.0, "step": step}
    full = run_training(make_options(name="gan_full", train={**train}))
    run_training(make_options(name="gan_part", train={**train, "total_iter": 4}))
    resumed = run_training(make_options(name="gan_part", train={**train}), resume="auto")
    for name in ("model.safetensors", "net_d.safetensors"):
        a, b = _weights(full.last_checkpoint, name), _weights(resumed.last_checkpoint, name)
        assert all(torch.isfinite(t).all() for t in a.values())
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)
    state = load_state(full.last_checkpoint)
    assert (state["scaler"] is not None) == (precision == "fp16") and "optimizer_d" in state
