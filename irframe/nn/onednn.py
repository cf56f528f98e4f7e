"""oneDNN's fused CPU inference kernels, for archs' inference paths (Restormer, PromptIR, IPT).

The ops are the ones inductor emits for CPU inference (``torch.ops.mkldnn._linear_pointwise``,
``_convolution_pointwise``): oneDNN's matmul and convolutions with an element-wise or binary
operation applied before the result is written (a "post-op"), so a ReLU, a GELU or a residual
addition costs no extra pass over memory. On this project's CPU oneDNN's matmul also ran the tall,
narrow products of these models 5-35 % faster than MKL's ``addmm`` (``benchmarks/RESULTS.md``).

They take no autograd and no tracing: archs call :func:`fusable` and keep their plain formulation (the
one training uses, tested to give the same output) for every other case. Under CPU autocast to bfloat16
(``inference.precision: bf16``) they run in bfloat16 where autocast would run the products (the inputs
and weights cast as autocast casts them; a float32 residual stays float32). Set :data:`ENABLED` to
``False`` to run the plain formulation everywhere (benchmarks compare both).
"""

from __future__ import annotations

import platform

import torch
import torch.nn.functional as F

__all__ = ["AVAILABLE", "ENABLED", "cast", "fused_dtype", "fusable", "linear", "linear_add"]

# The fused ops exist in torch's x86 builds with oneDNN; elsewhere the plain path runs.
AVAILABLE: bool = (
    platform.machine().lower() in ("x86_64", "amd64")
    and torch.backends.mkldnn.is_available()
    and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    and hasattr(torch.ops.mkldnn, "_linear_pointwise")
)
ENABLED: bool = True


def fused_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The dtype the fused kernels run in for ``x`` (``None``: they may not run): float32 for a float32
    CPU tensor, bfloat16 under CPU autocast to bfloat16 (what autocast would run the products in);
    never with autograd, scripting, compiling or exporting (those see the plain formulation)."""
    if not (
        AVAILABLE and ENABLED and x.device.type == "cpu" and not torch.is_grad_enabled()
        and not torch.jit.is_scripting() and not torch.compiler.is_compiling() and not torch.onnx.is_in_onnx_export()
    ):
        return None
    if torch.is_autocast_enabled("cpu"):
        bf16 = torch.get_autocast_dtype("cpu") == torch.bfloat16 and x.dtype in (torch.float32, torch.bfloat16)
        return torch.bfloat16 if bf16 else None
    return torch.float32 if x.dtype == torch.float32 else None


def fusable(x: torch.Tensor) -> bool:
    """Whether the fused kernels may run on ``x`` (:func:`fused_dtype` is not ``None``)."""
    return fused_dtype(x) is not None


def cast(t: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """``t`` in ``dtype`` (``None`` stays ``None``)."""
    return None if t is None else t.to(dtype)


def linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str = "none"
) -> torch.Tensor:
    """``act(F.linear(x, weight, bias))`` for ``activation`` ``"none"``, ``"relu"`` or ``"gelu"`` (erf):
    oneDNN's matmul with the activation as a post-op when :func:`fusable`, else the plain ops."""
    dtype = fused_dtype(x)
    if dtype is not None:
        algorithm = "none" if activation == "gelu" else ""  # GELU's exact (erf) form, as F.gelu
        return torch.ops.mkldnn._linear_pointwise(
            x.to(dtype), weight.to(dtype), cast(bias, dtype), activation, [], algorithm
        )
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
    and ``residual`` is in the kernels' dtype (it must have the output's shape)."""
    dtype = fused_dtype(x)
    if dtype is not None and residual.shape[:-1] == x.shape[:-1]:
        if residual.dtype != dtype:  # autocast: a float32 residual stream stays float32, as `residual + linear`
            return residual + linear(x, weight, bias)
        w, b = weight.to(dtype), cast(bias, dtype)
        return torch.ops.mkldnn._linear_pointwise.binary(x.to(dtype), residual, w, b, "add")
    return residual + F.linear(x, weight, bias)
