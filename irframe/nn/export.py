"""ONNX export of a restoration model, and a check of the exported graph against torch.

The exported graph keeps the engine's contract: one input ``"input"`` ``[N, C, H, W]`` float32 in
[0,1] and one output ``"output"`` ``[N, C_out, H*scale, W*scale]`` in [0,1] (never clamped). An arch
that computes in another range (IPT in [0,255]) converts inside its own ``forward``, so the
conversion is part of the graph.

Shapes follow the model's :class:`~irframe.nn.spec.ModelSpec`:

- models without ``spec.fixed_size`` (Restormer, PromptIR, NAFNet, SwinIR, HAT, the SR classics) get
  dynamic height and width, which must be multiples of ``spec.size_multiple`` (pad first, as
  :func:`irframe.nn.inference.restore` does). A model traces with them when its ``forward`` neither
  branches on nor converts the symbolic sizes (no ``int(h)``, no ``if h == ...``): SwinIR and HAT
  compute their shifted-window mask from the sizes with tensor ops, so it is part of the graph;
- fixed-size models (IPT) are exported at ``spec.fixed_size`` x ``spec.fixed_size``; the caller
  tiles, e.g. ``tiled_forward(OnnxModel(path), x, tile, overlap, spec=OnnxModel(path).spec)``.

The batch axis is dynamic when the model allows it (IPT's per-sample task dispatch fixes it, so its
graph takes one tile at a time). Facts the caller needs (scale, size multiple, fixed size, tile
overlap, value range, arch, task) are stored in the ONNX ``metadata_props`` and read back by
:class:`OnnxModel`.

The exporter is ``torch.export`` + ``torch.onnx.export(dynamo=True)`` (the TorchScript exporter is
deprecated). ``onnx``, ``onnxscript`` and ``onnxruntime`` are the optional ``[export]`` extra; they
are imported only when used.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from irframe.errors import IrframeError
from irframe.nn.modes import eval_mode
from irframe.nn.spec import ModelSpec, get_spec, resolve_task

__all__ = [
    "DEFAULT_OPSET",
    "DEFAULT_ATOL",
    "ExportError",
    "ExportDependencyError",
    "ExportResult",
    "OnnxModel",
    "export_onnx",
    "check_onnx",
    "default_check_inputs",
]

# The dynamo exporter's native opset; older opsets go through ONNX's version converter.
DEFAULT_OPSET = 18
# Max |onnxruntime - torch| accepted by the post-export check, in [0,1] units (1/40 of an 8-bit level).
DEFAULT_ATOL = 1e-4
INPUT_NAME = "input"
OUTPUT_NAME = "output"
# irframe is installed from a checkout (editable), not from an index: the extra comes the same way.
_INSTALL_HINT = 'pip install -e ".[export]" (in the irframe checkout)'
# Protobuf files cannot exceed 2 GiB: bigger weights go to an external data file.
_MAX_INLINE_BYTES = 1_800_000_000


class ExportError(IrframeError):
    """The model could not be exported, or the exported graph does not match torch."""


class ExportDependencyError(ExportError, ImportError):
    """An optional export dependency (onnx, onnxscript, onnxruntime) is not installed."""


def _require(module: str) -> Any:
    """Import an optional dependency, or raise :class:`ExportDependencyError` saying how to get it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ExportDependencyError(
            f"ONNX export needs the optional package {module!r}, which is not installed ({exc}); "
            f"install the extra with: {_INSTALL_HINT}"
        ) from None


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_onnx` wrote.

    Attributes:
        path: the ``.onnx`` file.
        opset: ONNX opset of the graph.
        input_shape: the graph's input shape; a string names a dynamic axis (``"height"``).
        dynamic_batch: whether the batch axis is dynamic (otherwise the graph takes one image).
        metadata: the ``metadata_props`` stored in the file.
    """

    path: Path
    opset: int
    input_shape: tuple[int | str, ...]
    dynamic_batch: bool
    metadata: dict[str, str]

    def describe(self) -> str:
        """One line: file, input shape and opset."""
        shape = ", ".join(str(d) for d in self.input_shape)
        return f"{self.path}: input [{shape}], opset {self.opset}"


class _Forward(nn.Module):
    """``model(x)`` or ``model(x, task=task)``: the single-input module that gets exported."""

    def __init__(self, model: nn.Module, task: str | int | None) -> None:
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x) if self.task is None else self.model(x, task=self.task)
        if not isinstance(y, torch.Tensor):
            raise ExportError(f"the model returned {type(y).__name__}; export needs a single output tensor")
        return y


def _arch_name(model: nn.Module) -> str:
    config = getattr(model, "irframe_config", None)
    if isinstance(config, dict) and isinstance(config.get("type"), str):
        return config["type"]
    return type(model).__name__


def _sample_size(spec: ModelSpec) -> tuple[int, int]:
    """A small, non-square export size that satisfies the spec (tracing only needs one legal size)."""
    if spec.fixed_size is not None:
        return spec.fixed_size, spec.fixed_size
    m = spec.size_multiple
    return m * math.ceil(32 / m), m * math.ceil(48 / m)


def _check_task(spec: ModelSpec, task: str | int | None, arch: str) -> None:
    """One graph per task: a multi-task model needs ``task``, a blind model must not get one."""
    if task is None:
        if len(spec.tasks) > 1:
            raise ExportError(
                f"{arch} has several tasks ({', '.join(spec.tasks)}): pass task=... (one ONNX graph per task)"
            )
        return
    if not spec.tasks:
        raise ExportError(f"{arch} takes no task (spec.tasks is empty), got task={task!r}")
    if isinstance(task, str) and task not in spec.tasks:
        raise ExportError(f"{arch}: unknown task {task!r}; the model's tasks are {', '.join(spec.tasks)}")


def _torch_export(
    wrapper: nn.Module, spec: ModelSpec, size: tuple[int, int], arch: str, dynamic_batch: bool, device: torch.device
) -> tuple[torch.export.ExportedProgram, torch.Tensor, bool]:
    """``torch.export`` the wrapper; returns ``(program, sample input, dynamic batch?)``.

    Height and width are declared dynamic as ``size_multiple * k`` (so the model's own divisibility
    checks hold symbolically); a model that specialises them fails with an :class:`ExportError`.
    The batch is tried dynamic first (if ``dynamic_batch``); if the model fixes it, the graph is
    exported for batch 1.
    """
    from torch.export import Dim

    gen = torch.Generator().manual_seed(0)
    spatial: dict[int, Any] = {}
    if spec.fixed_size is None:
        m = spec.size_multiple
        h_dim, w_dim = Dim("height_blocks", min=1), Dim("width_blocks", min=1)
        spatial = {2: m * h_dim, 3: m * w_dim} if m > 1 else {2: Dim("height", min=1), 3: Dim("width", min=1)}
    errors: list[str] = []
    for batch in (2, 1) if dynamic_batch else (1,):  # batch 1 is static (torch.export's 0/1 specialisation)
        sample = torch.rand(batch, spec.in_channels, *size, generator=gen).to(device)
        dims = {**({0: Dim("batch", min=1)} if batch > 1 else {}), **spatial}
        try:
            program = torch.export.export(wrapper, (sample,), dynamic_shapes={"x": dims or None}, strict=False)
        except Exception as exc:  # torch raises many error types (UserError, GuardOnDataDependent, ...)
            first = " ".join(str(exc).strip().splitlines()[:2])
            errors.append(f"batch {batch}: {type(exc).__name__}: {first}")
            continue
        return program, sample, batch > 1
    raise ExportError(
        f"{arch}: torch.export could not trace the model at input {spec.in_channels}x{size[0]}x{size[1]}"
        + (f" with dynamic height/width (multiples of {spec.size_multiple})" if spatial else "")
        + ": " + "; ".join(errors)
    )


def _metadata(model: nn.Module, spec: ModelSpec, scale: int, task: str | int | None, arch: str) -> dict[str, str]:
    config = getattr(model, "irframe_config", None) or getattr(model, "config", None)
    meta = {
        "irframe.arch": arch,
        "irframe.in_channels": str(spec.in_channels),
        "irframe.out_channels": str(spec.out_channels),
        "irframe.scale": str(scale),
        "irframe.size_multiple": str(spec.size_multiple),
        "irframe.fixed_size": "" if spec.fixed_size is None else str(spec.fixed_size),
        "irframe.tile_overlap": str(spec.tile_overlap),
        # The graph's own range: inputs and outputs in [0,1] (value_range is converted inside).
        "irframe.io_range": "1",
        "irframe.model_value_range": repr(float(spec.value_range)),
        "irframe.task": json.dumps(task),  # null, a name or an index
    }
    if isinstance(config, dict):
        with contextlib.suppress(TypeError):  # a config holding non-JSON values is simply not recorded
            meta["irframe.config"] = json.dumps(config, sort_keys=True)
    return meta


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    task: str | int | None = None,
    sample_size: tuple[int, int] | None = None,
    optimize: bool = True,
    dynamic_batch: bool = True,
) -> ExportResult:
    """Export ``model`` to an ONNX file with [0,1] input/output and spec-driven shapes.

    Args:
        model: an arch exposing ``spec`` (wrappers looked through). It is exported in eval mode and
            its train/eval mode is restored afterwards; the weights are not changed.
        path: the ``.onnx`` file to write (folders are created; the file is written under a
            temporary name and renamed when complete).
        opset: ONNX opset (default :data:`DEFAULT_OPSET`).
        task: for multi-task models, the task baked into the graph (one graph per task).
        sample_size: ``(h, w)`` used for tracing (default: a small legal size; the fixed size for
            fixed-size models). Dynamic axes do not depend on it.
        optimize: run the ONNX graph optimizer (constant folding, fusions) after conversion;
            ``False`` exports faster, and onnxruntime optimizes at load time anyway.
        dynamic_batch: try a dynamic batch axis (models that fix it get batch 1 anyway);
            ``False`` exports for batch 1 only, about twice as fast.
    Returns:
        An :class:`ExportResult`. Check the file with :func:`check_onnx`.
    Raises:
        ExportDependencyError: onnx / onnxscript missing (``pip install -e ".[export]"`` in the checkout).
        ExportError: the model cannot be traced or converted (the message names the arch and step).
    """
    _require("onnx")
    _require("onnxscript")
    dest = Path(path)
    if dest.suffix.lower() != ".onnx":
        raise ExportError(f"{dest}: name the output file *.onnx")
    arch = _arch_name(model)
    try:  # the model's own name for a spelling it accepts (IPT: sr2 -> sr_x2); stored in the file
        task = resolve_task(model, task)
    except ValueError as exc:
        raise ExportError(f"{arch}: {exc}") from None
    spec = get_spec(model)
    _check_task(spec, task, arch)
    if sample_size is None:
        size = _sample_size(spec)
    else:
        size = (int(sample_size[0]), int(sample_size[1]))
        _check_input_size(size, spec, f"{arch}: sample_size")

    wrapper = _Forward(model, task).eval()
    with eval_mode(model):
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        program, sample, dynamic_batch = _torch_export(wrapper, spec, size, arch, dynamic_batch, device)
        with torch.inference_mode():
            sample_out = wrapper(sample)
        try:
            onnx_program = torch.onnx.export(
                program, (sample,), None, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                opset_version=opset, dynamo=True, optimize=optimize, verbose=False,
            )
        except Exception as exc:  # the exporter wraps converter failures in several types
            raise ExportError(
                f"{arch}: conversion to ONNX (opset {opset}) failed: {type(exc).__name__}: {exc}"
            ) from exc

    if onnx_program is None:  # only the legacy (dynamo=False) exporter returns None
        raise ExportError(f"{arch}: the ONNX exporter returned no program (opset {opset})")
    ir_model = onnx_program.model
    got_opset = ir_model.opset_imports.get("", opset)
    if got_opset != opset:  # the exporter keeps its own opset when ONNX's version converter fails
        raise ExportError(
            f"{arch}: the graph could not be converted to opset {opset} (it stays at {got_opset}); "
            f"ask for opset {DEFAULT_OPSET} or later"
        )
    scale = sample_out.shape[-1] // size[1]  # the task's scale (IPT's spec follows its current task)
    metadata = _metadata(model, spec, scale, task, arch)
    ir_model.metadata_props.update(metadata)
    _rename_axes(onnx_program)
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    _save(onnx_program, dest, external=param_bytes > _MAX_INLINE_BYTES)
    input_shape = ir_model.graph.inputs[0].shape
    if input_shape is None:
        raise ExportError(f"{arch}: the exported graph's input has no shape")
    shape = tuple(_dim(d) for d in input_shape)
    return ExportResult(dest, opset, shape, dynamic_batch, metadata)


def _dim(d: Any) -> int | str:
    return d if isinstance(d, int) else str(getattr(d, "value", d))


def _rename_axes(onnx_program: Any) -> None:
    """Readable names for the input's dynamic axes: ``batch``, ``height``, ``width``.

    The output shares the input's symbols (a scaled model's output reads ``2*height``).
    """
    labels = {0: "batch", 2: "height", 3: "width"}
    names = {}
    for axis, d in enumerate(onnx_program.model.graph.inputs[0].shape):
        label = _dim(d)
        if isinstance(label, str) and axis in labels and label != labels[axis]:
            names[label] = labels[axis]
    onnx_program.rename_axes(names)


def _save(onnx_program: Any, dest: Path, external: bool) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if external:  # the data file is named after the model file: write in place
        onnx_program.save(str(dest), external_data=True)
        return
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        onnx_program.save(str(tmp), external_data=False)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_input_size(size: tuple[int, int], spec: ModelSpec, what: str) -> None:
    h, w = size
    if spec.fixed_size is not None and (h, w) != (spec.fixed_size, spec.fixed_size):
        fixed = spec.fixed_size
        raise ExportError(f"{what}: {h}x{w}, but the model only takes {fixed}x{fixed} (spec.fixed_size)")
    if h < 1 or w < 1 or h % spec.size_multiple or w % spec.size_multiple:
        raise ExportError(f"{what}: {h}x{w} is not a multiple of spec.size_multiple={spec.size_multiple}; pad first")


# -- running and checking the exported graph -------------------------------------------------------
def _spec_from_metadata(meta: dict[str, str], source: str) -> tuple[ModelSpec, str]:
    try:
        fixed = meta.get("irframe.fixed_size", "")
        spec = ModelSpec(
            in_channels=int(meta["irframe.in_channels"]),
            out_channels=int(meta["irframe.out_channels"]),
            scale=int(meta["irframe.scale"]),
            size_multiple=int(meta["irframe.size_multiple"]),
            value_range=1.0,  # the graph's own input/output range
            fixed_size=int(fixed) if fixed else None,
            tile_overlap=int(meta["irframe.tile_overlap"]),
        )
    except (KeyError, ValueError) as exc:
        raise ExportError(f"{source}: not an irframe export (metadata_props lack or garble {exc})") from None
    try:
        task = json.loads(meta.get("irframe.task", "null"))
    except json.JSONDecodeError:
        raise ExportError(f"{source}: metadata 'irframe.task' is not JSON: {meta['irframe.task']!r}") from None
    return spec, task


class OnnxModel:
    """An exported model run by onnxruntime: ``OnnxModel(path)(x) -> y`` on CPU tensors.

    ``spec`` is rebuilt from the file's metadata (``value_range`` 1: the graph takes [0,1]), so the
    object plugs into :func:`irframe.nn.inference.tiled_forward` (``spec=onnx_model.spec``), which
    is how fixed-size graphs (IPT) are run on whole images.
    """

    def __init__(self, path: str | os.PathLike[str], providers: Sequence[str] = ("CPUExecutionProvider",)) -> None:
        ort = _require("onnxruntime")
        self.path = Path(path)
        if not self.path.is_file():
            raise ExportError(f"ONNX file not found: {self.path}")
        try:
            self.session = ort.InferenceSession(str(self.path), providers=list(providers))
        except Exception as exc:  # onnxruntime's own error types
            raise ExportError(f"{self.path}: onnxruntime cannot load it: {exc}") from exc
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        self.spec, self.task = _spec_from_metadata(meta, str(self.path))  # task: baked into the graph
        self.metadata = meta
        shape = self.session.get_inputs()[0].shape
        self.static_batch: int | None = shape[0] if isinstance(shape[0], int) else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Run the graph on ``x`` ``[N,C,H,W]`` (sizes as the spec requires); float32 CPU output."""
        if x.ndim != 4 or x.shape[1] != self.spec.in_channels:
            raise ExportError(
                f"{self.path}: expected input [N, {self.spec.in_channels}, H, W], got {tuple(x.shape)}"
            )
        _check_input_size((x.shape[-2], x.shape[-1]), self.spec, f"{self.path}: input")
        data = x.detach().to("cpu", torch.float32).contiguous()
        if self.static_batch is not None and data.shape[0] != self.static_batch:
            # a graph with a fixed batch (IPT): run the images one by one
            parts = [self._run(data[i : i + 1]) for i in range(data.shape[0])]
            return torch.cat(parts)
        return self._run(data)

    def _run(self, data: torch.Tensor) -> torch.Tensor:
        (out,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: data.numpy()})
        return torch.from_numpy(out)


def default_check_inputs(model: nn.Module, batch: int = 1, seed: int = 0) -> list[torch.Tensor]:
    """Inputs for :func:`check_onnx`: two different legal sizes (one, the fixed size, for fixed-size models).

    Two sizes that differ from the export's sample size check that height and width really are
    dynamic. Values are uniform in [0,1] from a seeded generator.
    """
    spec = get_spec(model)
    gen = torch.Generator().manual_seed(seed)
    if spec.fixed_size is not None:
        sizes = [(spec.fixed_size, spec.fixed_size)]
    else:
        m = spec.size_multiple
        sizes = [(m * math.ceil(40 / m), m * math.ceil(24 / m)), (m * math.ceil(64 / m), m * math.ceil(56 / m))]
    return [torch.rand(batch, spec.in_channels, h, w, generator=gen) for h, w in sizes]


def check_onnx(
    model: nn.Module,
    path: str | os.PathLike[str] | OnnxModel,
    inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    task: str | int | None = None,
) -> float:
    """Max ``|onnxruntime(x) - model(x)|`` over ``inputs`` (each ``[N,C,H,W]`` in [0,1]).

    Args:
        model: the torch model that was exported (run in eval mode, under ``inference_mode``, on
            its own device; its train/eval mode is restored).
        path: the ``.onnx`` file (or an :class:`OnnxModel`).
        inputs: one tensor or several (e.g. two sizes, to check the dynamic axes).
        task: the task the graph was exported for (default: the one stored in the file).
    Returns:
        The largest absolute difference, in [0,1] units.
    Raises:
        ExportError: an input of an illegal size, or outputs of different shapes.
    """
    runner = path if isinstance(path, OnnxModel) else OnnxModel(path)
    if task is None:
        task = runner.task
    batch = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
    if not batch:
        raise ExportError("check_onnx: no inputs given")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    worst = 0.0
    with eval_mode(model):
        for x in batch:
            got = runner(x)
            with torch.inference_mode():
                t = x.to(device, torch.float32)
                want = (model(t) if task is None else model(t, task=task)).float().cpu()
            if got.shape != want.shape:
                raise ExportError(
                    f"{runner.path}: onnxruntime output {tuple(got.shape)} vs torch {tuple(want.shape)} "
                    f"for input {tuple(x.shape)}"
                )
            worst = max(worst, (got - want).abs().max().item())
    return worst
