"""Depth and lens from a geometry estimator's output (MoGe, Depth Anything 3): z-depth per frame, the camera's
intrinsics, and which pixels hold no surface (sky, invalid).

    lens, note = lens_from_intrinsics(k_pixels, width, height)       # one focal length per clip (the median)
    depth = far_wall(values, valid)                                  # no surface: at the DW-mesh's far wall
    aligned, scales = align_scale(depth, valid, window=9)            # one scale over the clip
    scale_jitter(aligned, valid)                                     # frame-to-frame scale change, RMS

Per-frame monocular depth has its own scale in every frame (the estimator sees each frame alone): a subject
that stays put seems to breathe in and out. :func:`align_scale` measures each frame's scale as the median of
its log depth over the pixels with a surface and moves it onto a running median of those medians over
``window`` frames (the whole clip: one scale for the clip), so slow changes (a dolly) stay and frame-to-frame
flicker goes.
"""

from __future__ import annotations

import numpy as np
import torch

from ..camera.lens import Lens, intrinsics_matrix
from ..mesh import BORDER_DEPTH
from .convert import DEPTH_MAX, DEPTH_MIN

# a principal point further than this fraction of the image size from the centre is reported: the renderer
# projects about the centre
PRINCIPAL_POINT_TOLERANCE = 0.02
DA3_PATCH = 14  # Depth Anything 3 runs on images whose sides are multiples of its 14-pixel patch


def lens_from_intrinsics(k: torch.Tensor, width: int, height: int, per_frame: bool = False) -> tuple[Lens, str]:
    """The lens of pixel intrinsics ``k`` [T, 3, 3] (or [3, 3]) for ``width`` x ``height`` frames, and a note
    saying what was taken. One focal length per clip (the median of the frames': an estimator's per-frame focal
    length jitters), or each frame's own with ``per_frame`` (a source that zooms). The principal point is taken
    at the image centre (the renderer projects about it); the note says where it was when it is off."""
    k = torch.as_tensor(k, dtype=torch.float64).reshape(-1, 3, 3)
    focals = ((k[:, 0, 0] + k[:, 1, 1]) / 2).numpy()
    if not np.isfinite(focals).all() or (focals <= 0).any():
        raise ValueError("intrinsics: the focal lengths are not all positive finite numbers")
    focal = float(np.median(focals))
    lens = Lens(width, height, intrinsics_matrix(width, height, focal),
                focals.astype(np.float32) if per_frame and len(focals) > 1 else None)
    spread = f", frames {focals.min():.1f}-{focals.max():.1f}" if len(focals) > 1 else ""
    how = "each frame's own" if lens.zooms else "one per clip"
    note = f"lens: {focal:.1f} px ({how}{spread})"
    cx, cy = float(k[:, 0, 2].mean()), float(k[:, 1, 2].mean())
    if abs(cx - width / 2) > PRINCIPAL_POINT_TOLERANCE * width or abs(cy - height / 2) > PRINCIPAL_POINT_TOLERANCE * height:
        note += (f"; principal point ({cx:.1f}, {cy:.1f}) taken at the image centre ({width / 2:g}, {height / 2:g}),"
                 " where the renderer projects")
    return lens, note


def moge_pixel_intrinsics(k: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """MoGe's intrinsics [T, 3, 3], normalised by the image width (row 0) and height (row 1), in pixels."""
    scale = torch.tensor([width, height, 1.0], dtype=torch.float64)[:, None]
    return torch.as_tensor(k, dtype=torch.float64) * scale


def da3_pixel_intrinsics(k: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Depth Anything 3's multiview intrinsics [1, S, 3, 3] in pixels of the ``width`` x ``height`` frames. The host
    gives them in pixels of the image the model ran on, whose sides are multiples of 14: each side is read as the
    multiple of 14 nearest twice the principal point (the centre with the camera decoder; near it with ray_pose)."""
    k = torch.as_tensor(k, dtype=torch.float64).reshape(-1, 3, 3)
    scale = []
    for row, size in ((0, width), (1, height)):
        seen = DA3_PATCH * max(1, round(2 * float(k[:, row, 2].mean()) / DA3_PATCH))  # the model's image side
        scale.append(size / seen)
    return k * torch.tensor([scale[0], scale[1], 1.0], dtype=torch.float64)[:, None]


def far_wall(depth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``depth`` [T, H, W] with the pixels that hold no surface (``valid`` False, or a depth that is not a positive
    finite number) at the DW-mesh's far wall (depth 100), or just behind the clip's farthest surface where the
    scene reaches beyond it; clipped to the depth range the pack uses."""
    valid = valid & torch.isfinite(depth) & (depth > 0)
    values = depth.float()
    farthest = float(values[valid].max()) if bool(valid.any()) else BORDER_DEPTH
    wall = max(BORDER_DEPTH, farthest * 1.01)
    return torch.where(valid, values, torch.full_like(values, wall)).clamp(DEPTH_MIN, DEPTH_MAX)


def _frame_log_scales(depth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Each frame's median log depth over its ``valid`` pixels ([T] float64; NaN for a frame without any)."""
    out = torch.full((depth.shape[0],), float("nan"), dtype=torch.float64)
    for t in range(depth.shape[0]):
        values = depth[t][valid[t]]
        if values.numel():
            out[t] = values.double().log().median()
    return out


def scale_jitter(depth: torch.Tensor, valid: torch.Tensor) -> float:
    """Frame-to-frame scale jitter: RMS of the change of each frame's median log depth from the frame before,
    as a fraction (0.05: frames differ in scale by about 5 %)."""
    logs = _frame_log_scales(depth, valid)
    steps = (logs[1:] - logs[:-1])
    steps = steps[torch.isfinite(steps)]
    return float(steps.square().mean().sqrt()) if steps.numel() else 0.0


def align_scale(depth: torch.Tensor, valid: torch.Tensor, window: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    """Each frame of ``depth`` [T, H, W] scaled so that its median log depth over its ``valid`` pixels follows the
    running median of the frames' over ``window`` frames (centred; ``window`` >= T: one scale for the whole clip,
    the clip's median). Returns the depth and each frame's scale factor [T]; a frame without valid pixels keeps
    its scale."""
    if window < 1:
        raise ValueError(f"window: {window} frames; give at least 1")
    logs = _frame_log_scales(depth, valid)
    t = len(logs)
    half = window // 2
    target = torch.empty_like(logs)
    for i in range(t):
        lo, hi = (0, t) if window >= t else (max(0, i - half), min(t, i + half + 1))
        seen = logs[lo:hi][torch.isfinite(logs[lo:hi])]
        target[i] = seen.median() if seen.numel() else float("nan")
    factors = torch.exp(target - logs)
    factors = torch.where(torch.isfinite(factors), factors, torch.ones_like(factors))
    return depth * factors.to(depth.dtype)[:, None, None], factors

