"""The Wan DiT's block layers as EX-4D FP8 Linear and EX-4D Compile Blocks run them: one ``forward`` for every
weighted layer of the transformer blocks (one function, so a compiled block's code holds for all blocks), and the
layers' weights held on the device for one sampling run where they fit.

Why held: where the host casts a layer's weight at each call (ComfyUI 0.33's dynamic VRAM, partial loading,
LoRAs applied on the fly), FP8 Linear would quantize the weight again at every call, and inside a compiled block
the cast would be traced by dynamo, which it must not be (the host's pinned-memory and LoRA bookkeeping; traced,
it failed on the GPU with a size mismatch in its LoRA prefetch), so it runs outside the graph, cutting it at every
layer. When the blocks' weights fit beside what the sampler needs, each layer's weight is cast once, at the
sampling's first model call (the host's own cast: LoRAs applied, pages streamed in), kept in the form the layer
multiplies with (e4m3 and its scales under FP8 Linear, else the compute dtype) and released when the sampling
ends, so the memory goes back to the host between runs. Blocks that do not fit cast as the host does.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass

import comfy.model_management
import comfy.ops
import comfy.patcher_extension
import comfy.rmsnorm
import torch
import torch.nn.functional as F

from ..ex4d import fp8
from ._device_clones import rebind_on_device_clones

log = logging.getLogger(__name__)

KEY = "ex4d_block_weights"  # the forwards' marker, the wrappers' key
HELD = "ex4d_held"  # a block layer's attribute while its weights are held: (weight, fp8 scale or None, bias)
LAYER_KINDS = (torch.nn.Linear, torch.nn.LayerNorm, comfy.rmsnorm.RMSNorm)


@dataclass(frozen=True)
class BlockSpeed:
    """What the block layers do: multiply Linears in scaled fp8 (EX-4D FP8 Linear), hold weights for compiled
    blocks (EX-4D Compile Blocks: every weighted layer, so no host cast cuts the graph)."""

    fp8: bool = False
    compiled: bool = False


class Fp8Devices:
    """Whether scaled fp8 runs on each device (``ex4d.fp8.can_run``), decided before the blocks run: the probe and
    its log line would break a compiled block's graph."""

    def __init__(self):
        self.usable: dict[torch.device, bool] = {}

    def decide(self, device: torch.device, dtype: torch.dtype) -> bool:
        """``dtype``: the one the model computes in (the probe compiles the quantizer for it)."""
        if device not in self.usable:
            usable = self.usable.setdefault(device, fp8.can_run(device, dtype))
            how = "scaled fp8 (e4m3)" if usable else "the host's Linear (no fp8 matmul here)"
            log.info("EX-4D fp8 Linear on %s: %s", device, how)
        return self.usable[device]


def casts_weights(module: torch.nn.Module) -> bool:
    """The host's own test in its layers' ``forward`` (comfy.ops): whether the layer's weight is cast at each call
    (manual cast of a stored dtype, offloaded or streamed weights, weight patches applied on the fly)."""
    return bool(getattr(module, "comfy_cast_weights", False) or getattr(module, "weight_function", None)
                or getattr(module, "bias_function", None))


def block_layers(model) -> dict[str, torch.nn.Module]:
    """The weighted host layers (comfy.ops Linear, LayerNorm, RMSNorm) of the DiT's transformer blocks by
    object-patch key of their ``forward`` (``diffusion_model.blocks.<i>.<path>.forward``). Layers of a scaled fp8
    file (the host's ``scale_weight`` or its quantized layer types) are left out: the host's own forward applies
    their scales. So are layers whose class casts its weight its own way (a ``cast_bias_weight`` method, as
    ComfyUI-GGUF's layers dequantize there and apply their LoRA patches): the host's cast would miss both."""
    blocks = model.get_model_object("diffusion_model.blocks")
    return {
        f"diffusion_model.blocks.{name}.forward": module
        for name, module in blocks.named_modules()
        if isinstance(module, LAYER_KINDS) and hasattr(module, "comfy_cast_weights")
        and getattr(module, "weight", None) is not None and getattr(module, "scale_weight", None) is None
        and not callable(getattr(type(module), "cast_bias_weight", None))
    }


def block_linears(model) -> dict[str, torch.nn.Linear]:
    return {key: m for key, m in block_layers(model).items() if isinstance(m, torch.nn.Linear)}


@torch.compiler.disable
def _host_forward(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's own forward with the host's cast, never traced (a graph break where it is called)."""
    return type(module).forward(module, x)


@contextlib.contextmanager
def host_cast(module: torch.nn.Module, x: torch.Tensor | None = None,
              **kwargs) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """The layer's weight and bias as the host's ``cast_bias_weight`` hands them over (``kwargs`` passed on), given
    back however the block ends: under dynamic VRAM the cast pins the layer's pages until then."""
    weight, bias, offload_stream = comfy.ops.cast_bias_weight(module, x, offloadable=True, **kwargs)
    try:
        yield weight, bias
    finally:
        comfy.ops.uncast_bias_weight(module, weight, bias, offload_stream)


@torch.compiler.disable
def _cast_scaled_linear(module: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """Scaled fp8 with the weight as the host casts it for this call, never traced."""
    with host_cast(module, x) as (weight, bias):
        return fp8.scaled_linear(x, weight, bias)


def stores_e4m3(module: torch.nn.Module) -> bool:
    """Whether the host casts the layer's weight from e4m3 (an fp8_e4m3fn file, or a file loaded as one) with no
    weight function to apply: the host's e4m3 weight, LoRAs merged as the host keeps them, is then the one to
    multiply with, as it is (scale 1). Under dynamic VRAM (a layer with the host's ``_v``) the host casts from its
    device copy in the model's dtype; elsewhere from the weight as stored."""
    model_dtype = getattr(module, "weight_comfy_model_dtype", None) if hasattr(module, "_v") else None
    return (model_dtype or module.weight.dtype) == fp8.E4M3 and not getattr(module, "weight_function", None)


def e4m3_cast(module: torch.nn.Module, device: torch.device, bias_dtype: torch.dtype):
    """:func:`host_cast` of a :func:`stores_e4m3` layer, kept in e4m3. Under dynamic VRAM that is the host's copy
    on the device, into which it merges the layer's patches as it brings it in, computed in its LoRA dtype and
    rounded back to e4m3 (``want_requant``, as the host's own fp8 Linear asks): no cast to the compute dtype and
    no second quantizing at each call. Other hosts' casts take no such arguments."""
    merged = {}
    if hasattr(module, "_v"):
        merged = {"compute_dtype": comfy.model_management.lora_compute_dtype(device), "want_requant": True}
    return host_cast(module, dtype=fp8.E4M3, device=device, bias_dtype=bias_dtype, **merged)


@torch.compiler.disable
def _e4m3_linear(module: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """Scaled fp8 with the host's e4m3 weight as it is (:func:`e4m3_cast`), never traced."""
    with e4m3_cast(module, x.device, x.dtype) as (weight, bias):
        return fp8.quantized_linear(x, *_as_e4m3(weight), bias)


def _as_e4m3(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and its row scales as :func:`ex4d.fp8.quantized_linear` takes them: the host's e4m3 weight at
    scale 1; a weight the host handed back in another dtype quantized as any cast weight."""
    if weight.dtype == fp8.E4M3:
        return weight.contiguous(), fp8.unit_scale(weight)  # torch._scaled_mm takes a row-major weight
    return fp8.quantize_weight(weight)


def _held_forward(module: torch.nn.Module, x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor | None,
                  bias: torch.Tensor | None) -> torch.Tensor:
    if scale is not None:
        return fp8.quantized_linear(x, weight, scale, bias)
    if isinstance(module, torch.nn.Linear):
        return F.linear(x, weight, bias)
    if isinstance(module, torch.nn.LayerNorm):
        return F.layer_norm(x, module.normalized_shape, weight, bias, module.eps)
    return F.rms_norm(x, weight.shape, weight, module.eps)


def uses_fp8(module: torch.nn.Module, x: torch.Tensor, speed: BlockSpeed, devices: Fp8Devices) -> bool:
    return (speed.fp8 and isinstance(module, torch.nn.Linear) and x.is_floating_point()
            and fp8.fits(module.in_features, module.out_features) and devices.usable.get(x.device, False))


def block_forward(speed: BlockSpeed, devices: Fp8Devices):
    """The ``forward`` bound to each block layer (``types.MethodType``): its held weights where they are held;
    else under FP8 Linear :func:`ex4d.fp8.scaled_linear` with the weight as the host's Linear takes it (stored, or
    the host's cast outside any compiled graph); else the layer's own forward (outside the graph where it casts).
    On a device where fp8 cannot run (or one not decided: a call from outside the sampler's passes) and for sizes
    ``torch._scaled_mm`` does not take, the host's Linear runs. A layer the host keeps in e4m3 is multiplied with
    that weight (:func:`e4m3_cast`)."""

    def forward(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        held = getattr(module, HELD, None)
        if held is not None:
            comfy.ops.run_every_op()
            return _held_forward(module, x, *held)
        if uses_fp8(module, x, speed, devices):
            comfy.ops.run_every_op()
            if stores_e4m3(module):
                return _e4m3_linear(module, x)
            if not casts_weights(module):  # as the host's Linear: its stored weight as it is (and no graph break)
                return fp8.scaled_linear(x, module.weight, module.bias)
            return _cast_scaled_linear(module, x)
        if casts_weights(module):
            return _host_forward(module, x)
        return type(module).forward(module, x)

    setattr(forward, KEY, True)
    return forward


def is_block_forward(patch) -> bool:
    return isinstance(patch, types.MethodType) and getattr(patch.__func__, KEY, False)


def bound_block_forward(patch, module: torch.nn.Module) -> types.MethodType | None:
    """A block-layer patch bound to a device clone's own layer, so each device uses its own weights."""
    return types.MethodType(patch.__func__, module) if is_block_forward(patch) else None


def compute_dtype(base) -> torch.dtype:
    """The dtype the blocks compute in (the host's rule: the manual cast dtype where set, else the stored one)."""
    return getattr(base, "manual_cast_dtype", None) or base.get_dtype()


def sampling_reserve(base, x: torch.Tensor) -> int:
    """Bytes to leave free on ``x``'s device: the host's reserve and what it wants free to batch a CFG pair (its
    own test: 1.5 times the model's estimate for the batch), so holding never turns a batched step into two."""
    batch = max(2, x.shape[0])
    return int(1.5 * base.memory_required((batch, *x.shape[1:])) + comfy.model_management.minimum_inference_memory())


def room_for_weights(device: torch.device, reserve: int) -> int:
    """Bytes more weights may take on ``device`` now, leaving ``reserve`` free."""
    return int(comfy.model_management.get_free_memory(device) - reserve)


def hooks_in_play(base) -> bool:
    """Whether the sampling model carries weight hooks (hook LoRAs, keyframed strengths): the host changes those
    weights in place between calls, so nothing is held for it."""
    patcher = getattr(base, "current_patcher", None)
    return bool(getattr(patcher, "hook_patches", None))


def holds_stored_e4m3(module: torch.nn.Module, device: torch.device) -> bool:
    """Whether holding the layer under FP8 Linear takes the host's own stored weight, no copy: kept in e4m3 on
    ``device`` outside dynamic VRAM (the host merged its patches into it at load and changes it only between
    runs)."""
    return stores_e4m3(module) and not hasattr(module, "_v") and module.weight.device == device


def held_bytes(module: torch.nn.Module, quantize: bool, dtype: torch.dtype, device: torch.device) -> int:
    out = module.weight.shape[0]
    bias = 0 if getattr(module, "bias", None) is None else module.bias.numel() * dtype.itemsize
    if quantize and holds_stored_e4m3(module, device):
        return 4 * out + bias
    if quantize:
        return module.weight.numel() + 4 * out + bias
    return module.weight.numel() * dtype.itemsize + bias


class HeldWeights:
    """The block layers' weights held on each device for the sampling run under way (one store per patched
    MODEL; the host's device clones sample in threads, one device each)."""

    def __init__(self, speed: BlockSpeed, devices: Fp8Devices):
        self.speed, self.devices = speed, devices
        self.held: dict[torch.device, tuple[object, list[torch.nn.Module]]] = {}
        self.lock = threading.Lock()

    def apply_model(self, executor, x, *args, **kwargs):
        """The host's APPLY_MODEL wrapper: decide fp8 on this device, (re)hold the weights when the model or its
        weight patches changed, then the model call."""
        base = executor.class_obj
        if self.speed.fp8:
            self.devices.decide(x.device, compute_dtype(base))
        key = (id(base), getattr(base, "current_weight_patches_uuid", None))
        if self.held.get(x.device, (None,))[0] != key:
            self.release(x.device)
            self.hold(base, x, key)
        return executor(x, *args, **kwargs)

    def outer_sample(self, executor, *args, **kwargs):
        """The host's OUTER_SAMPLE wrapper: whatever happens in the sampling, the held weights go at its end."""
        try:
            return executor(*args, **kwargs)
        finally:
            for device in list(self.held):
                self.release(device)

    def wanted(self, module: torch.nn.Module, x: torch.Tensor) -> bool | None:
        """Whether to hold ``module``'s weight, and quantized (True) or in the compute dtype (False)."""
        if uses_fp8(module, x, self.speed, self.devices):
            return True
        return False if self.speed.compiled and casts_weights(module) else None

    @torch.no_grad()
    def hold(self, base, x: torch.Tensor, key: object) -> None:
        """Cast and keep block by block while the next block fits (:func:`room_for_weights`, read afresh: each
        cast may bring the host's own pages in); recorded as it goes, so a failure lets go of what was held."""
        device, dtype = x.device, compute_dtype(base)
        holding: list[torch.nn.Module] = []
        with self.lock:
            self.held[device] = (key, holding)
        if hooks_in_play(base):
            log.info("EX-4D: weight hooks on the model: block weights are cast at each call")
            return
        blocks = base.diffusion_model.blocks
        reserve = sampling_reserve(base, x)
        try:
            for index, block in enumerate(blocks):
                plan = [(m, q) for m in block.modules() if is_block_forward(getattr(m, "forward", None))
                        and (q := self.wanted(m, x)) is not None]
                need = sum(held_bytes(m, q, dtype, device) for m, q in plan)
                if need > room_for_weights(device, reserve):
                    log.info("EX-4D: block weights held for %d of %d blocks (the next needs %.2f GiB more)", index,
                             len(blocks), need / 1024**3)
                    break
                for module, quantize in plan:
                    holding.append(module)
                    setattr(module, HELD, _cast_once(module, quantize, dtype, device))
        except BaseException:
            self.release(device)
            raise

    def release(self, device: torch.device) -> None:
        with self.lock:
            _, modules = self.held.pop(device, (None, []))
        for module in modules:
            module.__dict__.pop(HELD, None)


def _cast_once(module: torch.nn.Module, quantize: bool, dtype: torch.dtype,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The layer's weight and bias as the host casts them (patches applied), quantized or copied (a cast may hand
    back the host's own buffer); a weight the host keeps in e4m3 as it is (:func:`holds_stored_e4m3`: not
    copied)."""
    if quantize and stores_e4m3(module):
        with e4m3_cast(module, device, dtype) as (weight, bias):
            wq, scale = _as_e4m3(weight)
            if wq is weight:  # the host's own tensor: its stored weight taken as it is, any other copied
                wq = wq.detach() if holds_stored_e4m3(module, device) else wq.clone()
            return wq, scale, None if bias is None else bias.clone()
    with host_cast(module, dtype=dtype, device=device, bias_dtype=dtype) as (weight, bias):
        if quantize:
            return (*fp8.quantize_weight(weight), None if bias is None else bias.clone())
        return weight.clone(), None, None if bias is None else bias.clone()


def block_speed(model) -> BlockSpeed:
    """The speed the model's block layers run with (the default where no speed node patched them)."""
    return model.model_options.get("transformer_options", {}).get(KEY, BlockSpeed())


def with_speed(model, **changes: bool):
    """A clone of ``model`` whose block layers run :func:`block_forward` and hold their weights during sampling
    (:class:`HeldWeights`), with the speed it had changed by ``changes`` (EX-4D FP8 Linear: ``fp8=True``, Compile
    Blocks: ``compiled=True``): a model through both nodes gets both. ``model`` and its weights are untouched."""
    speed = BlockSpeed(**{**block_speed(model).__dict__, **changes})
    patched = model.clone()
    for wrapper in (comfy.patcher_extension.WrappersMP.APPLY_MODEL, comfy.patcher_extension.WrappersMP.OUTER_SAMPLE):
        patched.remove_wrappers_with_key(wrapper, KEY)
    devices = Fp8Devices()
    forward = block_forward(speed, devices)
    for key, module in block_layers(patched).items():
        patched.add_object_patch(key, types.MethodType(forward, module))
    store = HeldWeights(speed, devices)
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, KEY, store.apply_model)
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, KEY, store.outer_sample)
    rebind_on_device_clones(patched, KEY, bound_block_forward)
    patched.model_options.setdefault("transformer_options", {})[KEY] = speed
    return patched
