"""A camera path drawn as dots: a top and a side view of its eyes (blue first, red last), viewing directions,
the orbit centre and, when given, the frame-0 scene as points."""

from __future__ import annotations

import numpy as np

from .path import CameraPath


def _frame_ramp(t: np.ndarray) -> np.ndarray:
    """Blue (first frame) -> red (last frame) for values in [0, 1]; [..., 3] float in [0, 1]."""
    t = np.clip(t, 0.0, 1.0)[..., None]
    blue, green, red = np.array([0.15, 0.35, 1.0]), np.array([0.2, 0.9, 0.3]), np.array([1.0, 0.25, 0.15])
    return np.where(t < 0.5, blue + (green - blue) * (2 * t), green + (red - green) * (2 * t - 1))


def path_centre(camera: CameraPath) -> np.ndarray | None:
    """The point nearest to every viewing ray (least squares): the orbit centre; None when the rays are
    (nearly) parallel, as in a dolly."""
    eyes = camera.eyes()
    fwd = camera.view_matrices()[:, 2, :3]
    proj = np.eye(3)[None] - fwd[:, :, None] * fwd[:, None, :]  # projectors orthogonal to each ray
    a, b = proj.sum(0), np.einsum("nij,nj->i", proj, eyes)
    if np.linalg.cond(a) > 1e6:
        return None
    return np.linalg.solve(a, b)


def path_preview(
    camera: CameraPath,
    points: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    size: int = 384,
) -> np.ndarray:
    """A top view (x right, z up the image) and a side view (z right, y down) of the path, side by side.

    Eyes are dots coloured from blue (first frame) to red (last), each with a short tick along its viewing
    direction; the orbit centre (:func:`path_centre`), when there is one, is a white cross. ``points``
    [M, 3] (e.g. the frame-0 scene without the pushed-back border) are drawn in ``colors`` [M, 3] (0..1) or
    grey. Returns [size, 2 * size, 3] float32 in [0, 1]; both panels share one scale that fits everything.
    """
    eyes = camera.eyes()
    fwd = camera.view_matrices()[:, 2, :3]  # rows of V: right, up', fwd
    centre = path_centre(camera)
    extent = [eyes] + ([points] if points is not None and len(points) else []) + (
        [centre[None]] if centre is not None else [])
    allp = np.concatenate(extent)
    lo, hi = allp.min(0), allp.max(0)
    span = float(max((hi - lo).max(), 1e-3)) * 1.15
    mid = (lo + hi) / 2
    image = np.full((size, 2 * size, 3), 0.08, dtype=np.float32)
    image[:, size - 1 : size + 1] = 0.3  # panel divider

    def draw(p: np.ndarray, rgb: np.ndarray, radius_px: int = 0) -> None:
        rgb = np.broadcast_to(rgb, (len(p), 3))
        for panel in (0, 1):
            # top view: x to the right, z (forward) up; side view: z to the right, y down
            u, v = (p[:, 0] - mid[0], mid[2] - p[:, 2]) if panel == 0 else (p[:, 2] - mid[2], p[:, 1] - mid[1])
            col = ((u / span + 0.5) * (size - 1)).round().astype(int) + panel * size
            row = ((v / span + 0.5) * (size - 1)).round().astype(int)
            for dr in range(-radius_px, radius_px + 1):
                for dc in range(-radius_px, radius_px + 1):
                    r, c = row + dr, col + dc
                    ok = (r >= 0) & (r < size) & (c >= panel * size) & (c < (panel + 1) * size)
                    image[r[ok], c[ok]] = rgb[ok]

    if points is not None and len(points):
        draw(points, np.full(3, 0.55) if colors is None else np.clip(colors, 0.0, 1.0))
    frac = np.linspace(0.0, 1.0, len(eyes))
    steps = np.linspace(0.0, 0.08 * span, 10)[:, None, None]
    draw((eyes[None] + steps * fwd[None]).reshape(-1, 3), np.tile(_frame_ramp(frac) * 0.7, (len(steps), 1)))
    if camera.lens.zooms:  # each frame's field of view: the four frustum edges (wide = short focal length)
        every = max(1, round(len(eyes) / 8))
        frames = np.unique(np.r_[np.arange(0, len(eyes), every), len(eyes) - 1])
        view = camera.view_matrices()[frames]
        right, up, ahead = view[:, 0, :3], view[:, 1, :3], view[:, 2, :3]
        f = camera.frame_focals()[frames][:, None]
        edges = [ahead * f + sx * right * camera.width / 2 + sy * up * camera.height / 2
                 for sx in (-1, 1) for sy in (-1, 1)]
        steps = np.linspace(0.0, 0.12 * span, 12)[:, None, None]
        for edge in edges:
            edge = edge / np.linalg.norm(edge, axis=1, keepdims=True)
            draw((eyes[frames][None] + steps * edge[None]).reshape(-1, 3),
                 np.tile(_frame_ramp(frac[frames]) * 0.5, (len(steps), 1)))
    if centre is not None:
        arm = np.linspace(-0.03, 0.03, 9) * span
        zeros = np.zeros_like(arm)
        cross = np.concatenate([np.stack([arm, zeros, zeros], 1), np.stack([zeros, arm, zeros], 1),
                                np.stack([zeros, zeros, arm], 1)])
        draw(centre + cross, np.ones(3))
    draw(eyes, _frame_ramp(frac), radius_px=2)
    return image
