"""Random model files with the real names, shapes and file layouts, written into a ComfyUI models folder.

    python bench/full_weights.py --comfyui HOST_DIR --models MODELS_DIR [--wan bf16|fp8|q8_0|q4_k_m|none]
                                 [--only wan,vae,text_encoder,clip_vision,depthcrafter,ex4d]
                                 [--scale full|tiny] [--plan]

What the shipped full workflow (``workflows/api/ex4d_full_api.json``) loads, as users download it:

  diffusion_models/wan2.1_i2v_480p_14B_bf16.safetensors        ComfyUI's repackaged Wan 2.1 I2V 14B 480P
    (or ..._fp8_e4m3fn.safetensors with --wan fp8)              (matrices fp8, biases and norms bf16)
    (or wan2.1-i2v-14b-480p-Q8_0.gguf / -Q4_K_M.gguf          city96's GGUF files for ComfyUI-GGUF's
     with --wan q8_0 / q4_k_m)                                  UnetLoaderGGUF (``bench/gguf_weights.py``)
  vae/wan_2.1_vae.safetensors                                   Wan 2.1 VAE, width 96, bf16
  text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors          umT5-XXL encoder, ComfyUI's scaled fp8
  clip_vision/clip_vision_h.safetensors                         CLIP ViT-H/14 vision tower, fp16
  depthcrafter/DepthCrafter/unet/                               tencent/DepthCrafter's UNet, fp16
  depthcrafter/stable-video-diffusion-img2vid-xt/{vae,image_encoder,feature_extractor,scheduler}/
                                                                the SVD-xt parts, fp16 variant files
  ex4d/ex4d.ckpt                                                the EX-4D LoRA + camera encoder

Names and shapes come from the host's own modules (``--comfyui``), built on the meta device, and the
pack's configs (``harness/tiny_depth.py``), checked against names every real file has. Values are random
(normal, scaled so that activations stay near unit size; norms 1, biases 0), drawn on the GPU when there
is one and streamed tensor by tensor into the file (host memory stays at one chunk), written under a
``.partial`` name and renamed when complete. Files that exist are kept, whatever they hold (a real
download stays untouched). ``--plan`` prints the files and sizes without writing anything.

``--scale tiny`` writes the same files at tiny sizes for CPU tests, where the host's detection allows:
the Wan DiT, VAE, DepthCrafter and EX-4D files are tiny; the CLIP vision file cannot be (the host builds
ViT-H from a fixed config, detected by its 31st layer) and is written at full size (1.2 GiB); the
text encoder keeps d_model 4096 and 24 blocks but has 1 head, FFN 64 and 1024 tokens, so the hosts load it
only with ``model_options={"umt5xxl_model_config": UMT5_TINY}``, and detect it as umT5-XXL only at full
size (0.33 by block 23's FFN width of 10240; the test checks detection on the full-size shapes).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import arguments
import gguf_weights
from encoder_weights import clip_vision_h_layout, umt5_config, umt5_layout
from host_layouts import meta_state_dict, require_names, setup_host
from planned_files import PlannedFile, gguf_file, json_file, print_plan, safetensors_file, write_files
from safetensors_stream import (
    Layout,
    TensorSpec,
    safetensors_size,  # noqa: F401  (the writer's size, as the tests read it here)
    unit_spec,
    write_complete,
    write_safetensors,
)
from timing import GiB  # noqa: F401  (the unit of the sizes this module's users check)

if TYPE_CHECKING:
    import torch

IN_DIM, TEXT_DIM = 36, 4096  # Wan 2.1 I2V: 16 noise + 4 mask + 16 image latent channels; umT5-XXL width
PARTS = ("wan", "vae", "text_encoder", "clip_vision", "depthcrafter", "ex4d")
WAN_DTYPES = {"bf16": "bfloat16", "fp8": "float8_e4m3fn"}
WAN_VAE_DIM = {"full": 96, "tiny": 16}
EX4D_RANK = 16
EX4D_LORA_SCALE = 0.05  # small random LoRA deltas: the patched DiT's activations stay those of the base


@dataclass(frozen=True)
class DiTSize:
    dim: int
    layers: int
    heads: int
    ffn: int
    encoder_hidden: int


FULL = DiTSize(5120, 40, 40, 13824, 1024)  # Wan2.1-I2V-14B-480P + the published camera encoder
TINY = DiTSize(128, 2, 1, 256, 32)  # checks code paths on any machine, CPU included


# ---------------------------------------------------------------------------------------------
# Wan 2.1 I2V 14B DiT


def wan_file_name(size: DiTSize, weight_dtype: str) -> str:
    """ComfyUI's repackaged file names (the tiny DiT of bench_wan.py gets its own)."""
    stored = {"bfloat16": "bf16", "float8_e4m3fn": "fp8_e4m3fn"}[weight_dtype]
    return f"wan2.1_i2v_480p_14B_{stored}.safetensors" if size == FULL else f"wan_tiny_i2v_{stored}.safetensors"


def wan_layout(size: DiTSize, weight_dtype: torch.dtype) -> Layout:
    """ComfyUI's repackaged Wan 2.1 I2V file (no prefix): matrices and convolutions in ``weight_dtype``,
    biases and norms in bf16 as in the fp8 file; values normal(0, 0.02), norms 1."""
    import comfy.ldm.wan.model
    import comfy.ops
    import torch

    from harness.tiny_models import WAN_I2V_KEYS

    sd = meta_state_dict(lambda: comfy.ldm.wan.model.WanModel(
        model_type="i2v", in_dim=IN_DIM, dim=size.dim, ffn_dim=size.ffn, num_heads=size.heads,
        num_layers=size.layers, text_dim=TEXT_DIM, out_dim=16, operations=comfy.ops.disable_weight_init))
    layout = {}
    for name, p in sd.items():
        shape = tuple(p.shape)
        if p.ndim == 1 and name.endswith("weight"):
            layout[name] = TensorSpec(shape, torch.bfloat16, fill=1.0)
        else:
            layout[name] = TensorSpec(shape, weight_dtype if p.ndim > 1 else torch.bfloat16, std=0.02)
    require_names(layout, WAN_I2V_KEYS, "WanModel")
    return layout


def write_wan_file(path: Path, size: DiTSize, weight_dtype: torch.dtype) -> None:
    """Random weights with the names and shapes of ComfyUI's repackaged Wan 2.1 I2V file."""
    write_complete(path, lambda partial: write_safetensors(partial, wan_layout(size, weight_dtype)))


# ---------------------------------------------------------------------------------------------
# Wan 2.1 VAE, umT5-XXL, CLIP ViT-H


def wan_vae_layout(dim: int) -> Layout:
    """The Wan 2.1 VAE (16 latent channels); the host reads its width from ``decoder.head.0.gamma``.
    Stored in bf16: the repackaged file is 254 MB for 127 M parameters."""
    import comfy.ldm.wan.vae
    import torch

    from harness.tiny_models import WAN_VAE_KEYS

    sd = meta_state_dict(lambda: comfy.ldm.wan.vae.WanVAE(
        dim=dim, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
        temperal_downsample=[False, True, True], dropout=0.0))
    layout = {name: unit_spec(name, tuple(p.shape), torch.bfloat16) for name, p in sd.items()}
    require_names(layout, WAN_VAE_KEYS, "WanVAE")
    return layout


# ---------------------------------------------------------------------------------------------
# DepthCrafter + SVD parts, EX-4D


def _fp16_layout(sd: dict[str, torch.Tensor]) -> Layout:
    import torch

    # integer buffers (position ids, where a library version keeps them) are rebuilt by the model on load
    return {name: unit_spec(name, tuple(p.shape), torch.float16) for name, p in sd.items() if p.is_floating_point()}


def depthcrafter_layouts(scale: str) -> dict[str, tuple[dict, Layout | None]]:
    """Path under ``depthcrafter/`` -> (JSON contents, or the config of a weights file, and its layout).

    The UNet as tencent/DepthCrafter ships it (``diffusion_pytorch_model.safetensors``, fp16); the SVD-xt
    parts as its fp16 variant files, which the pack's loader picks when they are the only weights there."""
    try:
        from diffusers import AutoencoderKLTemporalDecoder
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    except ImportError as e:
        raise SystemExit(f"the DepthCrafter files need diffusers and transformers ({e}); or leave depthcrafter "
                         "out of --only") from e

    from ex4d.depth.crafter import SVD_DIR, UNET_DIR, depthcrafter_unet_class
    from harness import tiny_depth as td

    full = scale == "full"
    unet_cfg = td.DEPTHCRAFTER_UNET_CONFIG if full else td.tiny_unet_config()
    vae_cfg = td.SVD_VAE_CONFIG if full else td.tiny_vae_config()
    enc_cfg = {**(td.SVD_IMAGE_ENCODER_CONFIG if full else td.tiny_image_encoder_config()), "torch_dtype": "float16"}
    enc_kwargs = {k: v for k, v in enc_cfg.items() if k not in ("architectures", "model_type", "torch_dtype")}
    unet = meta_state_dict(lambda: depthcrafter_unet_class()(**td._diffusers_kwargs(unet_cfg)))
    vae = meta_state_dict(lambda: AutoencoderKLTemporalDecoder(**td._diffusers_kwargs(vae_cfg)))
    enc = meta_state_dict(lambda: CLIPVisionModelWithProjection(CLIPVisionConfig(**enc_kwargs)))
    svd = SVD_DIR
    return {
        f"{UNET_DIR}/unet/config.json": (unet_cfg, None),
        f"{UNET_DIR}/unet/diffusion_pytorch_model.safetensors": ({}, _fp16_layout(unet)),
        f"{svd}/vae/config.json": (vae_cfg, None),
        f"{svd}/vae/diffusion_pytorch_model.fp16.safetensors": ({}, _fp16_layout(vae)),
        f"{svd}/image_encoder/config.json": (enc_cfg, None),
        f"{svd}/image_encoder/model.fp16.safetensors": ({}, _fp16_layout(enc)),
        f"{svd}/feature_extractor/preprocessor_config.json": (td.SVD_FEATURE_EXTRACTOR_CONFIG, None),
        f"{svd}/scheduler/scheduler_config.json": (td.SVD_SCHEDULER_CONFIG, None),
        f"{svd}/model_index.json": (td.SVD_MODEL_INDEX, None),
    }


def ex4d_state_dict(size: DiTSize) -> dict[str, torch.Tensor]:
    """The published EX-4D names (PEFT LoRA, rank 16, on q/k/v/o of both attentions and ffn.0/ffn.2 of
    every block; camera encoder 32 -> hidden -> dim), float32 as the training script keeps them."""
    from harness.tiny_models import tiny_ex4d_state_dict

    return tiny_ex4d_state_dict(size.dim, size.layers, size.ffn, rank=EX4D_RANK, hidden=size.encoder_hidden,
                                lora_scale=EX4D_LORA_SCALE)


def ex4d_nbytes(size: DiTSize) -> int:
    lora = sum(EX4D_RANK * (i + o) for i, o in _ex4d_lora_shapes(size)) * size.layers
    h = size.encoder_hidden
    encoder = (h * 32 + h) + 2 * (h * h + h) + (size.dim * h * 4 + size.dim)
    return 4 * (lora + encoder)


def _ex4d_lora_shapes(size: DiTSize) -> list[tuple[int, int]]:
    return [(size.dim, size.dim)] * 8 + [(size.dim, size.ffn), (size.ffn, size.dim)]


# ---------------------------------------------------------------------------------------------
# The plan: which files, how big, how each is written


def _ex4d_file(size: DiTSize) -> PlannedFile:
    def write(path: Path) -> None:
        import torch

        torch.save(ex4d_state_dict(size), str(path))  # the published format: a plain dict, weights-only

    return PlannedFile("ex4d/ex4d.ckpt", ex4d_nbytes(size), write)


def plan(parts: tuple[str, ...], scale: str = "full", wan: str = "bf16") -> list[PlannedFile]:
    """The files of ``parts`` at ``scale``; ``wan`` picks the DiT file (bf16, fp8, q8_0, q4_k_m or none)."""
    import torch

    size = FULL if scale == "full" else TINY
    files: list[PlannedFile] = []
    if "wan" in parts and wan in gguf_weights.QUANTS:
        files.append(gguf_file(f"diffusion_models/{gguf_weights.FILE_NAMES[wan]}",
                                wan_layout(size, torch.bfloat16), wan, seed=0))
    elif "wan" in parts and wan != "none":
        dtype = WAN_DTYPES[wan]
        files.append(safetensors_file(f"diffusion_models/{wan_file_name(FULL, dtype)}",
                                       wan_layout(size, getattr(torch, dtype)), seed=0))
    if "vae" in parts:
        files.append(safetensors_file("vae/wan_2.1_vae.safetensors", wan_vae_layout(WAN_VAE_DIM[scale]), seed=1))
    if "text_encoder" in parts:
        files.append(safetensors_file("text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                                       umt5_layout(umt5_config(scale)), seed=2))
    if "clip_vision" in parts:
        files.append(safetensors_file("clip_vision/clip_vision_h.safetensors", clip_vision_h_layout(), seed=3))
    if "depthcrafter" in parts:
        for i, (rel, (data, layout)) in enumerate(depthcrafter_layouts(scale).items()):
            rel = f"depthcrafter/{rel}"
            files.append(json_file(rel, data) if layout is None else safetensors_file(rel, layout, seed=10 + i))
    if "ex4d" in parts:
        files.append(_ex4d_file(size))
    return files


def write_all(models: Path, parts: tuple[str, ...] = PARTS, scale: str = "full", wan: str = "bf16",
              log: Callable[[str], None] = print) -> list[Path]:
    """The host's modules must be importable (``setup_host``, or a started host)."""
    return write_files(Path(models), plan(parts, scale, wan), log)


def parse_args() -> argparse.Namespace:
    p = arguments.parser(__doc__)
    arguments.add_comfyui(p)
    arguments.add_models(p)
    p.add_argument("--wan", choices=(*WAN_DTYPES, *gguf_weights.QUANTS, "none"), default="bf16",
                   help="which DiT file: bf16 (30.5 GiB), fp8 (15.3 GiB), GGUF q8_0 (16.4 GiB) or q4_k_m (10.1 GiB), or none")
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    arguments.add_scale(p)
    p.add_argument("--plan", action="store_true", help="print the files and their sizes, write nothing")
    args = p.parse_args()
    arguments.require_comfyui(p, args)
    args.parts = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        p.error(f"--only: unknown parts {unknown}; choose from {','.join(PARTS)}")
    return args


def main() -> None:
    args = parse_args()
    setup_host(Path(args.comfyui).resolve())
    models = Path(args.models).resolve()
    files = plan(args.parts, args.scale, args.wan)
    if args.plan:
        print_plan(models, files)
    else:
        write_files(models, files)


if __name__ == "__main__":
    main()
