"""Checkpoint reading (safe), unwrapping, loading with clear errors, atomic safetensors saving."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from irframe.errors import CheckpointError
from irframe.nn.weights import load_weights, read_checkpoint, save_weights, strip_prefixes, unwrap_state_dict


class Net(nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.norm = nn.BatchNorm2d(width)  # buffers count too
        self.head = nn.Linear(width, 2)


def _state(width: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return Net(width).state_dict()


class Malicious:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# -- reading -----------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".pth", ".pt", ".ckpt", ".bin"])
def test_read_torch_files(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"w{suffix}"
    torch.save({"params": _state()}, path)
    content, meta = read_checkpoint(path)
    assert meta == {} and set(content) == {"params"}


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused_not_executed(tmp_path: Path, how: str) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    payload = {"params": _state(), "x": Malicious(marker)}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError, match=r"evil\.pth.*refused as unsafe"):
        read_checkpoint(path)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused as unsafe"):
        load_weights(Net(), path)
    assert not marker.exists()


def test_read_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found.*missing.pth"):
        read_checkpoint(tmp_path / "missing.pth")
    bad = tmp_path / "weights.onnx"
    bad.write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"weights.onnx.*unsupported checkpoint suffix"):
        read_checkpoint(bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="junk.pth"):
        read_checkpoint(junk)
    junk_st = tmp_path / "junk.safetensors"
    junk_st.write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="junk.safetensors.*safetensors"):
        read_checkpoint(junk_st)
    tensor_file = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor_file)
    with pytest.raises(CheckpointError, match="holds a Tensor"):
        read_checkpoint(tensor_file)


# -- unwrapping --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"params": sd},
        lambda sd: {"params_ema": sd},
        lambda sd: {"state_dict": sd, "epoch": 3, "optimizer_states": []},
        lambda sd: {"model": sd},
        lambda sd: {"net": sd},
        lambda sd: {"model": {"state_dict": sd}},
    ],
    ids=["plain", "params", "params_ema", "lightning", "model", "net", "nested"],
)
def test_unwrap_wrappers(wrap) -> None:
    sd = _state()
    out = unwrap_state_dict(wrap(sd))
    assert list(out) == list(sd)


@pytest.mark.parametrize("prefix", ["module.", "net.", "_orig_mod.", "module._orig_mod.", "net.module."])
def test_unwrap_strips_prefixes(prefix: str) -> None:
    sd = _state()
    out = unwrap_state_dict({"state_dict": {prefix + k: v for k, v in sd.items()}})
    assert list(out) == list(sd)


def test_prefix_only_on_some_keys_is_kept() -> None:
    sd = {"net.a": torch.zeros(1), "head.b": torch.zeros(1)}
    assert list(strip_prefixes(sd)) == ["net.a", "head.b"]


def test_params_ema_preferred_over_params_unless_asked() -> None:
    a, b = _state(seed=1), _state(seed=2)
    both = {"params": a, "params_ema": b}
    notes: list[str] = []
    assert torch.equal(unwrap_state_dict(both, source="x.pth", log=notes.append)["conv.weight"], b["conv.weight"])
    assert torch.equal(unwrap_state_dict(both, key="params", log=notes.append)["conv.weight"], a["conv.weight"])
    assert notes == [
        "x.pth: holds both 'params' and 'params_ema'; using 'params_ema' (--param-key params for the other)",
        "checkpoint: holds both 'params' and 'params_ema'; using 'params' (--param-key params_ema for the other)",
    ]
    unwrap_state_dict({"params": a}, log=notes.append)
    assert len(notes) == 2  # nothing to choose: nothing said
    with pytest.raises(CheckpointError, match="no key 'ema'.*params, params_ema"):
        unwrap_state_dict(both, key="ema", source="x.pth")


def test_unwrap_rejects_non_weights() -> None:
    with pytest.raises(CheckpointError, match="x.pth.*not tensors: epoch"):
        unwrap_state_dict({"epoch": 3, "lr": 0.1}, source="x.pth")
    with pytest.raises(CheckpointError, match="no weights"):
        unwrap_state_dict({}, source="x.pth")
    with pytest.raises(CheckpointError, match="x.pth: no weights.*list"):
        unwrap_state_dict({"model": [1, 2]}, key="model", source="x.pth")


# -- loading -----------------------------------------------------------------------------------
def test_load_basicsr_and_lightning_files(tmp_path: Path) -> None:
    sd = _state(seed=3)
    basicsr = tmp_path / "restormer.pth"
    torch.save({"params": sd}, basicsr)
    lightning = tmp_path / "model.ckpt"
    torch.save({"epoch": 1, "state_dict": {"net." + k: v for k, v in sd.items()}}, lightning)
    for path in (basicsr, lightning):
        model = Net()
        result = load_weights(model, path)
        assert result.missing == [] and result.unexpected == []
        assert torch.equal(model.conv.weight, sd["conv.weight"])


def test_load_into_model_whose_names_start_with_net(tmp_path: Path) -> None:
    class Outer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = Net()

    src = Outer()
    path = tmp_path / "outer.pth"
    torch.save({"module." + k: v for k, v in src.state_dict().items()}, path)  # DDP save
    dst = Outer()
    load_weights(dst, path)
    assert torch.equal(dst.net.conv.weight, src.net.conv.weight)


def test_shape_mismatch_message(tmp_path: Path) -> None:
    path = tmp_path / "wide.pth"
    torch.save({"params": _state(width=8)}, path)
    with pytest.raises(
        CheckpointError, match=r"wide\.pth.*shape.*conv\.weight: checkpoint \(8, 3, 3, 3\) vs model \(4, 3, 3, 3\)"
    ):
        load_weights(Net(width=4), path)
    with pytest.raises(CheckpointError, match="shape"):
        load_weights(Net(width=4), path, strict=False)  # shapes are never ignored


def test_missing_and_unexpected_keys(tmp_path: Path) -> None:
    sd = _state()
    sd.pop("head.weight")
    sd["extra.weight"] = torch.zeros(1)
    for i in range(12):
        sd[f"more.{i}"] = torch.zeros(1)
    path = tmp_path / "partial.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as err:
        load_weights(Net(), path)
    msg = str(err.value)
    assert "partial.pth" in msg and "1 key(s) of Net missing from the file (e.g. head.weight)" in msg
    assert "13 unexpected key(s) in the file (e.g. extra.weight, more.0)" in msg and "more.1" not in msg
    model = Net()
    result = load_weights(model, path, strict=False)
    assert result.missing == ["head.weight"] and len(result.unexpected) == 13
    assert torch.equal(model.conv.weight, sd["conv.weight"])


def test_load_through_ddp_like_and_compiled_wrappers(tmp_path: Path) -> None:
    sd = _state(seed=5)
    path = tmp_path / "w.pth"
    torch.save(sd, path)
    inner = Net()
    wrapper = nn.Module()
    wrapper._orig_mod = inner  # what torch.compile's OptimizedModule exposes
    load_weights(wrapper, path)
    assert torch.equal(inner.head.bias, sd["head.bias"])


# -- saving ------------------------------------------------------------------------------------
def test_safetensors_round_trip_with_metadata(tmp_path: Path) -> None:
    model = Net()
    config = {"type": "Net", "width": 4}
    path = save_weights(model, tmp_path / "sub" / "model.safetensors", {"arch": "Net", "config": config})
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]  # no temp file left
    state, meta = read_checkpoint(path)
    assert meta["arch"] == "Net" and json.loads(meta["config"]) == config
    assert set(state) == set(model.state_dict())
    other = Net(width=4)
    result = load_weights(other, path)
    assert result.metadata["arch"] == "Net"
    for k, v in model.state_dict().items():
        assert torch.equal(other.state_dict()[k], v)


def test_save_handles_shared_tensors_and_rejects_bad_input(tmp_path: Path) -> None:
    w = torch.rand(4, 4)
    save_weights({"a": w, "b": w, "c": w[:2]}, tmp_path / "tied.safetensors")
    state, _ = read_checkpoint(tmp_path / "tied.safetensors")
    assert torch.equal(state["a"], state["b"]) and state["c"].shape == (2, 4)
    with pytest.raises(CheckpointError, match="safetensors"):
        save_weights(Net(), tmp_path / "model.pth")
    with pytest.raises(CheckpointError, match="'n' is a int"):
        save_weights({"n": 3}, tmp_path / "bad.safetensors")


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_weights({"a": torch.ones(2)}, tmp_path / "w.safetensors")
    before = path.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(CheckpointError, match="disk full.*intact"):
        save_weights({"a": torch.zeros(2)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # temp file removed
