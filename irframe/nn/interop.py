"""Our models in chaiNNer and ComfyUI: what spandrel opens, and a plain export for it.

chaiNNer and ComfyUI load image models through spandrel (``spandrel.ModelLoader``), which recognises
an architecture from the names and shapes of a state dict, as irframe's detectors do. Our archs keep
the official parameter names, so spandrel reads most of our files as they are: it ignores the
``arch``/``config`` metadata of our safetensors. What it cannot read from the shapes it assumes
(the released models' values), so a model trained with another such setting would open with the
wrong one; :func:`spandrel_problems` names those cases for a build config before anyone finds out
from a wrong picture.

:func:`export_weights` (``irframe export``) writes a plain state dict (``.pth`` or ``.safetensors``,
no metadata) with the names released files use, which is what spandrel and other frameworks read.
For RCAN it renames BasicSR's layout (ours) into the original RCAN layout spandrel knows, folding
``img_range``, ``rgb_mean`` and ``res_scale`` into the weights (exact); for the other archs the
weights are written unchanged.

Checked by ``tests/interop`` (spandrel 0.4.2, spandrel-extra-arches 0.2.0): each arch of
:data:`SPANDREL_ARCHS` opens in ``spandrel.ModelLoader`` and gives our output (spandrel clamps to
[0, 1]; we do not), and the same plain files load back with :func:`irframe.load_model`.
"""

from __future__ import annotations

import inspect
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from irframe.errors import CheckpointError, OptionsError
from irframe.nn.weights import TORCH_SUFFIXES, save_weights, unwrap_model

__all__ = [
    "EXPORT_SUFFIXES",
    "NOT_IN_SPANDREL",
    "SPANDREL_ARCHS",
    "ExportReport",
    "export_weights",
    "compare_with_spandrel",
    "full_config",
    "open_in_spandrel",
    "spandrel_notes",
    "spandrel_problems",
    "spandrel_state_dict",
]

SPANDREL_ARCHS: Mapping[str, str] = {
    "SwinIR": "SwinIR",
    "HAT": "HAT",
    "NAFNet": "NAFNet",
    "NAFNetLocal": "NAFNet",
    "RRDBNet": "ESRGAN",
    "SRVGGNetCompact": "Compact",
    "RCAN": "RCAN",
    "IPT": "IPT",
    "Restormer": "Restormer",
}
"""irframe arch -> the spandrel architecture id that opens it (Restormer: spandrel-extra-arches)."""

NOT_IN_SPANDREL: Mapping[str, str] = {
    "EDSR": "spandrel has no EDSR",
    "MSRResNet": "spandrel has no MSRResNet (SRResNet)",
    "PromptIR": "spandrel has no PromptIR (its extra Restormer refuses PromptIR's prompt tensors)",
    "Baseline": "spandrel has NAFNet but not its Baseline",
    "BaselineLocal": "spandrel has NAFNet but not its Baseline",
}
"""Our archs spandrel cannot open, with the reason; ONNX (``tools/export_onnx.py``) is their route."""

EXPORT_SUFFIXES = (".pth", ".safetensors")


def full_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A build config with the arch's defaults filled in for the arguments it does not set."""
    from irframe.registry import ARCHS

    arch = str(config.get("type"))
    try:
        params = inspect.signature(ARCHS.get(arch)).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    defaults = {n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty}
    return {**defaults, **dict(config)}


def _differs(value: Any, expected: Any) -> bool:
    try:
        return bool(value != expected and float(value) != float(expected))
    except (TypeError, ValueError):
        return bool(value != expected)


def spandrel_problems(config: Mapping[str, Any]) -> list[str]:
    """Why spandrel would not open a model of this build config as we run it (``[]``: it would).

    Each line names a setting spandrel cannot read from the weights and assumes otherwise, or the
    arch it lacks. Archs of other plugins, unknown here, get one line saying so.
    """
    cfg = full_config(config)
    arch = str(cfg.get("type"))
    if arch in NOT_IN_SPANDREL:
        return [f"{arch}: {NOT_IN_SPANDREL[arch]}; use ONNX (tools/export_onnx.py) instead"]
    if arch not in SPANDREL_ARCHS:
        return [f"{arch}: not an arch spandrel is known to open (known: {', '.join(SPANDREL_ARCHS)})"]
    problems: list[str] = []

    def assumes(key: str, expected: Any, why: str = "") -> None:
        if key in cfg and _differs(cfg[key], expected):
            problems.append(f"{arch} {key}={cfg[key]!r}: spandrel assumes {expected!r}{why}")

    if arch == "SwinIR":
        window = int(cfg.get("window_size", 7))
        assumes("img_range", 255.0 if window == 7 else 1.0, " (255 only for window_size 7, its JPEG models)")
        fixed: tuple[tuple[str, Any], ...] = (
            ("ape", False), ("qk_scale", None), ("qkv_bias", True), ("patch_norm", True), ("patch_size", 1),
        )
        for key, value in fixed:
            assumes(key, value)
    elif arch == "HAT":
        fixed = (("img_range", 1.0), ("conv_scale", 0.01), ("qk_scale", None), ("ape", False), ("qkv_bias", True),
                 ("patch_norm", True))
        for key, value in fixed:
            assumes(key, value)
        if cfg.get("resi_connection") not in ("1conv", "identity"):
            problems.append(f"HAT resi_connection={cfg.get('resi_connection')!r}: spandrel reads 1conv or identity")
    elif arch == "RRDBNet":
        assumes("num_grow_ch", 32, " (its ESRGAN builds 32 growth channels whatever the file holds)")
    elif arch == "SRVGGNetCompact":
        assumes("act_type", "prelu", " (it recognises the compact net by its PReLU weights)")
    elif arch == "IPT":
        assumes("num_heads", 12, " (not stored in the weights)")
        assumes("n_colors", 3)
        assumes("pos_every", False)
        tasks = cfg.get("tasks") or []
        scales = list(cfg.get("scale") or [])
        if len(scales) > 1 or len(tasks) > 1:
            problems.append(f"IPT with several tasks ({', '.join(map(str, tasks or scales))}): spandrel opens "
                            "single-task IPT files only")
    elif arch == "RCAN" and (int(cfg.get("num_in_ch", 3)) != 3 or int(cfg.get("num_out_ch", 3)) != 3):
        problems.append("RCAN: spandrel's RCAN takes RGB only (num_in_ch = num_out_ch = 3)")
    return problems


def spandrel_notes(config: Mapping[str, Any]) -> list[str]:
    """What a user should know beyond :func:`spandrel_problems` (the model opens, but ...)."""
    arch = str(config.get("type"))
    notes = {
        "NAFNetLocal": "NAFNetLocal opens as plain NAFNet: spandrel does not apply TLC (test-time local "
                       "statistics), so images larger than the training size come out slightly different",
        "Restormer": "Restormer is in spandrel-extra-arches: the host registers it (ComfyUI does when the "
                     "package is installed; in Python: spandrel_extra_arches.install())",
        "RCAN": "RCAN is written in the original RCAN layout (head/body/tail, sub_mean/add_mean) that spandrel "
                "reads; irframe.load_model reads BasicSR's layout only, so keep the irframe file too",
    }
    return [notes[arch]] if arch in notes else []


# -- RCAN: BasicSR's names (ours) -> the original RCAN's names (spandrel's) --------------------------
_RCAN_RENAMES = (
    (re.compile(r"^conv_first\.(weight|bias)$"), r"head.0.\1"),
    (re.compile(r"^body\.(\d+)\.residual_group\.(\d+)\.rcab\.0\.(weight|bias)$"), r"body.\1.body.\2.body.0.\3"),
    (re.compile(r"^body\.(\d+)\.residual_group\.(\d+)\.rcab\.2\.(weight|bias)$"), r"body.\1.body.\2.body.2.\3"),
    (re.compile(r"^body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.1\.(weight|bias)$"),
     r"body.\1.body.\2.body.3.conv_du.0.\3"),
    (re.compile(r"^body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.3\.(weight|bias)$"),
     r"body.\1.body.\2.body.3.conv_du.2.\3"),
    (re.compile(r"^upsample\.(\d+)\.(weight|bias)$"), r"tail.0.\1.\2"),
    (re.compile(r"^conv_last\.(weight|bias)$"), r"tail.1.\1"),
)


def _rcan_original(model: nn.Module, config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Our (BasicSR) RCAN as the original RCAN's state dict, with spandrel's fixed settings folded in.

    spandrel computes ``x * 255 -> sub_mean -> ... -> add_mean -> / 255`` with ``res_scale`` 1; ours
    ``(x - mean) * img_range -> ... -> / img_range + mean`` with any ``res_scale``. The 1x1 mean-shift
    convolutions carry the mean and the range ratio, and each block's ``res_scale`` goes into its
    second convolution (the channel attention's first convolution takes the inverse, so the attention
    sees what it saw before): the same function, exactly, up to float rounding.
    """
    cfg = full_config(config)
    img_range = float(cfg.get("img_range", 255.0))
    res_scale = float(cfg.get("res_scale", 1.0))
    mean = getattr(model, "mean", None)
    if not isinstance(mean, torch.Tensor):
        raise CheckpointError("RCAN: the model has no mean buffer; cannot write the original layout")
    mean = mean.detach().float().flatten().expand(3).clone()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    groups = sorted({int(m.group(1)) for k in state if (m := re.match(r"^body\.(\d+)\.conv\.weight$", k))})
    out: dict[str, torch.Tensor] = {}
    eye = torch.eye(3).view(3, 3, 1, 1)
    out["sub_mean.weight"] = eye * (img_range / 255.0)  # x*255 -> x*img_range
    out["sub_mean.bias"] = -img_range * mean
    out["add_mean.weight"] = eye * (255.0 / img_range)  # y -> y*255/img_range (+ 255*mean)
    out["add_mean.bias"] = 255.0 * mean
    blocks: dict[int, int] = {}
    for key, value in state.items():
        if (m := re.match(r"^body\.(\d+)\.residual_group\.(\d+)\.", key)) is not None:
            g, b = int(m.group(1)), int(m.group(2))
            blocks[g] = max(blocks.get(g, 0), b + 1)
            if res_scale != 1.0 and ".rcab.2." in key:
                value = value * res_scale
            elif res_scale != 1.0 and key.endswith(".rcab.3.attention.1.weight"):
                value = value / res_scale
        for pattern, repl in _RCAN_RENAMES:
            if pattern.match(key):
                out[pattern.sub(repl, key)] = value
                break
        else:
            if (m := re.match(r"^body\.(\d+)\.conv\.(weight|bias)$", key)) is not None:
                continue  # placed below, after the group's blocks
            if (m := re.match(r"^conv_after_body\.(weight|bias)$", key)) is not None:
                continue
            raise CheckpointError(f"RCAN: tensor {key!r} has no place in the original RCAN layout")
    for g in groups:
        for part in ("weight", "bias"):
            out[f"body.{g}.body.{blocks.get(g, 0)}.{part}"] = state[f"body.{g}.conv.{part}"]
    for part in ("weight", "bias"):
        out[f"body.{len(groups)}.{part}"] = state[f"conv_after_body.{part}"]
    return out


def spandrel_state_dict(model: nn.Module, config: Mapping[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """The state dict spandrel reads for ``model``: RCAN in the original layout, others as they are.

    Args:
        model: an irframe arch (wrappers looked through).
        config: its build config (default ``model.irframe_config``, set by :func:`irframe.load_model`).
    """
    inner = unwrap_model(model)
    cfg = dict(config if config is not None else getattr(model, "irframe_config", None) or {})
    if not cfg:
        cfg = {"type": type(inner).__name__}
    if cfg.get("type") == "RCAN":
        return _rcan_original(inner, cfg)
    return {k: v.detach().clone() for k, v in inner.state_dict().items()}


def open_in_spandrel(path: str | os.PathLike[str]) -> Any:
    """``spandrel.ModelLoader().load_from_file(path)`` with spandrel-extra-arches registered when installed
    (as ComfyUI does), on the CPU.

    Raises:
        OptionsError: spandrel is not installed (the message names the ``[interop]`` extra).
    """
    try:
        import spandrel
    except ImportError:
        raise OptionsError(
            'spandrel is not installed: pip install "irframe[interop]" (spandrel, spandrel-extra-arches)'
        ) from None
    try:
        from spandrel_extra_arches import EXTRA_REGISTRY
    except ImportError:
        pass
    else:
        spandrel.MAIN_REGISTRY.add(*EXTRA_REGISTRY, ignore_duplicates=True)
    return spandrel.ModelLoader(device="cpu").load_from_file(str(path))


def compare_with_spandrel(
    path: str | os.PathLike[str], model: nn.Module, *, seed: int = 0, side: int | None = None
) -> float:
    """The largest difference between spandrel's output for file ``path`` and ``model``'s own output
    (:func:`~irframe.nn.inference.restore`, clamped to [0, 1] as spandrel clamps) on a random input.

    The input is square, ``side`` pixels (default: 48 rounded up to the model's size multiple, or its
    fixed size), so neither side pads: where an image needs padding, spandrel pads as each official
    code does (NAFNet with zeros) and irframe reflects, and outputs differ near the padded border (for
    NAFNet everywhere, through its global pooling).
    """
    from irframe.nn.inference import restore
    from irframe.nn.spec import get_spec

    spec = get_spec(model)
    if side is None:
        side = spec.fixed_size or spec.size_multiple * -(-48 // spec.size_multiple)
    descriptor = open_in_spandrel(path)
    x = torch.rand(1, spec.in_channels, side, side, generator=torch.Generator().manual_seed(seed))
    ours = restore(model, x).clamp(0, 1)
    with torch.inference_mode():
        theirs = descriptor(x.clone())
    if theirs.shape != ours.shape:
        raise CheckpointError(
            f"{path}: spandrel ({descriptor.architecture.id}) gives shape {tuple(theirs.shape)}, "
            f"irframe {tuple(ours.shape)}"
        )
    return float((theirs - ours).abs().max())


@dataclass
class ExportReport:
    """What :func:`export_weights` wrote and what spandrel will make of it."""

    path: Path
    arch: str
    tensors: int
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _save_torch(state: Mapping[str, torch.Tensor], dest: Path) -> None:
    """``torch.save`` of a plain ``{name: tensor}`` dict, atomically (temporary file + rename)."""
    from irframe.data.io import give_default_permissions

    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        torch.save({k: v.contiguous() for k, v in state.items()}, tmp)
        give_default_permissions(tmp)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"{dest}: not written ({exc.strerror or exc})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def export_weights(
    checkpoint: str | os.PathLike[str] | nn.Module,
    out: str | os.PathLike[str],
    *,
    key: str = "auto",
    force: bool = False,
    allow_problems: bool = True,
) -> ExportReport:
    """Write ``checkpoint`` as a plain state dict with released-file names (``.pth`` or ``.safetensors``).

    Args:
        checkpoint: a weights file, checkpoint folder or ``zoo:NAME`` (loaded with
            :func:`irframe.load_model`), or a model with ``irframe_config``.
        out: the file to write; its suffix chooses the format (``.pth``: ``torch.save`` of a dict of
            tensors, readable with ``weights_only=True``; ``.safetensors``: without metadata).
        key: wrapper key of a BasicSR-style file (see :func:`irframe.load_model`).
        force: replace an existing ``out``.
        allow_problems: write even when :func:`spandrel_problems` finds some (they are reported);
            ``False`` refuses.

    Raises:
        OptionsError: a suffix other than ``.pth``/``.safetensors``, an existing ``out`` without
            ``force``, or (``allow_problems=False``) a model spandrel would not open as we run it.
        CheckpointError: the checkpoint cannot be loaded, or the file cannot be written.
    """
    dest = Path(out)
    suffix = dest.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        hint = " (.pt/.ckpt/.bin: write .pth, the suffix chaiNNer and ComfyUI list)" if suffix in TORCH_SUFFIXES else ""
        raise OptionsError(f"{dest}: the export format comes from the suffix: .pth or .safetensors{hint}")
    if dest.is_dir():
        raise OptionsError(f"{dest}: is a folder; name the file to write")
    if dest.exists() and not force:
        raise OptionsError(f"{dest}: already exists; pass --force to replace it")
    if isinstance(checkpoint, nn.Module):
        model = checkpoint
    else:
        from irframe.nn.autoload import load_model

        model = load_model(checkpoint, key=key)
    config = dict(getattr(model, "irframe_config", None) or {"type": type(unwrap_model(model)).__name__})
    problems = spandrel_problems(config)
    if problems and not allow_problems:
        raise OptionsError(f"{dest}: spandrel would not open this model as irframe runs it: " + "; ".join(problems))
    state = spandrel_state_dict(model, config)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".pth":
        _save_torch(state, dest)
    else:
        save_weights(state, dest, metadata=None)
    return ExportReport(dest, str(config.get("type")), len(state), problems, spandrel_notes(config))
