"""Tiny random model files with the real key names and layouts, for tests and demos.

    write_tiny_wan_i2v(models / "diffusion_models" / "tiny_wan_i2v.safetensors")
    write_tiny_wan_vae(models / "vae" / "tiny_wan_vae.safetensors")
    write_tiny_ex4d_checkpoint(models / "ex4d" / "tiny_ex4d.ckpt", dim=128, num_layers=2, ffn_dim=256)
    write_tiny_distill_lora(models / "loras" / "tiny_lightx2v.safetensors")   # a step-distillation LoRA
    write_prompt_embeddings(input_dir / "prompt.safetensors")   # CONDITIONING without umT5-XXL

The Wan files are state dicts of the host's own modules (``comfy.ldm.wan``) built at tiny sizes, so
the host's detection (dim from ``head.modulation``, layers from ``blocks.N``, i2v from
``img_emb.proj.0.bias``, VAE width from ``decoder.head.0.gamma``) and loaders take them as they take
the real files. Import the host first (the harness does); otherwise the host folder from
``harness.bootstrap.host_dir()`` is put on ``sys.path``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from ex4d.adapter import ENCODER_IN_CHANNELS, LORA_TARGETS, PUBLISHED_RANK
from ex4d.prompt import save_prompt_embeddings

# Names every real Wan 2.1 I2V 14B file has; a tiny file must have them too.
WAN_I2V_KEYS = (
    "patch_embedding.weight",
    "patch_embedding.bias",
    "text_embedding.0.weight",
    "text_embedding.2.weight",
    "time_embedding.0.weight",
    "time_projection.1.weight",
    "blocks.0.modulation",
    "blocks.0.norm3.weight",
    "blocks.0.self_attn.q.weight",
    "blocks.0.self_attn.norm_q.weight",
    "blocks.0.cross_attn.k.weight",
    "blocks.0.cross_attn.k_img.weight",
    "blocks.0.cross_attn.v_img.weight",
    "blocks.0.cross_attn.norm_k_img.weight",
    "blocks.0.ffn.0.weight",
    "blocks.0.ffn.2.weight",
    "head.modulation",
    "head.head.weight",
    "img_emb.proj.0.weight",
    "img_emb.proj.0.bias",
    "img_emb.proj.1.weight",
    "img_emb.proj.3.weight",
    "img_emb.proj.4.weight",
)
WAN_VAE_KEYS = (
    "encoder.conv1.weight",
    "conv1.weight",
    "conv2.weight",
    "decoder.head.0.gamma",
    "decoder.head.2.weight",
    "decoder.middle.0.residual.0.gamma",
)


def _host_imports():
    try:
        import comfy.ldm.wan.model  # noqa: F401
    except ImportError:
        from harness.bootstrap import host_dir

        sys.path.insert(0, str(host_dir()))
    import comfy.ldm.wan.model
    import comfy.ldm.wan.vae
    import comfy.ops

    return comfy.ldm.wan.model, comfy.ldm.wan.vae, comfy.ops


def _randomise(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Deterministic random values for every parameter; unit-scale activations throughout."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, p in module.state_dict().items():
        shape = tuple(p.shape)
        if name.endswith("gamma"):
            value = torch.ones(shape)
        elif len(shape) >= 2:
            value = torch.randn(shape, generator=gen) / math.sqrt(math.prod(shape[1:]))
        elif name.endswith("weight"):  # norms
            value = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:
            value = 0.02 * torch.randn(shape, generator=gen)
        out[name] = value.to(torch.float32).contiguous()
    return out


def tiny_wan_state_dict(
    dim: int = 128,
    num_layers: int = 2,
    ffn_dim: int = 256,
    model_type: str = "i2v",
    in_dim: int | None = None,
    text_dim: int = 4096,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A random Wan 2.1 DiT state dict (i2v: in_dim 36 and ``img_emb``; t2v: in_dim 16, no ``img_emb``).

    The host derives the head count as dim // 128, so ``dim`` must be a multiple of 128.
    """
    if dim % 128:
        raise ValueError(f"dim must be a multiple of 128 (the host infers heads = dim // 128), got {dim}")
    wan, _, ops = _host_imports()
    in_dim = in_dim if in_dim is not None else (36 if model_type == "i2v" else 16)
    model = wan.WanModel(
        model_type=model_type,
        in_dim=in_dim,
        dim=dim,
        ffn_dim=ffn_dim,
        text_dim=text_dim,
        num_heads=dim // 128,
        num_layers=num_layers,
        out_dim=16,
        cross_attn_norm=True,
        operations=ops.disable_weight_init,
        dtype=torch.float32,
    )
    sd = _randomise(model, seed)
    if model_type == "i2v":
        missing = [k for k in WAN_I2V_KEYS if k not in sd]
        if missing:
            raise AssertionError(f"host WanModel no longer has the real Wan 2.1 I2V names: {missing}")
        assert sd["patch_embedding.weight"].shape == (dim, in_dim, 1, 2, 2)
        assert sd["img_emb.proj.0.bias"].shape == (1280,)
    return sd


def _save_safetensors(
    sd: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path), metadata=metadata)
    return path


def write_tiny_wan_i2v(
    path: str | Path,
    dim: int = 128,
    num_heads: int = 1,
    num_layers: int = 2,
    ffn_dim: int = 256,
    text_dim: int = 4096,
    seed: int = 0,
) -> Path:
    """A random Wan 2.1 I2V DiT (in_dim 36, text_dim 4096, CLIP-vision 1280 ``img_emb``)."""
    if dim % 128 == 0 and num_heads != dim // 128:
        raise ValueError(f"the host infers heads = dim // 128 = {dim // 128}; got num_heads={num_heads}")
    return _save_safetensors(
        tiny_wan_state_dict(dim, num_layers, ffn_dim, "i2v", text_dim=text_dim, seed=seed), path
    )


def write_tiny_wan_t2v(
    path: str | Path,
    dim: int = 128,
    num_layers: int = 2,
    ffn_dim: int = 256,
    text_dim: int = 4096,
    seed: int = 0,
) -> Path:
    """A random Wan 2.1 T2V DiT (in_dim 16, no ``img_emb``): what EX-4D must refuse."""
    return _save_safetensors(
        tiny_wan_state_dict(dim, num_layers, ffn_dim, "t2v", text_dim=text_dim, seed=seed), path
    )


def tiny_wan_vae_state_dict(dim: int = 16, seed: int = 1) -> dict[str, torch.Tensor]:
    _, vae, _ = _host_imports()
    model = vae.WanVAE(
        dim=dim,
        z_dim=16,
        dim_mult=[1, 2, 4, 4],
        num_res_blocks=2,
        attn_scales=[],
        temperal_downsample=[False, True, True],
        dropout=0.0,
    )
    sd = _randomise(model, seed)
    missing = [k for k in WAN_VAE_KEYS if k not in sd]
    if missing:
        raise AssertionError(f"host WanVAE no longer has the real Wan 2.1 VAE names: {missing}")
    return sd


def write_tiny_wan_vae(path: str | Path, dim: int = 16, seed: int = 1) -> Path:
    """A random Wan 2.1 VAE (16 latent channels); the host reads its width from decoder.head.0.gamma."""
    return _save_safetensors(tiny_wan_vae_state_dict(dim, seed), path)


def tiny_ex4d_state_dict(
    dim: int,
    num_layers: int,
    ffn_dim: int,
    rank: int = PUBLISHED_RANK,
    hidden: int = 64,
    key_style: str = "peft",
    lora_scale: float = 0.5,
    seed: int = 2,
    alpha: float | None = None,
) -> dict[str, torch.Tensor]:
    """Random EX-4D weights under the published names.

    key_style: "peft" (``blocks.0.self_attn.q.lora_A.default.weight``, as in ``ex4d.ckpt``), "plain"
    (without ``.default``) or "prefixed" (``model.diffusion_model.`` in front of every name).
    ``lora_B`` is random (trained weights are not zero), scaled by ``lora_scale``; ``alpha`` adds
    ``.alpha`` entries (the published file has none: alpha = rank).
    """
    if key_style not in ("peft", "plain", "prefixed"):
        raise ValueError(f"key_style must be peft, plain or prefixed, got {key_style!r}")
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(shape, generator=gen) * scale).contiguous()

    shapes = {"ffn.0": (ffn_dim, dim), "ffn.2": (dim, ffn_dim)}
    sd: dict[str, torch.Tensor] = {}
    suffix = ".default" if key_style in ("peft", "prefixed") else ""
    for i in range(num_layers):
        for target in LORA_TARGETS:
            out_f, in_f = shapes.get(target, (dim, dim))
            name = f"blocks.{i}.{target}"
            sd[f"{name}.lora_A{suffix}.weight"] = rand(rank, in_f, scale=1 / math.sqrt(in_f))
            sd[f"{name}.lora_B{suffix}.weight"] = rand(out_f, rank, scale=lora_scale / math.sqrt(rank))
            if alpha is not None:
                sd[f"{name}.alpha"] = torch.tensor(float(alpha))
    enc = {
        "latent_encoder.0.weight": (hidden, ENCODER_IN_CHANNELS, 1, 1, 1),
        "latent_encoder.2.weight": (hidden, hidden, 1, 1, 1),
        "latent_encoder.4.weight": (hidden, hidden, 1, 1, 1),
        "latent_patch_embedding.weight": (dim, hidden, 1, 2, 2),
    }
    for key, shape in enc.items():
        sd[key] = rand(*shape, scale=1 / math.sqrt(math.prod(shape[1:])))
        sd[key.replace("weight", "bias")] = rand(shape[0], scale=0.02)
    if key_style == "prefixed":
        sd = {f"model.diffusion_model.{k}": v for k, v in sd.items()}
    return sd


def write_tiny_ex4d_checkpoint(
    path: str | Path,
    dim: int = 128,
    num_layers: int = 2,
    ffn_dim: int = 256,
    rank: int = PUBLISHED_RANK,
    hidden: int = 64,
    fmt: str = "ckpt",
    key_style: str = "peft",
    seed: int = 2,
    lora_scale: float = 0.5,
    alpha: float | None = None,
) -> Path:
    """An EX-4D checkpoint: ``fmt="ckpt"`` is torch.save of a plain dict (like ``ex4d.ckpt``, readable
    with weights_only=True), ``fmt="safetensors"`` the same tensors as safetensors."""
    sd = tiny_ex4d_state_dict(dim, num_layers, ffn_dim, rank, hidden, key_style, lora_scale, seed, alpha)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "ckpt":
        torch.save(sd, str(path))
        return path
    if fmt == "safetensors":
        return _save_safetensors(sd, path)
    raise ValueError(f"fmt must be 'ckpt' or 'safetensors', got {fmt!r}")


def tiny_distill_lora_state_dict(
    dim: int = 128, num_layers: int = 2, ffn_dim: int = 256, rank: int = 16, seed: int = 5
) -> dict[str, torch.Tensor]:
    """Random weights in the layout of lightx2v's step+CFG distillation LoRA for Wan 2.1 I2V (bf16):
    ``diffusion_model.<layer>.lora_down.weight`` / ``.lora_up.weight`` / ``.alpha`` for every Linear layer
    of the DiT (blocks, ``img_emb``, text and time embeddings, head), ``.diff_b`` for its bias and ``.diff``
    for the weight of every norm in the blocks. The up matrices are random (a trained LoRA's are not zero)."""
    base = tiny_wan_state_dict(dim, num_layers, ffn_dim, "i2v")
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float) -> torch.Tensor:
        return torch.randn(shape, generator=gen) * scale

    sd: dict[str, torch.Tensor] = {}
    for name, weight in base.items():
        if not name.endswith(".weight"):
            continue
        layer = name.removesuffix(".weight")
        key = f"diffusion_model.{layer}"
        if weight.ndim == 2:
            out_features, in_features = weight.shape
            sd[f"{key}.lora_down.weight"] = rand(rank, in_features, scale=in_features**-0.5)
            sd[f"{key}.lora_up.weight"] = rand(out_features, rank, scale=0.5 * rank**-0.5)
            sd[f"{key}.alpha"] = torch.tensor(float(rank))
            if f"{layer}.bias" in base:
                sd[f"{key}.diff_b"] = rand(out_features, scale=0.02)
        elif weight.ndim == 1 and layer.startswith("blocks.") and ".norm" in layer:
            sd[f"{key}.diff"] = rand(*weight.shape, scale=0.05)
    return {k: v.to(torch.bfloat16) for k, v in sd.items()}


def write_tiny_distill_lora(
    path: str | Path, dim: int = 128, num_layers: int = 2, ffn_dim: int = 256, rank: int = 16, seed: int = 5
) -> Path:
    """A step-distillation LoRA file for a tiny Wan 2.1 I2V DiT of the same sizes (see
    :func:`tiny_distill_lora_state_dict`), for the host's LoraLoaderModelOnly."""
    return _save_safetensors(tiny_distill_lora_state_dict(dim, num_layers, ffn_dim, rank, seed), path)


def write_prompt_embeddings(
    path: str | Path, length: int = 12, dim: int = 4096, seed: int = 3, prompt: str = "random test embedding"
) -> Path:
    """A random [1, length, dim] prompt embedding in the format of EX-4D Save Prompt Embeddings."""
    gen = torch.Generator().manual_seed(seed)
    cond = torch.randn(1, length, dim, generator=gen) * 0.1
    return save_prompt_embeddings([(cond, {})], path, prompt=prompt)
