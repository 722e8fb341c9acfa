"""Render Views: the DW-mesh seen along a camera path, as colour frames and a visibility MASK."""

from __future__ import annotations

import comfy.model_management
from comfy_api.latest import io

from ..ex4d import render as ex4d_render
from ._comfy import CATEGORY, Progress, cancel_requested, run_making_room
from ._types import Camera, DWMesh
from ._validation import CheckedNode


class RenderViews(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DRenderViews",
            display_name="EX-4D Render Views",
            category=f"{CATEGORY}/geometry",
            description="Rasterise each frame's DW-mesh from the camera of that frame. Frame 0 is the source "
            "frame with a full mask; elsewhere mask = 1 where the interpolated alpha exceeds 125/255.",
            inputs=[
                DWMesh.Input("mesh", tooltip="From EX-4D Build DW-Mesh."),
                Camera.Input("camera",
                    tooltip="The camera path (from a Camera Path node, or loaded), made from the same "
                    "clip's depth."),
                io.Combo.Input("backend", options=list(ex4d_render.BACKENDS), default="auto",
                               tooltip="auto: nvdiffrast when CUDA and the nvdiffrast package are there, "
                               "else the built-in PyTorch rasteriser (same semantics, any device)."),
                io.Int.Input("chunk", default=32, min=1, max=256,
                             tooltip="Frames rendered at once (memory vs speed)."),
                io.Boolean.Input("antialias", default=True,
                                 tooltip="Antialias silhouette edges as the published renderer does."),
            ],
            outputs=[io.Image.Output(display_name="colour"), io.Mask.Output(display_name="mask")],
        )

    @classmethod
    def execute(cls, mesh, camera, backend, chunk, antialias) -> io.NodeOutput:
        ex4d_render.check_inputs(mesh, camera, backend)
        progress = Progress(mesh.num_frames)
        device = comfy.model_management.get_torch_device()
        message = (f"chunk: out of GPU memory building and rendering the DW-mesh of {chunk} frames of "
                   f"{mesh.width}x{mesh.height} at once; lower 'chunk'")
        # room made the way a model load does: the host offloads models (the 14B DiT) as far as needed; the mesh
        # is built chunk by chunk on the device; one bar update per chunk, its last frame the node's preview
        result = run_making_room(
            lambda: ex4d_render.render_views(
                mesh, camera, backend=backend, chunk=chunk, device=device, antialias_edges=antialias,
                cancel=cancel_requested,
                on_chunk=lambda start, colour, mask: progress(start + colour.shape[0], preview=colour[-1]),
            ),
            ex4d_render.render_memory(mesh.num_frames, mesh.height, mesh.width, chunk, backend),
            device,
            message,
        )
        out = comfy.model_management.intermediate_device()
        return io.NodeOutput(result.color.to(out), result.mask.to(out))


NODES = [RenderViews]
