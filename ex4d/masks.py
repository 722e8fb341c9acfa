"""Visibility masks as the camera encoder saw them in training: eroded by a square kernel, binarised."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

PUBLISHED_EROSION_RANGE = (2, 8)  # the published script draws the kernel size at random in 2..8
DEFAULT_EROSION = 5
EROSION_FIXED = "fixed"
EROSION_RANDOM = "random per frame (published)"
EROSION_MODES = (EROSION_FIXED, EROSION_RANDOM)


def published_erosion_kernels(num_frames: int, seed: int) -> list[int]:
    """The published draw: a kernel size uniform in 2..8 for every frame, here from a seeded CPU generator."""
    low, high = PUBLISHED_EROSION_RANGE
    generator = torch.Generator("cpu").manual_seed(int(seed))
    return torch.randint(low, high + 1, (num_frames,), generator=generator).tolist()


def erosion_kernels(num_frames: int, mode: str, kernel_size: int, seed: int) -> list[int]:
    """One erosion kernel size per frame: ``kernel_size`` everywhere, or the published random draw."""
    if mode == EROSION_FIXED:
        return [int(kernel_size)] * num_frames
    if mode == EROSION_RANDOM:
        return published_erosion_kernels(num_frames, seed)
    raise ValueError(f"mode must be one of {', '.join(EROSION_MODES)}; got {mode!r}")


def erode_mask(mask: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Grey-level erosion of [..., H, W] with a k x k square, as ``cv2.erode(m, ones((k, k)))``.

    OpenCV anchors the kernel at (k // 2, k // 2), so an even k reaches one pixel further up/left
    than down/right, and pixels outside the image never erode (its default border for erosion).
    k <= 1 returns the mask unchanged.
    """
    if kernel_size <= 1:
        return mask
    k = int(kernel_size)
    a = k // 2
    shape = mask.shape
    x = mask.reshape(-1, 1, *shape[-2:]).float()
    big = torch.finfo(x.dtype).max
    x = F.pad(x, (a, k - 1 - a, a, k - 1 - a), value=big)
    return (-F.max_pool2d(-x, k, stride=1)).reshape(shape).to(mask.dtype)


def erode_frames(mask: torch.Tensor, erosion: int | Sequence[int]) -> torch.Tensor:
    """[T, H, W] eroded with one kernel size for every frame, or with ``erosion[t]`` for frame t."""
    if isinstance(erosion, int):
        return erode_mask(mask, erosion)
    if len(erosion) != mask.shape[0]:
        raise ValueError(f"erosion: {len(erosion)} kernel sizes for {mask.shape[0]} mask frames")
    return torch.stack([erode_mask(frame, k) for frame, k in zip(mask, erosion, strict=True)])


def binarize_mask(mask: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """{0, 1} float mask: 1 where the (eroded) mask is above ``threshold``."""
    return (mask > threshold).to(torch.float32)
