"""DepthCrafter's published sliding windows over a clip, and the blend of their overlaps."""

from __future__ import annotations

import torch


def window_starts(num_frames: int, window: int, overlap: int) -> tuple[list[int], int, int]:
    """Start frames of the published sliding windows, and the effective (window, overlap).

    A clip no longer than the window is one window without overlap.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if num_frames <= window:
        return [0], num_frames, 0
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, window), got overlap={overlap}, window={window}")
    stride = window - overlap
    starts = []
    start = 0
    while start < num_frames - overlap:
        starts.append(start)
        start += stride
    return starts, window, overlap


def blend_windows(done: torch.Tensor | None, new: torch.Tensor, overlap: int) -> torch.Tensor:
    """Append a window's result along dim 1, blending the overlap as published.

    The ``overlap`` frames shared with ``done`` become ``new * w + done * (1 - w)`` with
    w = linspace(0, 1, overlap): the first shared frame is the previous window's, the last the new one's.
    """
    if done is None:
        return new.clone()
    if overlap == 0:
        return torch.cat([done, new], dim=1)
    # published: float32 weights, so the mix is computed in float32 and rounded to the latents' dtype once
    w = torch.linspace(0, 1, overlap, device=new.device)
    w = w.view(1, overlap, *([1] * (new.ndim - 2)))
    mixed = (new[:, :overlap] * w + done[:, -overlap:] * (1 - w)).to(new.dtype)
    return torch.cat([done[:, :-overlap], mixed, new[:, overlap:]], dim=1)
