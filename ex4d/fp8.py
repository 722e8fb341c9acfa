"""Linear layers in float8 (e4m3) with proper scales: per-output-channel weight scales, per-token activation scales.

Both operands are quantized at each call: the weight as the host hands it over (already cast to the compute
dtype, LoRA merged), each row scaled so its largest magnitude lands on e4m3's largest finite value (448); the
activation likewise per token, so no activation is clamped. On GPUs with fp8 tensor cores (compute capability
8.9 and up) ``torch._scaled_mm`` multiplies them and applies both scales and the bias in its epilogue; nothing
is cached, so the weights stay as they are stored and memory does not grow. Elsewhere :func:`scaled_linear`
computes the same quantized product in float32, which is what the tests hold the GPU path to.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

E4M3 = torch.float8_e4m3fn
E4M3_MAX = float(torch.finfo(E4M3).max)  # 448
FP8_CAPABILITY = (8, 9)  # Ada and Hopper: fp8 tensor cores


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` [R, C] -> (e4m3 [R, C], float32 scale [R, 1]) with ``x ~= q * scale``; an all-zero row gets scale 1."""
    amax = x.abs().amax(dim=-1, keepdim=True).float()
    scale = torch.where(amax > 0, amax / E4M3_MAX, torch.ones_like(amax))
    q = (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(E4M3)
    return q, scale


def can_run(device: torch.device) -> bool:
    """Whether :func:`scaled_linear` runs on ``device``: an NVIDIA GPU of compute capability 8.9 or later (fp8
    tensor cores) whose PyTorch has row-wise scaled fp8 matmul for it, tried once on a 16 x 16 product (the
    kernels PyTorch ships differ by version and GPU generation)."""
    if device.type != "cuda" or torch.version.hip is not None:
        return False
    if torch.cuda.get_device_capability(device) < FP8_CAPABILITY:
        return False
    probe = torch.ones(16, 16, device=device, dtype=torch.bfloat16)
    try:
        scaled_linear(probe, probe, probe[0])
    except RuntimeError as e:  # PyTorch's "not supported" for this GPU / version: the host's Linear runs
        log.info("EX-4D fp8 Linear: no row-wise scaled fp8 matmul on %s (%s)", device, e)
        return False
    return True


@functools.cache
def _fused_quantize_rows() -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """:func:`quantize_rows` compiled into one pass over each row where Triton is present (no float32 copy of
    the activation), else as written."""
    from torch.utils._triton import has_triton

    if not has_triton():
        log.info("EX-4D fp8 Linear: no Triton, quantizing without fusion")
        return quantize_rows
    return torch.compile(quantize_rows, dynamic=True)


def scaled_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` with ``x`` and ``weight`` quantized to e4m3 (per token, per output channel),
    in ``x``'s dtype. ``x`` [..., K], ``weight`` [N, K] in the compute dtype."""
    lead, k = x.shape[:-1], x.shape[-1]
    x2 = x.reshape(-1, k)
    if x.is_cuda:
        # inside a compiled graph inductor fuses it with what precedes; alone, the cached compiled function
        quantize = quantize_rows if torch.compiler.is_compiling() else _fused_quantize_rows()
        xq, x_scale = quantize(x2)
        wq, w_scale = quantize(weight)
        # row-wise scales need a bf16 output (PyTorch's kernels); a float32 or float16 model gets it cast back
        out = torch._scaled_mm(
            xq, wq.t(), scale_a=x_scale, scale_b=w_scale.t(),
            bias=None if bias is None else bias.to(torch.bfloat16), out_dtype=torch.bfloat16,
            use_fast_accum=True,  # Hopper's fp8 accumulator without the periodic fp32 promotion: the error is stated
        ).to(x.dtype)
    else:
        xq, x_scale = quantize_rows(x2)
        wq, w_scale = quantize_rows(weight)
        out = (xq.float() * x_scale) @ (wq.float() * w_scale).t()
        if bias is not None:
            out = out + bias.float()
        out = out.to(x.dtype)
    return out.reshape(*lead, weight.shape[0])


def fits(in_features: int, out_features: int) -> bool:
    """Whether ``torch._scaled_mm`` takes a Linear of these sizes (both multiples of 16)."""
    return in_features % 16 == 0 and out_features % 16 == 0
