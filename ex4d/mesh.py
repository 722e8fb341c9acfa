"""The Depth Watertight Mesh (EX-4D reference, section 2), batched over frames, plus PLY / GLB export.

One vertex per pixel (index v * W + u) at ``depth * ((u - W//2) / f, (v - H//2) / f, 1)`` (f: the clip's focal
length, or each frame's where the source zooms; published: 500) after the
border pixels are pushed to depth 100; per quad the faces (BL, TL, TR) and (BL, TR, BR), then two closing
faces over the image corners. Stretched faces (smallest interior angle < 2.5 deg, or the "boundary" ratio
test) are *hidden*: their vertices get RGBA = 0, the faces stay and keep occluding. ``watertight=False`` is
the paper's baseline ablation: stretched faces are deleted instead (per-frame ``face_keep`` mask).

Face order: all (BL, TL, TR) faces in row-major quad order, then all (BL, TR, BR) faces, then the two
closing faces (the published code splits the face list in these two halves).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .camera.lens import PUBLISHED_FOCAL
from .gltf import ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER, GltfWriter

BORDER_DEPTH = 100.0
FILTERS = ("angle", "boundary", "none")


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


def _hidden_vertices(stretched: torch.Tensor, faces: torch.Tensor, h: int, w: int) -> torch.Tensor:
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
            cols[s:e].masked_fill_(_hidden_vertices(st, faces, h, w)[..., None], 0.0)
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


# ----------------------------------------------------------------------------- export


def _export_arrays(
    mesh: DWMesh | DWMeshSpec, frame: int, gl_axes: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not 0 <= frame < mesh.num_frames:
        raise IndexError(f"frame {frame} out of range for a mesh of {mesh.num_frames} frames")
    one = mesh.part(frame, frame + 1, "cpu")  # a spec builds just this frame
    v = one.vertices[0].detach().to(torch.float32).numpy().copy()
    if gl_axes:
        v[:, 1:] *= -1.0
    c = one.colors[0].detach().to(torch.float32).round().clamp(0, 255).to(torch.uint8).numpy()
    f = one.frame_faces(0).detach().to(torch.int32).numpy()
    return np.ascontiguousarray(v), np.ascontiguousarray(c), np.ascontiguousarray(f)


def save_ply(
    mesh: DWMesh | DWMeshSpec, frame: int, path: str | Path, gl_axes: bool = True, preview: bool = False
) -> Path:
    """Write one frame as a binary little-endian PLY with RGBA vertex colours (a spec builds only that frame).

    ``gl_axes`` maps the mesh's (x right, y down, z forward) to the y-up / looking-down -z convention of glTF
    and three.js by (x, y, z) -> (x, -y, -z): a 180 degree turn about x, so face winding is unchanged.
    ``preview``: only the faces a viewer should see, coloured from the source frame (:func:`preview_arrays`).
    """
    if preview:
        v, rgb, f = preview_arrays(mesh, frame, gl_axes)
        c = np.concatenate([np.round(rgb * 255.0), np.full((len(rgb), 1), 255.0)], 1).astype(np.uint8)
    else:
        v, c, f = _export_arrays(mesh, frame, gl_axes)
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment EX-4D DW-mesh\n"
        f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nproperty uchar alpha\n"
        f"element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    vdt = np.dtype([("p", "<f4", 3), ("c", "u1", 4)])
    va = np.empty(len(v), vdt)
    va["p"], va["c"] = v, c
    fdt = np.dtype([("n", "u1"), ("i", "<i4", 3)])
    fa = np.empty(len(f), fdt)
    fa["n"], fa["i"] = 3, f
    path = Path(path)
    with open(path, "wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(va.tobytes())
        fh.write(fa.tobytes())
    return path


def save_glb(
    mesh: DWMesh | DWMeshSpec, frame: int, path: str | Path, gl_axes: bool = True, preview: bool = False
) -> Path:
    """Write one frame as a glTF 2.0 binary (a spec builds only that frame).

    Axes as in :func:`save_ply`: (x, -y, -z) so the scene is upright in glTF viewers.

    ``preview=False``: the whole watertight mesh, POSITION, COLOR_0 as normalised RGBA bytes (hidden vertices
    black), uint32 indices, a double-sided opaque material.

    ``preview=True``: :func:`preview_gltf`, the file ComfyUI's Preview 3D (and a camera path's scene) shows.
    """
    if preview:
        return preview_gltf(mesh, frame).write(path)
    v, c, f = _export_arrays(mesh, frame, gl_axes)
    return _mesh_gltf(frame, v, f, c, normalized_colors=True).write(path)


def preview_gltf(mesh: DWMesh | DWMeshSpec, frame: int) -> GltfWriter:
    """One frame's mesh for 3D viewers, as a glTF document (node 0, named ``dw_mesh_frame_<frame>``): only the
    faces a viewer should see, the far border wall and the hidden (stretched) faces left out and unused vertices
    dropped, so the scene, not the depth-100 wall, fills the bounding box the viewer frames; the source frame's
    colours on every kept vertex as linear float RGB (glTF's COLOR_0 is linear; the frame is sRGB); an unlit
    material (KHR_materials_unlit), so the colours show as they are whatever the viewer's lights; the node
    translated so the kept mesh's bounding box is centred on the origin, where viewers orbit. Axes as in
    :func:`save_ply`."""
    v, rgb, f = preview_arrays(mesh, frame, gl_axes=True)
    centre = (v.min(0) + v.max(0)) / 2 if len(v) else np.zeros(3, np.float32)
    return _mesh_gltf(frame, v, f, srgb_to_linear(rgb), normalized_colors=False,
                      translation=(-centre).astype(np.float64).tolist(), unlit=True)


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


def preview_arrays(
    mesh: DWMesh | DWMeshSpec, frame: int, gl_axes: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame's mesh as a viewer should show it: (vertices [V', 3] float32, colours [V', 3] float32 sRGB in
    [0, 1], faces [F', 3] int32 into the compacted vertices). The border wall and the faces the filter
    flagged (hidden or, in the ablation, deleted) are left out; colours come from the source frame when the
    mesh is a spec (a built mesh has only its colours, black on hidden vertices)."""
    if not 0 <= frame < mesh.num_frames:
        raise IndexError(f"frame {frame} out of range for a mesh of {mesh.num_frames} frames")
    one = mesh.part(frame, frame + 1, "cpu")
    keep = ~border_wall_faces(mesh.height, mesh.width)
    if one.stretched is not None:
        keep &= ~one.stretched[0].numpy()
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


def _mesh_gltf(
    frame: int,
    v: np.ndarray,
    f: np.ndarray,
    c: np.ndarray,
    normalized_colors: bool,
    translation: list[float] | None = None,
    unlit: bool = False,
) -> GltfWriter:
    """A glTF 2.0 document of one triangle mesh: POSITION, COLOR_0 (normalised bytes or float), uint32 indices
    (accessors 0, 1, 2), in node 0."""
    doc = GltfWriter()
    material = {"doubleSided": True, "pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 1.0}}
    if unlit:
        material["extensions"] = {"KHR_materials_unlit": {}}
        doc.use_extension("KHR_materials_unlit")
    position = doc.add_accessor(v.astype(np.float32), target=ARRAY_BUFFER, bounds=True)
    colors = c.astype(np.uint8) if normalized_colors else c.astype(np.float32)
    color = doc.add_accessor(colors, target=ARRAY_BUFFER, normalized=normalized_colors)
    indices = doc.add_accessor(f.astype(np.uint32).reshape(-1), target=ELEMENT_ARRAY_BUFFER)
    primitive = {"attributes": {"POSITION": position, "COLOR_0": color}, "indices": indices,
                 "material": doc.add("materials", material), "mode": 4}
    node = {"mesh": doc.add("meshes", {"primitives": [primitive]}), "name": f"dw_mesh_frame_{frame}"}
    if translation is not None:
        node["translation"] = translation
    doc.add_node(node)
    return doc


# ----------------------------------------------------------------------------- browser scene

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
    coarse_hidden = _hidden_vertices(stretched_faces(points, faces), faces, len(rows), len(cols))[0]
    colors = full.colors[0, pick].clone()
    colors[coarse_hidden] = 0.0
    return SceneAsset(
        vertices=points.reshape(-1, 3).numpy().astype(np.float32),
        colors=colors.round().clamp(0, 255).to(torch.uint8).numpy(),
        faces=faces.numpy().astype(np.uint32),
        rows=len(rows), cols=len(cols), width=int(w), height=int(h), focal=float(focal),
    )
