"""The depth models a host has installed, and a loaded one that the host's model management moves between
devices."""

from __future__ import annotations

import os
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

    def __repr__(self) -> str:
        return f"LoadedDepthModel({self.name!r}, {self.model.dtype})"
