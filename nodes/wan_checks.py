"""Checks that a MODEL or VAE is the Wan 2.1 one EX-4D and its speed settings are made for, and that an
EX-4D checkpoint fits the model: each failure a ValueError naming the input and what to connect instead."""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_base
import comfy.utils

from ..ex4d.adapter import EX4DAdapter
from ..ex4d.sampling import LATENT_CHANNELS

WAN_I2V_IN_DIM = 36


@dataclass(frozen=True)
class WanInfo:
    dim: int
    in_dim: int
    num_layers: int
    ffn_dim: int


def check_wan_dit(model) -> None:
    """A ValueError naming ``model`` unless it is a Wan 2.1 DiT (the speed settings know its blocks)."""
    base = getattr(model, "model", None)
    if not isinstance(base, comfy.model_base.WAN21) or not hasattr(getattr(base, "diffusion_model", None), "blocks"):
        name = type(base).__name__ if base is not None else type(model).__name__
        raise ValueError(f"model: this speed setting is made for the Wan 2.1 DiT (EX-4D's); got a {name} model. "
                         f"Connect the output of EX-4D LoRA or a Wan 2.1 loader.")


def check_wan_i2v(model) -> WanInfo:
    """The model's sizes, or a ValueError saying why EX-4D cannot use it (needs Wan 2.1 I2V)."""
    base = getattr(model, "model", None)
    dm = getattr(base, "diffusion_model", None)
    embed = getattr(dm, "patch_embedding", None)
    name = type(base).__name__ if base is not None else type(model).__name__
    if not isinstance(base, comfy.model_base.WAN21) or embed is None or not hasattr(dm, "blocks"):
        raise ValueError(
            f"model: EX-4D needs a Wan 2.1 image-to-video DiT (Wan2.1-I2V-14B-480P); got a {name} model"
        )
    in_dim = int(embed.weight.shape[1])
    has_clip = getattr(dm, "img_emb", None) is not None
    if in_dim != WAN_I2V_IN_DIM or not getattr(base, "image_to_video", False) or not has_clip:
        kind = "text-to-video" if in_dim == 16 and not has_clip else "non-I2V"
        raise ValueError(
            f"model: EX-4D needs a Wan 2.1 image-to-video DiT ({WAN_I2V_IN_DIM} input channels and the CLIP image "
            f"embedding img_emb, e.g. Wan2.1-I2V-14B-480P); this is a Wan {kind} model with {in_dim} input "
            f"channels{'' if has_clip else ' and no img_emb'}"
        )
    return WanInfo(dim=int(dm.dim), in_dim=in_dim, num_layers=len(dm.blocks), ffn_dim=int(dm.ffn_dim))


def check_adapter_fits(model, info: WanInfo, adapter: EX4DAdapter) -> None:
    """Refuse a checkpoint made for another DiT, naming both sizes."""
    if adapter.out_dim != info.dim:
        raise ValueError(
            f"adapter: this EX-4D checkpoint was made for a DiT of width {adapter.out_dim} (its camera encoder "
            f"outputs {adapter.out_dim} channels), but the model's width is {info.dim}. Use the checkpoint that "
            f"belongs to this Wan model (EX-4D was trained on Wan2.1-I2V-14B, width 5120)."
        )
    if adapter.num_blocks > info.num_layers:
        raise ValueError(
            f"adapter: this EX-4D checkpoint has LoRA weights for {adapter.num_blocks} blocks, but the model "
            f"has {info.num_layers}"
        )
    for name, (a, b) in adapter.lora.items():
        try:
            weight = comfy.utils.get_attr(model.model, f"diffusion_model.{name}.weight")
        except AttributeError:
            raise ValueError(f"adapter: LoRA layer {name} has no counterpart in the model") from None
        expected = (b.shape[0], a.shape[1])
        if tuple(weight.shape) != expected:
            raise ValueError(
                f"adapter: LoRA layer {name} is [out {expected[0]}, in {expected[1]}] but the model's weight "
                f"is [out {weight.shape[0]}, in {weight.shape[1]}] (model width {info.dim}, FFN {info.ffn_dim}): "
                f"the checkpoint was made for another DiT"
            )


def check_wan_vae(vae) -> None:
    if getattr(vae, "latent_channels", None) != LATENT_CHANNELS or getattr(vae, "latent_dim", None) != 3:
        raise ValueError(
            f"vae: EX-4D needs the Wan 2.1 VAE ({LATENT_CHANNELS} latent channels, video); this VAE has "
            f"{getattr(vae, 'latent_channels', '?')} latent channels"
        )
