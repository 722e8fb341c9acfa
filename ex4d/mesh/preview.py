"""One frame of a DW-mesh as a viewer should show it: the border wall and the stretched faces left out, the
source frame's colours."""

from __future__ import annotations

import numpy as np
import torch

from .build import DWMesh, DWMeshSpec
from .grid import grid_faces


class NoVisibleFaces(ValueError):
    """A frame's preview would be empty: every face is on the border wall or flagged by the face filter."""


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB values in [0, 1] -> linear light (the IEC 61966-2-1 curve), float32."""
    c = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def border_wall_faces(height: int, width: int) -> np.ndarray:
    """[F] bool over :func:`grid_faces`: the faces that touch the pushed-back border (the far wall), closing
    faces included."""
    border = np.zeros((height, width), dtype=bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    faces = grid_faces(height, width).numpy()
    return border.reshape(-1)[faces].any(1)


def _strict_filter(mesh: DWMesh | DWMeshSpec) -> tuple[str, str]:
    """The face filter a mesh was built with and how to make it less strict (a built mesh keeps no filter)."""
    if not isinstance(mesh, DWMeshSpec):
        return "its face filter", "a less strict filter"
    if mesh.filter == "boundary":
        return (f"the 'boundary' filter (boundary_ratio {mesh.boundary_ratio:g})",
                "a higher boundary_ratio, the 'angle' filter or 'none'")
    return f"the 'angle' filter (angle_threshold {mesh.angle_threshold:g})", "a lower angle_threshold or 'none'"


def check_visible_faces(mesh: DWMesh | DWMeshSpec, frame: int, off_wall: np.ndarray, keep: np.ndarray) -> None:
    """Refuse a preview with no face to show (``off_wall``, ``keep``: [F] bool, the faces off the border wall and
    those the filter also leaves), saying why and what to change."""
    if not off_wall.any():
        raise NoVisibleFaces(f"a {mesh.width} x {mesh.height} DW-mesh has no faces off its border wall, so its "
                             "preview would be empty; a preview needs frames of at least 4 x 4 pixels")
    if not keep.any():
        flagged_by, fix = _strict_filter(mesh)
        raise NoVisibleFaces(f"frame {frame} of the DW-mesh has no visible faces: {flagged_by} flags every face off "
                             f"the border wall; build the mesh with {fix}, or preview another frame")


def preview_arrays(
    mesh: DWMesh | DWMeshSpec, frame: int, gl_axes: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame's mesh as a viewer should show it: (vertices [V', 3] float32, colours [V', 3] float32 sRGB in
    [0, 1], faces [F', 3] int32 into the compacted vertices). The border wall and the faces the filter
    flagged (hidden or, in the ablation, deleted) are left out; colours come from the source frame when the
    mesh is a spec (a built mesh has only its colours, black on hidden vertices). :class:`NoVisibleFaces` when
    no face is left."""
    if not 0 <= frame < mesh.num_frames:
        raise IndexError(f"frame {frame} out of range for a mesh of {mesh.num_frames} frames")
    one = mesh.part(frame, frame + 1, "cpu")
    off_wall = ~border_wall_faces(mesh.height, mesh.width)
    keep = off_wall if one.stretched is None else off_wall & ~one.stretched[0].numpy()
    check_visible_faces(mesh, frame, off_wall, keep)
    faces = one.faces.numpy()[keep]
    used, faces = np.unique(faces, return_inverse=True)
    faces = faces.reshape(-1, 3).astype(np.int32)
    v = one.vertices[0].numpy()[used].astype(np.float32)
    if gl_axes:
        v[:, 1:] *= -1.0
    if isinstance(mesh, DWMeshSpec):
        rgb = mesh.frames[frame].reshape(-1, 3)[torch.from_numpy(used)].to(torch.float32).numpy()
    else:
        rgb = one.colors[0, :, :3].numpy()[used] / 255.0
    return np.ascontiguousarray(v), np.ascontiguousarray(rgb, dtype=np.float32), np.ascontiguousarray(faces)
