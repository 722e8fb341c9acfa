"""Tiny random MoGe and Depth Anything 3 files in the layouts users download, for the host's own loaders (ComfyUI
0.33 and later: Load MoGe Model, Load Depth Anything 3, from models/geometry_estimation).

The models are the host's own classes at a small size (MoGe v1: a 4-layer, 64-wide DINOv2; Depth Anything 3: the
smallest preset the host detects, ViT-S, with a narrow DPT head and the sky head of the Mono / Metric models),
their weights random; MoGe is written with the Meta-style DINOv2 key names its checkpoints ship with (fused qkv,
``blocks.N``), which the host's loader renames, Depth Anything 3 in ComfyUI's repackaged layout that the host's
model detection reads.
"""

from __future__ import annotations

from pathlib import Path

import torch

# the host's MoGe loader renames these (comfy/ldm/moge/model.py); written back the other way here
_MOGE_TOPLEVEL = {
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "embeddings.cls_token": "cls_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.register_tokens": "register_tokens",
    "embeddings.mask_token": "mask_token",
    "layernorm.weight": "norm.weight",
    "layernorm.bias": "norm.bias",
}
_MOGE_BLOCK = [("layer_scale1.lambda1", "ls1.gamma"), ("layer_scale2.lambda1", "ls2.gamma"),
               ("attention.output.dense.", "attn.proj.")]


def _randomised(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """The module's state dict with random weights (the host's layers leave theirs uninitialised): normal with
    std 0.02, norms' weights 1 and biases 0, layer scales 1."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, value in module.state_dict().items():
        value = value.float()
        if not value.is_floating_point():
            out[name] = value
        elif name.endswith((".lambda1", "norm.weight", "norm1.weight", "norm2.weight")) or "norm.weight" in name:
            out[name] = torch.ones_like(value)
        elif name.endswith("bias"):
            out[name] = torch.zeros_like(value)
        elif name.endswith(("image_mean", "image_std")):
            out[name] = value
        else:
            out[name] = torch.randn(value.shape, generator=g) * 0.02
    return out


def _meta_style(sd: dict[str, torch.Tensor], prefix: str = "backbone.") -> dict[str, torch.Tensor]:
    """ComfyUI's DINOv2 key names under ``prefix`` as MoGe's checkpoints name them (q, k, v fused to qkv)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        rel = key[len(prefix):] if key.startswith(prefix) else None
        if rel is None:
            out[key] = value
        elif rel in _MOGE_TOPLEVEL:
            out[prefix + _MOGE_TOPLEVEL[rel]] = value
        elif rel.startswith("encoder.layer."):
            index, sub = rel[len("encoder.layer."):].split(".", 1)
            if sub.startswith("attention.attention."):
                part, tail = sub[len("attention.attention."):].split(".")
                if part == "query":
                    base = f"{prefix}encoder.layer.{index}.attention.attention."
                    fused = [sd[f"{base}{name}.{tail}"] for name in ("query", "key", "value")]
                    out[f"{prefix}blocks.{index}.attn.qkv.{tail}"] = torch.cat(fused)
                continue
            for native, meta in _MOGE_BLOCK:
                sub = sub.replace(native, meta)
            out[f"{prefix}blocks.{index}.{sub}"] = value
        else:
            out[key] = value
    return out


def write_tiny_moge(path: Path, seed: int = 5) -> Path:
    """A tiny MoGe v1 .safetensors (DINOv2 of 4 layers, 64 wide) as its checkpoints name their keys."""
    import comfy.ops
    import safetensors.torch
    from comfy.ldm.moge.model import MoGeModelV1

    backbone = {"hidden_size": 64, "num_attention_heads": 1, "num_hidden_layers": 4, "layer_norm_eps": 1e-6,
                "use_swiglu_ffn": False}
    model = MoGeModelV1(backbone, dim_upsample=[16, 8, 8], operations=comfy.ops.manual_cast)
    sd = _meta_style(_randomised(model, seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path


def write_tiny_da3_mono(path: Path, seed: int = 6) -> Path:
    """A tiny Depth Anything 3 Mono-style .safetensors: the ViT-S backbone preset with a DPT head of 8 channels
    and the sky head, in ComfyUI's repackaged layout (fp16, about 45 MB)."""
    import comfy.ops
    import safetensors.torch
    from comfy.ldm.depth_anything_3.model import DepthAnything3Net

    model = DepthAnything3Net(backbone_name="vits", out_layers=[5, 7, 9, 11], head_type="dpt", head_dim_in=384,
                              head_output_dim=1, head_features=8, head_out_channels=[8, 8, 8, 8],
                              head_use_sky_head=True, operations=comfy.ops.manual_cast)
    sd = {k: v.half().contiguous() for k, v in _randomised(model, seed).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file(sd, str(path))
    return path
