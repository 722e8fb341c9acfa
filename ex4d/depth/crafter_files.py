"""DepthCrafter's model folder: the files it needs, which are missing, and reading them.

Expected folder (what ``DepthCrafter.from_pretrained(folder)`` reads; the pack registers
``models/depthcrafter/``)::

    <folder>/
      DepthCrafter/                              # from Hugging Face tencent/DepthCrafter
        unet/config.json
        unet/diffusion_pytorch_model.safetensors
      stable-video-diffusion-img2vid-xt/         # from stabilityai/stable-video-diffusion-img2vid-xt
        vae/config.json
        vae/diffusion_pytorch_model.safetensors          (or diffusion_pytorch_model.fp16.safetensors)
        image_encoder/config.json
        image_encoder/model.safetensors                  (or model.fp16.safetensors)
        feature_extractor/preprocessor_config.json
        scheduler/scheduler_config.json

The SVD UNet is not needed. ``.bin`` weights are accepted where ``.safetensors`` are missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .crafter_unet import depthcrafter_unet_class
from .folders import (
    DIFFUSERS_WEIGHTS,
    TRANSFORMERS_WEIGHTS,
    FolderCheck,
    Layout,
    check_layout,
    weights_variant,
)

UNET_DIR = "DepthCrafter"
SVD_DIR = "stable-video-diffusion-img2vid-xt"

DEPTHCRAFTER_LAYOUT: Layout = (
    (f"{UNET_DIR}/unet/config.json", ()),
    (f"{UNET_DIR}/unet/diffusion_pytorch_model.safetensors", DIFFUSERS_WEIGHTS),
    (f"{SVD_DIR}/vae/config.json", ()),
    (f"{SVD_DIR}/vae/diffusion_pytorch_model.safetensors", DIFFUSERS_WEIGHTS),
    (f"{SVD_DIR}/image_encoder/config.json", ()),
    (f"{SVD_DIR}/image_encoder/model.safetensors", TRANSFORMERS_WEIGHTS),
    (f"{SVD_DIR}/feature_extractor/preprocessor_config.json", ()),
    (f"{SVD_DIR}/scheduler/scheduler_config.json", ()),
)


def check_depthcrafter_folder(folder: str | Path) -> FolderCheck:
    """Which of the files DepthCrafter needs are missing under ``folder`` (see the module docstring)."""
    doc = (
        f"Put the UNet of tencent/DepthCrafter under {UNET_DIR}/unet/ and the vae, image_encoder, "
        f"feature_extractor and scheduler folders of stabilityai/stable-video-diffusion-img2vid-xt under {SVD_DIR}/."
    )
    return check_layout(folder, DEPTHCRAFTER_LAYOUT, "DepthCrafter", doc)


@dataclass
class DepthCrafterParts:
    """What a DepthCrafter folder holds, read onto the CPU in evaluation mode."""

    unet: torch.nn.Module
    vae: torch.nn.Module
    image_encoder: torch.nn.Module
    scheduler: object
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]


def read_depthcrafter_folder(folder: str | Path, dtype: torch.dtype) -> DepthCrafterParts:
    """The models of a complete DepthCrafter folder (a FileNotFoundError naming what is missing otherwise), in
    ``dtype``; never touches the network."""
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler
    from transformers import CLIPVisionModelWithProjection

    folder = Path(folder)
    check = check_depthcrafter_folder(folder)
    if not check.ok:
        raise FileNotFoundError(check.message)
    unet_dir = folder / UNET_DIR / "unet"
    svd = folder / SVD_DIR
    unet = depthcrafter_unet_class().from_pretrained(
        unet_dir, torch_dtype=dtype, local_files_only=True, variant=weights_variant(unet_dir, DIFFUSERS_WEIGHTS)
    )
    vae = AutoencoderKLTemporalDecoder.from_pretrained(
        svd / "vae",
        torch_dtype=dtype,
        local_files_only=True,
        variant=weights_variant(svd / "vae", DIFFUSERS_WEIGHTS),
    )
    image_encoder = CLIPVisionModelWithProjection.from_pretrained(
        svd / "image_encoder",
        dtype=dtype,
        local_files_only=True,
        variant=weights_variant(svd / "image_encoder", TRANSFORMERS_WEIGHTS),
    )
    scheduler = EulerDiscreteScheduler.from_pretrained(svd / "scheduler", local_files_only=True)
    fe = json.loads((svd / "feature_extractor" / "preprocessor_config.json").read_text())
    return DepthCrafterParts(
        unet.eval(),
        vae.eval(),
        image_encoder.eval(),
        scheduler,
        tuple(fe.get("image_mean", (0.48145466, 0.4578275, 0.40821073))),
        tuple(fe.get("image_std", (0.26862954, 0.26130258, 0.27577711))),
    )
