"""A downsampled DW-mesh of one frame for the browser's camera editor, and its binary form."""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

import numpy as np
import torch

from ..camera.lens import PUBLISHED_FOCAL
from .build import build_dw_mesh
from .grid import grid_faces
from .stretched import hidden_vertices, stretched_faces

SCENE_MAGIC = b"EX4DSCN1"
SCENE_MAX_VERTICES = 20_000  # about 36k faces: a software-GL redraw (two passes) stays near 25 ms


@dataclass
class SceneAsset:
    """A downsampled DW-mesh of one frame for the browser's camera editor.

    vertices [V, 3] float32 (world: x right, y down, z forward, border pushed back like the full mesh);
    colors [V, 4] uint8 RGBA with alpha 0 on hidden vertices (as the renderer's mask reads them);
    faces [F, 3] uint32 in :func:`grid_faces` order over the ``rows`` x ``cols`` sample grid.
    """

    vertices: np.ndarray
    colors: np.ndarray
    faces: np.ndarray
    rows: int
    cols: int
    width: int
    height: int
    focal: float

    def to_bytes(self) -> bytes:
        """``EX4DSCN1``, uint32 header length, a JSON header (space-padded to 4 bytes), then little-endian
        float32 positions, uint8 RGBA colours, uint32 face indices."""
        header = {"version": 1, "rows": self.rows, "cols": self.cols, "vertices": len(self.vertices),
                  "faces": len(self.faces), "width": self.width, "height": self.height, "focal": self.focal}
        js = json.dumps(header).encode("utf-8")
        js += b" " * ((-len(js)) % 4)
        return b"".join([SCENE_MAGIC, struct.pack("<I", len(js)), js, self.vertices.astype("<f4").tobytes(),
                         self.colors.astype("u1").tobytes(), self.faces.astype("<u4").tobytes()])


def sample_indices(size: int, step: int) -> np.ndarray:
    """Every ``step``-th pixel index and always the last one (the border must stay in the grid)."""
    return np.unique(np.r_[np.arange(0, size, step), size - 1])


def depth_shade(depth: torch.Tensor) -> torch.Tensor:
    """[H, W] z-depth -> [H, W, 3] grey in [0.15, 0.9], nearer brighter (log depth): a scene to look at when
    no frame is at hand."""
    d = depth.to(torch.float32).clamp_min(1e-6).log()
    lo, hi = d.min(), d.max()
    t = (hi - d) / (hi - lo) if hi > lo else torch.ones_like(d)
    return (0.15 + 0.75 * t)[..., None].expand(*d.shape, 3)


def scene_asset(
    frame: torch.Tensor | None, depth: torch.Tensor, focal: float = PUBLISHED_FOCAL, max_vertices: int = SCENE_MAX_VERTICES
) -> SceneAsset:
    """The DW-mesh of one frame ([H, W, 3] in [0, 1], or None for :func:`depth_shade`; [H, W] z-depth) on
    every ``step``-th pixel, at most about ``max_vertices`` vertices. Vertices sit where the full mesh puts
    them; a vertex is hidden when the full mesh hides it or when the angle filter flags a face of the coarse
    grid (a depth edge the coarse faces span), so the coarse mesh renders with the hidden regions of the full
    one, a little wider."""
    h, w = depth.shape
    if frame is None:
        frame = depth_shade(depth)
    step = max(1, math.ceil(math.sqrt(h * w / max_vertices)))
    rows, cols = sample_indices(h, step), sample_indices(w, step)
    full = build_dw_mesh(frame[None].to(torch.float32).cpu(), depth[None].to(torch.float32).cpu(), focal=focal)
    pick = torch.from_numpy((rows[:, None] * w + cols[None, :]).reshape(-1))
    points = full.vertices[0, pick].reshape(1, len(rows), len(cols), 3)
    faces = grid_faces(len(rows), len(cols))
    coarse_hidden = hidden_vertices(stretched_faces(points, faces), faces, len(rows), len(cols))[0]
    colors = full.colors[0, pick].clone()
    colors[coarse_hidden] = 0.0
    return SceneAsset(
        vertices=points.reshape(-1, 3).numpy().astype(np.float32),
        colors=colors.round().clamp(0, 255).to(torch.uint8).numpy(),
        faces=faces.numpy().astype(np.uint32),
        rows=len(rows), cols=len(cols), width=int(w), height=int(h), focal=float(focal),
    )
