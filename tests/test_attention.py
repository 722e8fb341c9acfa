"""EX-4D Attention Backend: attention on one PyTorch backend, the host's attention where it has no kernel."""

from __future__ import annotations

import sys

import pytest
import torch

from ex4d.attention import BackendAttention, heads_first, tokens_first
from tests.test_wan_nodes import _apply, _clip_output, _inputs, _sample, _tiny_model, files, rel_err

__all__ = ["files"]  # the tiny models and clip of test_wan_nodes, as a fixture here too

HEADS = 4


def _softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """[B, heads, N, D] attention written out, float64."""
    q, k, v = (t.double() for t in (q, k, v))
    weights = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
    return weights @ v


def _qkv(n_q: int = 24, n_kv: int = 10, dim: int = 32, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(2, n, HEADS * dim // HEADS, generator=g) for n in (n_q, n_kv, n_kv))


def _not_called() -> torch.Tensor:
    raise AssertionError("the fallback ran, though the backend has a kernel here")


def test_math_backend_equals_attention_written_out():
    q, k, v = _qkv()
    attention = BackendAttention("math")
    got = attention(q, k, v, HEADS, _not_called)
    ref = tokens_first(_softmax_attention(*(heads_first(t, HEADS) for t in (q, k, v))))
    assert got.shape == q.shape
    assert torch.allclose(got.double(), ref, atol=1e-5)
    # heads-first in and out, as some models call it
    qh, kh, vh = (heads_first(t, HEADS) for t in (q, k, v))
    got_h = attention(qh, kh, vh, HEADS, _not_called, skip_reshape=True, skip_output_reshape=True)
    assert torch.allclose(got_h.double(), _softmax_attention(qh, kh, vh), atol=1e-5)


def test_no_kernel_runs_the_fallback():
    q, k, v = _qkv()
    sentinel = torch.full_like(q, 7.0)
    got = BackendAttention("cudnn")(q, k, v, HEADS, lambda: sentinel)  # CPU tensors: no cuDNN kernel
    assert got is sentinel


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="attention backend must be one of cudnn, flash, efficient, math"):
        BackendAttention("sage")


def _patch_module(host):
    return sys.modules[host.node_classes["EX4DApply"].__module__.rsplit(".", 1)[0] + ".speed"]


def _one_step(host, files, model) -> torch.Tensor:
    colour, mask, pos, neg = _inputs(host, files)
    out = _apply(host, model, colour, mask, pos, neg, clip_vision_output=_clip_output(3))
    return _sample(host, out, 1, 2.0)


def test_node_reaches_every_attention_call_of_the_wan_dit(host, files):
    """Through the real Wan DiT: the override runs for every attention call (here on the math backend, which
    has a kernel on the CPU) and gives the host's result to float32 round-off; the input MODEL is untouched."""
    base = _tiny_model(host)
    reference = _one_step(host, files, base)
    patched = _patch_module(host).with_attention(base, "math")
    override = patched.model_options["transformer_options"]["optimized_attention_override"]
    calls = []
    run = override.attention.__call__

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return run(*args, **kwargs)

    override.attention = type("Counting", (), {"__call__": staticmethod(counting)})()
    got = _one_step(host, files, patched)
    assert calls, "the host never called the attention override"
    assert rel_err(got, reference) < 1e-5
    assert "optimized_attention_override" not in base.model_options.get("transformer_options", {})
    assert torch.equal(_one_step(host, files, base), reference)


def test_cudnn_without_a_kernel_is_the_host_exactly(host, files):
    """On the CPU the cudnn backend has no kernel: the node's model samples exactly as the host's."""
    base = _tiny_model(host)
    (patched,) = host.node_classes["EX4DAttention"].execute(model=base, backend="cudnn").args
    assert patched is not base
    assert torch.equal(_one_step(host, files, patched), _one_step(host, files, base))
    (same,) = host.node_classes["EX4DAttention"].execute(model=base, backend="host").args
    assert same is base


def test_an_earlier_override_is_kept_for_the_calls_it_falls_back_to(host, files):
    base = _tiny_model(host)
    seen = []

    def earlier(func, *args, **kwargs):
        seen.append(True)
        return func(*args, **kwargs)

    base.model_options.setdefault("transformer_options", {})["optimized_attention_override"] = earlier
    patched = _patch_module(host).with_attention(base, "cudnn")  # no kernel on the CPU -> the earlier one
    _one_step(host, files, patched)
    assert seen


def test_the_chosen_backend_leads_pytorchs_order_around_each_model_call(host, files):
    """Compiled blocks take their attention kernel by PyTorch's backend order as dynamo traces them: the order is
    set around each model call, outside any compiled graph, and put back after."""
    import comfy.patcher_extension
    from torch.nn.attention import SDPBackend

    apply_model = comfy.patcher_extension.WrappersMP.APPLY_MODEL
    base = _tiny_model(host)
    patched = _patch_module(host).with_attention(base, "cudnn")
    seen = []

    def record(executor, *args, **kwargs):
        seen.append(torch._C._get_sdp_priority_order())
        return executor(*args, **kwargs)

    patched.add_wrapper_with_key(apply_model, "test", record)  # inside the wrappers added before it
    before = torch._C._get_sdp_priority_order()
    _one_step(host, files, patched)
    assert seen and all(order[0] == SDPBackend.CUDNN_ATTENTION.value for order in seen)
    assert torch._C._get_sdp_priority_order() == before
    assert not base.wrappers.get(apply_model, {}).get(_patch_module(host).ATTENTION_ORDER_KEY)
    twice = _patch_module(host).with_attention(patched, "cudnn")
    assert len(twice.wrappers[apply_model][_patch_module(host).ATTENTION_ORDER_KEY]) == 1
