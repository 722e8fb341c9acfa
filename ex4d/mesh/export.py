"""One frame of a DW-mesh as a file: binary PLY, glTF 2.0 binary, and the glTF document Preview 3D shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..gltf import ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER, GltfWriter
from .build import DWMesh, DWMeshSpec
from .preview import preview_arrays, srgb_to_linear


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
    :func:`save_ply`. :class:`~.preview.NoVisibleFaces` when the frame has no face to show."""
    v, rgb, f = preview_arrays(mesh, frame, gl_axes=True)
    centre = (v.min(0) + v.max(0)) / 2
    return _mesh_gltf(frame, v, f, srgb_to_linear(rgb), normalized_colors=False,
                      translation=(-centre).astype(np.float64).tolist(), unlit=True)


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
