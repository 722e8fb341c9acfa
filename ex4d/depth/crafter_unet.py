"""DepthCrafter's UNet (SVD's spatio-temporal UNet with one CLIP token per frame) and its attention switch."""

from __future__ import annotations

import torch

_UNET_CLASS = None


def depthcrafter_unet_class() -> type:
    """UNetSpatioTemporalConditionModel with DepthCrafter's forward: one CLIP token per frame.

    diffusers' own forward repeats one image embedding for every frame; DepthCrafter feeds the
    embedding of each frame as that frame's only cross-attention token. Everything else is SVD's UNet.
    """
    global _UNET_CLASS
    if _UNET_CLASS is not None:
        return _UNET_CLASS
    from diffusers import UNetSpatioTemporalConditionModel

    class DepthCrafterUNet(UNetSpatioTemporalConditionModel):
        def forward(  # type: ignore[override]
            self,
            sample: torch.Tensor,  # [B, T, C, h, w]
            timestep: torch.Tensor | float,
            encoder_hidden_states: torch.Tensor,  # [B, T, D]: one embedding per frame
            added_time_ids: torch.Tensor,  # [B, 3]
            return_dict: bool = False,
        ) -> torch.Tensor:
            b, t = sample.shape[:2]
            dtype = self.conv_in.weight.dtype
            ts = torch.as_tensor(timestep, device=sample.device)
            ts = ts.reshape(-1).expand(b) if ts.numel() == 1 else ts
            emb = self.time_embedding(self.time_proj(ts).to(dtype))
            extra = self.add_time_proj(added_time_ids.flatten()).reshape(b, -1).to(emb.dtype)
            emb = (emb + self.add_embedding(extra)).repeat_interleave(t, dim=0)
            context = encoder_hidden_states.flatten(0, 1).unsqueeze(1).to(dtype)
            x = self.conv_in(sample.flatten(0, 1).to(dtype))
            indicator = torch.zeros(b, t, dtype=x.dtype, device=x.device)

            skips: list[torch.Tensor] = [x]
            for block in self.down_blocks:
                kw = (
                    {"encoder_hidden_states": context} if getattr(block, "has_cross_attention", False) else {}
                )
                x, res = block(hidden_states=x, temb=emb, image_only_indicator=indicator, **kw)
                skips.extend(res)
            x = self.mid_block(
                hidden_states=x, temb=emb, encoder_hidden_states=context, image_only_indicator=indicator
            )
            for block in self.up_blocks:
                n = len(block.resnets)
                res, skips = tuple(skips[-n:]), skips[:-n]
                kw = (
                    {"encoder_hidden_states": context} if getattr(block, "has_cross_attention", False) else {}
                )
                x = block(
                    hidden_states=x,
                    res_hidden_states_tuple=res,
                    temb=emb,
                    image_only_indicator=indicator,
                    **kw,
                )
            x = self.conv_out(self.conv_act(self.conv_norm_out(x)))
            return x.reshape(b, t, *x.shape[1:])

    _UNET_CLASS = DepthCrafterUNet
    return _UNET_CLASS


def set_attention(modules: list[torch.nn.Module], kind: str) -> None:
    """'sdpa' (PyTorch scaled_dot_product_attention, diffusers AttnProcessor2_0) or 'classic'."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    if kind not in ("sdpa", "classic"):
        raise ValueError(f"attention must be 'sdpa' or 'classic', got {kind!r}")
    for m in modules:
        if hasattr(m, "set_attn_processor"):
            m.set_attn_processor(AttnProcessor2_0() if kind == "sdpa" else AttnProcessor())
