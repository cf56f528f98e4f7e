"""The adversarial step (``train.step: {type: AdversarialStep}``) on toy generators and tiny real
discriminators: BasicSR's update rule, its log names, both networks in every checkpoint, resume
bit-identical, bf16 with two optimizers, and one line for each bad input before any work."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from irframe.errors import OptionsError
from irframe.train.build import build_model, run_training
from irframe.train.checkpoint_folders import load_state

UNET_D = {"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4}
VGG_D = {"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 2, "input_size": 128}


def gan_step(**changes) -> dict:
    step = {
        "type": "AdversarialStep",
        "network_d": UNET_D,
        "optim_d": {"type": "Adam", "lr": 1e-3, "betas": [0.9, 0.99]},
        "gan": {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1},
    }
    return {**step, **changes}


def weights(folder: Path, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    return load_file(str(folder / name))


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        assert torch.equal(v, b[k]), k


def log_lines(result, prefix: str = "iter ") -> list[str]:
    return [line.split(" INFO ", 1)[1] for line in (result.experiment / "train.log").read_text().splitlines()
            if " INFO " + prefix in line]


def test_gan_run_logs_basicsr_names_and_checkpoints_both_networks(toys, make_options):
    opts = make_options(
        train={"total_iter": 4, "step": gan_step(net_d_init_iters=2), "losses": [{"type": "L1Loss"}]},
        logger={"print_freq": 1, "checkpoint_freq": 2},
    )
    initial = build_model(opts).state_dict()
    result = run_training(opts)
    lines = log_lines(result)
    # the first net_d_init_iters iterations update the discriminator only
    for line in lines[:2]:
        assert "l_d_real" in line and "l_d_fake" in line and "out_d_real" in line and "out_d_fake" in line
        assert "l_g_pix" not in line and "loss " not in line
    for line in lines[2:]:
        assert "loss " in line and "l_g_pix" in line and "l_g_gan" in line and "l_d_real" in line
    first = result.experiment / "checkpoints" / "iter_000002"
    assert_same(weights(first), initial)  # the generator did not move ...
    later = weights(result.last_checkpoint)
    assert any(not torch.equal(later[k], initial[k]) for k in initial)  # ... until iteration 3
    assert {p.name for p in result.last_checkpoint.iterdir()} == {
        "model.safetensors", "ema.safetensors", "net_d.safetensors", "trainer_state.pt"
    }
    d0, d1 = weights(first, "net_d.safetensors"), weights(result.last_checkpoint, "net_d.safetensors")
    assert any(not torch.equal(d0[k], d1[k]) for k in d0)  # the discriminator learns from iteration 1
    state = load_state(result.last_checkpoint)
    assert {"optimizer", "scheduler", "optimizer_d", "scheduler_d"} <= set(state)
    assert state["scheduler"]["last_epoch"] == state["scheduler_d"]["last_epoch"] == 4  # one schedule, both
    from safetensors import safe_open

    with safe_open(str(result.last_checkpoint / "net_d.safetensors"), "pt") as f:
        assert f.metadata()["arch"] == "UNetDiscriminatorSN"


def test_net_d_iters_updates_the_generator_every_nth_iteration(toys, make_options):
    opts = make_options(
        train={"total_iter": 4, "step": gan_step(net_d_iters=2), "ema_decay": 0.0},
        logger={"print_freq": 1, "checkpoint_freq": 1},
        val=None,
    )
    result = run_training(opts)
    has_g = ["l_g_gan" in line for line in log_lines(result)]
    assert has_g == [False, True, False, True]
    ck = result.experiment / "checkpoints"
    assert_same(weights(ck / "iter_000003"), weights(ck / "iter_000002"))


@pytest.mark.parametrize("d, relativistic, size", [(UNET_D, False, 16), (VGG_D, True, 128)], ids=["plain", "esrgan"])
def test_gan_resume_is_bit_identical(toys, make_options, d, relativistic, size):
    def options(name: str, total: int):
        return make_options(
            name=name,
            datasets={"train": {"type": "ToyPairs", "batch_size": 2, "length": 6, "gt_size": size},
                      "val": {"size": 16}},
            train={"total_iter": total, "step": gan_step(network_d=d, relativistic=relativistic)},
            logger={"checkpoint_freq": 2},
            val={"freq": 2},
        )

    full = run_training(options("full", 6))
    run_training(options("cut", 3))  # stops between two checkpoints: resumes from iteration 2
    resumed = run_training(options("cut", 6), resume="auto")
    a, b = full.last_checkpoint, resumed.last_checkpoint
    for name in ("model.safetensors", "ema.safetensors", "net_d.safetensors"):
        assert_same(weights(a, name), weights(b, name))
    sa, sb = load_state(a), load_state(b)
    for key in ("optimizer", "optimizer_d"):
        for ka, kb in zip(sa[key]["state"].values(), sb[key]["state"].values(), strict=True):
            assert torch.equal(ka["exp_avg"], kb["exp_avg"]) and torch.equal(ka["exp_avg_sq"], kb["exp_avg_sq"])
    assert sa["scheduler_d"] == sb["scheduler_d"]


def test_grad_accumulation_matches_a_larger_batch_for_both_networks(toys, make_options):
    def run(name: str, batch_size: int, accum: int):
        return run_training(make_options(
            name=name,
            datasets={"train": {"type": "ToyPairs", "batch_size": batch_size}},
            train={"total_iter": 4, "grad_accum": accum, "optim": {"type": "SGD", "lr": 0.1}, "scheduler": None,
                   "step": gan_step(network_d={"type": "ToyDisc"}, optim_d={"type": "SGD", "lr": 0.1},
                                    net_d_init_iters=1)},
            val=None,
        ))

    big, acc = run("big", 4, 1), run("acc", 2, 2)
    for name in ("model.safetensors", "net_d.safetensors"):
        wa, wb = weights(big.last_checkpoint, name), weights(acc.last_checkpoint, name)
        for k in wa:
            torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6, msg=f"{name} {k}")


def test_bf16_mixed_precision_with_two_optimizers(toys, make_options):
    opts = make_options(
        train={"total_iter": 3, "mixed_precision": "bf16", "grad_clip": 1.0,
               "step": gan_step(grad_clip_d=1.0, relativistic=True)},
        logger={"print_freq": 1, "checkpoint_freq": 3},
        val=None,
    )
    result = run_training(opts)
    assert "mixed precision bf16" in (result.experiment / "train.log").read_text()
    assert all("nan" not in line for line in log_lines(result))
    for name in ("model.safetensors", "net_d.safetensors"):
        assert all(torch.isfinite(t).all() for t in weights(result.last_checkpoint, name).values())


# -- the update rule, against BasicSR's optimize_parameters written out --------------------------
def basicsr_iteration(net_g, net_d, opt_g, opt_d, gan, lq, gt, current_iter, relativistic, net_d_iters, init_iters):
    """One iteration of BasicSR's SRGANModel / ESRGANModel.optimize_parameters (L1 pixel loss)."""
    for p in net_d.parameters():
        p.requires_grad = False
    opt_g.zero_grad()
    output = net_g(lq)
    if current_iter % net_d_iters == 0 and current_iter > init_iters:
        l_g_total = F.l1_loss(output, gt)
        if relativistic:
            real_d_pred = net_d(gt).detach()
            fake_g_pred = net_d(output)
            l_g_real = gan(real_d_pred - torch.mean(fake_g_pred), False, is_disc=False)
            l_g_fake = gan(fake_g_pred - torch.mean(real_d_pred), True, is_disc=False)
            l_g_total = l_g_total + (l_g_real + l_g_fake) / 2
        else:
            l_g_total = l_g_total + gan(net_d(output), True, is_disc=False)
        l_g_total.backward()
        opt_g.step()
    for p in net_d.parameters():
        p.requires_grad = True
    opt_d.zero_grad()
    if relativistic:
        fake_d_pred = net_d(output).detach()
        real_d_pred = net_d(gt)
        (gan(real_d_pred - torch.mean(fake_d_pred), True, is_disc=True) * 0.5).backward()
        fake_d_pred = net_d(output.detach())
        (gan(fake_d_pred - torch.mean(real_d_pred.detach()), False, is_disc=True) * 0.5).backward()
    else:
        gan(net_d(gt), True, is_disc=True).backward()
        gan(net_d(output.detach()), False, is_disc=True).backward()
    opt_d.step()


@pytest.mark.parametrize("relativistic", [False, True], ids=["srgan", "esrgan"])
def test_one_step_equals_basicsr(toys, relativistic):
    from accelerate import Accelerator

    from irframe.losses import GANLoss
    from irframe.options import TrainOptions
    from irframe.train.adversarial import AdversarialStep
    from irframe.train.build import _shutdown
    from irframe.train.step import StepContext

    torch.manual_seed(0)
    net_g = toys.ToyNet()
    train = TrainOptions(total_iter=4, optim={"type": "SGD", "lr": 0.05}, losses=[{"type": "L1Loss"}])
    kw = gan_step(optim_d={"type": "SGD", "lr": 0.05}, relativistic=relativistic, net_d_init_iters=1, net_d_iters=1)
    kw.pop("type")
    step = AdversarialStep(StepContext(net_g, train, patch_sizes=[16]), **kw)
    ref_g, ref_d = copy.deepcopy(net_g), copy.deepcopy(step.net_d)  # the step builds its discriminator
    accelerator = Accelerator(cpu=True)
    try:
        step.prepare(accelerator)
        opt_g, opt_d = torch.optim.SGD(ref_g.parameters(), lr=0.05), torch.optim.SGD(ref_d.parameters(), lr=0.05)
        gan = GANLoss("vanilla", loss_weight=0.1)
        sample = toys.ToyPairs(length=4)
        for i in range(3):
            batch = {k: torch.stack([sample[j][k] for j in range(4)]) for k in ("lq", "gt")}
            step.step([batch], i)
            basicsr_iteration(ref_g, ref_d, opt_g, opt_d, gan, batch["lq"], batch["gt"], i + 1, relativistic, 1, 1)
        for ours, ref in ((step.model, ref_g), (step.net_d, ref_d)):
            for (name, a), b in zip(ours.state_dict().items(), ref.state_dict().values(), strict=True):
                assert torch.equal(a, b), name
    finally:
        _shutdown(accelerator)


# -- bad input: one line each, before any work ----------------------------------------------------
@pytest.mark.parametrize(
    "train, datasets, expected",
    [
        ({"step": gan_step(network_d={"type": "ToyNet"})}, {},
         r"train\.step\.network_d: ToyNet is a restorer \(it declares no role = 'discriminator'\), "
         r"not a discriminator"),
        ({"losses": [{"type": "L1Loss"}, {"type": "GANLoss", "gan_type": "vanilla"}]}, {},
         r"train\.losses\.1: GANLoss judges a discriminator's logits, so it needs a discriminator"),
        ({"step": {k: v for k, v in gan_step().items() if k != "gan"}}, {},
         r"train\.step\.gan: missing; adversarial training needs an adversarial loss"),
        ({"step": {k: v for k, v in gan_step().items() if k != "network_d"}}, {},
         r"train\.step\.network_d: missing; adversarial training needs a discriminator"),
        ({"step": gan_step(gan={"type": "L1Loss"})}, {},
         r"train\.step\.gan: L1Loss is not an adversarial loss"),
        ({"step": gan_step(network_d=VGG_D)}, {"train": {"type": "ToyPairs", "gt_size": 96}},
         r"train\.step\.network_d \(VGGStyleDiscriminator\): the training patch \(datasets\.train\.gt_size\) is "
         r"96x96 but input_size is 128"),
        ({"step": gan_step(network_d=VGG_D)}, {},
         r"VGGStyleDiscriminator judges 128x128 patches only, but the training data gives whole images"),
        ({"step": gan_step(network_d={**UNET_D, "num_in_ch": 1})}, {},
         r"UNetDiscriminatorSN judges 1-channel images but the model restores 3 channels"),
        ({"step": gan_step(net_d_iters=0)}, {}, r"train\.step\.net_d_iters: expected an integer >= 1"),
        ({"step": gan_step(optim_d={"type": "Adam", "betas": [2, 3]})}, {}, r"train\.step\.optim_d: "),
    ],
    ids=["not-a-discriminator", "gan-loss-without-d", "d-without-gan-loss", "gan-loss-without-d-in-step",
         "gan-not-adversarial",
         "size-mismatch", "whole-images", "channels", "net-d-iters", "optim-d-values"],
)
def test_bad_input_is_one_line_before_any_work(toys, make_options, train, datasets, expected):
    opts = make_options(train=train, datasets=datasets)
    with pytest.raises(OptionsError, match=expected) as info:
        run_training(opts)
    assert len(str(info.value).strip().splitlines()) == 1, str(info.value)
    assert not (Path(opts.path.experiments_root) / "toy").exists()  # nothing was made


def test_show_options_checks_the_step(toys, make_options):
    from irframe.options import check_options

    data = toys.toy_options(Path("/nonexistent"), train={"step": gan_step(network_d={"type": "ToyNet"},
                                                                          optim_d={"type": "Adam", "lrr": 1})})
    problems = check_options(data, paths=False)
    assert any(p.startswith("train.step.network_d: ToyNet is a restorer") for p in problems), problems
    data = toys.toy_options(Path("/nonexistent"), train={"step": gan_step(optim_d={"type": "Adam", "lrr": 1})})
    problems = check_options(data, paths=False)
    assert any(p.startswith("train.step.optim_d.lrr: unknown key") for p in problems), problems
    assert not any("params" in p for p in problems), problems  # supplied by the engine


def test_nan_policy_skip_skips_adversarial_steps(toys, make_options):
    opts = make_options(
        datasets={"train": {"type": "ToyPairs", "batch_size": 4, "length": 8, "nan_at": list(range(8))}},
        train={"total_iter": 3, "nan_policy": "skip", "ema_decay": 0.0, "step": gan_step()},
        val=None,
    )
    result = run_training(opts)
    state = load_state(result.last_checkpoint)
    assert state["skipped_steps"] == 3 and state["scheduler_d"]["last_epoch"] == 3  # schedules stay on time
    assert "skipped (train.nan_policy: skip)" in (result.experiment / "train.log").read_text()


def test_resume_changes_the_schedule_of_both_optimizers_and_refuses_a_changed_step(toys, make_options):
    base = {"total_iter": 4, "step": gan_step(), "scheduler": {"type": "CosineAnnealingLR", "T_max": 8}}
    run_training(make_options(name="r", train=base))
    with pytest.raises(OptionsError, match=r"cannot resume .* with changed train\.step\.gan\.loss_weight 0\.1 -> 0\.5"):
        run_training(make_options(name="r", train={**base, "total_iter": 6,
                                                   "step": gan_step(gan={"type": "GANLoss", "gan_type": "vanilla",
                                                                         "loss_weight": 0.5})}), resume="auto")
    changed = {**base, "total_iter": 6, "scheduler": {"type": "CosineAnnealingLR", "T_max": 100}}
    result = run_training(make_options(name="r", train=changed), resume="auto")
    state = load_state(result.last_checkpoint)
    assert state["scheduler"]["last_epoch"] == state["scheduler_d"]["last_epoch"] == 6
    lr_g = state["optimizer"]["param_groups"][0]["lr"]
    lr_d = state["optimizer_d"]["param_groups"][0]["lr"]
    # both follow the new cosine (T_max 100) from their own base rates (2e-3 and 1e-3)
    assert lr_g == pytest.approx(2e-3 * (1 + math.cos(math.pi * 6 / 100)) / 2, rel=1e-6)
    assert lr_d == pytest.approx(1e-3 * (1 + math.cos(math.pi * 6 / 100)) / 2, rel=1e-6)


def realesrgan_device_data(root: Path) -> dict:
    """A RealESRGANDataset degraded on the device (scale 1 for the toy generator), tiny images."""
    from irframe.train.synthetic import write_textured_images

    write_textured_images(root / "gt", 4, 24, seed=1)
    return {"type": "RealESRGANDataset", "dataroot_gt": str(root / "gt"), "scale": 1, "gt_size": 16,
            "crop_pad_size": 24, "degrade_on": "device", "batch_size": 2}


def test_gan_resume_with_device_degradation_and_pair_pool_is_bit_identical(toys, make_options, tmp_path):
    """Real-ESRGAN's batched path: batches degraded in the step, a pool of 4 pairs (full after two
    iterations, swapping after); the pool is in the checkpoint, so a resume equals the full run."""
    data = realesrgan_device_data(tmp_path)

    def options(name: str, total: int):
        return make_options(
            name=name,
            datasets={"train": data, "val": {"size": 16}},
            train={"total_iter": total, "step": gan_step(queue_size=4, pixel_target="gt_usm")},
            logger={"checkpoint_freq": 2},
            val={"freq": 2},
        )

    full = run_training(options("full", 6))
    run_training(options("cut", 3))  # stops between two checkpoints: resumes from iteration 2 (pool full)
    resumed = run_training(options("cut", 6), resume="auto")
    a, b = full.last_checkpoint, resumed.last_checkpoint
    for name in ("model.safetensors", "ema.safetensors", "net_d.safetensors"):
        assert_same(weights(a, name), weights(b, name))
    sa, sb = load_state(a), load_state(b)
    pool_a, pool_b = sa["pair_pool"], sb["pair_pool"]
    assert pool_a["filled"] == 4 and pool_a["swaps"] == 4 and pool_a == {**pool_b, "pairs": pool_a["pairs"]}
    assert set(pool_a["pairs"]) == {"lq", "gt", "gt_usm"}
    for key, value in pool_a["pairs"].items():
        assert value.shape == (4, 3, 16, 16) and torch.equal(value, pool_b["pairs"][key]), key
    state2 = load_state(full.experiment / "checkpoints" / "iter_000002")
    assert state2["pair_pool"]["swaps"] == 0 and state2["pair_pool"]["filled"] == 4


@pytest.mark.parametrize(
    "queue_size, data, expected",
    [
        (4, "workers", r"train\.step\.queue_size: the pair pool mixes batches degraded on the training device, and "
                  r"datasets\.train degrades its samples in the workers"),
        (5, "device", r"train\.step\.queue_size: 5 is not a multiple of the batch size 2"),
        (-1, "device", r"train\.step\.queue_size: expected a number of pairs >= 0"),
        (0, "device+mixup", r"train\.mixing_augs: mixup mixes the LQ of a batch before the training step, and "
                            r"datasets\.train\.degrade_on: device leaves the LQ to be made by the step"),
    ],
    ids=["not-on-device", "not-a-multiple", "negative", "mixup"],
)
def test_bad_queue_size_is_one_line_before_any_work(toys, make_options, tmp_path, queue_size, data, expected):
    datasets = {"train": realesrgan_device_data(tmp_path)} if data.startswith("device") else {}
    train = {"step": gan_step(queue_size=queue_size)}
    if data.endswith("mixup"):
        train["mixing_augs"] = {"mixup": True}
    opts = make_options(datasets=datasets, train=train)
    with pytest.raises(OptionsError, match=expected) as info:
        run_training(opts)
    assert len(str(info.value).strip().splitlines()) == 1, str(info.value)
    assert not (Path(opts.path.experiments_root) / "toy").exists()
