"""oneDNN's fused CPU inference kernels, for archs' inference paths (Restormer, PromptIR, IPT).

The ops are the ones inductor emits for CPU inference (``torch.ops.mkldnn._linear_pointwise``,
``_convolution_pointwise``): oneDNN's matmul and convolutions with an element-wise or binary
operation applied before the result is written (a "post-op"), so a ReLU, a GELU or a residual
addition costs no extra pass over memory. On this project's CPU oneDNN's matmul also ran the tall,
narrow products of these models 5-35 % faster than MKL's ``addmm`` (``benchmarks/RESULTS.md``).

They take no autograd, no autocast and no tracing: archs call :func:`fusable` and keep their plain
formulation (the one training uses, tested to give the same output) for every other case. Set
:data:`ENABLED` to ``False`` to run the plain formulation everywhere (benchmarks compare both).
"""

from __future__ import annotations

import platform

import torch
import torch.nn.functional as F

__all__ = ["AVAILABLE", "ENABLED", "fusable", "linear", "linear_add"]

# The fused ops exist in torch's x86 builds with oneDNN; elsewhere the plain path runs.
AVAILABLE: bool = (
    platform.machine().lower() in ("x86_64", "amd64")
    and torch.backends.mkldnn.is_available()
    and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    and hasattr(torch.ops.mkldnn, "_linear_pointwise")
)
ENABLED: bool = True


def fusable(x: torch.Tensor) -> bool:
    """Whether the fused kernels may run on ``x``: a float32 CPU tensor, autograd off, no autocast,
    not scripting, compiling or exporting (those see the plain formulation)."""
    return (
        AVAILABLE and ENABLED and x.device.type == "cpu" and x.dtype == torch.float32
        and not torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu")
        and not torch.jit.is_scripting() and not torch.compiler.is_compiling() and not torch.onnx.is_in_onnx_export()
    )


def linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str = "none"
) -> torch.Tensor:
    """``act(F.linear(x, weight, bias))`` for ``activation`` ``"none"``, ``"relu"`` or ``"gelu"`` (erf):
    oneDNN's matmul with the activation as a post-op when :func:`fusable`, else the plain ops."""
    if fusable(x):
        algorithm = "none" if activation == "gelu" else ""  # GELU's exact (erf) form, as F.gelu
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, activation, [], algorithm)
    y = F.linear(x, weight, bias)
    if activation == "relu":
        return F.relu(y)
    if activation == "gelu":
        return F.gelu(y)
    if activation != "none":
        raise ValueError(f"linear: activation must be 'none', 'relu' or 'gelu', got {activation!r}")
    return y


def linear_add(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``residual + F.linear(x, weight, bias)``, the addition inside oneDNN's matmul when :func:`fusable`
    (``residual`` must have the output's shape)."""
    if fusable(x) and residual.shape[:-1] == x.shape[:-1] and residual.dtype == x.dtype:
        return torch.ops.mkldnn._linear_pointwise.binary(x, residual, weight, bias, "add")
    return residual + F.linear(x, weight, bias)
