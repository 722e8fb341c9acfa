"""The speed settings the Wan benches compare: '+'-joined parts, each an attention backend (EX-4D Attention
Backend), ``fp8`` (EX-4D FP8 Linear), ``compile`` (EX-4D Compile Blocks) or ``exact32`` (float32 attention, the
error reference), applied to a model by the pack's own code; and what a compiled run compiled."""

from __future__ import annotations

from typing import Any

ATTENTION_BACKENDS = ("cudnn", "flash", "efficient", "math")  # ex4d.attention.BACKENDS (no torch import here)


def with_setting(pack, model, setting: str):
    """``model`` with a speed setting; ``compile`` is applied last as in the workflows; '' or ``host`` leaves
    the model as it is."""
    parts = [p for p in setting.split("+") if p and p != "host"]
    for part in parts:
        if part in ATTENTION_BACKENDS:
            model = pack.speed.with_attention(model, part)
        elif part == "fp8":
            model = pack.speed.with_fp8_linear(model)
        elif part == "exact32":
            model = model.clone()
            model.model_options["transformer_options"][pack.speed.ATTENTION_OVERRIDE] = fp32_attention
        elif part != "compile":
            raise SystemExit(f"unknown setting part {part!r} (attention backends, exact32, fp8, compile)")
    return pack.speed.with_compiled_blocks(model) if "compile" in parts else model


def setting_name(r: dict[str, Any]) -> str:
    """A result's setting, 'cudnn+fp8+compile' style: the attention, then fp8 Linear and compiled blocks where on."""
    parts = [r.get("attention", "host"), *(["fp8"] if r.get("linear") == "fp8" else []),
             *(["compile"] if r.get("compiled") else [])]
    return "+".join(parts)


def math_attention(q, k, v, out_dtype, scale: float | None = None):
    """Attention of (batch, heads, tokens, head_dim) q, k, v computed in float32 by PyTorch's math kernel, a few
    heads at a time (its attention matrix would not fit at once), each result stored in ``out_dtype``."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    out = torch.empty(q.shape, dtype=out_dtype, device=q.device)
    chunk = 4
    with sdpa_kernel([SDPBackend.MATH]):
        for b in range(q.shape[0]):
            for h in range(0, q.shape[1], chunk):
                sl = (b, slice(h, h + chunk))
                out[sl] = F.scaled_dot_product_attention(q[sl].float(), k[sl].float(), v[sl].float(),
                                                         scale=scale).to(out_dtype)
    return out


def fp32_attention(func, q, k, v, heads, mask=None, skip_reshape=False, skip_output_reshape=False, **kwargs):
    """The error reference (an ``optimized_attention_override``): attention computed in float32, rounded to the
    input's dtype once at the end."""
    if mask is not None:
        return func(q, k, v, heads, mask=mask, skip_reshape=skip_reshape, skip_output_reshape=skip_output_reshape,
                    **kwargs)
    if not skip_reshape:
        q, k, v = (t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (q, k, v))
    out = math_attention(q, k, v, q.dtype, kwargs.get("scale"))
    return out if skip_output_reshape else out.transpose(1, 2).flatten(2)


def compile_check(base) -> dict:
    """Whether Compile Blocks compiled whole blocks: dynamo's graph breaks (any break splits a block's graph, and
    the code around it runs unfused) and the versions of the block code it compiled (recompiles past dynamo's
    limit run uncompiled)."""
    import torch

    block = base.model.diffusion_model.blocks[0]
    breaks = torch._dynamo.utils.counters["graph_break"]
    return {
        "graph_breaks": sum(breaks.values()),
        "break_reasons": [reason.splitlines()[0] for reason in breaks][:5],
        "block_versions": len(torch._dynamo.eval_frame._debug_get_cache_entry_list(type(block).forward.__code__)),
    }
