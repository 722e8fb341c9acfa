"""The Depth Watertight Mesh (EX-4D reference, section 2), batched over frames: the built mesh, what it is built
from, and the build.

Stretched faces (:mod:`.stretched`) are hidden: their vertices get RGBA = 0, the faces stay and keep occluding.
``watertight=False`` is the paper's baseline ablation: stretched faces are deleted instead (per-frame
``face_keep`` mask).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..camera.lens import PUBLISHED_FOCAL
from .grid import grid_faces, unproject
from .stretched import FILTERS, hidden_vertices, stretched_faces


@dataclass
class DWMesh:
    """Per-frame DW-meshes sharing one face list.

    vertices [T, H*W, 3] float32 (world = source camera frame: x right, y down, z forward);
    colors [T, H*W, 4] float32 RGBA in 0..255 (alpha 0 on hidden vertices); faces [F, 3] int32;
    face_keep [T, F] bool or None (only for the non-watertight ablation: False = deleted face);
    stretched [T, F] bool: the faces the filter flagged (hidden or deleted);
    frame0 [H, W, 3] float in [0, 1]: the unmodified first source frame (the output's frame 0).
    """

    vertices: torch.Tensor
    colors: torch.Tensor
    faces: torch.Tensor
    height: int
    width: int
    frame0: torch.Tensor
    focal: float = PUBLISHED_FOCAL
    face_keep: torch.Tensor | None = None
    stretched: torch.Tensor | None = None

    @property
    def num_frames(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def device(self) -> torch.device:
        return self.vertices.device

    def to(self, device: torch.device | str) -> DWMesh:
        def mv(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.to(device)

        return DWMesh(
            self.vertices.to(device),
            self.colors.to(device),
            self.faces.to(device),
            self.height,
            self.width,
            self.frame0.to(device),
            self.focal,
            mv(self.face_keep),
            mv(self.stretched),
        )

    @property
    def watertight(self) -> bool:
        """False for the ablation, whose frames each have their own face list."""
        return self.face_keep is None

    def frame_faces(self, frame: int) -> torch.Tensor:
        """Faces present in one frame ([F', 3] int32): all of them unless the ablation deleted some."""
        if self.face_keep is None:
            return self.faces
        return self.faces[self.face_keep[frame]]

    def part(self, start: int, stop: int, device: torch.device | str | None = None) -> DWMesh:
        """Frames ``start`` .. ``stop - 1`` on ``device`` (default: where they are); ``frame0`` stays the
        first frame of the whole."""
        dev = self.device if device is None else torch.device(device)

        def cut(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x[start:stop].to(dev)

        return DWMesh(cut(self.vertices), cut(self.colors), self.faces.to(dev), self.height, self.width,
                      self.frame0.to(dev), self.focal, cut(self.face_keep), cut(self.stretched))


@dataclass(frozen=True, eq=False)
class DWMeshSpec:
    """What a :class:`DWMesh` is built from, to build it where it is used, a few frames at a time.

    The mesh is a function of these; built whole it is large (0.36 GB at 512 x 512 x 49 frames, 0.87 GB at
    1024 x 576 x 49), so it is handed on as this and built per chunk on the device that renders it.
    frames [T, H, W, 3] float in [0, 1], depth [T, H, W] z-depth; the rest as :func:`build_dw_mesh`.
    """

    frames: torch.Tensor
    depth: torch.Tensor
    focal: float = PUBLISHED_FOCAL
    filter: str = "angle"
    angle_threshold: float = 2.5
    boundary_ratio: float = 2.0
    watertight: bool = True
    focals: torch.Tensor | None = None

    def __post_init__(self) -> None:
        _check_frames_and_depth(self.frames, self.depth)
        _check_focals(self.focals, self.num_frames)
        if self.height < 2 or self.width < 2:
            raise ValueError(f"a DW-mesh needs at least 2 x 2 pixels, got {self.height} x {self.width}")
        if self.filter not in FILTERS:
            raise ValueError(f"unknown face filter {self.filter!r}; expected one of {FILTERS}")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def device(self) -> torch.device:
        return self.frames.device

    @property
    def frame0(self) -> torch.Tensor:
        return self.frames[0].to(torch.float32)

    @property
    def faces(self) -> torch.Tensor:
        return grid_faces(self.height, self.width, self.device)

    def part(self, start: int, stop: int, device: torch.device | str | None = None) -> DWMesh:
        """The DW-mesh of frames ``start`` .. ``stop - 1``, built on ``device`` (default: the frames');
        ``frame0`` is the first frame of the whole. The same numbers as those frames of the whole mesh."""
        dev = torch.device(device) if device is not None else self.device
        frames = self.frames[start:stop].to(dev, torch.float32)
        focals = None if self.focals is None else self.focals[start:stop]
        mesh = build_dw_mesh(frames, self.depth[start:stop].to(dev, torch.float32), focal=self.focal,
                             filter=self.filter, angle_threshold=self.angle_threshold,
                             boundary_ratio=self.boundary_ratio, watertight=self.watertight, focals=focals)
        mesh.frame0 = self.frame0.to(dev)
        return mesh


def _check_focals(focals: torch.Tensor | None, num_frames: int) -> None:
    if focals is not None and (focals.shape != (num_frames,) or not bool((focals > 0).all())):
        raise ValueError(f"focals must be {num_frames} positive focal lengths (one per frame), got "
                         f"{list(focals.shape)}")


def _check_frames_and_depth(frames: torch.Tensor, depth: torch.Tensor) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3], got {list(frames.shape)}")
    if depth.shape != frames.shape[:3]:
        raise ValueError(f"depth {list(depth.shape)} does not match frames {list(frames.shape[:3])}")


def build_dw_mesh(
    frames: torch.Tensor,
    depth: torch.Tensor,
    focal: float = PUBLISHED_FOCAL,
    filter: str = "angle",
    angle_threshold: float = 2.5,
    boundary_ratio: float = 2.0,
    watertight: bool = True,
    chunk_frames: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    focals: torch.Tensor | None = None,
) -> DWMesh:
    """Build the per-frame DW-meshes.

    frames: [T, H, W, 3] float in [0, 1]; depth: [T, H, W] z-depth (same device). Vectorised over faces,
    processed ``chunk_frames`` frames at a time to bound the filter's temporaries (about 50 MB a frame at
    512 x 512; default: 64 frames on a GPU, 8 elsewhere). ``progress(done, total)`` after each chunk.
    ``focals`` [T], where the source zooms, unprojects each frame with its own focal length in place of ``focal``.
    """
    if depth.ndim == 4 and depth.shape[-1] == 1:
        depth = depth[..., 0]
    _check_frames_and_depth(frames, depth)
    t, h, w = depth.shape
    _check_focals(focals, t)
    device = frames.device
    depth = depth.to(device)
    faces = grid_faces(h, w, device)
    if chunk_frames is None:
        chunk_frames = 64 if device.type == "cuda" else 8
    nf = faces.shape[0]
    # outputs written in place chunk by chunk (no concatenation copies at the end)
    verts = torch.empty(t, h * w, 3, dtype=torch.float32, device=device)
    cols = torch.empty(t, h * w, 4, dtype=torch.float32, device=device)
    stretched = torch.empty(t, nf, dtype=torch.bool, device=device)
    cols[..., 3] = 255.0
    for s in range(0, t, chunk_frames):
        pts = unproject(depth[s : s + chunk_frames], focal if focals is None else focals[s : s + chunk_frames])
        n = pts.shape[0]
        e = s + n
        verts[s:e] = pts.reshape(n, h * w, 3)
        st = stretched_faces(pts, faces, filter, angle_threshold, boundary_ratio)
        stretched[s:e] = st
        torch.mul(frames[s:e].reshape(n, h * w, 3), 255.0, out=cols[s:e, :, :3])
        if watertight:
            cols[s:e].masked_fill_(hidden_vertices(st, faces, h, w)[..., None], 0.0)
        if progress is not None:
            progress(e, t)
    return DWMesh(
        verts,
        cols,
        faces,
        h,
        w,
        frames[0].to(torch.float32).clone(),
        float(focal),
        face_keep=None if watertight else ~stretched,
        stretched=stretched,
    )
