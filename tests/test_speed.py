"""The speed settings: scaled fp8 Linear layers (ex4d.fp8 + EX-4D FP8 Linear) and compiled blocks
(EX-4D Compile Blocks), through the host's Wan DiT. The GPU kernels are checked against the CPU's
quantized product in the GPU-only test at the end (and at full size by bench/bench_wan.py --errors)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ex4d import fp8
from tests.test_attention import _one_step, _patch_module
from tests.test_wan_nodes import _tiny_model, files, rel_err

__all__ = ["files"]


def test_quantize_rows_scales_each_row_to_the_e4m3_range():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 64, generator=g) * torch.tensor([1e-4, 1e-2, 1.0, 30.0, 1e3, 0.0]).unsqueeze(1)
    q, scale = fp8.quantize_rows(x)
    assert q.dtype == fp8.E4M3 and scale.shape == (6, 1) and scale.dtype == torch.float32
    back = q.float() * scale
    for row in range(5):  # every row's largest magnitude lands on 448, whatever its size
        assert q[row].float().abs().max().item() == fp8.E4M3_MAX
        # e4m3 keeps 3 mantissa bits: each value within half a step (2^-4 relative) of its row's scale
        err = (back[row] - x[row]).abs() / x[row].abs().clamp_min(scale[row] * 2.0**-6)
        assert err.max().item() <= 2.0**-4 + 1e-6
    assert scale[5].item() == 1.0 and torch.equal(back[5], torch.zeros(64))  # an all-zero row stays zero


def test_scaled_linear_is_the_product_of_the_quantized_operands():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 32, generator=g, dtype=torch.bfloat16)
    w = torch.randn(48, 32, generator=g, dtype=torch.bfloat16) * 0.02
    b = torch.randn(48, generator=g, dtype=torch.bfloat16)
    got = fp8.scaled_linear(x, w, b)
    assert got.shape == (2, 5, 48) and got.dtype == torch.bfloat16
    xq, xs = fp8.quantize_rows(x.reshape(-1, 32))
    wq, ws = fp8.quantize_rows(w)
    by_hand = ((xq.double() * xs.double()) @ (wq.double() * ws.double()).T + b.double()).reshape(2, 5, 48)
    assert rel_err(got, by_hand) < 4e-3  # bf16 output round-off only
    exact = F.linear(x.double(), w.double(), b.double())
    assert 1e-3 < rel_err(got, exact) < 5e-2  # fp8 error: there, and small


def test_scaled_linear_in_token_chunks_is_the_same_product(monkeypatch):
    """Outside compiled code large activations go through in chunks of tokens (each token has its own scale):
    the product is the one of all tokens at once."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 37, 64, generator=g, dtype=torch.bfloat16)
    w = torch.randn(48, 64, generator=g, dtype=torch.bfloat16) * 0.02
    b = torch.randn(48, generator=g, dtype=torch.bfloat16)
    whole = fp8.scaled_linear(x, w, b)
    chunks = []
    real = fp8._quantized_product
    monkeypatch.setattr(fp8, "_quantized_product", lambda x2, *a: (chunks.append(x2.shape[0]), real(x2, *a))[1])
    monkeypatch.setattr(fp8, "CHUNK_ELEMENTS", 20 * 64)
    got = fp8.scaled_linear(x, w, b)
    assert chunks == [19, 19, 19, 17]  # 74 tokens, at most 20 a chunk
    assert got.shape == whole.shape and rel_err(got, whole) < 1e-6


@pytest.mark.parametrize("probe_dtype, weight_dtype, graphs", [
    (torch.bfloat16, torch.bfloat16, 1),  # a bf16 file
    (torch.float16, torch.float16, 1),  # an fp8_e4m3fn file, which the host computes in fp16 on NVIDIA
    (torch.bfloat16, torch.float16, 2),  # why the probe takes the compute dtype
])
def test_the_probe_leaves_one_quantizer_for_every_weight_shape(monkeypatch, probe_dtype, weight_dtype, graphs):
    """The fused quantizer (as the GPU gets it, here on aot_eager) is compiled for any shape at its first call,
    can_run's probe: square weights and the others after it find that one compiled code (a square probe made every
    other weight compile it again, at each start of ComfyUI), as long as the probe ran in the dtype the weights
    come in."""
    from torch._dynamo.utils import counters

    compile_ = torch.compile
    torch._dynamo.reset()
    counters.clear()
    fp8._fused_quantize_rows.cache_clear()
    try:
        with monkeypatch.context() as m:  # while the quantizer is made, not while dynamo traces it
            m.setattr(torch, "compile", lambda fn, **kw: compile_(fn, **{**kw, "backend": "aot_eager"}))
            m.setattr("torch.utils._triton.has_triton", lambda: True)
            quantize = fp8._fused_quantize_rows()
        assert quantize is not fp8.quantize_rows
        x, weight, _ = fp8.probe_inputs(torch.device("cpu"), probe_dtype)
        quantize(x), quantize(weight)
        for shape in ((5120, 5120), (13824, 5120), (5120, 13824), (49, 5120)):
            quantize(torch.randn(shape, dtype=weight_dtype))
        assert counters["stats"]["unique_graphs"] == graphs
    finally:
        fp8._fused_quantize_rows.cache_clear()
        torch._dynamo.reset()


def test_fits_takes_multiples_of_16():
    assert fp8.fits(5120, 13824) and not fp8.fits(5120, 13825) and not fp8.fits(36, 5120)


def _two_steps(host, files, model) -> torch.Tensor:
    from tests.test_wan_nodes import _apply, _clip_output, _inputs, _sample

    colour, mask, pos, neg = _inputs(host, files)
    return _sample(host, _apply(host, model, colour, mask, pos, neg, clip_vision_output=_clip_output(3)), 2, 2.0)


def _block_weights(host):
    return sys.modules[_patch_module(host).__name__.rsplit(".", 1)[0] + ".block_weights"]


def _fp8_model(host, base, runs_here: bool, monkeypatch):
    wp, bw = _patch_module(host), _block_weights(host)
    if runs_here:  # as on a GPU with fp8 tensor cores: the CPU computes the same quantized product
        monkeypatch.setattr(bw.fp8, "can_run", lambda device, dtype: True)
    patched = wp.with_fp8_linear(base)
    return patched, [p for p in patched.object_patches.values()
                     if bw.is_block_forward(p) and isinstance(p.__self__, torch.nn.Linear)]


def test_fp8_is_probed_in_the_dtype_the_blocks_compute_in(host, files, monkeypatch):
    bw = _block_weights(host)
    probed = []
    monkeypatch.setattr(bw.fp8, "can_run", lambda device, dtype: (probed.append((device, dtype)), True)[1])
    base = _tiny_model(host)
    patched = _patch_module(host).with_fp8_linear(base)
    _one_step(host, files, patched)
    assert probed == [(torch.device("cpu"), bw.compute_dtype(base.model))]


def test_fp8_linear_patches_every_block_linear_and_leaves_the_input_alone(host, files, monkeypatch):
    base = _tiny_model(host)
    reference = _one_step(host, files, base)
    patched, forwards = _fp8_model(host, base, runs_here=True, monkeypatch=monkeypatch)
    blocks = base.get_model_object("diffusion_model.blocks")
    linears = [m for m in blocks.modules() if isinstance(m, torch.nn.Linear)]
    assert len(forwards) == len(linears) == 12 * len(blocks)  # q k v o, q k v o k_img v_img, ffn.0 ffn.2
    fp8 = _block_weights(host).fp8
    quantized, products, passes = [], [], []
    monkeypatch.setattr(fp8, "quantize_weight", lambda w, real=fp8.quantize_weight: (quantized.append(w.shape),
                                                                                      real(w))[1])
    monkeypatch.setattr(fp8, "quantized_linear", lambda x, *a, real=fp8.quantized_linear: (products.append(1),
                                                                                             real(x, *a))[1])
    hook = base.model.diffusion_model.register_forward_pre_hook(lambda *_: passes.append(1))
    try:
        _two_steps(host, files, patched)
        got = _one_step(host, files, patched)
    finally:
        hook.remove()
    two_step_products = len(products) - len(forwards)  # the one-step run after it: one pass
    assert len(passes) == 3 and two_step_products == len(forwards) * 2  # every layer, every pass
    assert len(quantized) == 2 * len(forwards)  # each weight quantized once a run (held while it sampled)
    assert not any(hasattr(m, _block_weights(host).HELD) for m in base.model.modules())  # and let go after
    assert torch.isfinite(got).all()
    err = rel_err(got, reference)
    assert 1e-4 < err < 0.1, err  # quantized, and close
    assert not base.object_patches and torch.equal(_one_step(host, files, base), reference)


def test_fp8_linear_uses_the_lora_merged_weight(host, files, monkeypatch):
    """The quantized weight is the one the host hands over at cast time: with the EX-4D LoRA applied, the fp8
    step follows the LoRA's step (not the bare model's)."""
    from tests.test_wan_nodes import _apply, _clip_output, _inputs, _sample

    base = _tiny_model(host)
    colour, mask, pos, neg = _inputs(host, files)

    def step(model, lora: float) -> torch.Tensor:
        out = _apply(host, model, colour, mask, pos, neg, lora_strength=lora, clip_vision_output=_clip_output(3))
        return _sample(host, out, 1, 2.0)

    patched, _ = _fp8_model(host, base, runs_here=True, monkeypatch=monkeypatch)
    with_lora, without = step(base, 1.0), step(base, 0.0)
    assert rel_err(with_lora, without) > 0.05  # the LoRA matters at this strength
    fp8_lora = step(patched, 1.0)
    assert rel_err(fp8_lora, with_lora) < 0.3 * rel_err(fp8_lora, without)


def test_fp8_linear_takes_the_hosts_cast_where_the_host_casts(host, files, monkeypatch):
    """A layer the host takes as stored is multiplied with its stored weight (no cast, no copy); a layer whose
    weight the host casts at each call is multiplied with the cast weight (a weight patch applied on the fly, as
    lowvram loading applies LoRAs); a weight the host keeps in e4m3 as it is, unless a patch applies on the fly."""
    bw = _block_weights(host)
    monkeypatch.setattr(bw.fp8, "can_run", lambda device, dtype: True)
    layer = next(iter(bw.block_linears(_tiny_model(host)).values()))
    devices = bw.Fp8Devices()
    devices.decide(torch.device("cpu"), layer.weight.dtype)
    forward = bw.block_forward(bw.BlockSpeed(fp8=True), devices)
    real, taken = bw.fp8.scaled_linear, []
    monkeypatch.setattr(bw.fp8, "scaled_linear", lambda x, w, b: (taken.append(w), real(x, w, b))[1])
    host_cast, casts = bw.comfy.ops.cast_bias_weight, []
    monkeypatch.setattr(bw.comfy.ops, "cast_bias_weight", lambda *a, **k: (casts.append(1), host_cast(*a, **k))[1])
    x = torch.randn(3, layer.in_features, generator=torch.Generator().manual_seed(4)).to(layer.weight.dtype)

    assert not bw.casts_weights(layer)
    assert torch.equal(forward(layer, x), real(x, layer.weight, layer.bias)) and taken[-1] is layer.weight
    assert not casts  # the host's cast (a graph break under compile on the GPU) is left out

    monkeypatch.setattr(layer, "weight_function", [lambda w: -w])
    assert bw.casts_weights(layer)
    assert torch.equal(forward(layer, x), real(x, -layer.weight, layer.bias)) and casts
    monkeypatch.setattr(layer, "weight_function", [])

    stored = layer.weight.detach().to(torch.float8_e4m3fn)
    monkeypatch.setattr(layer, "weight", torch.nn.Parameter(stored, requires_grad=False))
    monkeypatch.setattr(layer, "weight_comfy_model_dtype", stored.dtype, raising=False)  # 0.33 records it at load
    monkeypatch.setattr(layer, "comfy_cast_weights", True)
    assert bw.casts_weights(layer) and bw.stores_e4m3(layer)
    taken.clear()
    casts.clear()
    got = forward(layer, x)
    as_stored = bw.fp8.quantized_linear(x, stored, torch.ones(stored.shape[0], 1), layer.bias)
    assert not taken and torch.equal(got, as_stored)  # the e4m3 weight as stored, scale 1: not quantized again
    assert casts  # through the host's cast (its merged copy under dynamic VRAM)
    assert not torch.equal(got, real(x, stored.to(x.dtype), layer.bias))

    monkeypatch.setattr(layer, "weight_function", [lambda w: -w])  # a patch on the fly: cast up, then quantized
    assert not bw.stores_e4m3(layer)
    got = forward(layer, x)
    assert taken[-1].dtype == x.dtype and torch.equal(got, real(x, -stored.to(x.dtype), layer.bias))


def test_a_cast_handed_back_in_another_dtype_is_quantized(host):
    """Should the host's cast of an e4m3 layer hand back another dtype, the weight is quantized as any cast weight
    (torch._scaled_mm takes e4m3 operands only); an e4m3 weight is taken as it is, at scale 1."""
    bw = _block_weights(host)
    w = torch.randn(32, 16, generator=torch.Generator().manual_seed(5))
    stored = w.to(torch.float8_e4m3fn)
    wq, scale = bw._as_e4m3(stored)
    assert wq is stored and torch.equal(scale, torch.ones(32, 1))
    for got, want in zip(bw._as_e4m3(w), fp8.quantize_weight(w), strict=True):
        assert torch.equal(got, want)


def test_e4m3_is_read_where_the_host_casts_from(host):
    """Under dynamic VRAM (a layer with the host's ``_v``) the host casts from its device copy in the model's dtype,
    elsewhere from the weight as stored; a weight function on the layer rules the e4m3 path out."""
    bw = _block_weights(host)
    layer = torch.nn.Linear(16, 32)
    layer.weight_function = []
    layer.weight_comfy_model_dtype = torch.float8_e4m3fn  # a bf16 file loaded as fp8_e4m3fn
    assert not bw.stores_e4m3(layer)  # no ``_v``: the host casts from the stored float weight
    layer._v = object()
    assert bw.stores_e4m3(layer)
    layer.weight_function = [lambda w: w]
    assert not bw.stores_e4m3(layer)
    layer.weight_function = []
    layer.weight = torch.nn.Parameter(layer.weight.detach().to(torch.float8_e4m3fn), requires_grad=False)
    layer.weight_comfy_model_dtype = torch.bfloat16
    assert not bw.stores_e4m3(layer)  # its device copy is bf16
    del layer._v
    assert bw.stores_e4m3(layer)


def test_under_dynamic_vram_the_e4m3_cast_merges_patches_and_is_given_back(host, monkeypatch):
    """A layer with the host's ``_v``: the cast asks for e4m3 with the patches merged in the host's LoRA dtype and
    rounded back (``want_requant``), and is given back even when the product fails (the cast pins its pages); a
    layer without ``_v`` passes none of these arguments (0.3.75's cast takes none)."""
    bw = _block_weights(host)
    monkeypatch.setattr(bw.fp8, "can_run", lambda device, dtype: True)
    devices = bw.Fp8Devices()
    devices.decide(torch.device("cpu"), torch.float32)
    forward = bw.block_forward(bw.BlockSpeed(fp8=True), devices)
    layer = torch.nn.Linear(16, 32)
    layer.weight = torch.nn.Parameter(layer.weight.detach().to(torch.float8_e4m3fn), requires_grad=False)
    layer.weight_function, layer.comfy_cast_weights = [], True
    asked, given_back = [], []

    def cast(module, x=None, **kwargs):
        asked.append(kwargs)
        return module.weight, module.bias, "stream"

    monkeypatch.setattr(bw.comfy.ops, "cast_bias_weight", cast)
    monkeypatch.setattr(bw.comfy.ops, "uncast_bias_weight", lambda m, w, b, stream: given_back.append(stream))
    x = torch.randn(3, 16, generator=torch.Generator().manual_seed(6))
    forward(layer, x)
    assert "want_requant" not in asked[-1] and "compute_dtype" not in asked[-1] and given_back == ["stream"]
    layer._v = object()  # only 0.33 (dynamic VRAM) gives layers ``_v``, and has the LoRA dtype asked for
    monkeypatch.setattr(bw.comfy.model_management, "lora_compute_dtype", lambda device: torch.float16, raising=False)
    forward(layer, x)
    assert asked[-1]["dtype"] == torch.float8_e4m3fn and asked[-1]["want_requant"] is True
    assert asked[-1]["compute_dtype"] == torch.float16
    monkeypatch.setattr(bw.fp8, "quantized_linear", lambda *a: (_ for _ in ()).throw(torch.OutOfMemoryError("oom")))
    with pytest.raises(torch.OutOfMemoryError):
        forward(layer, x)
    assert given_back == ["stream"] * 3


def test_an_e4m3_file_is_multiplied_as_the_host_keeps_it(host, files, monkeypatch):
    """A DiT loaded in e4m3 (an fp8_e4m3fn file, or UNETLoader's weight_dtype): FP8 Linear multiplies the host's
    e4m3 weights, EX-4D LoRA merged, at scale 1, quantizing no weight, held or cast at each call alike; the step
    differs from the host's by the activations' quantizing only."""
    import comfy.sd

    bw = _block_weights(host)
    path = host.models_dir / "diffusion_models" / "ex4d_tiny_i2v.safetensors"
    base = comfy.sd.load_diffusion_model(str(path), model_options={"dtype": torch.float8_e4m3fn})
    assert all(bw.stores_e4m3(m) for m in bw.block_linears(base).values())
    reference = _one_step(host, files, base)
    patched, _ = _fp8_model(host, base, runs_here=True, monkeypatch=monkeypatch)
    quantized, holds, real_hold = [], [], bw._cast_once
    monkeypatch.setattr(bw.fp8, "quantize_weight", lambda w: quantized.append(w) or fp8.quantize_rows(w))
    monkeypatch.setattr(bw, "_cast_once", lambda m, *a: holds.append((m, real_hold(m, *a))) or holds[-1][1])
    held = _one_step(host, files, patched)
    assert len(holds) == len(bw.block_linears(base))  # every Linear held (the norms are not: no compile)
    for module, (weight, _, _) in holds:  # the host's stored weight itself, no copy
        assert weight.data_ptr() == module.weight.data_ptr()
        assert bw.held_bytes(module, True, torch.float32, weight.device) < module.weight.numel()
    monkeypatch.setattr(bw, "room_for_weights", lambda *a: 0)
    assert torch.equal(_one_step(host, files, patched), held) and not quantized
    assert 1e-4 < rel_err(held, reference) < 0.1


def test_fp8_linear_without_fp8_tensor_cores_is_the_host_exactly(host, files):
    base = _tiny_model(host)
    (patched,) = host.node_classes["EX4DFP8Linear"].execute(model=base).args
    assert patched is not base and patched.object_patches
    assert torch.equal(_one_step(host, files, patched), _one_step(host, files, base))  # CPU: no fp8 kernels


def _patched_linears(bw, patched) -> int:
    return sum(bw.is_block_forward(p) and isinstance(p.__self__, torch.nn.Linear)
               for p in patched.object_patches.values())


def test_layers_of_a_scaled_fp8_file_are_left_to_the_host(host, files, caplog):
    """A scaled fp8 file's layers carry ``scale_weight`` (0.3.75's scaled fp8 ops apply it in their own forward):
    they keep the host's forward; a model with no plain Linear at all is passed on unchanged, with a warning (the
    fast workflow ships the node on)."""
    wp, bw = _patch_module(host), _block_weights(host)
    model = _tiny_model(host)  # its own copy: the attributes set below stay on it
    linears = list(bw.block_linears(model).values())
    linears[0].scale_weight = torch.nn.Parameter(torch.ones(()), requires_grad=False)
    assert _patched_linears(bw, wp.with_fp8_linear(model)) == len(linears) - 1
    for m in linears[1:]:
        m.scale_weight = torch.nn.Parameter(torch.ones(()), requires_grad=False)
    with caplog.at_level(logging.WARNING):
        assert wp.with_fp8_linear(model) is model
    assert "quantized by their loader (a GGUF or scaled fp8 file)" in caplog.text


def test_layers_that_cast_their_own_weight_are_left_to_them(host, files):
    """ComfyUI-GGUF's layers are the host's Linear with a ``cast_bias_weight`` method of their own, which
    dequantizes the stored blocks and applies the layer's LoRA patches; the host's cast would read the raw blocks
    and miss the patches. Such layers keep their forward, and so do the held and compiled paths."""
    wp, bw = _patch_module(host), _block_weights(host)
    model = _tiny_model(host)
    linears = list(bw.block_linears(model).values())
    norms = [m for m in bw.block_layers(model).values() if not isinstance(m, torch.nn.Linear)]

    def own_cast(layer):
        layer.__class__ = type("OwnCast" + type(layer).__name__, (type(layer),),
                               {"cast_bias_weight": lambda self, input=None, **kwargs: (self.weight, self.bias)})

    own_cast(linears[0])
    own_cast(norms[0])
    assert linears[0] not in bw.block_layers(model).values() and norms[0] not in bw.block_layers(model).values()
    assert _patched_linears(bw, wp.with_fp8_linear(model)) == len(linears) - 1
    for layer in linears[1:]:
        own_cast(layer)
    assert wp.with_fp8_linear(model) is model


def test_speed_nodes_refuse_a_model_that_is_not_wan(host, files):
    import comfy.model_base

    base = _tiny_model(host)
    other = base.clone()
    other.model = comfy.model_base.BaseModel.__new__(comfy.model_base.BaseModel)  # any non-Wan model object
    for node in ("EX4DFP8Linear", "EX4DCompileBlocks"):
        with pytest.raises(ValueError, match=r"^model: this speed setting is made for the Wan 2\.1 DiT"):
            host.node_classes[node].execute(model=other)


def test_compiled_blocks_give_the_host_result(host, files, monkeypatch):
    """The host's compile wrapper around each block (dynamo over the host's block code with the EX-4D
    patches inside; the aot_eager backend keeps the numbers exact) gives the uncompiled step, compiles the
    shared block code once, and leaves the input MODEL uncompiled."""
    patch = _patch_module(host)
    monkeypatch.setattr(patch, "COMPILE_BACKEND", "aot_eager")
    base = _tiny_model(host)
    reference = _one_step(host, files, base)
    torch._dynamo.reset()
    (compiled,) = host.node_classes["EX4DCompileBlocks"].execute(model=base).args
    from torch._dynamo.utils import counters

    counters.clear()
    got = _one_step(host, files, compiled)
    assert rel_err(got, reference) < 1e-5
    assert counters["stats"]["unique_graphs"] >= 1  # dynamo really compiled
    frames = counters["frames"]["ok"]
    _one_step(host, files, compiled)
    assert counters["frames"]["ok"] == frames  # a second run recompiles nothing
    assert not base.wrappers.get("apply_model", {}).get("torch.compile")
    assert torch.equal(_one_step(host, files, base), reference)
    torch._dynamo.reset()


def test_compile_blocks_replaces_the_hosts_compile_wrapper(host, files):
    """The host's TorchCompileModel and EX-4D Compile Blocks use the host's one compile-wrapper key: the later node's
    wrapper is the one that runs, so the whole model is not compiled around compiled blocks."""
    from comfy_api.torch_helpers.torch_compile import COMPILE_KEY

    base = _tiny_model(host)
    (whole,) = host.node_classes["TorchCompileModel"].execute(model=base, backend="inductor").args
    (blocks,) = host.node_classes["EX4DCompileBlocks"].execute(model=whole).args
    wrappers = blocks.wrappers["apply_model"][COMPILE_KEY]
    assert len(wrappers) == 1 and wrappers[0] is not whole.wrappers["apply_model"][COMPILE_KEY][0]
    assert len(whole.wrappers["apply_model"][COMPILE_KEY]) == 1  # the input model keeps its own
    block = base.model.diffusion_model.blocks[0]
    swapped = _patch_module(host).ContiguousInput(torch.compile(block))
    assert swapped.self_attn is block.self_attn and swapped.compiled._orig_mod is block  # read through, as the host's


def test_compiled_fp8_blocks_share_one_compiled_code(host, files, monkeypatch):
    """Every block's Linear layers get the same bound function, so the code compiled for the first block's
    attention holds for the others (per-layer patch objects made dynamo recompile for each block, and past its
    recompile limit the 40 blocks of the real DiT ran uncompiled)."""
    wp = _patch_module(host)
    monkeypatch.setattr(wp, "COMPILE_BACKEND", "aot_eager")
    base = _tiny_model(host)
    block = base.model.diffusion_model.blocks[0]
    codes = [type(m).forward.__code__ for m in (block.self_attn, block.cross_attn)]

    def compiled_versions(model) -> list[int]:
        torch._dynamo.reset()
        _one_step(host, files, wp.with_compiled_blocks(model))
        return [len(torch._dynamo.eval_frame._debug_get_cache_entry_list(code)) for code in codes]

    plain = compiled_versions(base)
    patched, _ = _fp8_model(host, base, runs_here=True, monkeypatch=monkeypatch)
    assert compiled_versions(patched) == plain == [1, 1]
    torch._dynamo.reset()


@pytest.mark.skipif(not (torch.cuda.is_available() and fp8.can_run(torch.device("cuda"))),
                    reason="needs a GPU with fp8 tensor cores")
def test_gpu_scaled_mm_equals_the_quantized_product():
    g = torch.Generator("cuda").manual_seed(2)
    x = torch.randn(300, 512, generator=g, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(1024, 512, generator=g, device="cuda", dtype=torch.bfloat16) * 0.02
    b = torch.randn(1024, generator=g, device="cuda", dtype=torch.bfloat16)
    got = fp8.scaled_linear(x, w, b)
    cpu = fp8.scaled_linear(x.cpu(), w.cpu(), b.cpu())
    assert rel_err(got.cpu(), cpu) < 4e-3


@pytest.mark.skipif(not (torch.cuda.is_available() and fp8.can_run(torch.device("cuda"), torch.float16)),
                    reason="needs a GPU with fp8 tensor cores")
def test_gpu_scaled_mm_takes_an_e4m3_weight_at_unit_scale():
    """An fp8_e4m3fn file's weight, as the host keeps it, in the fp16 its blocks compute in on NVIDIA."""
    g = torch.Generator("cuda").manual_seed(3)
    x = torch.randn(300, 512, generator=g, device="cuda", dtype=torch.float16)
    w = (torch.randn(1024, 512, generator=g, device="cuda") * 0.02).to(fp8.E4M3)
    b = torch.randn(1024, generator=g, device="cuda", dtype=torch.float16)
    got = fp8.quantized_linear(x, w, fp8.unit_scale(w), b)
    cpu = fp8.quantized_linear(x.cpu(), w.cpu(), fp8.unit_scale(w).cpu(), b.cpu())
    assert got.dtype == torch.float16 and rel_err(got.cpu(), cpu) < 4e-3


def test_compiled_blocks_with_every_ex4d_patch_trace_whole(host, files, monkeypatch):
    """EX-4D on, cuDNN attention, fp8 Linear, compiled: dynamo traces each block without a graph break (a break
    cuts the block's graph where it sits, and the code around it runs unfused), and the result is the uncompiled
    one. On the CPU cuDNN has no kernel: PyTorch's next backend runs, as it would where cuDNN lacks one."""
    wp = _patch_module(host)
    monkeypatch.setattr(wp, "COMPILE_BACKEND", "aot_eager")
    monkeypatch.setattr(_block_weights(host).fp8, "can_run", lambda device, dtype: True)
    fast = wp.with_fp8_linear(wp.with_attention(_tiny_model(host), "cudnn"))
    reference = _one_step(host, files, fast)
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    got = _one_step(host, files, wp.with_compiled_blocks(fast))
    # one graph for every block: the first block's input is a transposed view, the others' contiguous, and a
    # graph of its own for the first block cost a second compile at the first run and a second trace at each start
    assert counters["stats"]["unique_graphs"] == 1
    assert not counters["graph_break"], list(counters["graph_break"])
    assert rel_err(got, reference) < 1e-5
    torch._dynamo.reset()


def test_compiled_blocks_trace_no_backend_switching_into_the_graph(host, files, monkeypatch):
    """The attention backend order is set outside the compiled blocks: a graph holding the ``sdpa_kernel`` context
    manager's calls is one AOTAutograd does not cache, so every start of ComfyUI traced the blocks again."""
    wp = _patch_module(host)
    graphs = []

    def recording(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    monkeypatch.setattr(wp, "COMPILE_BACKEND", recording)
    fast = wp.with_attention(_tiny_model(host), "cudnn")
    torch._dynamo.reset()
    _one_step(host, files, wp.with_compiled_blocks(fast))
    torch._dynamo.reset()
    targets = [node.target for gm in graphs for node in gm.graph.nodes if node.op == "call_function"]
    assert F.scaled_dot_product_attention in targets
    outside = [t for t in targets if getattr(t, "__module__", "").startswith(("torch.nn.attention", "torch.backends"))
               or "sdp" in getattr(t, "__name__", "") and t is not F.scaled_dot_product_attention]
    assert not outside, outside


@pytest.fixture
def compile_cache_env():
    """The process's TORCHINDUCTOR_CACHE_DIR as it was before the test (Compile Blocks sets it)."""
    from ex4d import compile_cache

    before = {name: os.environ.get(name) for name in (compile_cache.ENV, compile_cache.TRITON_ENV)}
    yield compile_cache
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _casting_model(host, bw, monkeypatch):
    """A tiny DiT whose block layers the host casts at each call, as under dynamic VRAM or partial loading."""
    model = _tiny_model(host)
    for module in bw.block_layers(model).values():
        monkeypatch.setattr(module, "comfy_cast_weights", True)
    return model


@pytest.mark.parametrize("room", [True, False])
def test_compiled_blocks_never_trace_the_hosts_cast(host, files, monkeypatch, compile_cache_env, room):
    """Where the host casts each layer's weight at every call, dynamo must not trace that cast (on the GPU under
    dynamic VRAM, traced, it failed with a size mismatch). With room on the device the block weights are cast
    once when the sampling starts and held: the blocks trace whole, with no cast inside; without room each
    layer's cast runs outside the graph (a break each). Either way the step is the uncompiled one and the held
    weights are let go after."""
    wp, bw = _patch_module(host), _block_weights(host)
    monkeypatch.setattr(wp, "COMPILE_BACKEND", "aot_eager")
    model = wp.with_attention(_casting_model(host, bw, monkeypatch), "cudnn")  # the host's CPU attention breaks
    reference = _one_step(host, files, model)
    traced, real = [], bw.comfy.ops.cast_bias_weight
    monkeypatch.setattr(bw.comfy.ops, "cast_bias_weight",
                        lambda *a, **k: (traced.append(torch.compiler.is_compiling()), real(*a, **k))[1])
    if not room:
        monkeypatch.setattr(bw, "room_for_weights", lambda *a: 0)
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    got = _one_step(host, files, wp.with_compiled_blocks(model))
    assert traced and not any(traced)
    assert bool(counters["graph_break"]) != room, list(counters["graph_break"])
    assert rel_err(got, reference) < 1e-5
    assert not any(hasattr(m, bw.HELD) for m in model.model.modules())
    torch._dynamo.reset()


def test_compile_cache_is_under_the_hosts_user_folder_unless_the_user_chose_one(host, compile_cache_env,
                                                                                 tmp_path):
    import folder_paths

    cache = compile_cache_env
    wp = _patch_module(host)
    os.environ.pop(cache.ENV, None)
    wp.with_compiled_blocks(_tiny_model(host))
    folder = Path(os.environ[cache.ENV])
    assert folder == cache.folder_for(wp.compile_cache_root()) and folder.is_dir()
    assert folder.is_relative_to(Path(folder_paths.get_user_directory()))
    assert folder.name == f"torch-{torch.__version__}"
    os.environ[cache.ENV] = cache.torch_default()  # set by an earlier compile in this process: not a choice
    os.environ[cache.TRITON_ENV] = os.path.join(cache.torch_default(), "triton", "0")  # and inductor's Triton folder
    assert cache.use_folder(tmp_path) == cache.folder_for(tmp_path)
    assert cache.TRITON_ENV not in os.environ  # inductor sets it again, under the new folder
    os.environ[cache.TRITON_ENV] = str(tmp_path / "my_triton")  # a user's own: kept
    os.environ[cache.ENV] = cache.torch_default()
    cache.use_folder(tmp_path)
    assert os.environ[cache.TRITON_ENV] == str(tmp_path / "my_triton")
    os.environ[cache.ENV] = str(tmp_path / "mine")
    assert cache.use_folder(tmp_path / "other") == tmp_path / "mine" and os.environ[cache.ENV] == str(tmp_path / "mine")


_COMPILE_ONCE = """
import sys
from pathlib import Path
import torch
from ex4d import compile_cache
compile_cache.use_folder(Path(sys.argv[1]))
from torch._dynamo.utils import counters
f = torch.compile(lambda x: torch.nn.functional.gelu(x) * 2 + 1)
f(torch.randn(64))
print(counters["inductor"]["fxgraph_cache_hit"], counters["inductor"]["fxgraph_cache_miss"])
"""


def test_compiled_code_survives_a_restart(tmp_path):
    """Two fresh processes with the same cache folder: the first compiles (an FX-graph cache miss, kernels written
    under the folder), the second finds it all there (a hit, no miss)."""
    repo = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    env["PYTHONPATH"] = str(repo)

    def run() -> tuple[int, int]:
        out = subprocess.run([sys.executable, "-c", _COMPILE_ONCE, str(tmp_path)], env=env, capture_output=True,
                             text=True, timeout=300, check=True)
        hit, miss = out.stdout.split()[-2:]
        return int(hit), int(miss)

    assert run() == (0, 1)
    assert any((tmp_path / f"torch-{torch.__version__}").rglob("*.py"))
    assert run() == (1, 0)


def _with_weight_patch(host, bw):
    """A tiny DiT whose block layers the host casts with a weight patch applied at each call (as a LoRA under
    dynamic VRAM or partial loading): the host's own weight wrappers, which it puts on the layers as it loads."""
    model = _tiny_model(host).clone()
    for key in bw.block_layers(model):
        model.add_weight_wrapper(key.removesuffix(".forward") + ".weight", lambda w: w * 1.5)
    return model


def test_held_weights_are_the_hosts_cast_with_its_patches(host, files, monkeypatch):
    """Held for the run, the weights are the ones the host casts (its patches applied): compiled with held
    weights equals the host's uncompiled step; fp8 with held weights equals fp8 quantizing at each call."""
    wp, bw = _patch_module(host), _block_weights(host)
    monkeypatch.setattr(wp, "COMPILE_BACKEND", "aot_eager")
    model = wp.with_attention(_with_weight_patch(host, bw), "cudnn")
    reference = _one_step(host, files, model)
    assert rel_err(reference, _one_step(host, files, wp.with_attention(_tiny_model(host), "cudnn"))) > 1e-3
    torch._dynamo.reset()
    assert rel_err(_one_step(host, files, wp.with_compiled_blocks(model)), reference) < 1e-5
    torch._dynamo.reset()
    monkeypatch.setattr(bw.fp8, "can_run", lambda device, dtype: True)
    fast = wp.with_fp8_linear(model)
    held = _one_step(host, files, fast)
    monkeypatch.setattr(bw, "room_for_weights", lambda *a: 0)
    assert torch.equal(_one_step(host, files, fast), held)
    assert 1e-4 < rel_err(held, reference) < 0.1


def test_a_hold_that_fails_lets_go_of_what_it_held(host, files, monkeypatch):
    wp, bw = _patch_module(host), _block_weights(host)
    monkeypatch.setattr(bw.fp8, "can_run", lambda device, dtype: True)
    model = _tiny_model(host)
    calls, real = [], bw._cast_once

    def failing(*args):
        calls.append(1)
        if len(calls) == 5:
            raise torch.OutOfMemoryError("CUDA out of memory (as a card would say)")
        return real(*args)

    monkeypatch.setattr(bw, "_cast_once", failing)
    with pytest.raises(torch.OutOfMemoryError):
        _one_step(host, files, wp.with_fp8_linear(model))
    assert len(calls) == 5 and not any(hasattr(m, bw.HELD) for m in model.model.modules())


def test_nothing_is_held_for_a_model_with_weight_hooks(host, files, monkeypatch):
    """Hook LoRAs change the weights in place between calls: with hooks on the model nothing is held."""
    import types

    wp, bw = _patch_module(host), _block_weights(host)
    assert bw.hooks_in_play(types.SimpleNamespace(current_patcher=types.SimpleNamespace(hook_patches={"h": {}})))
    assert not bw.hooks_in_play(types.SimpleNamespace(current_patcher=types.SimpleNamespace(hook_patches={})))
    assert not bw.hooks_in_play(types.SimpleNamespace(current_patcher=None))
    monkeypatch.setattr(bw.fp8, "can_run", lambda device, dtype: True)
    monkeypatch.setattr(bw, "hooks_in_play", lambda base: True)
    casts = []
    monkeypatch.setattr(bw, "_cast_once", lambda *a: casts.append(1))
    _one_step(host, files, wp.with_fp8_linear(_tiny_model(host)))
    assert not casts
