"""EX-4D Depth From Geometry: the depth and lens of the host's MoGe and Depth Anything 3 nodes (ComfyUI 0.33 and
later) as EX-4D depth."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..ex4d import depth as ex4d_depth
from ..ex4d.camera import Lens
from ..ex4d.depth import geometry
from ._comfy import CATEGORY
from ._types import Depth
from ._validation import CheckedNode

MoGeGeometry = io.Custom("MOGE_GEOMETRY")
DA3Geometry = io.Custom("DA3_GEOMETRY")
LENS_MODES = ("one per clip", "per frame (the source zooms)")
SCALE_MODES = ("auto", "running median", "one for the clip", "off")
CONNECT_GEOMETRY = ("moge_geometry: connect one geometry: Run MoGe Inference's moge_geometry here, or Run Depth "
                    "Anything 3's da3_geometry to 'da3_geometry'")


def _geometry_input(geometry: object, name: str) -> dict | None:
    if geometry is None:
        return None
    if not isinstance(geometry, dict) or not isinstance(geometry.get("depth"), torch.Tensor):
        raise ValueError(f"{name}: expected the geometry dict of the host's node (with a 'depth' tensor), got "
                         f"{type(geometry).__name__}")
    depth = geometry["depth"]
    if depth.ndim != 3 or 0 in depth.shape:
        raise ValueError(f"{name}: its depth has shape {list(depth.shape)}; expected [frames, height, width]")
    return geometry


def _moge(geometry: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, bool]:
    """depth, valid pixels, pixel intrinsics (None: no lens) and whether the frames share one scale already."""
    depth = geometry["depth"].float().cpu()
    t, h, w = depth.shape
    if "intrinsics" not in geometry:
        raise ValueError("moge_geometry: it holds no intrinsics (a panorama's geometry); connect Run MoGe Inference "
                         "on the video frames")
    valid = torch.ones_like(depth, dtype=torch.bool)
    if isinstance(geometry.get("mask"), torch.Tensor):
        valid = geometry["mask"].cpu().bool().reshape(depth.shape)
    k = geometry["intrinsics"].cpu().reshape(t, 3, 3)
    return depth, valid, geometry_pixels(k, "moge", w, h), False


def _da3(geometry: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, bool]:
    depth = geometry["depth"].float().cpu()
    t, h, w = depth.shape
    valid = torch.ones_like(depth, dtype=torch.bool)
    if isinstance(geometry.get("sky"), torch.Tensor):
        valid = geometry["sky"].cpu().reshape(depth.shape) < 0.5
    k = geometry.get("intrinsics")
    multiview = geometry.get("mode") == "multiview"
    if not isinstance(k, torch.Tensor):
        return depth, valid, None, multiview
    k = k.cpu().reshape(-1, 3, 3)
    if bool((k[:, 0, 2] == 0).all()):  # the host's identity fallback when the model gave no camera
        return depth, valid, None, multiview
    if len(k) != t:
        raise ValueError(f"da3_geometry: {len(k)} intrinsics for {t} depth frames")
    return depth, valid, geometry_pixels(k, "da3", w, h), multiview


def geometry_pixels(k: torch.Tensor, kind: str, width: int, height: int) -> torch.Tensor:
    if kind == "moge":
        return geometry.moge_pixel_intrinsics(k, width, height)
    return geometry.da3_pixel_intrinsics(k, width, height)


def _lens(k: torch.Tensor | None, focal: float, lens_mode: str, width: int, height: int,
          source: str) -> tuple[Lens, str]:
    if focal > 0:
        return Lens.centred(width, height, focal), f"lens: {focal:g} px (the focal input; the geometry's is not used)"
    if k is None:
        note = (f"lens: {source} gave no camera (mono mode); the published 500 px is used: connect 'focal' (e.g. "
                "from Get FoV from MoGe Geometry) or run Depth Anything 3 in multiview mode")
        return Lens.centred(width, height), note
    return geometry.lens_from_intrinsics(k, width, height, per_frame=lens_mode != LENS_MODES[0])


class DepthFromGeometry(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DDepthFromGeometry",
            display_name="EX-4D Depth From Geometry",
            category=f"{CATEGORY}/depth",
            description="EX-4D depth from the host's MoGe or Depth Anything 3 nodes (ComfyUI 0.33+): their metric "
            "depth and the camera's focal length, which the DW-mesh, the camera paths and the render then use "
            "(the published method assumes 500 px). Pixels without a surface (sky, invalid) go to the mesh's far "
            "wall; per-frame depth is brought to one scale over the clip.",
            inputs=[
                MoGeGeometry.Input("moge_geometry", optional=True,
                    tooltip="From Run MoGe Inference on the video frames (its depth, mask and intrinsics)."),
                DA3Geometry.Input("da3_geometry", optional=True,
                    tooltip="Or from Run Depth Anything 3 on the video frames (multiview mode gives the camera; "
                    "mono mode none). Connect exactly one of the two."),
                io.Combo.Input("lens", options=list(LENS_MODES), default=LENS_MODES[0],
                    tooltip="one per clip: the median of the frames' focal lengths (an estimator's per-frame "
                    "focal length jitters); per frame: each frame's own, for a source that zooms."),
                io.Combo.Input("align_scale", options=list(SCALE_MODES), default="auto",
                    tooltip="Per-frame depth has its own scale in every frame. running median: each frame's "
                    "median depth follows the running median over 'window' frames (slow changes stay, flicker "
                    "goes); one for the clip: every frame at the clip's median; off: as estimated. auto: off for "
                    "Depth Anything 3 multiview (one scale already), running median otherwise."),
                io.Int.Input("window", default=9, min=1, max=1001, tooltip="running median: frames it spans."),
                io.Float.Input("focal", default=0.0, min=0.0, max=1e5, step=1.0, optional=True,
                    tooltip="0: the geometry's focal length. Any other value: this focal length in pixels."),
            ],
            outputs=[Depth.Output(display_name="depth")],
        )

    @classmethod
    def execute(cls, lens, align_scale, window, moge_geometry=None, da3_geometry=None, focal=0.0) -> io.NodeOutput:
        moge, da3 = _geometry_input(moge_geometry, "moge_geometry"), _geometry_input(da3_geometry, "da3_geometry")
        if (moge is None) == (da3 is None):
            raise ValueError(CONNECT_GEOMETRY if moge is None else
                             "da3_geometry: connect one geometry only; disconnect 'da3_geometry' or 'moge_geometry'")
        source = "MoGe" if moge is not None else "Depth Anything 3"
        depth, valid, k, one_scale = _moge(moge) if moge is not None else _da3(da3)
        t, h, w = depth.shape
        result, notes = depth_video(depth, valid, _lens(k, focal, lens, w, h, source), align_scale, window,
                                    one_scale, source)
        return io.NodeOutput(result, ui={"text": ["; ".join(notes)]})


def depth_video(depth: torch.Tensor, valid: torch.Tensor, lens_note: tuple[Lens, str], scale_mode: str, window: int,
                one_scale: bool, source: str) -> tuple[ex4d_depth.DepthVideo, list[str]]:
    """The EX-4D depth of a geometry's depth, its valid pixels and lens, with what was done as notes."""
    lens, lens_text = lens_note
    valid = valid & torch.isfinite(depth) & (depth > 0)
    notes = [lens_text]
    hidden = 1.0 - float(valid.float().mean())
    if hidden > 0:
        notes.append(f"{hidden:.1%} of pixels without a surface (sky, invalid) at the far wall")
    if scale_mode == "auto":
        scale_mode = "off" if one_scale else "running median"
    if scale_mode != "off" and depth.shape[0] > 1:
        before = geometry.scale_jitter(depth, valid)
        span = window if scale_mode == "running median" else depth.shape[0]
        depth, _ = geometry.align_scale(torch.where(valid, depth, torch.ones_like(depth)), valid, span)
        notes.append(f"scale jitter {before:.2%} -> {geometry.scale_jitter(depth, valid):.2%} frame to frame")
    values = geometry.far_wall(depth, valid)
    meta = {"geometry": source, "scale": scale_mode}
    return ex4d_depth.DepthVideo(values, None, source.lower().replace(" ", "_"), meta, lens, metric=True), notes


NODES = [DepthFromGeometry]
