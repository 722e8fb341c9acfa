"""Stretched faces: the faces a depth edge pulls long and thin, and the vertices a watertight mesh hides.

A face is stretched when its smallest interior angle is under ``angle_threshold`` degrees ("angle", published:
2.5) or when its z extent is over ``boundary_ratio`` times its larger x / y extent ("boundary"). The watertight
mesh *hides* them: their vertices get RGBA = 0, the faces stay and keep occluding.
"""

from __future__ import annotations

import math

import torch

FILTERS = ("angle", "boundary", "none")


def _min_angle_deg(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Smallest interior angle (degrees) of triangles (a, b, c), [..., 3] each."""

    def angle(p: torch.Tensor, q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        e1, e2 = q - p, r - p
        # atan2(|cross|, dot) stays accurate for the tiny angles the filter looks for
        return torch.atan2(torch.linalg.vector_norm(torch.cross(e1, e2, dim=-1), dim=-1), (e1 * e2).sum(-1))

    aa, ab = angle(a, b, c), angle(b, c, a)
    ac = math.pi - aa - ab
    return torch.rad2deg(torch.minimum(torch.minimum(aa, ab), ac))


def _boundary_ratio(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    m = torch.maximum(torch.maximum((a - b).abs(), (b - c).abs()), (c - a).abs())
    return m[..., 2] / (torch.maximum(m[..., 0], m[..., 1]) + 1e-8)


def stretched_faces(
    points: torch.Tensor,
    faces: torch.Tensor,
    filter: str = "angle",
    angle_threshold: float = 2.5,
    boundary_ratio: float = 2.0,
) -> torch.Tensor:
    """[T, F] bool: faces flagged by the filter. ``points`` is [T, H, W, 3]; faces in :func:`grid_faces` order."""
    t, h, w, _ = points.shape
    if filter == "none":
        return torch.zeros(t, faces.shape[0], dtype=torch.bool, device=points.device)
    if filter not in FILTERS:
        raise ValueError(f"unknown face filter {filter!r}; expected one of {FILTERS}")
    bl, tl, tr, br = points[:, 1:, :-1], points[:, :-1, :-1], points[:, :-1, 1:], points[:, 1:, 1:]
    flat = points.reshape(t, h * w, 3)
    close = faces[-2:].long()
    tris = [(bl, tl, tr), (bl, tr, br), (flat[:, close[:, 0]], flat[:, close[:, 1]], flat[:, close[:, 2]])]
    out = []
    for a, b, c in tris:
        if filter == "angle":
            flag = _min_angle_deg(a, b, c) < angle_threshold
        else:
            flag = _boundary_ratio(a, b, c) > boundary_ratio
        out.append(flag.reshape(t, -1))
    return torch.cat(out, 1)


def hidden_vertices(stretched: torch.Tensor, faces: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """[T, H*W] bool: vertices of any stretched face (uses the grid layout; no scatter over 3F indices)."""
    t = stretched.shape[0]
    nq = (h - 1) * (w - 1)
    s1 = stretched[:, :nq].reshape(t, h - 1, w - 1)
    s2 = stretched[:, nq : 2 * nq].reshape(t, h - 1, w - 1)
    hv = torch.zeros(t, h, w, dtype=torch.bool, device=stretched.device)
    hv[:, 1:, :-1] |= s1 | s2  # BL of both
    hv[:, :-1, 1:] |= s1 | s2  # TR of both
    hv[:, :-1, :-1] |= s1  # TL
    hv[:, 1:, 1:] |= s2  # BR
    hv = hv.reshape(t, h * w)
    for k in (0, 1):
        idx = faces[2 * nq + k].long()
        hv[:, idx] |= stretched[:, 2 * nq + k, None]
    return hv
