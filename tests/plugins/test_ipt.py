"""Tests of the IPT plugin: official layout, golden parity, tasks, chop inference, losses, fine-tuning, detector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from irframe_ipt.chop import axis_plan, kept_span, patch_starts
from irframe_ipt.detect import detect_ipt
from irframe_ipt.finetune import load_multitask_weights, prune_tasks, select_tasks_state_dict
from irframe_ipt.ipt_arch import IPT, default_task_names
from irframe_ipt.losses import IPTContrastiveLoss

from irframe.errors import CheckpointError, OptionsError
from irframe.registry import ARCHS, DETECTORS, LOSSES
from tests.helpers import FIXTURES, golden_fill, official_state_dict, read_official

OFFICIAL = {  # fixture -> options that reproduce it
    "ipt_sr2": {"scale": [2]},
    "ipt_sr3": {"scale": [3]},
    "ipt_sr4": {"scale": [4]},
    "ipt_denoise_derain": {"scale": [1]},
    "ipt_pretrain": {"scale": [2, 3, 4, 1, 1, 1], "num_queries": 6},
}
TINY = {"n_feats": 16, "num_heads": 2, "num_layers": 1}


def shapes_of(sd: dict[str, torch.Tensor]) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in sd.items()]


def build_meta(**options: object) -> IPT:
    with torch.device("meta"):
        return IPT(**options)  # type: ignore[arg-type]


def tiny(**options: object) -> IPT:
    torch.manual_seed(0)
    return IPT(**{**TINY, **options}).eval()  # type: ignore[arg-type]


# -- registration, layout, parity ------------------------------------------------------------------
def test_registered_components() -> None:
    assert ARCHS.get("IPT") is IPT
    assert LOSSES.get("IPTContrastiveLoss") is IPTContrastiveLoss
    assert DETECTORS.get("IPT") is detect_ipt
    model = ARCHS.build({"type": "IPT", **TINY, "scale": [2, "3"]}, path="model")
    assert model.scale == [2, 3] and model.tasks == ["sr_x2", "sr_x3"]


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_state_dict_matches_official(name: str) -> None:
    sd = build_meta(**OFFICIAL[name]).state_dict()
    assert shapes_of(sd) == read_official(name)[0]
    assert sd["body.position_encoding.position_ids"].dtype == torch.int64


@pytest.mark.parametrize("case", ["ipt_tiny_scales2.npz", "ipt_tiny_scales1x2.npz"])
def test_golden_parity(case: str) -> None:
    cfg = dict(json.loads((FIXTURES / "golden" / "ipt_golden.json").read_text())[case]["config"])
    task = cfg.pop("task_index")
    model = ARCHS.build(cfg).eval()
    golden_fill(model, keep=("sub_mean.", "add_mean."))
    data = np.load(FIXTURES / "golden" / case)
    x = torch.from_numpy(data["input"])  # [0, 255], as the official model takes it
    with torch.no_grad():
        out = model(x / 255.0, task=task) * 255.0
    expected = torch.from_numpy(data["output"])
    assert out.shape == expected.shape
    assert (out - expected).abs().max().item() < 2e-3


def test_mean_shift_and_value_range() -> None:
    model = tiny(scale=[1])
    mean = torch.tensor([0.4488, 0.4371, 0.4040]) * 255
    assert torch.allclose(model.sub_mean.bias, -mean) and torch.allclose(model.add_mean.bias, mean)
    assert not model.sub_mean.weight.requires_grad and not model.add_mean.bias.requires_grad
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(model(x), model.forward_patch(x * 255, 0) / 255, atol=1e-5)  # type: ignore[operator]
    spec = model.spec
    assert (spec.value_range, spec.fixed_size, spec.scale, spec.tasks) == (255.0, 48, 1, ("denoise30",))


def test_safetensors_round_trip(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    model = tiny(scale=[2, 1], num_queries=2)
    path = tmp_path / "ipt.safetensors"
    save_file(model.state_dict(), str(path), metadata={"arch": "IPT", "config": json.dumps(model.config)})
    loaded = load_file(str(path))
    assert loaded["body.position_encoding.position_ids"].dtype == torch.int64
    rebuilt = ARCHS.build(model.config)
    rebuilt.load_state_dict(loaded, strict=True)
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), model(x))


# -- tasks ---------------------------------------------------------------------------------------------
def test_default_task_names() -> None:
    assert default_task_names([2, 3, 4, 1, 1, 1]) == ["sr_x2", "sr_x3", "sr_x4", "denoise30", "denoise50", "derain"]
    assert default_task_names([1, 1, 1, 1, 2, 2]) == [
        "denoise30",
        "denoise50",
        "derain",
        "restore3",
        "sr_x2",
        "sr_x2_1",
    ]


def test_multitask_runs_every_task() -> None:
    model = tiny(scale=[2, 3, 4, 1], num_queries=4)
    x = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        for i, (name, s) in enumerate(zip(model.tasks, model.scale)):
            by_name = model(x, task=name)
            assert by_name.shape == (2, 3, 48 * s, 48 * s)
            assert torch.isfinite(by_name).all()
            model.set_task(i)
            assert model.spec.scale == s
            assert torch.equal(model(x), by_name)
        model.set_scale(0)  # official API name
        assert model.spec.scale == 2
    with pytest.raises(ValueError, match="unknown task 'sr_x8'"):
        model(x, task="sr_x8")
    with pytest.raises(ValueError, match="out of range"):
        model.set_task(4)


def test_mixed_task_batch() -> None:
    model = tiny(scale=[1, 1, 2], num_queries=3)
    x = torch.rand(3, 3, 48, 48)
    with torch.no_grad():
        mixed = model(x, task=["denoise50", "denoise30", "denoise50"])
        assert torch.allclose(mixed[0], model(x[:1], task="denoise50")[0], atol=1e-5)
        assert torch.allclose(mixed[1], model(x[1:2], task="denoise30")[0], atol=1e-5)
        assert torch.equal(model(x, task=torch.tensor([1, 0, 1])), mixed)  # collated task ids
        # Two tasks of the same scale differ (own head, query and tail).
        assert not torch.allclose(model(x, task="denoise30"), model(x, task="denoise50"), atol=1e-3)
        out, feats = model(x, task=[1, 0, 1], return_features=True)
        assert torch.equal(out, mixed) and feats.shape == (3, 256, 144)
        assert torch.allclose(feats[1], model(x[1:2], task=0, return_features=True)[1][0], atol=1e-5)
    with pytest.raises(ValueError, match="different scales"):
        model(x, task=["denoise50", "sr_x2", "denoise50"])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"scale": [5]}, r"IPT\.scale: 5"),
        ({"scale": [2, 3, 4], "num_queries": 2}, r"IPT\.num_queries"),
        ({"scale": [2, 3], "tasks": ["a"]}, r"IPT\.tasks"),
        ({"num_heads": 5}, r"IPT\.num_heads"),
        ({"patch_size": 50}, r"IPT\.patch_size"),
        ({"n_colors": 1}, r"IPT\.n_colors"),
        ({"scale": [2], "bogus": 1}, r"model\.bogus"),
    ],
)
def test_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        ARCHS.build({"type": "IPT", **TINY, **options}, path="model")


@pytest.mark.parametrize(
    "flag", ["no_norm", "no_mlp", "no_pos", "pos_every", "post_norm", "freeze_norm", "dropout_rate"]
)
def test_variants_run(flag: str) -> None:
    model = tiny(scale=[2], **{flag: 0.1 if flag == "dropout_rate" else True})
    with torch.no_grad():
        assert torch.isfinite(model(torch.rand(1, 3, 48, 48))).all()
    if flag == "freeze_norm":
        assert all(not p.requires_grad for n, p in model.named_parameters() if ".norm" in n)


@pytest.mark.parametrize(
    "options", [{}, {"pos_every": True}, {"no_pos": True}, {"no_mlp": True}, {"no_norm": True}, {"post_norm": True}]
)
def test_fused_inference_path_equals_the_plain_one(options: dict[str, object], monkeypatch) -> None:
    """Under no_grad on the CPU the transformer runs on oneDNN's matmuls (q and k in one product, SDPA,
    ReLU and residuals as post-ops); it must give the plain formulation's output (autograd on, and
    with the fused kernels switched off)."""
    import irframe_ipt.transformer as transformer

    from irframe.nn import onednn

    model = tiny(scale=[2], **options)
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0)) * 255
    calls: list[int] = []
    real = transformer._attention_add
    monkeypatch.setattr(transformer, "_attention_add", lambda *a: calls.append(1) or real(*a))
    with torch.no_grad():
        fused = model.forward_patch(x, 0)
    ran_fused = bool(calls)
    assert ran_fused == (onednn.AVAILABLE and not options.get("post_norm"))
    trained = model.forward_patch(x, 0).detach()  # autograd on: the plain formulation
    monkeypatch.setattr(onednn, "ENABLED", False)
    calls.clear()
    with torch.no_grad():
        plain = model.forward_patch(x, 0)
    assert not calls
    assert (fused - plain).abs().max() < 2e-3 and (trained - plain).abs().max() < 2e-3  # of 255
    # bf16 autocast (inference.precision: bf16) runs the fused path in bfloat16, as autocast's plain one
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        plain_bf16 = model.forward_patch(x, 0).float()
        monkeypatch.setattr(onednn, "ENABLED", True)
        fused_bf16 = model.forward_patch(x, 0).float()
    assert bool(calls) == ran_fused
    assert (fused_bf16 - plain).abs().max() < 10 and (plain_bf16 - plain).abs().max() < 10  # of 255 (obs. 4)


# -- chop inference ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["official", "mean"])
def test_chop_on_patch_size_is_identity(mode: str) -> None:
    model = tiny(scale=[2])
    x = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(model.forward_chop(x, mode=mode), model(x), atol=1e-6)  # type: ignore[arg-type]


def _crop_mean(model: IPT, x: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int],
               ys: list[int], xs: list[int], s: int) -> torch.Tensor:
    """Mean over the 48x48 crops at (y, x0) of their outputs on input rows/cols [lo, hi)."""
    parts = [
        model(x[..., y : y + 48, x0 : x0 + 48])[
            ..., (rows[0] - y) * s : (rows[1] - y) * s, (cols[0] - x0) * s : (cols[1] - x0) * s
        ]
        for y in ys for x0 in xs
    ]
    return torch.stack(parts).mean(0)


def _region(out: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int], s: int) -> torch.Tensor:
    return out[..., rows[0] * s : rows[1] * s, cols[0] * s : cols[1] * s]


def test_chop_mean_mode_equals_patch_outputs() -> None:
    model = tiny(scale=[2])
    # 72 rows: crops at rows 0, 12, 24. 73 columns: crops at 0, 12, 24 and 25 (flush with the edge).
    x = torch.rand(1, 3, 72, 73)
    s = 2
    with torch.no_grad():
        out = model.forward_chop(x, mode="mean")
        assert out.shape == (1, 3, 72 * s, 73 * s)
        assert torch.allclose(out, model.forward_chop(x, mode="mean", batch=3), atol=1e-6)  # batching is invisible
        # Top-left corner: kept by the first crop only.
        assert torch.allclose(
            _region(out, (0, 12), (0, 12), s), _crop_mean(model, x, (0, 12), (0, 12), [0], [0], s), atol=1e-5
        )
        # Interior [24, 36)^2: centres of the crops at {0, 12} x {0, 12}, averaged.
        assert torch.allclose(
            _region(out, (24, 36), (24, 36), s),
            _crop_mean(model, x, (24, 36), (24, 36), [0, 12], [0, 12], s),
            atol=1e-5,
        )
        # Near the right remainder, columns [37, 48) are kept by the crops at columns 12, 24 and 25.
        assert torch.allclose(
            _region(out, (24, 36), (37, 48), s),
            _crop_mean(model, x, (24, 36), (37, 48), [0, 12], [12, 24, 25], s),
            atol=1e-5,
        )
        # Bottom-right corner: only the crop flush with both edges.
        assert torch.allclose(
            _region(out, (60, 72), (61, 73), s), _crop_mean(model, x, (60, 72), (61, 73), [24], [25], s), atol=1e-5
        )


def test_chop_official_mode_regions() -> None:
    model = tiny(scale=[2])
    x = torch.rand(1, 3, 72, 73)  # rows: grid 0, 12, 24 (no remainder); columns: grid 0..24, remainder 1
    s = 2
    with torch.no_grad():
        out = model(x)  # eval + other size -> chop, official stitching by default
        assert out.shape == (1, 3, 72 * s, 73 * s)
        # Interior: the same averaging as the mean mode.
        assert torch.allclose(
            _region(out, (24, 36), (24, 36), s),
            _crop_mean(model, x, (24, 36), (24, 36), [0, 12], [0, 12], s),
            atol=1e-5,
        )
        # Official quirk: the first 12 rows of the first 48 columns come from the top-left crop alone.
        assert torch.allclose(
            _region(out, (0, 12), (24, 48), s), _crop_mean(model, x, (0, 12), (24, 48), [0], [0], s), atol=1e-5
        )
        # Past the column seam (grid end 72 - (48 - 1) // 2 = 49 for remainder 1) only the flush crop (25) counts.
        seam = 72 - (48 - 1) // 2
        assert torch.allclose(
            _region(out, (24, 36), (seam, 73), s),
            _crop_mean(model, x, (24, 36), (seam, 73), [0, 12], [25], s),
            atol=1e-5,
        )
        # Before it, the grid crops only (columns [36, 48): crops 12 and 24, not 25).
        assert torch.allclose(
            _region(out, (24, 36), (36, 48), s),
            _crop_mean(model, x, (24, 36), (36, 48), [0, 12], [12, 24], s),
            atol=1e-5,
        )


def test_chop_matches_official_fixture() -> None:
    """Fixture: the official forward_chop, transcribed to CPU, on a tiny golden-filled x3 model (53x50 input)."""
    cfg = dict(json.loads((FIXTURES / "golden" / "ipt_golden.json").read_text())["ipt_chop_official.npz"]["config"])
    task = cfg.pop("task_index")
    model = ARCHS.build(cfg).eval()
    golden_fill(model, keep=("sub_mean.", "add_mean."))
    data = np.load(FIXTURES / "golden" / "ipt_chop_official.npz")
    with torch.no_grad():
        out = model(torch.from_numpy(data["input"]) / 255.0, task=task) * 255.0
    expected = torch.from_numpy(data["output"])
    assert out.shape == expected.shape == (1, 3, 159, 150)
    assert (out - expected).abs().max().item() < 2e-3


def test_chop_small_and_batched_inputs() -> None:
    model = tiny(scale=[1, 3], num_queries=2)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 20, 35), task="sr_x3").shape == (1, 3, 60, 105)
        x = torch.rand(2, 3, 50, 50)
        both = model(x, task="denoise30")
        assert torch.allclose(both[1:], model(x[1:], task="denoise30"), atol=1e-5)


def test_chop_spans_cover_the_image() -> None:
    for length in (48, 49, 60, 61, 100, 131):
        starts = patch_starts(length, 48, 12)
        covered = torch.zeros(length)
        for s in starts:
            lo, hi = kept_span(s, 48, length, 12)
            covered[lo:hi] += 1
        assert starts[0] == 0 and starts[-1] == length - 48
        assert covered.min() >= 1
        for mode in ("official", "mean"):
            for scale in (1, 3):
                plan = axis_plan(length, 48, scale, 12, 12, mode)  # type: ignore[arg-type]
                total = torch.zeros(length * scale)
                for start, weight in zip(plan.starts, plan.weights):
                    total[start * scale : (start + 48) * scale] += weight
                assert torch.allclose(total, torch.ones_like(total))  # weights form a partition of unity


def test_training_needs_patch_size() -> None:
    model = tiny(scale=[2]).train()
    with pytest.raises(ValueError, match="48x48"):
        model(torch.rand(1, 3, 40, 48))


# -- training and the contrastive loss ----------------------------------------------------------------
def test_train_one_step_with_contrastive_loss() -> None:
    model = tiny(scale=[2, 1], num_queries=2, con_loss=True).train()
    loss_fn = LOSSES.build({"type": "IPTContrastiveLoss", "patches_per_image": 64})
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    lq, gt = torch.rand(2, 3, 48, 48), torch.rand(2, 3, 96, 96)
    out, feats = model(lq, task="sr_x2")
    assert feats.shape == (2, 256, 16 * 9)
    loss = F.l1_loss(out, gt) + 0.1 * loss_fn(feats)
    opt.zero_grad()
    loss.backward()
    used = [n for n, p in model.named_parameters() if p.requires_grad and not n.startswith(("head.1", "tail.1"))]
    for n in used:
        grad = dict(model.named_parameters())[n].grad
        assert grad is not None and torch.isfinite(grad).all(), n
    before = model.head[0][0].weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model.head[0][0].weight)
    model.eval()
    assert isinstance(model(lq), torch.Tensor)  # features only in training (or on request)


def _supcon_reference(feats: torch.Tensor, ids: torch.Tensor, t: float) -> torch.Tensor:
    """Loop-by-loop SupCon, to check the vectorised version."""
    n, length, _ = feats.shape
    z = F.normalize(feats.reshape(n * length, -1), dim=1)
    labels = ids.repeat_interleave(length)
    losses = []
    for a in range(len(z)):
        others = [k for k in range(len(z)) if k != a]
        denom = torch.logsumexp(torch.stack([z[a] @ z[k] / t for k in others]), 0)
        pos = [k for k in others if labels[k] == labels[a]]
        losses.append(-torch.stack([z[a] @ z[p] / t - denom for p in pos]).mean())
    return torch.stack(losses).mean()


def test_contrastive_loss_values() -> None:
    torch.manual_seed(1)
    loss_fn = IPTContrastiveLoss(temperature=0.5)
    feats = torch.randn(3, 4, 8)
    ids = torch.tensor([0, 1, 0])
    assert torch.allclose(loss_fn(feats), _supcon_reference(feats, torch.arange(3), 0.5), atol=1e-5)
    assert torch.allclose(loss_fn(feats, ids), _supcon_reference(feats, ids, 0.5), atol=1e-5)
    # Patches that agree within an image and differ across images score lower than random ones.
    clustered = torch.eye(8)[:3, None, :].expand(3, 4, 8) + 0.01 * torch.randn(3, 4, 8)
    assert loss_fn(clustered) < loss_fn(feats)
    with pytest.raises(ValueError, match="no positive pairs"):
        loss_fn(torch.randn(3, 8))
    with pytest.raises(OptionsError, match="temperature"):
        LOSSES.build({"type": "IPTContrastiveLoss", "temperature": 0})


# -- fine-tuning -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("keep, target", [(["sr_x2"], "ipt_sr2"), ([2], "ipt_sr4"), (["derain"], "ipt_denoise_derain")])
def test_prune_pretrained_to_single_task(keep: list[object], target: str) -> None:
    model = prune_tasks(build_meta(**OFFICIAL["ipt_pretrain"]), keep)  # type: ignore[arg-type]
    assert shapes_of(model.state_dict()) == read_official(target)[0]
    assert model.config["num_queries"] == 1 and len(model.config["scale"]) == 1


def test_prune_keeps_outputs() -> None:
    model = tiny(scale=[2, 3, 1], num_queries=3)
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        expected = model(x, task="sr_x3")
        model.prune_tasks(["sr_x3"])
        assert model.tasks == ["sr_x3"] and model.spec.scale == 3
        assert torch.allclose(model(x), expected, atol=1e-6)
    rebuilt = ARCHS.build(model.config)  # the updated config builds the pruned layout
    assert shapes_of(rebuilt.state_dict()) == shapes_of(model.state_dict())
    with pytest.raises(ValueError, match="distinct"):
        model.prune_tasks(["sr_x3", 0])


@pytest.mark.parametrize("index, target", [(0, "ipt_sr2"), (1, "ipt_sr3"), (2, "ipt_sr4"), (5, "ipt_denoise_derain")])
def test_select_tasks_from_pretrained_checkpoint(index: int, target: str) -> None:
    selected = select_tasks_state_dict(official_state_dict("ipt_pretrain", device="meta"), [index])
    assert shapes_of(selected) == read_official(target)[0]


def test_load_multitask_weights_into_single_task_model() -> None:
    source = tiny(scale=[2, 3, 1], num_queries=3)
    target = tiny(scale=[3])
    load_multitask_weights(target, source.state_dict())
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(target(x), source(x, task="sr_x3"), atol=1e-6)
    derain = tiny(scale=[1], tasks=["derain"])
    load_multitask_weights(derain, source.state_dict(), source_names=["sr_x2", "sr_x3", "derain"])
    with pytest.raises(ValueError, match="cannot take"):
        load_multitask_weights(tiny(scale=[2]), source.state_dict(), source_tasks=[1])
    with pytest.raises(ValueError, match="no source task named"):
        load_multitask_weights(tiny(scale=[4]), source.state_dict())
    with pytest.raises(ValueError, match="num_queries=2"):
        load_multitask_weights(tiny(scale=[2, 3]), source.state_dict())
    two = load_multitask_weights(tiny(scale=[3, 2], num_queries=2), source.state_dict())  # reordered tasks
    with torch.no_grad():
        assert torch.allclose(two(x, task="sr_x2"), source(x, task="sr_x2"), atol=1e-6)


# -- detector ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_detector_on_official_layouts(name: str) -> None:
    cfg = detect_ipt(official_state_dict(name, device="meta"))
    assert cfg is not None and cfg["type"] == "IPT"
    assert cfg["scale"] == OFFICIAL[name]["scale"]
    assert (cfg["n_feats"], cfg["patch_size"], cfg["patch_dim"], cfg["num_layers"], cfg["num_heads"]) == (
        64,
        48,
        3,
        12,
        12,
    )
    assert cfg["num_queries"] == OFFICIAL[name].get("num_queries", 1)
    cfg.pop("type")
    assert shapes_of(build_meta(**cfg).state_dict()) == read_official(name)[0]


@pytest.mark.parametrize(
    "options, heads",
    [
        # Heads are not in the shapes: 12 (official) when it divides the token width, else the
        # largest divisor below 12 (16*4*4 = 256 -> 8).
        ({"scale": [2, 3, 4, 8, 1], "num_queries": 5, "patch_dim": 4, "patch_size": 32}, 8),
        ({"scale": [2], "no_mlp": True, "no_norm": True}, 12),
        ({"scale": [3], "no_pos": True}, 12),
    ],
)
def test_detector_on_our_state_dicts(options: dict[str, object], heads: int) -> None:
    sd = build_meta(**{**TINY, **options}).state_dict()
    cfg = detect_ipt(sd)
    assert cfg is not None
    assert cfg["num_heads"] == heads
    cfg.pop("type")
    assert shapes_of(build_meta(**cfg).state_dict()) == shapes_of(sd)
    for key, value in options.items():
        assert cfg[key] == value


def test_detector_rejects_other_state_dicts() -> None:
    assert detect_ipt({"conv_first.weight": torch.zeros(1)}) is None
    sd = official_state_dict("ipt_sr2", device="meta")
    sd["tail.0.0.0.weight"] = torch.empty(100, 64, 3, 3, device="meta")
    with pytest.raises(CheckpointError, match="tail 0"):
        detect_ipt(sd)


def test_contrastive_loss_default_weight_is_the_papers_lambda() -> None:
    from irframe.options import LossOptions
    from irframe.train.loss import WeightedLoss

    weighted = WeightedLoss.from_options([LossOptions(type="L1Loss"), LossOptions(type="IPTContrastiveLoss")])
    assert [(t.name, t.weight) for t in weighted.terms] == [("L1Loss", 1.0), ("IPTContrastiveLoss", 0.1)]
