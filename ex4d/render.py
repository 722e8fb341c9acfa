"""Rendering DW-meshes along a camera path: mesh + cameras -> colour frames and a visibility mask.

One call sequence whatever rasterises: each chunk of frames is rasterised, its vertex colours interpolated and
antialiased through the primitives of :mod:`ex4d.raster` (nvdiffrast's signatures; nvdiffrast on CUDA, or the
built-in PyTorch twin anywhere). The non-watertight ablation, whose face list differs from frame to frame,
is drawn in nvdiffrast's range mode, all frames of a chunk in one call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .camera import CameraPath
from .mesh import DWMesh, DWMeshSpec
from .raster import BACKENDS, Rasteriser, check_backend, open_rasteriser, resolve_backend
from .runtime import CancelFn, check_cancel

__all__ = ["BACKENDS", "RenderResult", "check_inputs", "clip_positions", "render_memory", "render_views",
           "resolve_backend"]

ALPHA_THRESHOLD = 125.0


@dataclass
class RenderResult:
    color: torch.Tensor  # [T, H, W, 3] float in [0, 1]
    mask: torch.Tensor  # [T, H, W] float in {0, 1}
    backend: str = "torch"


def clip_positions(vertices: torch.Tensor, camera: CameraPath, frames: slice | None = None) -> torch.Tensor:
    """[T, V, 3] world points -> [T, V, 4] clip positions ``P E [p, 1]`` (matrix built in float64; ``P`` of each
    frame's own focal length when the path zooms)."""
    mats = camera.clip_matrices()
    if frames is not None:
        mats = mats[frames]
    m = torch.from_numpy(np.ascontiguousarray(mats, dtype=np.float32)).to(vertices.device)
    v = vertices.to(torch.float32)
    return torch.baddbmm(m[:, None, :, 3], v, m[:, :, :3].transpose(1, 2))


def check_inputs(mesh: DWMesh | DWMeshSpec, camera: CameraPath, backend: str = "auto") -> None:
    """Refuse what :func:`render_views` cannot render, each message starting with the parameter it is about:
    a camera path of another clip (frame count, image size, focal length) or a backend this machine lacks."""
    check_backend(backend)
    if mesh.num_frames != camera.num_frames:
        raise ValueError(
            f"camera: the camera has {camera.num_frames} frames but mesh has {mesh.num_frames}; make the camera "
            "path from the same clip's depth (one mesh per video frame, rendered from that frame's camera)"
        )
    if (camera.width, camera.height) != (mesh.width, mesh.height):
        raise ValueError(
            f"camera: the camera is for {camera.width}x{camera.height} images but the mesh is "
            f"{mesh.width}x{mesh.height}; make the camera path from the same clip's depth"
        )
    if abs(camera.focal - mesh.focal) > 1e-3 * mesh.focal:
        raise ValueError(
            f"camera: the camera has focal {camera.focal:g} but the DW-mesh was built with {mesh.focal:g}; "
            "use one focal length for both: leave 'focal' at its default on Build DW-Mesh and the camera node "
            "(both then follow the depth's lens), or set both to the same value"
        )


def _finish(rgba: torch.Tensor, color_out: torch.Tensor, mask_out: torch.Tensor) -> None:
    """Published threshold: mask = alpha > 125; colour = rgb / 255 where visible, else 0 (written in place)."""
    visible = rgba[..., 3] > ALPHA_THRESHOLD
    mask_out.copy_(visible)
    rgb = rgba[..., :3].div(255.0).clamp_(0.0, 1.0)
    torch.mul(rgb, visible[..., None], out=color_out)


# Device memory a render needs beside the models, per pixel: for each frame of a chunk its DW-mesh (about
# 28 B: 0.36 GB for 49 frames of 512 x 512), the build's temporaries, the clip-space vertices, the rasteriser's
# buffers and the shaded frame; for every frame of the clip, the colour and mask kept on the device until the
# end (16 B). Measured peaks on an H100 (bench/results/render_memory_h100.txt), 49 frames at 512 x 320 to
# 1024 x 576, chunks 8 to 32: nvdiffrast 139-218 B a chunk pixel; the built-in rasteriser (whose tile lists
# are the largest buffers) about 440-480 B a chunk pixel on top of 0.5-0.9 GiB of set-up, and 3.8 GiB at
# chunk 32 for the bundled clip at 90 degrees (its tile lists are longer than the synthetic scene's); rounded up.
RENDER_BYTES_PER_CHUNK_PIXEL = {"nvdiffrast": 256, "torch": 768}
RENDER_FIXED_BYTES = {"nvdiffrast": 0, "torch": 1 << 30}
RENDER_BYTES_PER_OUTPUT_PIXEL = 16


def render_memory(frames: int, height: int, width: int, chunk: int, backend: str = "auto") -> int:
    """Bytes of device memory :func:`render_views` needs beside what is already there (an estimate that
    errs high, for a host that has to make room)."""
    pixels = height * width
    backend = resolve_backend(backend)
    chunk_bytes = min(chunk, frames) * pixels * RENDER_BYTES_PER_CHUNK_PIXEL[backend]
    return RENDER_FIXED_BYTES[backend] + chunk_bytes + frames * pixels * RENDER_BYTES_PER_OUTPUT_PIXEL


def render_views(
    mesh: DWMesh | DWMeshSpec,
    camera: CameraPath,
    backend: str = "auto",
    chunk: int = 32,
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelFn | None = None,
    device: torch.device | str | None = None,
    antialias_edges: bool = True,
    on_chunk: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> RenderResult:
    """Render frames 1..N-1 of ``mesh`` from ``camera`` (frame 0 is the source frame with a full mask).

    ``mesh``: a built :class:`DWMesh`, or a :class:`DWMeshSpec` whose mesh is built chunk by chunk on the
    render device (the same images, without the whole mesh in memory).

    backend: "nvdiffrast" (CUDA), "torch" (any device) or "auto" (:func:`ex4d.raster.open_rasteriser`);
    ``device`` defaults to the mesh's. ``chunk`` frames are rendered at once. ``progress(done, total)`` is
    called after each chunk, ``on_chunk(start, colour, mask)`` with its frames (for previews); ``cancel()``
    returning True raises :class:`~ex4d.runtime.Cancelled`.
    """
    check_inputs(mesh, camera, backend)
    raster = open_rasteriser(backend, torch.device(device) if device is not None else mesh.device)
    dev = raster.device
    t, h, w = mesh.num_frames, mesh.height, mesh.width
    color = torch.zeros(t, h, w, 3, dtype=torch.float32, device=dev)
    mask = torch.zeros(t, h, w, dtype=torch.float32, device=dev)
    color[0] = mesh.frame0.to(dev, torch.float32)
    mask[0] = 1.0
    faces = mesh.faces.to(dev).to(torch.int32).contiguous()
    # one face list for every frame: its antialiasing topology is built once per render, not once per chunk
    topology = raster.dr.antialias_construct_topology_hash(faces) if antialias_edges and mesh.watertight else None
    if progress is not None:
        progress(1, t)
    for s in range(1, t, max(1, chunk)):
        check_cancel(cancel, "render")
        e = min(t, s + max(1, chunk))
        part = mesh.part(s, e, dev)
        pos = clip_positions(part.vertices, camera, slice(s, e)).contiguous()
        rgba = _shade(raster, pos, part.colors.to(torch.float32), faces, part.face_keep, (h, w), antialias_edges,
                      topology)
        _finish(rgba, color[s:e], mask[s:e])
        if on_chunk is not None:
            on_chunk(s, color[s:e], mask[s:e])
        if progress is not None:
            progress(e, t)
    return RenderResult(color, mask, raster.name)


def _shade(
    raster: Rasteriser,
    pos: torch.Tensor,
    colors: torch.Tensor,
    faces: torch.Tensor,
    face_keep: torch.Tensor | None,
    resolution: tuple[int, int],
    antialias_edges: bool,
    topology: object | None,
) -> torch.Tensor:
    """RGBA [B, H, W, 4] (0..255) of one chunk: pos [B, V, 4], colors [B, V, 4], faces [F, 3] int32;
    ``face_keep`` [B, F] (the ablation's faces present in each frame) draws each frame's own face list."""
    dr, ctx = raster.dr, raster.ctx
    tri, ranges = faces, None
    if face_keep is not None:
        pos, colors, tri, ranges = _frame_ranges(pos, colors, faces, face_keep)
    rast, _ = dr.rasterize(ctx, pos, tri, resolution=list(resolution), ranges=ranges)
    rgba, _ = dr.interpolate(colors.contiguous(), rast, tri)
    if not antialias_edges:
        return rgba
    return dr.antialias(rgba, rast, pos, tri, topology_hash=topology)


def _frame_ranges(
    pos: torch.Tensor, colors: torch.Tensor, faces: torch.Tensor, face_keep: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The chunk in nvdiffrast's range mode: (pos [B V, 4], colors [B V, C], tri, ranges [B, 2] int32 on the
    CPU) with frame b's kept faces, in their order, as ``tri[start_b : start_b + count_b]`` indexing its rows."""
    bsz, nv = pos.shape[:2]
    frame, face = face_keep.to(faces.device).nonzero(as_tuple=True)
    tri = (faces[face] + (frame.to(torch.int32) * nv)[:, None]).contiguous()
    counts = face_keep.sum(1)
    ranges = torch.stack([torch.cumsum(counts, 0) - counts, counts], 1).to("cpu", torch.int32)
    return pos.reshape(bsz * nv, 4), colors.reshape(bsz * nv, -1), tri, ranges
