"""Video files for tests and benchmarks: frames written as the H.264 mp4 a user would load (the pack itself
only reads video; the host's own nodes write it)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from ex4d.video import VideoError


def save_video(frames: torch.Tensor, path: str | Path, fps: float = 15.0, crf: int = 18) -> Path:
    """Encode [T, H, W, 3] frames in [0, 1] (or a [T, H, W] mask) as H.264 mp4 (yuv420p)."""
    if frames.ndim == 3:
        frames = frames[..., None].expand(*frames.shape, 3)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise VideoError(f"expected [T, H, W, 3] frames, got {tuple(frames.shape)}")
    t, h, w, _ = frames.shape
    # yuv420p needs even sizes: pad the last row / column by repetition.
    data = (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    if h % 2 or w % 2:
        data = np.pad(data, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = data.shape[2], data.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for i in range(t):
            for packet in stream.encode(av.VideoFrame.from_ndarray(data[i], format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
