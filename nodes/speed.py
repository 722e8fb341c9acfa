"""Opt-in speed settings for the Wan 2.1 DiT, each its node and its patch on a clone of the MODEL (the input
MODEL and its weights untouched): the attention backend (a model option), scaled fp8 Linear layers (object
patches of the block Linears' ``forward``) and compiled blocks (the host's compile wrapper)."""

from __future__ import annotations

import logging
import types

import comfy.model_patcher
import comfy.ops
import comfy.patcher_extension
import torch
from comfy_api.latest import io
from comfy_api.torch_helpers import set_torch_compile_wrapper

from ..ex4d import fp8
from ..ex4d.attention import BackendAttention
from ._comfy import CATEGORY, check_choice, check_connected
from ._device_clones import rebind_on_device_clones
from ._types import CONNECT_MODEL
from .wan_checks import check_wan_dit

log = logging.getLogger(__name__)

ATTENTION_BACKENDS = ("cudnn", "host")
ATTENTION_OVERRIDE = "optimized_attention_override"  # the host's hook for a model's attention function
FP8_KEY = "ex4d_fp8_linear"
COMPILE_BACKEND = "inductor"


class AttentionOverride:
    """The host's ``optimized_attention_override``: attention on one PyTorch backend where it has a kernel;
    masked calls and calls it has no kernel for go to the override this one replaced, else the host's own (in
    compiled code, unmasked calls without a kernel go to PyTorch's next exact backend: see BackendAttention)."""

    def __init__(self, attention: BackendAttention, previous=None):
        self.attention = attention
        self.previous = previous

    def __call__(self, func, q, k, v, heads, mask=None, skip_reshape=False, skip_output_reshape=False, **kwargs):
        def host_attention() -> torch.Tensor:
            if self.previous is not None:
                return self.previous(
                    func, q, k, v, heads, mask=mask, skip_reshape=skip_reshape,
                    skip_output_reshape=skip_output_reshape, **kwargs,
                )
            return func(
                q, k, v, heads, mask=mask, skip_reshape=skip_reshape, skip_output_reshape=skip_output_reshape,
                **kwargs,
            )

        if mask is not None or kwargs.get("enable_gqa"):
            return host_attention()
        return self.attention(
            q, k, v, heads, host_attention, skip_reshape, skip_output_reshape, scale=kwargs.get("scale")
        )


def with_attention(model, backend: str):
    """A clone of ``model`` whose attention runs on ``backend`` (``ex4d.attention.BACKENDS``) where PyTorch
    has a kernel of it; ``model`` is untouched. Model options only: the merged weights are shared."""
    patched = model.clone()
    options = patched.model_options["transformer_options"]
    options[ATTENTION_OVERRIDE] = AttentionOverride(BackendAttention(backend), options.get(ATTENTION_OVERRIDE))
    return patched


class Attention(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DAttention",
            display_name="EX-4D Attention Backend",
            category=CATEGORY,
            description="Run the model's attention on one PyTorch backend. cudnn: exact attention, faster than "
            "the flash backend ComfyUI 0.33 puts first at EX-4D's sizes on Hopper GPUs (results differ by "
            "floating-point round-off only). Calls it has no kernel for (CPU, older GPUs, masks) run on "
            "the host's attention as before (under EX-4D Compile Blocks: on PyTorch's next exact backend). Only "
            "the output MODEL is changed; its weights stay shared.",
            inputs=[
                io.Model.Input("model", tooltip="Any model; for EX-4D, the output of EX-4D LoRA."),
                io.Combo.Input(
                    "backend",
                    options=list(ATTENTION_BACKENDS),
                    default=ATTENTION_BACKENDS[0],
                    tooltip="cudnn: PyTorch's cuDNN attention where it runs (NVIDIA, cuDNN 9; fastest on "
                    "Hopper). host: leave the attention to the host (its --use-*-attention options).",
                ),
            ],
            outputs=[io.Model.Output(display_name="model")],
        )

    @classmethod
    def execute(cls, model, backend: str) -> io.NodeOutput:
        check_connected(model, comfy.model_patcher.ModelPatcher, "model", CONNECT_MODEL)
        if check_choice(backend, ATTENTION_BACKENDS, "backend") == "host":
            return io.NodeOutput(model)
        return io.NodeOutput(with_attention(model, backend))


class Fp8Devices:
    """Whether scaled fp8 runs on each device (``ex4d.fp8.can_run``), decided by the host's APPLY_MODEL wrapper
    before the blocks run: the probe and its log line would break a compiled block's graph."""

    def __init__(self):
        self.usable: dict[torch.device, bool] = {}

    def decide(self, device: torch.device) -> bool:
        if device not in self.usable:
            usable = self.usable.setdefault(device, fp8.can_run(device))
            how = "scaled fp8 (e4m3)" if usable else "the host's Linear (no fp8 matmul here)"
            log.info("EX-4D fp8 Linear on %s: %s", device, how)
        return self.usable[device]

    def apply_model(self, executor, x, *args, **kwargs):
        self.decide(x.device)
        return executor(x, *args, **kwargs)


def casts_weights(module: torch.nn.Module) -> bool:
    """The host's own test in its Linear ``forward`` (comfy.ops): whether the layer's weight is cast at each call
    (manual cast of a stored dtype, offloaded or streamed weights, weight patches applied on the fly)."""
    return bool(getattr(module, "comfy_cast_weights", False) or getattr(module, "weight_function", None)
                or getattr(module, "bias_function", None))


def fp8_forward(devices: Fp8Devices):
    """The ``forward`` that EX-4D FP8 Linear binds to each block Linear of one model (``types.MethodType``: one
    function for all layers, so a compiled block's guards hold for every block): the layer's weight and bias as
    the host's Linear takes them (where the host casts them at each call, its own cast: to the input's device and
    dtype, weight patches such as LoRAs applied, offloaded weights streamed in), then
    :func:`ex4d.fp8.scaled_linear`. On a device where fp8 cannot run (or one not
    decided, a call from outside the sampler's passes) and for sizes ``torch._scaled_mm`` does not take, the
    layer's class ``forward`` runs instead."""

    def forward(module: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
        if (not x.is_floating_point() or not fp8.fits(module.in_features, module.out_features)
                or not devices.usable.get(x.device, False)):
            return type(module).forward(module, x)
        comfy.ops.run_every_op()
        if not casts_weights(module):  # as the host's Linear: its stored weight as it is (and no graph break)
            return fp8.scaled_linear(x, module.weight, module.bias)
        weight, bias, offload_stream = comfy.ops.cast_bias_weight(module, x, offloadable=True)
        out = fp8.scaled_linear(x, weight, bias)
        comfy.ops.uncast_bias_weight(module, weight, bias, offload_stream)
        return out

    setattr(forward, FP8_KEY, True)
    return forward


def is_fp8_forward(patch) -> bool:
    return isinstance(patch, types.MethodType) and getattr(patch.__func__, FP8_KEY, False)


def block_linears(model) -> dict[str, torch.nn.Linear]:
    """The Linear layers of the DiT's transformer blocks by object-patch key of their ``forward``
    (``diffusion_model.blocks.<i>.<path>.forward``): attention projections and FFN, 12 a block in Wan I2V.
    Layers of a scaled fp8 file (the host's ``scale_weight`` or its quantized layer types) are left out: the
    host's own forward applies their scales."""
    blocks = model.get_model_object("diffusion_model.blocks")
    return {
        f"diffusion_model.blocks.{name}.forward": module
        for name, module in blocks.named_modules()
        if isinstance(module, torch.nn.Linear) and getattr(module, "scale_weight", None) is None
    }


def bound_fp8_forward(patch, module: torch.nn.Module) -> types.MethodType | None:
    """An fp8 Linear patch bound to a device clone's own layer, so each device multiplies with its own weights
    (see rebind_on_device_clones)."""
    return types.MethodType(patch.__func__, module) if is_fp8_forward(patch) else None


def with_fp8_linear(model):
    """A clone of ``model`` whose transformer-block Linear layers multiply in scaled fp8 (``ex4d.fp8``) where
    the GPU can; ``model`` and its weights are untouched (object patches of ``forward``)."""
    check_wan_dit(model)
    patched = model.clone()
    layers = block_linears(patched)
    if not layers:
        raise ValueError(
            "model: its blocks hold no plain Linear layers (a scaled fp8 or otherwise quantized file, whose "
            "layers the host multiplies itself); EX-4D FP8 Linear works on bf16, fp16 and fp8_e4m3fn files"
        )
    devices = Fp8Devices()
    forward = fp8_forward(devices)
    for key, module in layers.items():
        patched.add_object_patch(key, types.MethodType(forward, module))
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, FP8_KEY, devices.apply_model)
    rebind_on_device_clones(patched, FP8_KEY, bound_fp8_forward)
    return patched


class FP8Linear(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DFP8Linear",
            display_name="EX-4D FP8 Linear",
            category=CATEGORY,
            description="Multiply the Wan DiT's block Linear layers in fp8 (e4m3) with proper scales: a scale per "
            "weight row and per token, so nothing is clamped. Opt-in: faster on GPUs with fp8 tensor cores "
            "(Ada, Hopper), at an error stated in the README; elsewhere the layers run as before. Works on bf16, "
            "fp16 and fp8_e4m3fn weight files (a scaled fp8 file's layers stay the host's); LoRAs (EX-4D's too) "
            "are applied before quantising. Weights are not copied. To compare, bypass the node (Ctrl+B).",
            inputs=[
                io.Model.Input("model", tooltip="A Wan 2.1 DiT; for EX-4D, the output of EX-4D LoRA."),
            ],
            outputs=[io.Model.Output(display_name="model")],
        )

    @classmethod
    def execute(cls, model) -> io.NodeOutput:
        check_connected(model, comfy.model_patcher.ModelPatcher, "model", CONNECT_MODEL)
        return io.NodeOutput(with_fp8_linear(model))


def with_compiled_blocks(model):
    """A clone of ``model`` whose transformer blocks run under ``torch.compile`` (the compiled code is shared by
    the blocks; inductor fuses the norms, RoPE and modulation, and fp8 quantising, around the matmuls and
    attention calls), through the host's own compile wrapper. It replaces another compile wrapper of the
    host's (TorchCompileModel) on the same model."""
    check_wan_dit(model)
    patched = model.clone()
    count = len(patched.get_model_object("diffusion_model.blocks"))
    set_torch_compile_wrapper(
        patched, backend=COMPILE_BACKEND, keys=[f"diffusion_model.blocks.{i}" for i in range(count)]
    )
    return patched


class CompileBlocks(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DCompileBlocks",
            display_name="EX-4D Compile Blocks",
            category=CATEGORY,
            description="Run the Wan DiT's transformer blocks under torch.compile (the host's compile wrapper; "
            "the compiled code shared by all blocks), fusing the norms, RoPE and modulation, and EX-4D FP8 "
            "Linear's quantising, between the matmuls and attention calls (with weights loaded whole; under "
            "ComfyUI 0.33's dynamic VRAM the host's weight cast cuts the graph at each Linear layer). The first "
            "step compiles; later steps and clips of the same size reuse it. It gains most together with EX-4D "
            "FP8 Linear (measured in the README). Replaces the host's "
            "TorchCompileModel on the same model; leave it out of graphs with MultiGPU CFG Split. Needs Triton "
            "on the GPU.",
            inputs=[
                io.Model.Input("model", tooltip="A Wan 2.1 DiT, after EX-4D LoRA / Attention / FP8 Linear."),
            ],
            outputs=[io.Model.Output(display_name="model")],
        )

    @classmethod
    def execute(cls, model) -> io.NodeOutput:
        check_connected(model, comfy.model_patcher.ModelPatcher, "model", CONNECT_MODEL)
        return io.NodeOutput(with_compiled_blocks(model))


NODES = [Attention, FP8Linear, CompileBlocks]
