"""DW-mesh nodes: Build DW-Mesh, Save DW-Mesh (a .glb / .ply ComfyUI's 3D preview shows)."""

from __future__ import annotations

import logging
from typing import Literal

import torch
from comfy_api.latest import io

from ..ex4d import mesh as ex4d_mesh
from ..ex4d.camera import PUBLISHED_FOCAL, Lens
from ..ex4d.depth import DepthVideo
from ._comfy import CATEGORY, check_output_prefix, output_path
from ._types import CONNECT_FRAMES, Depth, DWMesh
from ._validation import CheckedNode

MESH_CATEGORY = f"{CATEGORY}/geometry"
MESH_FORMATS = ("glb", "ply")


def _clip_size(shape: torch.Size) -> str:
    return f"{shape[0]} frames of {shape[2]}x{shape[1]}"


FOCAL_TOOLTIP = ("Focal length in pixels. Left at 500 it follows the depth's lens (MoGe, Depth Anything 3, Depth From "
                 "Image's focal; 500 as published for depth without one); any other value overrides it.")


def focal_input() -> io.Float.Input:
    """The ``focal`` widget of the nodes that take the lens from the depth (:func:`widget_lens`)."""
    return io.Float.Input("focal", default=PUBLISHED_FOCAL, min=1.0, max=1e5, step=1.0, tooltip=FOCAL_TOOLTIP)


def focal_lens(lens: Lens, focal: float) -> Lens:
    """The lens a ``focal`` widget makes of ``lens`` (the depth's): ``lens`` at the default, else ``focal`` about
    the image centre."""
    return lens if focal == PUBLISHED_FOCAL else Lens.centred(lens.width, lens.height, float(focal))


def widget_lens(depth: DepthVideo, focal: float) -> tuple[Lens, str | None]:
    """:func:`focal_lens` of the depth's lens, with a note when the widget overrides a lens the depth carries."""
    lens = focal_lens(depth.clip_lens, focal)
    note = None
    if depth.lens is not None and abs(lens.focal - depth.lens.focal) > 1e-3 * depth.lens.focal:
        note = (f"focal: {float(focal):g} px overrides the depth's lens ({depth.lens.focal:.1f} px, from "
                f"{depth.source or 'the depth'}); set focal to {PUBLISHED_FOCAL:g} to follow the depth")
    return lens, note


def check_frames_and_depth(frames: torch.Tensor, depth: torch.Tensor,
                           fix: Literal["depth", "frames"] = "depth") -> None:
    """Refuse frames and depth a DW-mesh cannot be built from. A count or size mismatch names ``fix``, the input
    to change: "depth" where the frames lead (Build DW-Mesh), "frames" where they only colour the depth's
    scene (the camera nodes)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames: got an IMAGE batch of shape {list(frames.shape)}; connect video frames "
                         "[T, H, W, 3], e.g. from EX-4D Load Video")
    if depth.shape != frames.shape[:3]:
        if fix == "depth":
            raise ValueError(
                f"depth: {_clip_size(depth.shape)}, but the frames are {_clip_size(frames.shape)} (they differ in "
                "frame count or size); estimate the depth from these very frames (same Load Video settings), or "
                "resize one to the other"
            )
        raise ValueError(
            f"frames: {_clip_size(frames.shape)}, but the depth is {_clip_size(depth.shape)} (they differ in "
            "frame count or size); connect the frames the depth was estimated from, or none"
        )
    if min(frames.shape[1:3]) < 2:
        raise ValueError(f"frames: {frames.shape[2]}x{frames.shape[1]} pixels, but a DW-mesh needs at least 2 x 2; "
                         "load a larger video")
    if not torch.isfinite(depth).all():
        raise ValueError("depth: contains NaN or infinite values; fix the depth source (or its conversion)")
    if (depth <= 0).any():
        raise ValueError("depth: contains values <= 0; the DW-mesh needs positive z-depth")


def note_ui(note: str | None) -> dict | None:
    """A node's UI output showing ``note`` (also logged), or None."""
    if note is None:
        return None
    logging.warning("EX-4D: %s", note)
    return {"text": [note]}


class BuildDWMesh(CheckedNode):
    what_to_connect = {"frames": CONNECT_FRAMES}

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DBuildDWMesh",
            display_name="EX-4D Build DW-Mesh",
            category=MESH_CATEGORY,
            description="One Depth Watertight Mesh per frame: a vertex per pixel, a closed outer wall, and the "
            "faces across depth edges hidden (alpha 0) so that they still occlude but render as mask 0. The "
            "meshes are built where they are used (Render Views builds them chunk by chunk on the GPU).",
            inputs=[
                io.Image.Input("frames",
                    tooltip="The video frames the depth was estimated from (same count and size)."),
                Depth.Input("depth",
                    tooltip="Depth of those frames (EX-4D Estimate Depth, Load Depth or Depth From Image)."),
                io.Combo.Input("filter", options=list(ex4d_mesh.FILTERS), default="angle",
                               tooltip="angle (published): hide faces whose smallest angle is below the "
                               "threshold; boundary: hide faces much deeper than wide; none: hide nothing."),
                io.Float.Input("angle_threshold", default=2.5, min=0.0, max=60.0, step=0.1,
                               tooltip="Degrees (published: 2.5)."),
                io.Float.Input("boundary_ratio", default=2.0, min=0.0, max=100.0, step=0.1,
                               tooltip="For the boundary filter: z extent / xy extent above which a face hides."),
                io.Boolean.Input("watertight", default=True,
                                 tooltip="Off = the paper's ablation: delete stretched faces instead of hiding "
                                 "them (background then shows through the holes)."),
                focal_input(),
            ],
            outputs=[DWMesh.Output(display_name="mesh")],
        )

    @classmethod
    def execute(cls, frames, depth, filter, angle_threshold, boundary_ratio, watertight, focal) -> io.NodeOutput:
        values = depth.depth
        check_frames_and_depth(frames, values)
        lens, note = widget_lens(depth, focal)
        focals = None if lens.focals is None else torch.from_numpy(lens.focals)
        # the mesh itself is built where it is used (Render Views: chunk by chunk on the GPU), from the
        # frames and depth the host already holds: nothing large is copied or moved here
        mesh_focal = lens.focal if focal == PUBLISHED_FOCAL else float(focal)  # the widget's value as typed
        mesh = ex4d_mesh.DWMeshSpec(frames, values, focal=mesh_focal, filter=filter, angle_threshold=angle_threshold,
                                    boundary_ratio=boundary_ratio, watertight=watertight, focals=focals)
        return io.NodeOutput(mesh, ui=note_ui(note))


class SaveDWMesh(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DSaveDWMesh",
            display_name="EX-4D Save DW-Mesh",
            category=MESH_CATEGORY,
            description="Write one frame's DW-mesh with vertex colours into the output folder; connect 'path' to "
            "ComfyUI's Preview 3D node to look at it. By default the file is for looking at: the far border wall "
            "and the hidden faces are left out, the colours are unlit and the mesh is centred on the scene; "
            "'full_mesh' keeps the whole watertight mesh (hidden faces in black) instead.",
            inputs=[
                DWMesh.Input("mesh", tooltip="From EX-4D Build DW-Mesh."),
                io.Int.Input("frame", default=0, min=0, max=100000,
                    tooltip="Which frame's mesh to save (0 = the first)."),
                io.Combo.Input("format", options=list(MESH_FORMATS), default="glb",
                    tooltip="glb: for ComfyUI's Preview 3D and most viewers; ply: for point / mesh tools "
                    "(MeshLab, Blender)."),
                io.String.Input("filename_prefix", default="ex4d/dwmesh",
                    tooltip="File name prefix under ComfyUI's output folder (subfolders allowed)."),
                io.Boolean.Input("full_mesh", default=False, optional=True,
                    tooltip="Off: a mesh to look at (no far border wall, no hidden faces, centred, unlit "
                    "colours). On: the whole watertight DW-mesh as the renderer uses it (hidden faces black, "
                    "the wall at depth 100, source-camera coordinates)."),
            ],
            outputs=[io.String.Output(display_name="path")],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, filename_prefix=None) -> bool | str:  # None: linked, or missing
        return check_output_prefix(filename_prefix)

    @classmethod
    def execute(cls, mesh, frame, format, filename_prefix, full_mesh=False) -> io.NodeOutput:
        if not 0 <= frame < mesh.num_frames:
            raise ValueError(f"frame: {frame} is out of range; choose a frame from 0 to {mesh.num_frames - 1}")
        path, relative = output_path(filename_prefix, format, mesh.width, mesh.height)
        save = ex4d_mesh.save_glb if format == "glb" else ex4d_mesh.save_ply
        try:
            save(mesh, frame, path, preview=not full_mesh)
        except ex4d_mesh.NoVisibleFaces as e:
            raise ValueError(f"mesh: {e} (or turn full_mesh on: the whole watertight mesh, hidden faces "
                             "included)") from e
        return io.NodeOutput(relative, ui={"text": [relative]})


NODES = [BuildDWMesh, SaveDWMesh]
