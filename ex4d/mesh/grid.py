"""The pixel grid of a DW-mesh: one vertex per pixel on its ray, the published face list.

One vertex per pixel (index v * W + u) at ``depth * ((u - W//2) / f, (v - H//2) / f, 1)`` (f: the clip's focal
length, or each frame's where the source zooms; published: 500) after the border pixels are pushed to depth
100; per quad the faces (BL, TL, TR) and (BL, TR, BR), then two closing faces over the image corners.

Face order: all (BL, TL, TR) faces in row-major quad order, then all (BL, TR, BR) faces, then the two
closing faces (the published code splits the face list in these two halves).
"""

from __future__ import annotations

import torch

from ..camera.lens import PUBLISHED_FOCAL

BORDER_DEPTH = 100.0


def grid_faces(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The published face list for an H x W pixel grid: 2 (H-1)(W-1) + 2 faces, int32."""
    if height < 2 or width < 2:
        raise ValueError(f"a DW-mesh needs at least 2 x 2 pixels, got {height} x {width}")
    tl = (
        torch.arange(height - 1, device=device)[:, None] * width
        + torch.arange(width - 1, device=device)[None, :]
    ).reshape(-1)
    bl, tr, br = tl + width, tl + 1, tl + width + 1
    n = height * width
    closing = torch.tensor([[width - 1, 0, n - 1], [n - 1, 0, (height - 1) * width]], device=device)
    return torch.cat([torch.stack([bl, tl, tr], -1), torch.stack([bl, tr, br], -1), closing]).to(torch.int32)


def unproject(depth: torch.Tensor, focal: float | torch.Tensor = PUBLISHED_FOCAL,
              push_border: bool = True) -> torch.Tensor:
    """[T, H, W] z-depth -> [T, H, W, 3] points on integer pixel rays, principal point (W//2, H//2); ``focal``
    one focal length, or [T] (each frame's)."""
    d = depth.to(torch.float32).clone()
    t, h, w = d.shape
    if push_border:
        d[:, 0, :] = BORDER_DEPTH
        d[:, -1, :] = BORDER_DEPTH
        d[:, :, 0] = BORDER_DEPTH
        d[:, :, -1] = BORDER_DEPTH
    if isinstance(focal, torch.Tensor):
        f = focal.to(d.device, torch.float32).reshape(-1, 1, 1)
        x = (torch.arange(w, device=d.device, dtype=torch.float32) - (w // 2))[None, None, :] / f
        y = (torch.arange(h, device=d.device, dtype=torch.float32) - (h // 2))[None, :, None] / f
        return torch.stack([d * x, d * y, d], -1)
    x = (torch.arange(w, device=d.device, dtype=torch.float32) - (w // 2)) / focal
    y = (torch.arange(h, device=d.device, dtype=torch.float32) - (h // 2)) / focal
    return torch.stack([d * x[None, None, :], d * y[None, :, None], d], -1)
