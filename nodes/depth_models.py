"""The depth models a host has installed, and a loaded one that the host's model management moves between
devices."""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from pathlib import Path

import comfy.model_management as mm
import comfy.model_patcher
import torch

from ..ex4d import depth as ex4d_depth
from ._comfy import model_folder_paths

NONE_INSTALLED = "(none installed: see the tooltip)"  # the loader's only option then


def installed_depth_models() -> dict[str, tuple[str, Path]]:
    """Display name -> (kind, folder) for every complete DepthCrafter / Depth Anything V2 folder."""
    found: dict[str, tuple[str, Path]] = {}
    for kind, check, label in (("depthcrafter", ex4d_depth.check_depthcrafter_folder, "DepthCrafter"),
                               ("depth_anything", ex4d_depth.check_depth_anything_folder, "Depth Anything V2")):
        for root in map(Path, model_folder_paths(kind)):
            if not root.is_dir():
                continue
            for folder in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
                if check(folder).ok:
                    name = label if folder == root else f"{label}: {folder.name}"
                    found.setdefault(name, (kind, folder))
    return found


def missing_models_message() -> str:
    """What to download and where, from the folders the host has registered."""
    crafter = model_folder_paths("depthcrafter")[0]
    anything = model_folder_paths("depth_anything")[0]
    crafter_check = ex4d_depth.check_depthcrafter_folder(crafter)
    return (
        "model: no depth model is installed. Either download DepthCrafter (Hugging Face tencent/DepthCrafter "
        "'unet' + stabilityai/stable-video-diffusion-img2vid-xt 'vae', 'image_encoder', 'feature_extractor', "
        f"'scheduler') into {crafter}; {crafter_check.message} "
        f"Or download a Depth Anything V2 transformers repository (e.g. depth-anything/Depth-Anything-V2-Small-hf)"
        f" into {os.path.join(anything, '<name>')} (config.json, model.safetensors, preprocessor_config.json). "
        "Then refresh ComfyUI (press R). Or skip estimation: plug any depth map into 'EX-4D Depth From Image'."
    )


def unavailable_model(model: str) -> str | None:
    """Why the Depth Model Loader cannot load ``model`` (the message names the input), or None when it is
    installed."""
    if model in installed_depth_models():
        return None
    if model == NONE_INSTALLED:
        return missing_models_message()
    return f"model: '{model}' is no longer installed (or incomplete); refresh ComfyUI and pick again"


def depth_model_patcher(module: torch.nn.Module, load_device: torch.device,
                        offload_device: torch.device) -> comfy.model_patcher.ModelPatcher:
    """The host's patcher for a model it loads itself: under dynamic VRAM (0.33 on NVIDIA) its dynamic one, whose
    device copy of plain weights is a copy of ``module``'s host weights, given back without copying; then the
    host weights go into one block of pinned memory, so each load is a DMA transfer."""
    patcher_class = getattr(comfy.model_patcher, "CoreModelPatcher", comfy.model_patcher.ModelPatcher)
    patcher = patcher_class(module, load_device=load_device, offload_device=offload_device)
    if is_dynamic(patcher) and mm.is_device_cpu(offload_device):
        block = weights_in_one_block(module)
        if mm.pin_memory(block):
            # not at exit: the driver may be gone by then, and the process's memory goes with it anyway
            weakref.finalize(module, mm.unpin_memory, block).atexit = False
    return patcher


def is_dynamic(patcher: comfy.model_patcher.ModelPatcher) -> bool:
    return bool(getattr(patcher, "is_dynamic", lambda: False)())


def weights_in_one_block(module: torch.nn.Module) -> torch.Tensor:
    """Move ``module``'s parameters and buffers into views of one new byte tensor in host memory and return it
    (one registration pins them all). Values, dtypes, shapes and tied weights are kept."""
    tensors: dict[int, torch.Tensor] = {}
    for owner in module.modules():
        for table in (owner._parameters, owner._buffers):
            for value in table.values():
                if value is not None:
                    tensors.setdefault(id(value), value)
    alignment = 512  # bytes; keeps every view aligned for any dtype and for DMA
    offsets, size = {}, 0
    for key, value in tensors.items():
        offsets[key] = size
        size += -(-value.nbytes // alignment) * alignment
    block = torch.empty(size, dtype=torch.uint8, device="cpu")
    for key, value in tensors.items():  # one at a time: each original is freed as its view takes its place
        view = block[offsets[key]:offsets[key] + value.nbytes].view(value.dtype).view(value.shape)
        value.data = view.copy_(value.detach())
    return block


@dataclass
class LoadedDepthModel:
    """A DepthCrafter or DepthAnything that ComfyUI's model management moves between devices."""

    name: str
    kind: str
    model: ex4d_depth.DepthCrafter | ex4d_depth.DepthAnything
    patcher: comfy.model_patcher.ModelPatcher

    def load(self, memory_required: int) -> None:
        """Onto the run device, unloading other models (the 14B Wan) as much as this one needs: its weights
        and ``memory_required`` bytes for the inference (the model's ``inference_memory``)."""
        mm.load_models_gpu([self.patcher], memory_required=memory_required, force_full_load=True)
        self.model.device = torch.device(self.patcher.load_device)

    def release(self) -> None:
        """After estimating, under dynamic VRAM: give the device copy back. The host frees a dynamic model's
        plain (not comfy.ops) weights only for a classic model's load, never to make room for another dynamic
        one, so the Wan DiT would run with these gigabytes taken and stream its own weights at every step. The
        next estimate copies them again from (pinned) host memory. A classic patcher keeps the host's rules."""
        if is_dynamic(self.patcher):
            self.patcher.partially_unload(self.patcher.offload_device, self.patcher.loaded_size())

    def __repr__(self) -> str:
        return f"LoadedDepthModel({self.name!r}, {self.model.dtype})"
