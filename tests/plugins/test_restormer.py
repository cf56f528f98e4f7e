"""Restormer plugin: official state_dict layout, golden parity, detector, options, training step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from irframe_restormer.arch import Restormer
from irframe_restormer.detect import detect_restormer
from irframe_restormer.keys import read_ffn_expansion

from irframe.errors import CheckpointError, OptionsError
from irframe.nn.spec import get_spec
from irframe.registry import ARCHS, DETECTORS
from tests.helpers import FIXTURES, SHARED, golden_fill, read_official

SHARED_GOLDEN = SHARED / "golden" / "golden.json"

# Official configurations (tests/fixtures/official/<name>.txt): build options.
OFFICIAL = {
    "restormer_withbias": {},
    "restormer_biasfree": {"LayerNorm_type": "BiasFree"},
    "restormer_gray_biasfree": {"LayerNorm_type": "BiasFree", "inp_channels": 1, "out_channels": 1},
    "restormer_dualpixel": {"inp_channels": 6, "dual_pixel_task": True},
}
_TINY = {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1, "heads": [1, 2, 4, 8]}
# The configurations of golden.json (copied so the tests run without ../shared).
GOLDEN = {
    "restormer_tiny_withbias.npz": {**_TINY, "LayerNorm_type": "WithBias"},
    "restormer_tiny_biasfree.npz": {**_TINY, "LayerNorm_type": "BiasFree"},
    "restormer_tiny_dualpixel.npz": {**_TINY, "inp_channels": 6, "dual_pixel_task": True},
}


def shapes(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def meta_build(cfg: dict) -> torch.nn.Module:
    with torch.device("meta"):  # full-size models without allocating their weights
        return Restormer(**{k: v for k, v in cfg.items() if k != "type"})


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_state_dict_matches_official(name: str) -> None:
    expected, total = read_official(name)
    model = meta_build(OFFICIAL[name])
    assert shapes(model) == expected  # names, shapes and order
    assert sum(v.numel() for v in model.state_dict().values()) == total


def test_registered_and_built_from_options() -> None:
    assert ARCHS.entry("Restormer").provider == "restormer"
    assert DETECTORS.entry("Restormer").provider == "restormer"
    # Values as a YAML loader may give them (strings) are coerced from the type hints.
    model = ARCHS.build({**_TINY, "ffn_expansion_factor": "2.66", "bias": "false"}, path="network_g")
    assert isinstance(model, Restormer)
    assert model.output.bias is None  # "false" -> False
    assert model.spec == get_spec(model)
    assert (model.spec.size_multiple, model.spec.value_range, model.spec.tileable) == (8, 1.0, True)


@pytest.mark.parametrize("fname", sorted(GOLDEN))
def test_golden_parity(fname: str) -> None:
    data = np.load(FIXTURES / "golden" / fname)
    model = ARCHS.build(GOLDEN[fname]).eval()
    golden_fill(model)
    with torch.no_grad():
        out = model(torch.from_numpy(data["input"]))
    assert out.shape == data["output"].shape
    assert np.abs(out.numpy() - data["output"]).max() < 1e-4


def test_golden_configs_match_shared_index() -> None:
    if not SHARED_GOLDEN.is_file():
        pytest.skip("../shared/golden/golden.json not present")
    archs = json.loads(SHARED_GOLDEN.read_text())["archs"]
    for fname, cfg in GOLDEN.items():
        assert archs[fname]["config"] == cfg, fname


@pytest.mark.parametrize("size", [(8, 8), (24, 40)])
def test_forward_shapes_and_residual(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    gray = Restormer(inp_channels=1, out_channels=1, dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1)
    x = torch.rand(2, 1, *size)
    assert gray(x).shape == x.shape
    torch.nn.init.zeros_(gray.output.weight)  # a zero output conv leaves only the global residual
    assert torch.equal(gray(x), x)


def test_input_size_not_multiple_of_8_is_a_clear_error() -> None:
    model = ARCHS.build(_TINY)
    with pytest.raises(ValueError, match="multiples of 8.*12x16"):
        model(torch.rand(1, 3, 12, 16))


def test_one_training_step_gives_finite_grads_to_every_parameter() -> None:
    torch.manual_seed(0)
    model = ARCHS.build({**_TINY, "LayerNorm_type": "BiasFree", "bias": True}).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    lq, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    loss = torch.nn.functional.l1_loss(model(lq), gt)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())
    opt.step()
    assert torch.isfinite(loss)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"LayerNorm_type": "Withbias"}, "LayerNorm_type"),
        ({"heads": [1, 2, 3, 8]}, r"heads\[2\]=3"),
        ({"num_blocks": [1, 1, 1]}, "num_blocks"),
        ({"out_channels": 1}, "inp_channels == out_channels"),
        ({"dimm": 8}, "did you mean 'dim'"),
    ],
)
def test_bad_options_name_the_key(bad: dict, match: str) -> None:
    with pytest.raises(OptionsError, match=match):
        ARCHS.build({**_TINY, **bad}, path="network_g")


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_detector_on_official_shape_lists(name: str) -> None:
    expected, _ = read_official(name)
    fake = {key: torch.zeros(shape, device="meta") for key, shape in expected}
    cfg = detect_restormer(fake)
    assert cfg is not None and cfg["type"] == "Restormer"
    for key, value in OFFICIAL[name].items():
        assert cfg[key] == value, key
    assert shapes(meta_build(cfg)) == expected


@pytest.mark.parametrize(
    "cfg",
    [
        {**_TINY, "ffn_expansion_factor": 2.0, "bias": True, "heads": [2, 2, 4, 4]},
        {**_TINY, "dim": 12, "num_blocks": [2, 1, 3, 1], "num_refinement_blocks": 0, "ffn_expansion_factor": 1.5},
        {**_TINY, "inp_channels": 6, "out_channels": 3, "dual_pixel_task": True, "LayerNorm_type": "BiasFree"},
    ],
)
def test_detector_round_trip(cfg: dict) -> None:
    model = meta_build(cfg)
    detected = detect_restormer(model.state_dict())
    assert detected is not None
    assert shapes(meta_build(detected)) == shapes(model)
    for key, value in cfg.items():
        assert detected[key] == value, key


def test_detector_rejects_other_state_dicts() -> None:
    assert detect_restormer({"conv.weight": torch.zeros(3, 3, 3, 3)}) is None
    assert detect_restormer({}) is None


def test_detector_reports_inconsistent_block_counts() -> None:
    sd = dict(meta_build(_TINY).state_dict())
    sd = {k: v for k, v in sd.items() if not k.startswith("decoder_level2.")}
    with pytest.raises(CheckpointError, match="decoder levels 1-3 have \\[1, 0, 1\\]"):
        detect_restormer(sd)


def test_ffn_expansion_is_recovered_from_widths() -> None:
    for factor in (2.66, 2.0, 4.0, 1.3):
        sd = meta_build({**_TINY, "ffn_expansion_factor": factor}).state_dict()
        recovered = read_ffn_expansion(sd)
        assert all(
            int(w * recovered) == int(w * factor) for w in (8, 16, 32, 64)
        ), (factor, recovered)


def _reference_block(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One transformer block computed the way the official code writes it (NCHW, normalised q and k,
    ``attn @ v`` then ``project_out``): a re-written reference for the bias=True configs that no golden
    file covers, using the block's own parameters."""
    import torch.nn.functional as F

    def norm(layer: torch.nn.Module, t: torch.Tensor) -> torch.Tensor:
        body = layer.body
        t3 = t.flatten(2).transpose(1, 2)  # (b, hw, c)
        mu, var = t3.mean(-1, keepdim=True), t3.var(-1, keepdim=True, unbiased=False)
        if hasattr(body, "bias"):
            out = (t3 - mu) / torch.sqrt(var + 1e-5) * body.weight + body.bias
        else:
            out = t3 / torch.sqrt(var + 1e-5) * body.weight
        return out.transpose(1, 2).reshape(t.shape)

    a, f = block.attn, block.ffn
    b, c, h, w = x.shape
    q, k, v = a.qkv_dwconv(a.qkv(norm(block.norm1, x))).chunk(3, dim=1)
    q, k, v = (t.reshape(b, a.num_heads, c // a.num_heads, h * w) for t in (q, k, v))
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    attn = ((q @ k.transpose(-2, -1)) * a.temperature).softmax(dim=-1)
    x = x + a.project_out((attn @ v).reshape(b, c, h, w))
    x1, x2 = f.dwconv(f.project_in(norm(block.norm2, x))).chunk(2, dim=1)
    return x + f.project_out(F.gelu(x1) * x2)


@pytest.mark.parametrize("layer_norm", ["WithBias", "BiasFree"])
@pytest.mark.parametrize("dim, heads, factor, bias", [(8, 2, 2.66, True), (16, 4, 2.0, True), (12, 3, 2.66, False)])
@pytest.mark.parametrize("size", [(12, 16), (2, 3)])  # more pixels than channels (folded attention), and fewer
def test_block_equals_the_official_computation_on_every_path(
    layer_norm: str, dim: int, heads: int, factor: float, bias: bool, size: tuple[int, int]
) -> None:
    """The token-layout block (padded gate halves when the hidden width is not a multiple of 16, the
    attention folded into project_out where pixels outnumber channels, the fused oneDNN gate under
    no_grad) against the official formulation, with autograd on (the training path) and off (the
    inference path)."""
    from irframe_restormer.blocks import TransformerBlock

    torch.manual_seed(0)
    block = TransformerBlock(dim, heads, factor, bias, layer_norm)
    with torch.no_grad():
        for p in block.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # non-trivial norms, biases and temperatures
    x = torch.randn(2, dim, *size)
    ref = _reference_block(block, x).detach()
    trained = block(x)  # autograd on
    with torch.no_grad():
        inferred = block(x)
        inferred_nchw = block(x.contiguous())  # a GPU-style NCHW input gives the same
        inferred_cl = block(x.contiguous(memory_format=torch.channels_last))
    assert (trained.detach() - ref).abs().max() < 2e-5
    assert (inferred - ref).abs().max() < 2e-5
    assert (inferred_nchw - inferred_cl).abs().max() < 1e-6
    trained.square().mean().backward()  # gradients reach every weight through the padding
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in block.parameters())


def test_inference_keeps_padded_weights_only_while_they_are_current() -> None:
    """Without autograd the padded feed-forward weights are kept between calls; loading other weights,
    an in-place update (an optimiser or EMA step) or a training call must not reuse stale copies."""
    from irframe_restormer.blocks import TransformerBlock

    torch.manual_seed(0)
    block = TransformerBlock(12, 3, 2.66, True, "WithBias")  # hidden 31: padded on the CPU
    other = TransformerBlock(12, 3, 2.66, True, "WithBias")
    x = torch.randn(1, 12, 8, 8)
    with torch.no_grad():
        first = block(x)
        assert torch.equal(block(x), first)  # the kept weights give the same output
        block.load_state_dict(other.state_dict())
        assert (block(x) - _reference_block(other, x)).abs().max() < 2e-5
        block.ffn.project_out.weight.mul_(0.5)  # in place, as optimisers and EMA update
        assert (block(x) - _reference_block(block, x)).abs().max() < 2e-5
    trained = block(x)  # autograd on: built in the graph, gradients reach the real weights
    trained.sum().backward()
    assert block.ffn.project_in.weight.grad is not None and block.ffn.project_in.weight.grad.abs().sum() > 0
    with torch.inference_mode():  # a block made under inference_mode has no version counters: not kept
        made_there = TransformerBlock(12, 3, 2.66, True, "WithBias").eval()
        made_there.load_state_dict(other.state_dict())
        assert (made_there(x) - _reference_block(other, x)).abs().max() < 2e-5


def test_bf16_autocast_runs_the_fused_kernels_in_bfloat16(monkeypatch) -> None:
    """``inference.precision: bf16`` (CPU autocast) takes the fused oneDNN path in bfloat16; its output
    agrees with autocast's plain formulation to bfloat16 accuracy."""
    from irframe_restormer.blocks import FeedForward, TransformerBlock

    from irframe.nn import onednn

    if not onednn.AVAILABLE:
        pytest.skip("no oneDNN fused kernels on this platform")
    torch.manual_seed(0)
    block = TransformerBlock(24, 2, 2.66, False, "WithBias").eval()
    x = torch.randn(1, 24, 16, 16)
    calls: list[int] = []
    real = FeedForward._fused_gate
    monkeypatch.setattr(FeedForward, "_fused_gate", staticmethod(lambda *a: calls.append(1) or real(*a)))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        fused = block(x)
        monkeypatch.setattr(onednn, "ENABLED", False)
        plain = block(x)
    assert calls == [1] and fused.dtype == plain.dtype
    ref = _reference_block(block, x).detach()
    assert (fused.float() - plain.float()).abs().max() < 0.01 * ref.abs().max()  # observed 0.004
    assert (fused.float() - ref).abs().max() < 0.01 * ref.abs().max()  # as plain bf16 (observed 0.005)
