"""The camera encoder's published inputs: the rendered colour and mask videos mapped as in training, their
VAE latents side by side, and the I2V start image."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .masks import DEFAULT_EROSION, binarize_mask, erode_frames


@dataclass
class CameraInputs:
    """The two videos the camera encoder's VAE latents come from, in the VAE's [-1, 1] space."""

    colour: torch.Tensor  # [T, H, W, 3]: (c * m) * 2 - 1, in [-1, 1]
    mask: torch.Tensor  # [T, H, W, 3]: ((2m - 1) * 2 - 1), values {-3, +1} (the published double mapping)
    binary_mask: torch.Tensor  # [T, H, W]: m in {0, 1}


def prepare_camera_inputs(
    colour: torch.Tensor, mask: torch.Tensor, erosion: int | Sequence[int] = DEFAULT_EROSION
) -> CameraInputs:
    """From the rendered colour video [T,H,W,3] in [0,1] and visibility mask [T,H,W] in [0,1].

    ``erosion``: one kernel size for every frame, or one per frame (:func:`ex4d.masks.erosion_kernels`).
    Published: mask eroded (k x k), binarised at 0.5 -> m; colour c * m mapped to [-1, 1]; the mask
    mapped to [-1, 1] (2m - 1) and then mapped AGAIN, (2m - 1) * 2 - 1, giving {-3, +1}; the trained
    weights saw that, so it is reproduced.
    """
    if colour.ndim != 4 or colour.shape[-1] != 3:
        raise ValueError(f"colour must be [T, H, W, 3], got {list(colour.shape)}")
    if mask.ndim == 4:
        mask = mask.mean(dim=-1)
    if mask.shape != colour.shape[:3]:
        raise ValueError(f"mask {list(mask.shape)} does not match colour frames {list(colour.shape[:3])}")
    m = binarize_mask(erode_frames(mask.float(), erosion))
    colour_pm1 = (colour.float() * m[..., None]) * 2.0 - 1.0
    mask_pm1 = (2.0 * m - 1.0) * 2.0 - 1.0
    return CameraInputs(
        colour=colour_pm1, mask=mask_pm1[..., None].expand(*m.shape, 3).contiguous(), binary_mask=m
    )


def first_frame(colour: torch.Tensor, inputs: CameraInputs) -> torch.Tensor:
    """The I2V start image [1, H, W, 3] in [0, 1]: colour frame 0 masked as the camera encoder sees it,
    requantised to 8 bits as the published ``to_pil_image`` does (``mul(255).byte()``: truncation)."""
    masked = colour[:1].float().clamp(0.0, 1.0) * inputs.binary_mask[:1, ..., None]
    return (masked * 255.0).to(torch.uint8).float() / 255.0


# vae_encode(video [T, H, W, 3] in the VAE's [-1, 1] input space) -> normalised latents [1, 16, T', h, w]
VaeEncode = Callable[[torch.Tensor], torch.Tensor]


def camera_latents(inputs: CameraInputs, vae_encode: VaeEncode) -> torch.Tensor:
    """The camera encoder's input: concat(latents of the colour video, latents of the mask video)."""
    colour = vae_encode(inputs.colour)
    mask = vae_encode(inputs.mask)
    if colour.shape != mask.shape:
        raise ValueError(f"colour latents {list(colour.shape)} and mask latents {list(mask.shape)} differ")
    return torch.cat([colour, mask], dim=1)
