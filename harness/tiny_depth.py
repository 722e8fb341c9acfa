"""Tiny random depth models in the real diffusers / transformers folder layouts, for tests and demos.

    write_tiny_depthcrafter(models / "depthcrafter")      # DepthCrafter/unet + stable-video-diffusion-img2vid-xt/...
    write_tiny_depth_anything(models / "depth_anything" / "tiny")

Configs carry the real class names and keys (tencent/DepthCrafter, stabilityai/stable-video-diffusion-img2vid-xt,
depth-anything/Depth-Anything-V2-Small-hf) with widths shrunk; scheduler and preprocessor configs are the
real ones. ``DEPTHCRAFTER_UNET_CONFIG`` etc. are the full-size configs (for the GPU test and benchmark).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

# tencent/DepthCrafter unet/config.json (SVD-xt's UNet config under DepthCrafter's class name).
DEPTHCRAFTER_UNET_CONFIG: dict = {
    "_class_name": "DiffusersUNetSpatioTemporalConditionModelDepthCrafter",
    "_diffusers_version": "0.30.0",
    "addition_time_embed_dim": 256,
    "block_out_channels": [320, 640, 1280, 1280],
    "cross_attention_dim": 1024,
    "down_block_types": [
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "DownBlockSpatioTemporal",
    ],
    "in_channels": 8,
    "layers_per_block": 2,
    "num_attention_heads": [5, 10, 20, 20],
    "num_frames": 25,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 768,
    "sample_size": 96,
    "transformer_layers_per_block": 1,
    "up_block_types": [
        "UpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
    ],
}

SVD_VAE_CONFIG: dict = {
    "_class_name": "AutoencoderKLTemporalDecoder",
    "_diffusers_version": "0.24.0.dev0",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "out_channels": 3,
    "sample_size": 768,
    "scaling_factor": 0.18215,
}

SVD_IMAGE_ENCODER_CONFIG: dict = {
    "architectures": ["CLIPVisionModelWithProjection"],
    "attention_dropout": 0.0,
    "dropout": 0.0,
    "hidden_act": "gelu",
    "hidden_size": 1280,
    "image_size": 224,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "intermediate_size": 5120,
    "layer_norm_eps": 1e-05,
    "model_type": "clip_vision_model",
    "num_attention_heads": 16,
    "num_channels": 3,
    "num_hidden_layers": 32,
    "patch_size": 14,
    "projection_dim": 1024,
}

SVD_SCHEDULER_CONFIG: dict = {
    "_class_name": "EulerDiscreteScheduler",
    "_diffusers_version": "0.24.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "set_alpha_to_one": False,
    "sigma_max": 700.0,
    "sigma_min": 0.002,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "trained_betas": None,
    "use_karras_sigmas": True,
}

SVD_FEATURE_EXTRACTOR_CONFIG: dict = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_processor_type": "CLIPImageProcessor",
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 224},
}

SVD_MODEL_INDEX: dict = {
    "_class_name": "StableVideoDiffusionPipeline",
    "_diffusers_version": "0.24.0.dev0",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
    "vae": ["diffusers", "AutoencoderKLTemporalDecoder"],
}

# depth-anything/Depth-Anything-V2-Small-hf config.json and preprocessor_config.json
DEPTH_ANYTHING_V2_SMALL_CONFIG: dict = {
    "architectures": ["DepthAnythingForDepthEstimation"],
    "backbone": None,
    "backbone_config": {
        "architectures": ["Dinov2Model"],
        "hidden_size": 384,
        "image_size": 518,
        "model_type": "dinov2",
        "num_attention_heads": 6,
        "out_features": ["stage3", "stage6", "stage9", "stage12"],
        "out_indices": [3, 6, 9, 12],
        "patch_size": 14,
        "reshape_hidden_states": False,
    },
    "depth_estimation_type": "relative",
    "fusion_hidden_size": 64,
    "head_hidden_size": 32,
    "head_in_index": -1,
    "initializer_range": 0.02,
    "model_type": "depth_anything",
    "neck_hidden_sizes": [48, 96, 192, 384],
    "patch_size": 14,
    "reassemble_factors": [4, 2, 1, 0.5],
    "reassemble_hidden_size": 384,
    "use_pretrained_backbone": False,
}

DEPTH_ANYTHING_PREPROCESSOR_CONFIG: dict = {
    "do_normalize": True,
    "do_pad": False,
    "do_rescale": True,
    "do_resize": True,
    "ensure_multiple_of": 14,
    "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "DPTImageProcessor",
    "image_std": [0.229, 0.224, 0.225],
    "keep_aspect_ratio": True,
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"height": 518, "width": 518},
    "size_divisor": None,
}


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _diffusers_kwargs(config: dict) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def tiny_unet_config() -> dict:
    cfg = dict(DEPTHCRAFTER_UNET_CONFIG)
    cfg.update(
        block_out_channels=[32, 32, 32, 32],
        num_attention_heads=[1, 1, 1, 1],
        layers_per_block=1,
        cross_attention_dim=32,
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=24,
        sample_size=8,
    )
    return cfg


def tiny_vae_config() -> dict:
    cfg = dict(SVD_VAE_CONFIG)
    cfg.update(block_out_channels=[32, 32, 32, 32], layers_per_block=1, sample_size=64)
    return cfg


def tiny_image_encoder_config() -> dict:
    cfg = dict(SVD_IMAGE_ENCODER_CONFIG)
    cfg.update(
        hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2, projection_dim=32
    )
    return cfg


def _perturb(module: torch.nn.Module, seed: int, scale: float = 0.02) -> None:
    """Random weights everywhere: default inits leave some layers at zero (e.g. zero-init convs)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale)


def build_unet(config: dict, seed: int = 0) -> torch.nn.Module:
    from ex4d.depth.crafter import depthcrafter_unet_class

    torch.manual_seed(seed)
    unet = depthcrafter_unet_class()(**_diffusers_kwargs(config))
    _perturb(unet, seed)
    return unet


def build_vae(config: dict, seed: int = 1) -> torch.nn.Module:
    from diffusers import AutoencoderKLTemporalDecoder

    torch.manual_seed(seed)
    vae = AutoencoderKLTemporalDecoder(**_diffusers_kwargs(config))
    _perturb(vae, seed)
    return vae


def build_image_encoder(config: dict, seed: int = 2) -> torch.nn.Module:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    cfg = {k: v for k, v in config.items() if k not in ("architectures", "model_type")}
    return CLIPVisionModelWithProjection(CLIPVisionConfig(**cfg))


def _save_diffusers(module: torch.nn.Module, config: dict, folder: Path) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    _json(folder / "config.json", config)
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(folder / "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})


def write_tiny_depthcrafter(root: Path, seed: int = 0) -> Path:
    """A tiny random DepthCrafter folder (about 10 MB) laid out as ``ex4d.depth.crafter`` documents."""
    root = Path(root)
    unet_cfg, vae_cfg = tiny_unet_config(), tiny_vae_config()
    _save_diffusers(build_unet(unet_cfg, seed), unet_cfg, root / "DepthCrafter" / "unet")
    svd = root / "stable-video-diffusion-img2vid-xt"
    _save_diffusers(build_vae(vae_cfg, seed + 1), vae_cfg, svd / "vae")
    enc = build_image_encoder(tiny_image_encoder_config(), seed + 2)
    enc.save_pretrained(svd / "image_encoder", safe_serialization=True)
    _json(svd / "feature_extractor" / "preprocessor_config.json", SVD_FEATURE_EXTRACTOR_CONFIG)
    _json(svd / "scheduler" / "scheduler_config.json", SVD_SCHEDULER_CONFIG)
    _json(svd / "model_index.json", SVD_MODEL_INDEX)
    return root


def tiny_depth_anything_config() -> dict:
    cfg = json.loads(json.dumps(DEPTH_ANYTHING_V2_SMALL_CONFIG))
    cfg["backbone_config"].update(
        hidden_size=32,
        num_attention_heads=2,
        num_hidden_layers=4,
        mlp_ratio=2,
        out_features=["stage1", "stage2", "stage3", "stage4"],
        out_indices=[1, 2, 3, 4],
    )
    cfg.update(
        neck_hidden_sizes=[8, 16, 32, 32],
        reassemble_hidden_size=32,
        fusion_hidden_size=16,
        head_hidden_size=8,
    )
    return cfg


def _calibrate_head(model: torch.nn.Module, seed: int) -> None:
    """Random Depth Anything heads end in a ReLU that zeroes everything; rescale the last conv so that
    the output is about 1 +- 0.2 and varies with the image, as a relative-disparity map does."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 126, 126, generator=gen)
    seen: list[torch.Tensor] = []
    hook = model.head.conv3.register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        model(pixel_values=x)
        hook.remove()
        pre = seen[0]
        scale = 0.2 / float(pre.std().clamp_min(1e-12))
        model.head.conv3.weight.mul_(scale)
        model.head.conv3.bias.copy_((model.head.conv3.bias - pre.mean()) * scale + 1.0)


def write_tiny_depth_anything(root: Path, seed: int = 3) -> Path:
    """A tiny random Depth Anything V2 folder in the transformers layout."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

    root = Path(root)
    cfg = tiny_depth_anything_config()
    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(
        DepthAnythingConfig(**{k: v for k, v in cfg.items() if k not in ("architectures", "model_type")})
    )
    model.eval()
    _perturb(model, seed, scale=0.1)
    _calibrate_head(model, seed)
    model.save_pretrained(root, safe_serialization=True)
    _json(root / "preprocessor_config.json", DEPTH_ANYTHING_PREPROCESSOR_CONFIG)
    return root


def build_full_size_depthcrafter(dtype: torch.dtype, device: str = "cuda", attention: str = "sdpa"):
    """``ex4d.depth.DepthCrafter`` with the real UNet / VAE / CLIP configs and random weights, built on
    ``device`` (no files, no downloads): for the GPU test and the benchmark."""
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from ex4d.depth import DepthCrafter
    from ex4d.depth.crafter import depthcrafter_unet_class

    enc_cfg = {k: v for k, v in SVD_IMAGE_ENCODER_CONFIG.items() if k not in ("architectures", "model_type")}
    with torch.device(device):
        torch.manual_seed(0)
        unet = depthcrafter_unet_class()(**_diffusers_kwargs(DEPTHCRAFTER_UNET_CONFIG))
        vae = AutoencoderKLTemporalDecoder(**_diffusers_kwargs(SVD_VAE_CONFIG))
        enc = CLIPVisionModelWithProjection(CLIPVisionConfig(**enc_cfg))
    # some buffers (diffusers' AlphaBlender mix factor, made with the legacy torch.Tensor([...])) ignore the
    # device context: move everything explicitly
    unet, vae, enc = (m.to(device, dtype).eval() for m in (unet, vae, enc))
    sched = EulerDiscreteScheduler.from_config(SVD_SCHEDULER_CONFIG)
    fe = SVD_FEATURE_EXTRACTOR_CONFIG
    model = DepthCrafter(unet, vae, enc, sched, fe["image_mean"], fe["image_std"], device)
    model.set_attention(attention)
    return model
