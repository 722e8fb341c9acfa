"""Opt-in speed settings for the Wan 2.1 DiT, each its node and its patch on a clone of the MODEL (the input
MODEL and its weights untouched): the attention backend (a model option), scaled fp8 Linear layers (object
patches of the block Linears' ``forward``) and compiled blocks (the host's compile wrapper)."""

from __future__ import annotations

import logging
from pathlib import Path

import comfy.patcher_extension
import folder_paths
import torch
from comfy_api.latest import io
from comfy_api.torch_helpers import torch_compile as host_compile

from ..ex4d import compile_cache
from ..ex4d.attention import BackendAttention
from ._comfy import CATEGORY
from ._validation import CheckedNode
from .block_weights import block_linears, with_speed
from .wan_checks import check_wan_dit

log = logging.getLogger(__name__)

ATTENTION_BACKENDS = ("cudnn", "host")
ATTENTION_OVERRIDE = "optimized_attention_override"  # the host's hook for a model's attention function
ATTENTION_ORDER_KEY = "ex4d_attention_order"
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


class BackendOrder:
    """An APPLY_MODEL wrapper: the model runs with PyTorch's attention backends in the chosen one's order (what
    compiled blocks take their attention kernels by, see ``BackendAttention.backend_order``)."""

    def __init__(self, attention: BackendAttention):
        self.attention = attention

    def __call__(self, executor, *args, **kwargs):
        with self.attention.backend_order():
            return executor(*args, **kwargs)


def with_attention(model, backend: str):
    """A clone of ``model`` whose attention runs on ``backend`` (``ex4d.attention.BACKENDS``) where PyTorch
    has a kernel of it; ``model`` is untouched. Model options only: the merged weights are shared."""
    patched = model.clone()
    options = patched.model_options["transformer_options"]
    attention = BackendAttention(backend)
    options[ATTENTION_OVERRIDE] = AttentionOverride(attention, options.get(ATTENTION_OVERRIDE))
    patched.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, ATTENTION_ORDER_KEY)
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, ATTENTION_ORDER_KEY,
                                 BackendOrder(attention))
    return patched


class Attention(CheckedNode):
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
        if backend == "host":
            return io.NodeOutput(model)
        return io.NodeOutput(with_attention(model, backend))


def with_fp8_linear(model):
    """A clone of ``model`` whose transformer-block Linear layers multiply in scaled fp8 (``ex4d.fp8``) where
    the GPU can, each weight quantized once per sampling run where the weights fit (``block_weights``); ``model``
    and its weights are untouched."""
    check_wan_dit(model)
    if not block_linears(model):
        # a speed option the fast workflow ships on: a GGUF or scaled fp8 file runs as the host runs it
        log.warning("EX-4D FP8 Linear: this model's block Linear layers are quantized by their loader (a GGUF or "
                    "scaled fp8 file) and multiplied by it; the model is passed on unchanged. EX-4D FP8 Linear "
                    "works on bf16, fp16 and fp8_e4m3fn files.")
        return model
    return with_speed(model, fp8=True)


class FP8Linear(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DFP8Linear",
            display_name="EX-4D FP8 Linear",
            category=CATEGORY,
            description="Multiply the Wan DiT's block Linear layers in fp8 (e4m3) with proper scales: a scale per "
            "weight row and per token, so nothing is clamped. Opt-in (on in the fast workflow): faster on GPUs with "
            "fp8 tensor cores (Ada, Hopper), at an error stated in the README; elsewhere the layers run as before. "
            "Works on bf16, fp16 and fp8_e4m3fn weight files (the layers of a scaled fp8 or a GGUF file stay "
            "with their loader: on such a file the model passes unchanged); LoRAs (EX-4D's too) are applied "
            "before quantising. An fp8_e4m3fn file's weights are multiplied as ComfyUI keeps them "
            "(LoRAs merged), not quantized again; a bf16 or fp16 weight is quantized once per run. The fp8 "
            "weights are held while sampling where they fit beside it (about 13 GiB for the 14B DiT, given back "
            "when the run ends); elsewhere a bf16 or fp16 weight is quantized at each call. To compare, bypass "
            "the node (Ctrl+B).",
            inputs=[
                io.Model.Input("model", tooltip="A Wan 2.1 DiT; for EX-4D, the output of EX-4D LoRA."),
            ],
            outputs=[io.Model.Output(display_name="model")],
        )

    @classmethod
    def execute(cls, model) -> io.NodeOutput:
        return io.NodeOutput(with_fp8_linear(model))


def compile_cache_root() -> Path:
    """Where compiled kernels are kept between ComfyUI starts: the host's user directory (its temp directory is
    emptied at every start)."""
    return Path(folder_paths.get_user_directory()) / "ex4d" / "torch_compile"


class ContiguousInput(torch.nn.Module):
    """A compiled block called with a contiguous input. The first block gets the patch embedding's transposed view,
    the others contiguous tensors, and dynamo guards on strides: without this the first block had a compiled
    graph of its own (two compiles at the first run, two traces at every start)."""

    def __init__(self, compiled: torch.nn.Module):
        super().__init__()
        self.compiled = compiled

    def forward(self, x: torch.Tensor, *args, **kwargs):
        return self.compiled(x.contiguous(), *args, **kwargs)

    def __getattr__(self, name: str):
        """The block's own attributes, as the host's compiled module gives them: code that reads a block while
        the compiled ones are swapped in finds what it reads."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "compiled":  # not set yet (a copy being built): no reading through
                raise
            return getattr(self.compiled, name)


def with_compiled_blocks(model):
    """A clone of ``model`` whose transformer blocks run under ``torch.compile`` (one compiled code for all
    blocks; inductor fuses the norms, RoPE and modulation, and fp8 quantising, around the matmuls and attention
    calls), swapped in for sampling by the host's compile wrapper, the block layers' weights held during sampling
    where they fit (so no host cast cuts the graph) and the compiled code kept on disk (``ex4d.compile_cache``).
    It replaces another compile wrapper of the host's (TorchCompileModel) on the same model."""
    check_wan_dit(model)
    compile_cache.use_folder(compile_cache_root())
    patched = with_speed(model, compiled=True)
    compiled = {
        f"diffusion_model.blocks.{i}": ContiguousInput(torch.compile(block, backend=COMPILE_BACKEND))
        for i, block in enumerate(patched.get_model_object("diffusion_model.blocks"))
    }
    apply_model = comfy.patcher_extension.WrappersMP.APPLY_MODEL
    patched.remove_wrappers_with_key(apply_model, host_compile.COMPILE_KEY)
    patched.add_wrapper_with_key(apply_model, host_compile.COMPILE_KEY, host_compile.apply_torch_compile_factory(compiled))
    patched.model_options[host_compile.TORCH_COMPILE_KWARGS] = {"backend": COMPILE_BACKEND}
    return patched


class CompileBlocks(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DCompileBlocks",
            display_name="EX-4D Compile Blocks",
            category=CATEGORY,
            description="Run the Wan DiT's transformer blocks under torch.compile (the host's compile wrapper; "
            "the compiled code shared by all blocks), fusing the norms, RoPE and modulation, and EX-4D FP8 "
            "Linear's quantising, between the matmuls and attention calls. Where the host casts weights at each "
            "call (dynamic VRAM, partial loading) the block weights are cast once per run and held while "
            "sampling if they fit beside it (with EX-4D FP8 Linear in fp8: half the memory); blocks that do not "
            "fit run uncompiled at each layer's cast. The first run compiles; later runs, clips of the same size "
            "and later ComfyUI starts reuse it (kept under ComfyUI's user folder, ex4d/torch_compile: delete it "
            "to clear). It gains most together with EX-4D FP8 Linear (measured in the README). Replaces the "
            "host's "
            "TorchCompileModel on the same model; leave it out of graphs with MultiGPU CFG Split. Needs Triton "
            "on the GPU.",
            inputs=[
                io.Model.Input("model", tooltip="A Wan 2.1 DiT, after EX-4D LoRA / Attention / FP8 Linear."),
            ],
            outputs=[io.Model.Output(display_name="model")],
        )

    @classmethod
    def execute(cls, model) -> io.NodeOutput:
        return io.NodeOutput(with_compiled_blocks(model))


NODES = [Attention, FP8Linear, CompileBlocks]
