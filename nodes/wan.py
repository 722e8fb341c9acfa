"""Generation nodes: EX-4D adapter loading, EX-4D Apply on a Wan 2.1 I2V MODEL, the published sampler,
and prompt embeddings stored on disk (so the 11 GB umT5-XXL encoder is needed once, not every run)."""

from __future__ import annotations

import os
from pathlib import Path

import comfy.model_management
import comfy.sample
import comfy.samplers
import comfy.utils
import folder_paths
import torch
from comfy_api.latest import io

from ..ex4d import adapter as ex4d_adapter
from ..ex4d import sampling as ex4d_sampling
from . import _wan_patch
from ._comfy import CATEGORY, file_fingerprint, input_files, output_path, resolve_input_file
from ._types import Adapter

LORAS_PREFIX = "loras/"
MODELS_EX4D_PREFIX = "models/ex4d/"
MAX_SIZE = 8192


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
    path = folder_paths.get_full_path("ex4d", name) if "ex4d" in folder_paths.folder_names_and_paths else None
    if path is None and name.startswith(LORAS_PREFIX):
        path = folder_paths.get_full_path("loras", name[len(LORAS_PREFIX) :])
    if path is None or not os.path.isfile(path):
        raise ValueError(f"adapter: '{name}' was not found in models/ex4d or models/loras")
    return Path(path)


def prompt_files() -> list[str]:
    """Prompt-embedding files: .safetensors in the input folder, and in models/ex4d (prefixed)."""
    models = [f"{MODELS_EX4D_PREFIX}{n}" for n in _folder_files("ex4d") if n.endswith(".safetensors")]
    return input_files(extensions=(".safetensors",)) + sorted(models)


def resolve_prompt_file(name: str) -> Path:
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
    def fingerprint_inputs(cls, adapter_name) -> str:
        return file_fingerprint(resolve_adapter_file, adapter_name)

    @classmethod
    def execute(cls, adapter_name) -> io.NodeOutput:
        path = resolve_adapter_file(adapter_name)
        try:
            adapter = ex4d_adapter.load_adapter(path)
        except ex4d_adapter.AdapterError as e:
            raise ValueError(f"adapter: {e}") from e
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
                Adapter.Input("adapter"),
                io.String.Input("filename_prefix", default="ex4d/ex4d"),
            ],
            outputs=[io.String.Output(display_name="path")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, adapter, filename_prefix) -> io.NodeOutput:
        path = ex4d_adapter.save_safetensors(adapter, output_path(filename_prefix, "safetensors")[0])
        return io.NodeOutput(str(path))


# ---------------------------------------------------------------------------------------------
# Apply


def _resize(frames: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """[T, H, W, C] to width x height as the host's Wan nodes do (bilinear, centre crop)."""
    if frames.shape[1] == height and frames.shape[2] == width:
        return frames
    return comfy.utils.common_upscale(frames.movedim(-1, 1), width, height, "bilinear", "center").movedim(
        1, -1
    )


class Apply(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DApply",
            display_name="EX-4D Apply",
            category=CATEGORY,
            description="Patch a Wan 2.1 I2V model with EX-4D (LoRA + camera encoder on the rendered colour and "
            "mask videos) and build the standard I2V conditioning from the first frame. The input MODEL is not "
            "changed; sample the outputs with EX-4D Wan Sampler (published schedule) or a stock sampler.",
            inputs=[
                io.Model.Input("model", tooltip="Wan2.1-I2V-14B-480P, loaded with any loader."),
                Adapter.Input("adapter"),
                io.Vae.Input("vae", tooltip="The Wan 2.1 VAE."),
                io.Conditioning.Input("positive"),
                io.Conditioning.Input("negative"),
                io.Image.Input("colour", tooltip="Rendered colour video (frame 0: the source frame)."),
                io.Mask.Input("mask", tooltip="Visibility mask video (1 visible, 0 hole)."),
                io.Int.Input("width", default=512, min=16, max=MAX_SIZE, step=16),
                io.Int.Input("height", default=512, min=16, max=MAX_SIZE, step=16),
                io.Int.Input(
                    "length",
                    default=49,
                    min=1,
                    max=MAX_SIZE,
                    step=4,
                    tooltip="Frames (4k + 1). EX-4D was trained on 49.",
                ),
                io.Int.Input(
                    "mask_erosion",
                    default=ex4d_adapter.DEFAULT_EROSION,
                    min=0,
                    max=64,
                    tooltip="Square erosion kernel applied to the mask before binarising at 0.5. The "
                    "published script draws it at random in 2..8 on every run; 0 or 1 disables it.",
                ),
                io.Float.Input("lora_strength", default=1.0, min=-10.0, max=10.0, step=0.01),
                io.Float.Input(
                    "adapter_strength",
                    default=1.0,
                    min=-10.0,
                    max=10.0,
                    step=0.01,
                    tooltip="Scale of the camera encoder's output added after the patch embedding.",
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
        colour,
        mask,
        width,
        height,
        length,
        mask_erosion,
        lora_strength,
        adapter_strength,
        clip_vision_output=None,
    ) -> io.NodeOutput:
        info = _wan_patch.check_wan_i2v(model)
        _wan_patch.check_adapter_fits(model, info, adapter)
        _wan_patch.check_wan_vae(vae)
        if (length - 1) % 4:
            raise ValueError(f"length: must be 4k + 1 (e.g. 49), got {length}")
        if width % 16 or height % 16:
            raise ValueError(f"width and height must be multiples of 16, got {width}x{height}")
        if mask.ndim == 2:
            mask = mask[None]
        for name, video in (("colour", colour), ("mask", mask)):
            if video.shape[0] < length:
                raise ValueError(f"{name}: has {video.shape[0]} frames, length asks for {length}")
        colour = _resize(colour[:length, ..., :3].float(), width, height)
        mask = _resize(mask[:length, ..., None].float(), width, height)[..., 0]

        inputs = ex4d_adapter.prepare_camera_inputs(colour, mask, erosion=mask_erosion)
        latent_format = model.get_model_object("latent_format")

        def encode(video_pm1: torch.Tensor) -> torch.Tensor:
            # The published VAE returns normalised latents; the camera encoder was trained on those.
            return latent_format.process_in(_wan_patch.vae_encode_pm1(vae, video_pm1))

        camera_latents = ex4d_adapter.camera_latents(inputs, encode)
        patched = _wan_patch.apply_ex4d(model, adapter, camera_latents, lora_strength, adapter_strength)

        # Standard I2V conditioning from the first (source) frame: the host's own WanImageToVideo
        from comfy_extras.nodes_wan import WanImageToVideo

        positive, negative, latent = WanImageToVideo.execute(
            positive, negative, vae, width, height, length, 1, start_image=colour[:1],
            clip_vision_output=clip_vision_output,
        ).args
        return io.NodeOutput(patched, positive, negative, latent)


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
                io.Model.Input("model"),
                io.Conditioning.Input("positive"),
                io.Conditioning.Input("negative"),
                io.Latent.Input("latent"),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True),
                io.Int.Input("steps", default=ex4d_sampling.PUBLISHED_STEPS, min=1, max=1000),
                io.Float.Input("cfg", default=ex4d_sampling.PUBLISHED_CFG, min=0.0, max=100.0, step=0.1),
                io.Float.Input(
                    "shift", default=ex4d_sampling.PUBLISHED_SHIFT, min=0.01, max=100.0, step=0.01
                ),
            ],
            outputs=[io.Latent.Output(display_name="latent")],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent, seed, steps, cfg, shift) -> io.NodeOutput:
        # the host's SamplerCustom with the published sigmas and Euler: its noise (float32, CPU generator
        # seeded with the seed) is the published noise; previews, progress and memory management come along
        from comfy_extras.nodes_custom_sampler import SamplerCustom

        sigmas = ex4d_sampling.flow_match_sigmas(steps, shift)
        sampler = comfy.samplers.sampler_object("euler")
        result = SamplerCustom.execute(model, True, seed, cfg, positive, negative, sampler, sigmas, latent)
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
                io.Conditioning.Input("conditioning"),
                io.String.Input("filename_prefix", default="ex4d/prompt_embeddings"),
                io.String.Input(
                    "prompt",
                    default=ex4d_sampling.PUBLISHED_PROMPT,
                    multiline=True,
                    tooltip="Recorded in the file's metadata (the text that was encoded).",
                ),
            ],
            outputs=[io.String.Output(display_name="path")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, conditioning, filename_prefix, prompt) -> io.NodeOutput:
        entries = [(c[0], c[1]) for c in conditioning]
        path = ex4d_sampling.save_prompt_embeddings(
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
            description="Load a CONDITIONING saved by EX-4D Save Prompt Embeddings (input folder or models/ex4d).",
            inputs=[io.Combo.Input("embeddings", options=prompt_files())],
            outputs=[
                io.Conditioning.Output(display_name="conditioning"),
                io.String.Output(display_name="prompt"),
            ],
        )

    @classmethod
    def validate_inputs(cls, embeddings) -> bool | str:
        try:
            resolve_prompt_file(embeddings)
        except ValueError as e:
            return str(e)
        return True

    @classmethod
    def fingerprint_inputs(cls, embeddings) -> str:
        return file_fingerprint(resolve_prompt_file, embeddings)

    @classmethod
    def execute(cls, embeddings) -> io.NodeOutput:
        try:
            entries, prompt = ex4d_sampling.load_prompt_embeddings(resolve_prompt_file(embeddings))
        except ValueError as e:
            raise ValueError(f"embeddings: {e}") from e
        conditioning = [[cond, {"pooled_output": None, **extra}] for cond, extra in entries]
        return io.NodeOutput(conditioning, prompt)


NODES = [AdapterLoader, SaveAdapterSafetensors, Apply, WanSampler, SavePromptEmbeddings, LoadPromptEmbeddings]
