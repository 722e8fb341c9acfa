"""What the camera editor (web/camera_editor/) needs from Python, served by ``GET /ex4d/camera/editor``
(:mod:`._routes`) so that the browser copies nothing: which nodes carry an editor, the handles each one's
overview can drag and the widgets a drag writes, and the renderer's projection and mask.

A handle is ``{"kind", "at", "drag", "widgets"}``:

- ``at``: where it sits: ``first_eye`` / ``last_eye`` (the path's first / last camera), ``target`` (the
  subject, on the optical axis at the ``radius`` widget's depth), ``key_eyes`` (one handle per keyframe, at
  its frame's camera) or ``key_target`` (the keyframes' target).
- ``drag``: where the mouse moves it: ``sphere`` (around the target, at the eye's distance), ``axis`` (along
  the source camera's optical axis) or ``plane`` (facing the overview camera).
- ``widgets``: what a drag writes, by role: ``yaw`` / ``pitch`` (degrees around the target), ``fraction``
  (the eye's depth as a fraction of the radius), ``depth`` (the target's depth) or ``keyframes`` (the JSON
  list of keys, rewritten in the form each key was written in).
"""

from __future__ import annotations

from ..ex4d.camera.lens import FAR_PLANE, NEAR_PLANE
from ..ex4d.render import ALPHA_THRESHOLD
from .camera import CameraDolly, CameraKeyframes, CameraOrbit, CameraPreset, CameraPreview

RADIUS_WIDGET = "radius"  # every path node's: the subject's depth (0: the clip's own)
TARGET = {"kind": "target", "at": "target", "drag": "axis", "widgets": {"depth": RADIUS_WIDGET}}


def orbit_eye(kind: str, at: str) -> dict:
    return {"kind": kind, "at": at, "drag": "sphere", "widgets": {"yaw": f"yaw_{kind}", "pitch": f"pitch_{kind}"}}


def dolly_eye(kind: str, at: str) -> dict:
    return {"kind": kind, "at": at, "drag": "axis", "widgets": {"fraction": kind}}


def keyframe_handle(kind: str, at: str) -> dict:
    return {"kind": kind, "at": at, "drag": "plane", "widgets": {"keyframes": "keyframes"}}


# the nodes with an editor: those that make a path (the route computes it) and Camera Path Preview (read-only)
PATH_HANDLES: dict[type, list[dict]] = {
    CameraPreset: [],
    CameraOrbit: [orbit_eye("start", "first_eye"), orbit_eye("end", "last_eye"), TARGET],
    CameraDolly: [dolly_eye("start", "first_eye"), dolly_eye("end", "last_eye"), TARGET],
    CameraKeyframes: [keyframe_handle("eye", "key_eyes"), keyframe_handle("target", "key_target")],
}
PREVIEW_NODES = (CameraPreview,)


def node_id(node: type) -> str:
    return node.define_schema().node_id


def editor_config() -> dict:
    """The answer of ``GET /ex4d/camera/editor``."""
    nodes = {node_id(node): {"path": True, "radius": RADIUS_WIDGET, "handles": handles}
             for node, handles in PATH_HANDLES.items()}
    nodes.update({node_id(node): {"path": False, "radius": None, "handles": []} for node in PREVIEW_NODES})
    return {
        "nodes": nodes,
        "projection": {"near": NEAR_PLANE, "far": FAR_PLANE},
        "mask": {"alpha_threshold": ALPHA_THRESHOLD / 255.0},  # the renderer's alpha > 125 of 255
    }
