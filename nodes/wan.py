"""Generation nodes: EX-4D adapter loading, EX-4D Apply on a Wan 2.1 I2V MODEL, the published sampler,
and prompt embeddings stored on disk (so the 11 GB umT5-XXL encoder is needed once, not every run)."""

from __future__ import annotations

import os
from pathlib import Path

import comfy.clip_vision
import comfy.model_patcher
import comfy.samplers
import comfy.sd
import folder_paths
import torch
from comfy_api.latest import io

from ..ex4d import adapter as ex4d_adapter
from ..ex4d import prompt as ex4d_prompt
from ..ex4d import sampling as ex4d_sampling
from . import _wan_patch
from ._comfy import (
    CATEGORY,
    check_choice,
    check_connected,
    check_file,
    check_file_name,
    check_numbers,
    check_output_prefix,
    file_fingerprint,
    input_files,
    output_path,
    resolve_input_file,
)
from ._types import (
    CONNECT_ADAPTER,
    CONNECT_CLIP_VISION,
    CONNECT_CONDITIONING,
    CONNECT_IMAGE,
    CONNECT_LATENT,
    CONNECT_MASK,
    CONNECT_MODEL,
    CONNECT_VAE,
    Adapter,
)

LORAS_PREFIX = "loras/"
MODELS_EX4D_PREFIX = "models/ex4d/"
MAX_SIZE = 8192
ATTENTION_BACKENDS = ("cudnn", "host")


# ---------------------------------------------------------------------------------------------
# File lists


def _folder_files(folder: str) -> list[str]:
    try:
        return folder_paths.get_filename_list(folder)
    except (KeyError, FileNotFoundError):
        return []


def adapter_files() -> list[str]:
    """EX-4D checkpoints: ``models/ex4d`` first, then ``models/loras`` (shown with a ``loras/`` prefix)."""
    ex4d = _folder_files("ex4d")
    loras = [f"{LORAS_PREFIX}{n}" for n in _folder_files("loras")]
    return sorted(ex4d) + sorted(loras)


def resolve_adapter_file(name: str) -> Path:
    check_file_name(name, "adapter_name")
    path = folder_paths.get_full_path("ex4d", name) if "ex4d" in folder_paths.folder_names_and_paths else None
    if path is None and name.startswith(LORAS_PREFIX):
        path = folder_paths.get_full_path("loras", name[len(LORAS_PREFIX) :])
    if path is None or not os.path.isfile(path):
        raise ValueError(
            f"adapter_name: '{name}' was not found in models/ex4d or models/loras; put the EX-4D checkpoint there "
            "and refresh, or choose one from the list"
        )
    return Path(path)


def prompt_files() -> list[str]:
    """Prompt-embedding files: .safetensors in the input folder, and in models/ex4d (prefixed)."""
    models = [f"{MODELS_EX4D_PREFIX}{n}" for n in _folder_files("ex4d") if n.endswith(".safetensors")]
    return input_files(extensions=(".safetensors",)) + sorted(models)


def resolve_prompt_file(name: str) -> Path:
    check_file_name(name, "embeddings")
    if name.startswith(MODELS_EX4D_PREFIX):
        path = folder_paths.get_full_path("ex4d", name[len(MODELS_EX4D_PREFIX) :])
        if path is None:
            raise ValueError(f"embeddings: '{name}' was not found in models/ex4d")
        return Path(path)
    return resolve_input_file(name, "embeddings")


# ---------------------------------------------------------------------------------------------
# Adapter


class AdapterLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DAdapterLoader",
            display_name="EX-4D Adapter Loader",
            category=CATEGORY,
            description="Load the EX-4D checkpoint (ex4d.ckpt or a safetensors copy): the LoRA for the Wan 2.1 "
            "I2V DiT and the camera encoder. Read weights-only; put it in models/ex4d (models/loras also works).",
            inputs=[
                io.Combo.Input(
                    "adapter_name",
                    options=adapter_files(),
                    tooltip="A file in models/ex4d, or in models/loras (shown as loras/...).",
                ),
            ],
            outputs=[Adapter.Output(display_name="adapter"), io.String.Output(display_name="info")],
        )

    @classmethod
    def validate_inputs(cls, adapter_name=None) -> bool | str:
        return check_file(resolve_adapter_file, adapter_name)

    @classmethod
    def fingerprint_inputs(cls, adapter_name) -> str:
        return file_fingerprint(resolve_adapter_file, adapter_name)

    @classmethod
    def execute(cls, adapter_name) -> io.NodeOutput:
        path = resolve_adapter_file(adapter_name)
        try:
            adapter = ex4d_adapter.load_adapter(path)
        except ex4d_adapter.AdapterError as e:
            raise ValueError(f"adapter_name: {e}") from e
        return io.NodeOutput(adapter, adapter.describe())


class SaveAdapterSafetensors(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DSaveAdapterSafetensors",
            display_name="EX-4D Save Adapter (safetensors)",
            category=CATEGORY,
            description="Write a safetensors copy of a loaded EX-4D checkpoint into ComfyUI's output folder "
            "(published names, rank and alpha in the metadata). Move it to models/ex4d to use it.",
            inputs=[
                Adapter.Input("adapter", tooltip="From EX-4D Adapter Loader."),
                io.String.Input(
                    "filename_prefix",
                    default="ex4d/ex4d",
                    tooltip="Where the copy goes, relative to the output folder.",
                ),
            ],
            outputs=[io.String.Output(display_name="path")],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, filename_prefix=None) -> bool | str:
        return check_output_prefix(filename_prefix)

    @classmethod
    def execute(cls, adapter, filename_prefix) -> io.NodeOutput:
        check_connected(adapter, ex4d_adapter.EX4DAdapter, "adapter", CONNECT_ADAPTER)
        path = ex4d_adapter.save_safetensors(adapter, output_path(filename_prefix, "safetensors")[0])
        return io.NodeOutput(str(path))


# ---------------------------------------------------------------------------------------------
# Apply


def _strength_input(name: str, tooltip: str) -> io.Float.Input:
    return io.Float.Input(name, default=1.0, min=-10.0, max=10.0, step=0.01, tooltip=tooltip)


class LoRA(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DLoRA",
            display_name="EX-4D LoRA",
            category=CATEGORY,
            description="Put the EX-4D LoRA on a Wan 2.1 I2V model (the host's LoRA patches, merged into the "
            "weights when the model loads). Feed its MODEL to EX-4D Apply. Kept apart from Apply so the merged "
            "weights stay loaded from one clip to the next; the input MODEL is not changed.",
            inputs=[
                io.Model.Input("model", tooltip="Wan2.1-I2V-14B-480P, loaded with any loader."),
                Adapter.Input("adapter", tooltip="From EX-4D Adapter Loader."),
                _strength_input(
                    "strength",
                    "Scale of the EX-4D LoRA on the DiT's attention and FFN layers (0 leaves it out).",
                ),
            ],
            outputs=[io.Model.Output(display_name="model")],
        )

    @classmethod
    def execute(cls, model, adapter, strength: float) -> io.NodeOutput:
        check_connected(model, comfy.model_patcher.ModelPatcher, "model", CONNECT_MODEL)
        check_connected(adapter, ex4d_adapter.EX4DAdapter, "adapter", CONNECT_ADAPTER)
        check_numbers(cls, strength=strength)
        return io.NodeOutput(_wan_patch.with_ex4d_lora(model, adapter, strength))


class Attention(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DAttention",
            display_name="EX-4D Attention Backend",
            category=CATEGORY,
            description="Run the model's attention on one PyTorch backend. cudnn: exact attention, about 1.8x "
            "faster than the flash backend ComfyUI 0.33 puts first, at EX-4D's sizes on an H100 (results differ "
            "by floating-point round-off only). Calls it has no kernel for (CPU, older GPUs, masks) run on "
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
        return io.NodeOutput(_wan_patch.with_attention(model, backend))


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
        return io.NodeOutput(_wan_patch.with_fp8_linear(model))


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
            "step compiles (about 20 s on an H200); later steps and clips of the same size reuse it. Measured a "
            "step (H200, README): 2 % faster alone, 9 % with EX-4D FP8 Linear. Replaces the host's "
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
        return io.NodeOutput(_wan_patch.with_compiled_blocks(model))


class Apply(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DApply",
            display_name="EX-4D Apply",
            category=CATEGORY,
            description="Condition a Wan 2.1 I2V model that went through EX-4D LoRA on the rendered colour and "
            "mask videos (the camera encoder, added after the patch embedding) and build the standard I2V "
            "conditioning from the masked first frame. The input MODEL is not changed; sample the outputs with "
            "EX-4D Wan Sampler (published schedule) or a stock sampler.",
            inputs=[
                io.Model.Input("model", tooltip="The MODEL output of EX-4D LoRA (Wan2.1-I2V-14B-480P)."),
                Adapter.Input("adapter", tooltip="From EX-4D Adapter Loader (the one EX-4D LoRA used)."),
                io.Vae.Input("vae", tooltip="The Wan 2.1 VAE."),
                io.Conditioning.Input("positive", tooltip="The encoded prompt (umT5-XXL)."),
                io.Conditioning.Input("negative", tooltip="The encoded negative prompt (umT5-XXL)."),
                io.Image.Input("colour", tooltip="Rendered colour video (frame 0: the source frame)."),
                io.Mask.Input(
                    "mask", tooltip="Visibility mask video (1 visible, 0 hole), the colour's size."
                ),
                io.Int.Input(
                    "width",
                    default=ex4d_sampling.PUBLISHED_SIZE,
                    min=16,
                    max=MAX_SIZE,
                    step=16,
                    tooltip="render aspect: the width of the box the generation size fits in. stretch and "
                    "crop: the generation width.",
                ),
                io.Int.Input(
                    "height",
                    default=ex4d_sampling.PUBLISHED_SIZE,
                    min=16,
                    max=MAX_SIZE,
                    step=16,
                    tooltip="render aspect: the height of the box the generation size fits in. stretch and "
                    "crop: the generation height.",
                ),
                io.Int.Input(
                    "length",
                    default=ex4d_sampling.PUBLISHED_FRAMES,
                    min=1,
                    max=MAX_SIZE,
                    step=ex4d_sampling.TEMPORAL_COMPRESSION,
                    tooltip="Frames (4k + 1). EX-4D was trained on 49.",
                ),
                io.Int.Input(
                    "mask_erosion",
                    default=ex4d_adapter.DEFAULT_EROSION,
                    min=0,
                    max=64,
                    tooltip="fixed erosion_mode: the square erosion kernel applied to every mask frame "
                    "before binarising at 0.5; 0 or 1 disables it.",
                ),
                _strength_input(
                    "adapter_strength",
                    "Scale of the camera encoder's output added after the patch embedding.",
                ),
                io.Combo.Input(
                    "resize",
                    options=list(ex4d_adapter.RESIZE_MODES),
                    default=ex4d_adapter.RESIZE_RENDER_ASPECT,
                    tooltip="render aspect: generate at the render's own aspect, the largest size that fits "
                    "in width x height, sides rounded to multiples of 16 (a 512x320 render in 512x512 stays "
                    "512x320). stretch (published): squeeze the render to width x height as the published "
                    "script does. crop: cut the render to the aspect of width x height around its centre.",
                ),
                io.Combo.Input(
                    "erosion_mode",
                    options=list(ex4d_adapter.EROSION_MODES),
                    default=ex4d_adapter.EROSION_FIXED,
                    tooltip="fixed: mask_erosion on every frame. random per frame (published): a kernel "
                    "drawn in 2..8 for every frame, as the published script does, from erosion_seed.",
                ),
                io.Int.Input(
                    "erosion_seed",
                    default=ex4d_sampling.PUBLISHED_SEED,
                    min=0,
                    max=0xFFFFFFFFFFFFFFFF,
                    tooltip="random per frame: the seed of the kernel draw (the same seed, the same kernels).",
                ),
                io.ClipVisionOutput.Input(
                    "clip_vision_output",
                    optional=True,
                    tooltip="CLIP-vision features of the first colour frame.",
                ),
            ],
            outputs=[
                io.Model.Output(display_name="model"),
                io.Conditioning.Output(display_name="positive"),
                io.Conditioning.Output(display_name="negative"),
                io.Latent.Output(display_name="latent"),
            ],
        )

    @classmethod
    def execute(
        cls,
        model,
        adapter,
        vae,
        positive,
        negative,
        colour: torch.Tensor,
        mask: torch.Tensor,
        width: int,
        height: int,
        resize: str,
        length: int,
        mask_erosion: int,
        erosion_mode: str,
        erosion_seed: int,
        adapter_strength: float,
        clip_vision_output=None,
    ) -> io.NodeOutput:
        check_connected(model, comfy.model_patcher.ModelPatcher, "model", CONNECT_MODEL)
        check_connected(adapter, ex4d_adapter.EX4DAdapter, "adapter", CONNECT_ADAPTER)
        check_connected(vae, comfy.sd.VAE, "vae", CONNECT_VAE)
        check_connected(positive, list, "positive", CONNECT_CONDITIONING)
        check_connected(negative, list, "negative", CONNECT_CONDITIONING)
        check_connected(colour, torch.Tensor, "colour", CONNECT_IMAGE)
        check_connected(mask, torch.Tensor, "mask", CONNECT_MASK)
        check_connected(clip_vision_output, comfy.clip_vision.Output, "clip_vision_output", CONNECT_CLIP_VISION,
                        optional=True)
        check_numbers(cls, width=width, height=height, length=length, mask_erosion=mask_erosion,
                      erosion_seed=erosion_seed, adapter_strength=adapter_strength)
        info = _wan_patch.check_wan_i2v(model)
        _wan_patch.check_adapter_fits(model, info, adapter)
        if _wan_patch.ex4d_lora_strength(model) is None:
            raise ValueError(
                "model: this model has not been through EX-4D LoRA. Connect the Wan model to EX-4D LoRA and "
                "its MODEL output here (strength 0 there leaves the LoRA out on purpose)."
            )
        _wan_patch.check_wan_vae(vae)
        colour, mask = _videos_at_generation_size(colour, mask, width, height, resize, length)
        kernels = ex4d_adapter.erosion_kernels(length, erosion_mode, mask_erosion, erosion_seed)
        inputs = ex4d_adapter.prepare_camera_inputs(colour, mask, erosion=kernels)
        latent_format = model.get_model_object("latent_format")

        def encode(video_pm1: torch.Tensor) -> torch.Tensor:
            # The published VAE returns normalised latents; the camera encoder was trained on those.
            return latent_format.process_in(_wan_patch.vae_encode_pm1(vae, video_pm1))

        camera_latents = ex4d_adapter.camera_latents(inputs, encode)
        patched = _wan_patch.with_camera(model, adapter, camera_latents, adapter_strength)

        # Standard I2V conditioning from the first (source) frame: the host's own WanImageToVideo
        from comfy_extras.nodes_wan import WanImageToVideo

        positive, negative, latent = WanImageToVideo.execute(
            positive=positive,
            negative=negative,
            vae=vae,
            width=colour.shape[2],
            height=colour.shape[1],
            length=length,
            batch_size=1,
            start_image=ex4d_adapter.first_frame(colour, inputs),
            clip_vision_output=clip_vision_output,
        ).args
        return io.NodeOutput(patched, positive, negative, latent)


def _videos_at_generation_size(
    colour: torch.Tensor, mask: torch.Tensor, width: int, height: int, resize: str, length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``length`` colour [T, H, W, 3] and mask [T, H, W] frames, resized as ``resize`` says."""
    if (length - 1) % ex4d_sampling.TEMPORAL_COMPRESSION:
        raise ValueError(f"length: must be 4k + 1 (e.g. 49), got {length}")
    if mask.ndim == 2:
        mask = mask[None]
    for name, video in (("colour", colour), ("mask", mask)):
        if video.shape[0] < length:
            raise ValueError(
                f"{name}: has {video.shape[0]} frames, length asks for {length}; lower length or render more frames"
            )
    if mask.shape[1:3] != colour.shape[1:3]:
        raise ValueError(
            f"mask: is {mask.shape[2]}x{mask.shape[1]} but colour is {colour.shape[2]}x{colour.shape[1]}; "
            "connect the colour and mask outputs of the same EX-4D Render Views"
        )
    colour = ex4d_adapter.resize_video(colour[:length, ..., :3].float(), width, height, resize)
    mask = ex4d_adapter.resize_video(mask[:length].float(), width, height, resize)
    return colour, mask


# ---------------------------------------------------------------------------------------------
# Sampler


class WanSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DWanSampler",
            display_name="EX-4D Wan Sampler",
            category=CATEGORY,
            description="Flow-matching Euler sampling exactly as published: sigmas linspace(1, 0, steps + 1) "
            "shifted by 5, timestep 1000 sigma, float32 CPU noise from the seed, classifier-free guidance. "
            "Runs on the host's sampler (cond/uncond batching, memory management, previews).",
            inputs=[
                io.Model.Input("model", tooltip="The model from EX-4D Apply."),
                io.Conditioning.Input("positive", tooltip="positive from EX-4D Apply."),
                io.Conditioning.Input("negative", tooltip="negative from EX-4D Apply."),
                io.Latent.Input(
                    "latent", tooltip="latent from EX-4D Apply (its size fits the camera latents)."
                ),
                io.Int.Input(
                    "seed",
                    default=ex4d_sampling.PUBLISHED_SEED,
                    min=0,
                    max=0xFFFFFFFFFFFFFFFF,
                    control_after_generate=True,
                    tooltip="Seed of the initial noise (float32, drawn on the CPU, as published).",
                ),
                io.Int.Input(
                    "steps",
                    default=ex4d_sampling.PUBLISHED_STEPS,
                    min=1,
                    max=1000,
                    tooltip="Euler steps (published: 25).",
                ),
                io.Float.Input(
                    "cfg",
                    default=ex4d_sampling.PUBLISHED_CFG,
                    min=0.0,
                    max=100.0,
                    step=0.1,
                    tooltip="Classifier-free guidance scale (published: 5); 1 skips the negative pass.",
                ),
                io.Float.Input(
                    "shift",
                    default=ex4d_sampling.PUBLISHED_SHIFT,
                    min=0.01,
                    max=100.0,
                    step=0.01,
                    tooltip="Sigma shift s -> shift s / (1 + (shift - 1) s) of the flow-matching schedule "
                    "(published: 5).",
                ),
            ],
            outputs=[io.Latent.Output(display_name="latent")],
        )

    @classmethod
    def execute(
        cls, model, positive, negative, latent: dict, seed: int, steps: int, cfg: float, shift: float
    ) -> io.NodeOutput:
        check_connected(model, comfy.model_patcher.ModelPatcher, "model", CONNECT_MODEL)
        check_connected(positive, list, "positive", CONNECT_CONDITIONING)
        check_connected(negative, list, "negative", CONNECT_CONDITIONING)
        check_connected(latent, dict, "latent", CONNECT_LATENT)
        check_numbers(cls, seed=seed, steps=steps, cfg=cfg, shift=shift)
        # the host's SamplerCustom with the published sigmas and Euler: its noise (float32, CPU generator
        # seeded with the seed) is the published noise; previews, progress and memory management come along
        from comfy_extras.nodes_custom_sampler import SamplerCustom

        sigmas = ex4d_sampling.flow_match_sigmas(steps, shift)
        sampler = comfy.samplers.sampler_object("euler")
        result = SamplerCustom.execute(
            model=model,
            add_noise=True,
            noise_seed=seed,
            cfg=cfg,
            positive=positive,
            negative=negative,
            sampler=sampler,
            sigmas=sigmas,
            latent_image=latent,
        )
        return io.NodeOutput(result.args[0])


# ---------------------------------------------------------------------------------------------
# Prompt embeddings


class SavePromptEmbeddings(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DSavePromptEmbeddings",
            display_name="EX-4D Save Prompt Embeddings",
            category=CATEGORY,
            description="Store a CONDITIONING (e.g. the umT5-XXL encoding of the EX-4D prompt) as safetensors in "
            "the output folder, so later runs need no text encoder. Move the file to models/ex4d or input.",
            inputs=[
                io.Conditioning.Input(
                    "conditioning", tooltip="E.g. CLIPTextEncode with the umT5-XXL encoder."
                ),
                io.String.Input(
                    "filename_prefix",
                    default="ex4d/prompt_embeddings",
                    tooltip="Where the file goes, relative to the output folder.",
                ),
                io.String.Input(
                    "prompt",
                    default=ex4d_prompt.PUBLISHED_PROMPT,
                    multiline=True,
                    tooltip="Recorded in the file's metadata (the text that was encoded).",
                ),
            ],
            outputs=[io.String.Output(display_name="path")],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, filename_prefix=None) -> bool | str:
        return check_output_prefix(filename_prefix)

    @classmethod
    def execute(cls, conditioning, filename_prefix, prompt) -> io.NodeOutput:
        check_connected(conditioning, list, "conditioning", CONNECT_CONDITIONING)
        entries = [(c[0], c[1]) for c in conditioning]
        path = ex4d_prompt.save_prompt_embeddings(
            entries, output_path(filename_prefix, "safetensors")[0], prompt
        )
        return io.NodeOutput(str(path))


class LoadPromptEmbeddings(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DLoadPromptEmbeddings",
            display_name="EX-4D Load Prompt Embeddings",
            category=CATEGORY,
            description="Load a CONDITIONING saved by EX-4D Save Prompt Embeddings (input folder or models/ex4d). "
            "Embeddings of fewer than 512 tokens are padded with zeros to 512, as the umT5-XXL encoder's output is.",
            inputs=[
                io.Combo.Input(
                    "embeddings",
                    options=prompt_files(),
                    tooltip="A .safetensors file in the input folder, or in models/ex4d (shown as models/ex4d/...).",
                )
            ],
            outputs=[
                io.Conditioning.Output(display_name="conditioning"),
                io.String.Output(display_name="prompt"),
            ],
        )

    @classmethod
    def validate_inputs(cls, embeddings=None) -> bool | str:
        return check_file(resolve_prompt_file, embeddings)

    @classmethod
    def fingerprint_inputs(cls, embeddings) -> str:
        return file_fingerprint(resolve_prompt_file, embeddings)

    @classmethod
    def execute(cls, embeddings) -> io.NodeOutput:
        try:
            entries, prompt = ex4d_prompt.load_prompt_embeddings(resolve_prompt_file(embeddings))
        except ValueError as e:
            raise ValueError(f"embeddings: {e}") from e
        conditioning = [[cond, {"pooled_output": None, **extra}] for cond, extra in entries]
        return io.NodeOutput(conditioning, prompt)


NODES = [
    AdapterLoader,
    SaveAdapterSafetensors,
    LoRA,
    Attention,
    FP8Linear,
    CompileBlocks,
    Apply,
    WanSampler,
    SavePromptEmbeddings,
    LoadPromptEmbeddings,
]
