"""Linear layers in float8 (e4m3) with proper scales: per-output-channel weight scales, per-token activation scales.

The weight (as the host hands it over: cast to the compute dtype, LoRA merged) has each row scaled so its largest
magnitude lands on e4m3's largest finite value (448): :func:`quantize_weight`, either at each call
(:func:`scaled_linear`) or once, the caller keeping the result (:func:`quantized_linear`). A weight already
stored in e4m3 without scales (an fp8_e4m3fn file) is multiplied as it is, at scale 1 (:func:`unit_scale`): its
values are exactly those the host would cast up, so quantizing it again would only add error. The activation is
quantized likewise per token at each call, so no activation is clamped. On GPUs with fp8 tensor cores (compute
capability 8.9 and up) ``torch._scaled_mm`` multiplies them and applies both scales and the bias in its epilogue.
Elsewhere the same quantized product is computed in float32, which is what the tests hold the GPU path to.
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
# activation elements quantized at a time outside compiled code: 64 MB of e4m3 (256 MB of float32 without Triton)
CHUNK_ELEMENTS = 1 << 26


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` [R, C] -> (e4m3 [R, C], float32 scale [R, 1]) with ``x ~= q * scale``; an all-zero row gets scale 1."""
    amax = x.abs().amax(dim=-1, keepdim=True).float()
    scale = torch.where(amax > 0, amax / E4M3_MAX, torch.ones_like(amax))
    q = (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(E4M3)
    return q, scale


def can_run(device: torch.device, dtype: torch.dtype = torch.bfloat16) -> bool:
    """Whether :func:`scaled_linear` runs on ``device``: an NVIDIA GPU of compute capability 8.9 or later (fp8
    tensor cores) whose PyTorch has row-wise scaled fp8 matmul for it, tried once on a small product in ``dtype``
    (the kernels PyTorch ships differ by version and GPU generation). Give the dtype the model computes in: the
    fused quantizer the probe compiles is kept for that dtype, another would compile it again."""
    if device.type != "cuda" or torch.version.hip is not None:
        return False
    if torch.cuda.get_device_capability(device) < FP8_CAPABILITY:
        return False
    x, weight, bias = probe_inputs(device, dtype)
    try:
        scaled_linear(x, weight, bias)
    except RuntimeError as e:  # PyTorch's "not supported" for this GPU / version: the host's Linear runs
        log.info("EX-4D fp8 Linear: no row-wise scaled fp8 matmul on %s (%s)", device, e)
        return False
    return True


def probe_inputs(device: torch.device,
                 dtype: torch.dtype = torch.bfloat16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A 16 x 32 activation, a 48 x 32 weight and its bias: the smallest product :func:`can_run` tries. Its sizes
    differ: the first call of the fused quantizer (compiled for any shape) would otherwise give both dimensions one
    size symbol, and every weight that is not square would compile it again."""
    return (torch.ones(16, 32, device=device, dtype=dtype),
            torch.ones(48, 32, device=device, dtype=dtype),
            torch.ones(48, device=device, dtype=dtype))


@functools.cache
def _fused_quantize_rows() -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """:func:`quantize_rows` compiled into one pass over each row where Triton is present (no float32 copy of
    the activation), else as written."""
    from torch.utils._triton import has_triton

    if not has_triton():
        log.info("EX-4D fp8 Linear: no Triton, quantizing without fusion")
        return quantize_rows
    return torch.compile(quantize_rows, dynamic=True)


def _quantizer(x: torch.Tensor) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Inside a compiled graph inductor fuses the quantising with what precedes; alone, the cached compiled
    function where ``x`` is on a GPU."""
    return _fused_quantize_rows() if x.is_cuda and not torch.compiler.is_compiling() else quantize_rows


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A Linear's ``weight`` [N, K] -> (e4m3 [N, K], float32 scale [N, 1]), as :func:`quantized_linear` takes it."""
    return _quantizer(weight)(weight)


def unit_scale(wq: torch.Tensor) -> torch.Tensor:
    """Scale 1 for every row of an e4m3 weight [N, K] stored without scales, as :func:`quantized_linear` takes it."""
    return torch.ones(wq.shape[0], 1, dtype=torch.float32, device=wq.device)


def scaled_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` with ``x`` and ``weight`` quantized to e4m3 (per token, per output channel),
    in ``x``'s dtype. ``x`` [..., K], ``weight`` [N, K] in the compute dtype."""
    wq, w_scale = quantize_weight(weight)
    return quantized_linear(x, wq, w_scale, bias)


def quantized_linear(x: torch.Tensor, wq: torch.Tensor, w_scale: torch.Tensor,
                     bias: torch.Tensor | None) -> torch.Tensor:
    """:func:`scaled_linear` with the weight already quantized (:func:`quantize_weight`). Outside compiled code
    the tokens go through in chunks of ``CHUNK_ELEMENTS`` (each token has its own scale, so the result is the
    same): the quantized copy of a large activation, and without Triton its float32 copy, stay small."""
    lead, k = x.shape[:-1], x.shape[-1]
    x2 = x.reshape(-1, k)
    quantize = _quantizer(x)
    chunks = 1 if torch.compiler.is_compiling() else max(1, -(-x2.numel() // CHUNK_ELEMENTS))
    rows = -(-x2.shape[0] // chunks)  # chunks of equal size, the last one no larger
    if chunks == 1:
        out = _quantized_product(x2, wq, w_scale, bias, quantize)
    else:
        out = torch.empty(x2.shape[0], wq.shape[0], dtype=x.dtype, device=x.device)
        for start in range(0, x2.shape[0], rows):
            out[start : start + rows] = _quantized_product(x2[start : start + rows], wq, w_scale, bias, quantize)
    return out.reshape(*lead, wq.shape[0])


def _quantized_product(x2: torch.Tensor, wq: torch.Tensor, w_scale: torch.Tensor, bias: torch.Tensor | None,
                       quantize: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Tokens ``x2`` [R, K] times the quantized weight ``wq`` [N, K]: on the GPU ``torch._scaled_mm`` (both scales
    and the bias in its epilogue), elsewhere the same product in float32."""
    xq, x_scale = quantize(x2)
    if x2.is_cuda:
        # row-wise scales need a bf16 output (PyTorch's kernels); a float32 or float16 model gets it cast back
        return torch._scaled_mm(
            xq, wq.t(), scale_a=x_scale, scale_b=w_scale.t(),
            bias=None if bias is None else bias.to(torch.bfloat16), out_dtype=torch.bfloat16,
            use_fast_accum=True,  # Hopper's fp8 accumulator without the periodic fp32 promotion: the error is stated
        ).to(x2.dtype)
    out = (xq.float() * x_scale) @ (wq.float() * w_scale).t()
    if bias is not None:
        out = out + bias.float()
    return out.to(x2.dtype)


def fits(in_features: int, out_features: int) -> bool:
    """Whether ``torch._scaled_mm`` takes a Linear of these sizes (both multiples of 16)."""
    return in_features % 16 == 0 and out_features % 16 == 0
