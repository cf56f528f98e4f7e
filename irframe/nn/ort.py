"""ONNX Runtime as an inference backend (``inference.backend: onnxruntime``, ``--backend onnxruntime``).

:func:`onnxruntime_model` exports a loaded torch model once through :func:`irframe.nn.export.export_onnx`
and keeps the graph in a cache folder (``$IRFRAME_CACHE/onnx``, default ``~/.cache/irframe/onnx``),
named by a hash of what decides the graph: the weights (the checkpoint file's bytes, or the tensors
of a model built without one), the build config, the task, the opset, and the irframe and torch
versions. A second run with the same checkpoint loads the cached graph without exporting; a
changed checkpoint gets a new one. A cache file onnxruntime cannot load (a torn or damaged file) is
exported again, with a one-line note.

The graph is wrapped in :class:`OrtModule`, an ``nn.Module`` without parameters that carries the
torch model's own :class:`~irframe.nn.spec.ModelSpec` (for the exported task), so
:func:`irframe.nn.inference.restore` pads, tiles and self-ensembles it exactly as the torch model.
The graph is float32: bf16/fp16 autocast and ``torch.compile`` are torch features and are refused
with it (by the options schema, one line).

:func:`choose_fast` is ``tools/infer.py --fast``: ``benchmarks/bench_fast.py`` found no option that wins
for every arch on one CPU (figures in ``benchmarks/RESULTS.md``), so it times the candidates on the
loaded model and runs the fastest.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from irframe.nn.export import (
    DEFAULT_OPSET,
    ExportDependencyError,
    ExportError,
    OnnxModel,
    _require,
    export_onnx,
)
from irframe.nn.spec import ModelSpec, resolve_task, spec_for_task

__all__ = [
    "BACKENDS",
    "FastChoice",
    "OrtModule",
    "cache_dir",
    "cache_key",
    "choose_fast",
    "cpu_bf16_flags",
    "onnxruntime_model",
]

BACKENDS = ("torch", "onnxruntime")
# pyproject's optional extra holding onnx, onnxscript and onnxruntime (installed from the checkout)
EXTRA_HINT = 'pip install -e ".[export]" (in the irframe checkout)'
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """Where exported graphs are kept: ``$IRFRAME_CACHE/onnx``, else ``~/.cache/irframe/onnx``."""
    from irframe.utils import cache_root

    return cache_root() / "onnx"


def _weights_digest(model: nn.Module, checkpoint: str | os.PathLike[str] | None) -> str:
    """SHA-256 of the checkpoint file's bytes, or of the model's tensors when it has no file."""
    h = hashlib.sha256()
    if checkpoint is not None:
        with open(checkpoint, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        return h.hexdigest()
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(value.shape)).encode() + str(value.dtype).encode())
        h.update(value.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _irframe_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("irframe")
    except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
        return "unknown"


def cache_key(
    model: nn.Module,
    checkpoint: str | os.PathLike[str] | None,
    config: Mapping[str, Any],
    *,
    opset: int = DEFAULT_OPSET,
    task: str | int | None = None,
    weights_key: str = "auto",
) -> str:
    """The hex digest naming a cached graph: weights, build config, task, weights key, opset, versions."""
    facts = {
        "weights": _weights_digest(model, checkpoint),
        "weights_key": weights_key,  # which weights of a file holding both params and params_ema
        "config": json.loads(json.dumps(dict(config), sort_keys=True, default=repr)),
        "task": task,
        "opset": opset,
        "irframe": _irframe_version(),
        "torch": torch.__version__,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


class OrtModule(nn.Module):
    """An exported graph run by onnxruntime, shaped like the torch model it came from.

    ``spec`` is the torch model's spec for the exported task (``restore`` reads it for padding,
    tiling and cropping); ``forward(x, task=None)`` accepts only the graph's own task.
    """

    def __init__(
        self, runner: OnnxModel, spec: ModelSpec, task: str | int | None, arch: str,
        resolver: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__()
        self.runner = runner
        self.spec = spec
        self.task = task
        self.arch = arch
        self._resolver = resolver
        self.path = runner.path

    def _check(self, task: str | int | None) -> None:
        if task is not None and task != self.task:
            raise ValueError(
                f"the ONNX graph of {self.arch} was exported for task {self.task!r}, not {task!r} "
                "(one graph per task: tools/infer.py --task NAME, tools/test.py --set inference.task=NAME)"
            )

    def resolve_task(self, task: str | int) -> str | int:
        """The torch model's own name for ``task`` (IPT: ``sr2`` -> ``sr_x2``)."""
        return self._resolver(task) if self._resolver is not None else task

    def set_task(self, task: str | int) -> None:
        """Refuse any task but the exported one (``spec`` already is that task's)."""
        self._check(task)

    def forward(self, x: torch.Tensor, task: str | int | None = None) -> torch.Tensor:
        self._check(task)
        return self.runner(x).to(x.device)


def _providers(device: torch.device) -> list[str]:
    ort = _require("onnxruntime")
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise ExportError(
        f"--backend onnxruntime on device {device}: this onnxruntime has no provider for it "
        f"(available: {', '.join(ort.get_available_providers())}); use --device cpu"
    )


def onnxruntime_model(
    model: nn.Module,
    *,
    checkpoint: str | os.PathLike[str] | None,
    config: Mapping[str, Any],
    task: str | int | None = None,
    device: str | torch.device = "cpu",
    weights_key: str = "auto",
    opset: int = DEFAULT_OPSET,
    folder: str | os.PathLike[str] | None = None,
    log: Callable[[str], object] | None = None,
) -> OrtModule:
    """The torch ``model`` as an onnxruntime graph, exported once and cached (see the module doc).

    Args:
        model: the loaded torch model (on the CPU for the export).
        checkpoint: the weights file it was loaded from (its bytes key the cache); ``None``: the
            model's own tensors key it.
        config: the build config ``{type: Arch, ...}``.
        task: for a multi-task model, the task to bake into the graph (required there).
        device: where the graph runs (CPU; CUDA where onnxruntime has its provider).
        weights_key: which weights of a file holding several sets were loaded (``params_ema``...).
        opset: ONNX opset of the export.
        folder: the cache folder (default :func:`cache_dir`).
        log: receives the one-line notes (exported / loaded from the cache / re-exported).
    Raises:
        ExportDependencyError: onnxruntime (or onnx, onnxscript) is not installed.
        ExportError: the arch cannot be exported, or a multi-task model got no task.
    """
    try:
        _require("onnxruntime")
    except ExportDependencyError:
        raise ExportDependencyError(
            f"--backend onnxruntime needs the optional package 'onnxruntime', which is not installed; "
            f"install the [export] extra: {EXTRA_HINT}"
        ) from None
    note = log or (lambda _msg: None)
    arch = str(config.get("type") or type(model).__name__)
    try:
        task = resolve_task(model, task)
    except ValueError as exc:
        raise ExportError(f"--backend onnxruntime: {arch}: {exc}") from None
    spec = spec_for_task(model, task)
    if task is None and len(spec.tasks) > 1:
        raise ExportError(
            f"--backend onnxruntime: {arch} has several tasks ({', '.join(spec.tasks)}) and the ONNX graph "
            "holds one: tools/infer.py --task NAME, tools/test.py --set inference.task=NAME"
        )
    providers = _providers(torch.device(device))
    digest = cache_key(model, checkpoint, config, opset=opset, task=task, weights_key=weights_key)
    safe_task = "" if task is None else "-" + "".join(c if c.isalnum() or c in "._" else "_" for c in str(task))
    path = Path(folder) if folder is not None else cache_dir()
    path = path / f"{arch}{safe_task}-{digest[:20]}.onnx"
    resolver = getattr(model, "resolve_task", None)
    if path.is_file():
        try:
            runner = OnnxModel(path, providers=providers)
        except ExportDependencyError:
            raise
        except ExportError as exc:
            first = str(exc).splitlines()[0][:160]
            note(f"note: cached ONNX graph {path} is unreadable ({first}); exporting it again")
            path.unlink(missing_ok=True)
        else:
            note(f"backend: onnxruntime, graph from the cache {path}")
            return OrtModule(runner, spec, task, arch, resolver if callable(resolver) else None)
    start = time.perf_counter()
    cpu_model = model
    if any(p.device.type != "cpu" for p in model.parameters()):
        import copy

        cpu_model = copy.deepcopy(model).to("cpu")
    # batch 1 (static): half the export time; restore and OnnxModel run a batch image by image
    try:
        export_onnx(cpu_model, path, opset=opset, task=task, dynamic_batch=False)
    except ExportDependencyError:
        raise
    except ExportError as exc:  # one line: the exporter's own messages can span many
        text = " ".join(str(exc).split())
        raise ExportError(
            f"--backend onnxruntime: {arch} cannot be exported to ONNX, use --backend torch: {text[:400]}"
        ) from exc
    note(f"backend: onnxruntime, exported {arch} once to {path} ({time.perf_counter() - start:.0f} s; cached)")
    runner = OnnxModel(path, providers=providers)
    return OrtModule(runner, spec, task, arch, resolver if callable(resolver) else None)


# -- tools/infer.py --fast ----------------------------------------------------------------------
def cpu_bf16_flags() -> set[str]:
    """The CPU's bf16 matrix flags from ``/proc/cpuinfo`` (``avx512_bf16``, ``amx_bf16``); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return {f for f in line.split(":", 1)[-1].split() if f in ("avx512_bf16", "amx_bf16")}
    return set()


def onnxruntime_available() -> bool:
    """Whether the [export] extra's packages are installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx", "onnxscript"))


# bf16 autocast vs fp32 on trained zoo models (benchmarks/bench_fast.py --psnr, benchmarks/RESULTS.md)
BF16_PSNR_COST = "bf16 changes outputs: -0.003 dB PSNR on BSD68, -0.006 dB on Kodak24 (Restormer zoo models, sigma 25)"
PROBE_SIDE = 128
PROBE_ROUNDS = 3


@dataclass
class FastChoice:
    """What ``--fast`` runs: ``backend`` (torch | onnxruntime), ``precision``, the module and why."""

    backend: str
    precision: str
    model: nn.Module
    reason: str

    def line(self) -> str:
        what = self.backend if self.precision == "fp32" else f"{self.backend} {self.precision}"
        return f"--fast: {what} ({self.reason})"


def _time_candidate(name: str, run: Callable[[], object]) -> float:
    """Seconds of one call of ``run`` (candidate ``name``, e.g. ``"torch bf16"``); a seam for tests."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def choose_fast(
    model: nn.Module,
    *,
    checkpoint: str | os.PathLike[str] | None,
    config: Mapping[str, Any],
    task: str | int | None = None,
    device: str | torch.device = "cpu",
    allow_bf16: bool = False,
    weights_key: str = "auto",
    folder: str | os.PathLike[str] | None = None,
    log: Callable[[str], object] | None = None,
) -> FastChoice:
    """The fastest of torch fp32, onnxruntime and bf16 autocast for ``model`` on this machine, timed here.

    ``benchmarks/bench_fast.py`` found no fixed order (on one CPU onnxruntime took 0.86x of torch's
    time for a reduced Restormer but 1.46x for a reduced NAFNet; bf16 0.55x and 1.96x), so the rule
    is a measurement: each candidate runs :func:`~irframe.nn.inference.restore` on a
    ``PROBE_SIDE`` x ``PROBE_SIDE`` input (the fixed size for fixed-size models), one warm-up and
    the best of ``PROBE_ROUNDS``, and the fastest wins. Candidates: torch fp32 always; onnxruntime
    on the CPU when installed (exported once, cached: :func:`onnxruntime_model`); bf16 only with
    ``allow_bf16`` and where the hardware has it (CPU flags ``avx512_bf16`` / ``amx_bf16``, or a
    CUDA GPU with bf16), since it changes outputs (:data:`BF16_PSNR_COST`).
    """
    from irframe.nn.inference import restore

    device = torch.device(device)
    spec = spec_for_task(model, resolve_task(model, task))
    runs: dict[tuple[str, str], tuple[nn.Module, Callable[[], object]]] = {}
    notes: list[str] = []
    side = spec.fixed_size or spec.size_multiple * math.ceil(PROBE_SIDE / spec.size_multiple)
    x = torch.rand(1, spec.in_channels, side, side, generator=torch.Generator().manual_seed(0)).to(device)

    def runner(module: nn.Module, precision: str) -> Callable[[], object]:
        return lambda: restore(module, x, task=task, precision=precision)  # type: ignore[arg-type]

    runs[("torch", "fp32")] = (model, runner(model, "fp32"))
    if device.type == "cpu":
        if onnxruntime_available():
            try:
                graph = onnxruntime_model(
                    model, checkpoint=checkpoint, config=config, task=task, device=device, weights_key=weights_key,
                    folder=folder, log=log,
                )
            except ExportError as exc:  # an arch the exporter cannot trace: torch only
                notes.append(f"onnxruntime skipped ({str(exc)[:160]})")
            else:
                runs[("onnxruntime", "fp32")] = (graph, runner(graph, "fp32"))
        else:
            notes.append(f"onnxruntime not installed: {EXTRA_HINT}")
        flags = cpu_bf16_flags()
        bf16_hw = bool(flags)
        hw = ", ".join(sorted(flags)) if flags else "no avx512_bf16/amx_bf16 on this CPU"
    else:
        bf16_hw = device.type == "cuda" and torch.cuda.is_bf16_supported()
        hw = "bf16 GPU" if bf16_hw else "no bf16 on this GPU"
    if bf16_hw and allow_bf16:
        runs[("torch", "bf16")] = (model, runner(model, "bf16"))
    elif bf16_hw:
        notes.append(f"bf16 not tried ({hw}): it changes outputs, add --allow-bf16")
    elif allow_bf16:
        notes.append(f"bf16 not tried: {hw}")
    if len(runs) == 1:
        module = runs[("torch", "fp32")][0]
        return FastChoice("torch", "fp32", module, "; ".join(["the only candidate", *notes]))
    for _module, run in runs.values():
        run()  # warm-up (and one-time work: onnxruntime's graph optimisation)
    times = dict.fromkeys(runs, math.inf)
    for _ in range(PROBE_ROUNDS):  # interleaved rounds: a burst of other load hits every candidate alike
        for key, (_module, run) in runs.items():
            times[key] = min(times[key], _time_candidate(f"{key[0]} {key[1]}", run))
    best = min(times, key=lambda k: times[k])
    base = times[("torch", "fp32")]
    measured = ", ".join(f"{b if p == 'fp32' else b + ' ' + p} {t / base:.2f}x" for (b, p), t in times.items())
    reason = f"fastest on a {side}x{side} probe here, time vs torch fp32: {measured}"
    if best[1] == "bf16":
        notes.append(BF16_PSNR_COST)
    return FastChoice(best[0], best[1], runs[best][0], "; ".join([reason, *notes]))
