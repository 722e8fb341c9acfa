"""Scaled dot-product attention through one chosen PyTorch SDPA backend, where it has a kernel.

On an H100 at EX-4D's shapes (13,312 tokens, 40 heads of 128) PyTorch's cuDNN backend runs a self-attention
call in about 11.5 ms where its flash backend takes 20.1 ms; ComfyUI 0.33 puts flash first (torch 2.11 on its own
already picks cuDNN there, as under ComfyUI 0.3.75). Both are exact
attention; they differ only by floating-point round-off. :class:`BackendAttention` runs the chosen backend
where PyTorch has a kernel of it and hands every other call to a fallback (the host's own attention).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

log = logging.getLogger(__name__)

# name -> the PyTorch backend it pins. "cudnn": the fastest exact backend on Hopper (NVIDIA, cuDNN 9);
# "flash" / "efficient": PyTorch's other fused CUDA kernels; "math": its reference implementation, everywhere.
BACKENDS: dict[str, SDPBackend] = {
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "math": SDPBackend.MATH,
}
_ORDER_SETTABLE = "set_priority" in inspect.signature(sdpa_kernel).parameters  # PyTorch 2.7 and later
_HAS_KERNEL = {
    "cudnn": torch.backends.cuda.can_use_cudnn_attention,
    "flash": torch.backends.cuda.can_use_flash_attention,
    "efficient": torch.backends.cuda.can_use_efficient_attention,
}


# Plain view ops: these run inside compiled blocks, where dynamo traces all a call does at every start of the process
# (a pattern-parsing library's parsing included).


def heads_first(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, N, heads * D] -> [B, heads, N, D]."""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def tokens_first(x: torch.Tensor) -> torch.Tensor:
    """[B, heads, N, D] -> [B, N, heads * D]."""
    return x.transpose(1, 2).flatten(-2)


def can_run(backend: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether PyTorch has a kernel of ``backend`` for these [B, heads, N, D] tensors (no mask, no dropout)."""
    if backend == "math":
        return True
    params = torch.backends.cuda.SDPAParams(q, k, v, None, 0.0, False, False)
    return q.is_cuda and _HAS_KERNEL[backend](params)


class BackendAttention:
    """Attention with ``q, k, v`` either [B, N, heads * D] or, with ``skip_reshape``, [B, heads, N, D].

    Each call runs on the chosen backend if PyTorch has a kernel of it for those tensors (asked before
    the call, so nothing is caught); otherwise ``fallback()``, the host's own attention, runs it. The
    first call on each device logs which of the two it got. Under ``torch.compile`` the check and the log
    would break the graph: there PyTorch's own dispatch picks, in the order :meth:`backend_order` sets
    around the compiled call.
    """

    def __init__(self, backend: str):
        if backend not in BACKENDS:
            raise ValueError(f"attention backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
        self.backend = backend
        self.order = [BACKENDS[backend], *(b for name, b in BACKENDS.items() if name != backend)]
        self.logged: set[torch.device] = set()

    def backend_order(self) -> AbstractContextManager[None]:
        """PyTorch's attention backends in this one's order: the chosen one first, its other exact backends after
        it. Enter it around a compiled call, outside the graph: tracing picks each attention's kernel in this
        order and the graph keeps that kernel. Entered inside the graph, the context manager would make the
        graph one AOTAutograd cannot cache, traced again at every start of the process. (PyTorch 2.7 and later;
        older ones ignore the order: their default order runs, exact attention still.)"""
        if not _ORDER_SETTABLE:
            return nullcontext()
        return sdpa_kernel(self.order, set_priority=True)

    def __call__(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        heads: int,
        fallback: Callable[[], torch.Tensor],
        skip_reshape: bool = False,
        skip_output_reshape: bool = False,
        scale: float | None = None,
    ) -> torch.Tensor:
        if not skip_reshape:
            q, k, v = (heads_first(t, heads) for t in (q, k, v))
        if torch.compiler.is_compiling():
            # dynamo cannot trace the kernel check (it would break the compiled graph here): PyTorch's dispatcher
            # runs the first backend that has a kernel for these tensors in the order set around the call
            out = F.scaled_dot_product_attention(q, k, v, scale=scale)
            return out if skip_output_reshape else tokens_first(out)
        usable = can_run(self.backend, q, k, v)
        if q.device not in self.logged:
            self.logged.add(q.device)
            log.info(
                "EX-4D attention on %s: %s", q.device, self.backend if usable else "the host's (no kernel)"
            )
        if not usable:
            return fallback()
        with sdpa_kernel([BACKENDS[self.backend]]):
            out = F.scaled_dot_product_attention(q, k, v, scale=scale)
        return out if skip_output_reshape else tokens_first(out)
