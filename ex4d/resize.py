"""The generation size of a render, and the rendered colour and mask videos resized to it."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SIZE_MULTIPLE = 16  # 8x VAE compression, then the DiT's 2 x 2 patches
RESIZE_RENDER_ASPECT = "render aspect"
RESIZE_STRETCH = "stretch (published)"
RESIZE_CROP = "crop"
RESIZE_MODES = (RESIZE_RENDER_ASPECT, RESIZE_STRETCH, RESIZE_CROP)


class GenerationSizeError(ValueError):
    """A box the generation cannot use: each side must be a positive multiple of :data:`SIZE_MULTIPLE`."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.nearest = (round_to_multiple(width), round_to_multiple(height))
        super().__init__(
            f"width and height must be positive multiples of {SIZE_MULTIPLE}, got {width}x{height}; "
            f"the nearest such size is {self.nearest[0]}x{self.nearest[1]}"
        )


def generation_size(
    render_width: int, render_height: int, width: int, height: int, mode: str = RESIZE_RENDER_ASPECT
) -> tuple[int, int]:
    """(width, height) to generate at for a render of ``render_width`` x ``render_height``.

    ``stretch (published)`` and ``crop``: ``width`` x ``height`` itself. ``render aspect``: the largest
    size with the render's aspect that fits in the ``width`` x ``height`` box (scaled up or down), each
    side rounded to a multiple of 16; a 512 x 320 render in a 512 x 512 box stays 512 x 320.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"mode must be one of {', '.join(RESIZE_MODES)}; got {mode!r}")
    if width <= 0 or height <= 0 or width % SIZE_MULTIPLE or height % SIZE_MULTIPLE:
        raise GenerationSizeError(width, height)
    if mode != RESIZE_RENDER_ASPECT:
        return width, height
    scale = min(width / render_width, height / render_height)
    return round_to_multiple(render_width * scale), round_to_multiple(render_height * scale)


def round_to_multiple(size: float, multiple: int = SIZE_MULTIPLE) -> int:
    """``size`` rounded to the nearest multiple of ``multiple``, at least ``multiple``."""
    return max(multiple, math.floor(size / multiple + 0.5) * multiple)


def resize_video(
    frames: torch.Tensor, width: int, height: int, mode: str = RESIZE_RENDER_ASPECT
) -> torch.Tensor:
    """[T, H, W, C] (or a [T, H, W] mask) at the size :func:`generation_size` gives, bilinear.

    ``stretch (published)`` is the published ``cv2.resize`` (bilinear, aspect not kept); ``crop`` first
    cuts the render to the target's aspect around its centre, as the host's Wan nodes do.
    """
    if frames.ndim == 3:
        return resize_video(frames[..., None], width, height, mode)[..., 0]
    out_w, out_h = generation_size(frames.shape[2], frames.shape[1], width, height, mode)
    x = frames.movedim(-1, 1)
    if mode == RESIZE_CROP:
        x = _centre_crop(x, out_w / out_h)
    if tuple(x.shape[-2:]) != (out_h, out_w):
        x = F.interpolate(x.float(), size=(out_h, out_w), mode="bilinear", align_corners=False)
    return x.movedim(1, -1)


def _centre_crop(x: torch.Tensor, aspect: float) -> torch.Tensor:
    """[..., H, W] cut to width / height = ``aspect`` around the centre (offsets as comfy.utils rounds them)."""
    h, w = x.shape[-2:]
    old = w / h
    dx = round((w - w * (aspect / old)) / 2) if old > aspect else 0
    dy = round((h - h * (old / aspect)) / 2) if old < aspect else 0
    return x[..., dy : h - dy, dx : w - dx]
