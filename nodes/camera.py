"""Camera path nodes: published presets, orbit, dolly, keyframes, EX-4D npz / JSON load and save."""

from __future__ import annotations

import json
import math

import torch
from comfy_api.latest import io

from ..ex4d import camera as ex4d_camera
from ..ex4d import mesh as ex4d_mesh
from ._comfy import (
    CATEGORY,
    check_choice,
    check_input_file,
    input_file_fingerprint,
    input_files,
    output_path,
    resolve_input_file,
)
from ._types import Camera, Depth

CAMERA_CATEGORY = f"{CATEGORY}/camera"
CAMERA_FORMATS = ("ex4d npz", "json")
PATH_EXTENSIONS = (".npz", ".json")


def _frame_geometry(depth, radius: float) -> tuple[int, int, int, float]:
    """(frames, width, height, radius) of the clip a path is made for; radius 0 = published rule."""
    values = depth.depth
    if values.ndim != 3 or values.shape[0] == 0:
        raise ValueError(f"depth: expected [T, H, W] depth, got {list(values.shape)}")
    t, h, w = values.shape
    r = radius if radius > 0 else ex4d_camera.radius_from_depth(values[0])
    return int(t), int(w), int(h), float(r)


def _common_inputs() -> list:
    return [
        Depth.Input("depth",
            tooltip="Depth of the source clip: gives frame count, size and the orbit radius."),
        io.Float.Input("radius", default=0.0, min=0.0, max=1e4, step=0.01,
                       tooltip="Orbit radius; 0 uses the published rule (nearest depth of frame 0 + 0.15)."),
        io.Float.Input("focal", default=500.0, min=1.0, max=1e5, step=1.0,
                       tooltip="Focal length in pixels (the published DW-mesh uses 500)."),
    ]


def _hold_inputs() -> list:
    return [
        io.Combo.Input("easing", options=list(ex4d_camera.EASINGS), default="linear",
            tooltip="Speed along the path: linear (constant) or eased (slow start and / or end)."),
        io.Int.Input("hold_start", default=0, min=0, max=10000, tooltip="Frames to stay still at the start."),
        io.Int.Input("hold_end", default=0, min=0, max=10000, tooltip="Frames to stay still at the end."),
    ]


class CameraPreset(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DCameraPreset",
            display_name="EX-4D Camera Path (Preset)",
            category=CAMERA_CATEGORY,
            description="The published EX-4D camera paths: '180' (full swing), an angle around the subject "
            "(30/60/90 published, any other allowed), or zoom in / out (a dolly along the view axis).",
            inputs=[
                *_common_inputs(),
                io.Combo.Input("preset", options=["angle", "180", "zoom_in", "zoom_out"], default="angle",
                    tooltip="The published paths: angle (orbit by 'angle' degrees), 180 (half circle), "
                    "zoom_in / zoom_out (dolly by zoom_fraction)."),
                io.Float.Input("angle", default=90.0, min=0.0, max=360.0, step=1.0,
                               tooltip="Degrees around the subject for the 'angle' preset (published: 30, 60, 90)."),
                io.Float.Input("zoom_fraction", default=0.5, min=0.0, max=0.99, step=0.01,
                               tooltip="zoom_in / zoom_out: how far the eye moves, as a fraction of the radius."),
            ],
            outputs=[Camera.Output(display_name="camera")],
        )

    @classmethod
    def execute(cls, depth, radius, focal, preset, angle, zoom_fraction) -> io.NodeOutput:
        n, w, h, r = _frame_geometry(depth, radius)
        name = f"{angle:g}" if preset == "angle" else preset
        path = ex4d_camera.preset(name, n, r, w, h, focal=focal, zoom_fraction=zoom_fraction)
        return io.NodeOutput(path)


class CameraOrbit(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DCameraOrbit",
            display_name="EX-4D Camera Path (Orbit)",
            category=CAMERA_CATEGORY,
            description="Orbit around the look-at point (0, 0, radius) with chosen yaw and pitch ranges. "
            "Yaw 0 / pitch 0 is the source camera; positive yaw moves right, positive pitch up.",
            inputs=[
                *_common_inputs(),
                io.Float.Input("yaw_start", default=0.0, min=-180.0, max=180.0, step=1.0,
                    tooltip="Horizontal angle around the orbit centre at the first frame, degrees (0 = the "
                    "source camera)."),
                io.Float.Input("yaw_end", default=60.0, min=-180.0, max=180.0, step=1.0,
                    tooltip="Horizontal angle at the last frame, degrees (EX-4D is trained up to 90)."),
                io.Float.Input("pitch_start", default=0.0, min=-89.0, max=89.0, step=1.0,
                    tooltip="Vertical angle at the first frame, degrees (positive = the camera moves up)."),
                io.Float.Input("pitch_end", default=0.0, min=-89.0, max=89.0, step=1.0,
                    tooltip="Vertical angle at the last frame, degrees."),
                io.Float.Input("distance", default=0.0, min=0.0, max=1e4, step=0.01,
                               tooltip="Eye distance from the look-at point; 0 = the radius."),
                *_hold_inputs(),
            ],
            outputs=[Camera.Output(display_name="camera")],
        )

    @classmethod
    def execute(cls, depth, radius, focal, yaw_start, yaw_end, pitch_start, pitch_end, distance, easing,
                hold_start, hold_end) -> io.NodeOutput:
        n, w, h, r = _frame_geometry(depth, radius)
        path = ex4d_camera.orbit(n, r, w, h, focal=focal, yaw=(yaw_start, yaw_end), pitch=(pitch_start, pitch_end),
                                 distance=distance or None, easing=easing, hold_start=hold_start,
                                 hold_end=hold_end)
        return io.NodeOutput(path)


class CameraDolly(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DCameraDolly",
            display_name="EX-4D Camera Path (Dolly)",
            category=CAMERA_CATEGORY,
            description="Move the eye along the source view axis, from start to end (fractions of the radius; "
            "positive = toward the subject), looking at (0, 0, radius).",
            inputs=[
                *_common_inputs(),
                io.Float.Input("start", default=0.0, min=-10.0, max=0.99, step=0.01,
                    tooltip="Dolly position at the first frame, as a fraction of the distance to the orbit "
                    "centre (0 = the source camera, 0.5 = half way in, negative = pulled back)."),
                io.Float.Input("end", default=0.5, min=-10.0, max=0.99, step=0.01,
                    tooltip="Dolly position at the last frame, same units as start."),
                *_hold_inputs(),
            ],
            outputs=[Camera.Output(display_name="camera")],
        )

    @classmethod
    def execute(cls, depth, radius, focal, start, end, easing, hold_start, hold_end) -> io.NodeOutput:
        n, w, h, r = _frame_geometry(depth, radius)
        return io.NodeOutput(ex4d_camera.dolly(n, r, w, h, focal=focal, start=start, end=end, easing=easing,
                                               hold_start=hold_start, hold_end=hold_end))


KEYFRAMES_EXAMPLE = json.dumps([{"frame": 0, "yaw": 0}, {"frame": 24, "yaw": 45, "pitch": 10},
                                {"frame": 48, "yaw": 90}])


class CameraKeyframes(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DCameraKeyframes",
            display_name="EX-4D Camera Path (Keyframes)",
            category=CAMERA_CATEGORY,
            description="A custom path from keyframes: a JSON list of {frame, yaw, pitch, distance, roll} "
            "(degrees, around (0, 0, radius)) or {frame, eye: [x, y, z], target: [x, y, z]}.",
            inputs=[
                *_common_inputs(),
                io.String.Input("keyframes", default=KEYFRAMES_EXAMPLE, multiline=True,
                    tooltip="JSON list of keyframes: {frame, yaw, pitch, distance, roll} in degrees around "
                    "(0, 0, radius), or {frame, eye: [x, y, z], target: [x, y, z]}; frames in "
                    "between are eased."),
                io.Combo.Input("easing", options=list(ex4d_camera.EASINGS), default="ease_in_out",
                    tooltip="How the camera moves between keyframes: linear (constant speed) or eased (slow"
                    " at each keyframe)."),
            ],
            outputs=[Camera.Output(display_name="camera")],
        )

    @classmethod
    def execute(cls, depth, radius, focal, keyframes, easing) -> io.NodeOutput:
        n, w, h, r = _frame_geometry(depth, radius)
        try:
            keys = json.loads(keyframes)
        except json.JSONDecodeError as e:
            raise ValueError(f"keyframes: not valid JSON ({e}); example: {KEYFRAMES_EXAMPLE}") from e
        if not isinstance(keys, list) or not keys:
            raise ValueError(f"keyframes: expected a non-empty JSON list; example: {KEYFRAMES_EXAMPLE}")
        try:
            path = ex4d_camera.keyframed(keys, n, r, w, h, focal=focal, easing=easing)
        except (TypeError, KeyError, ValueError) as e:
            raise ValueError(f"keyframes: {e}; example: {KEYFRAMES_EXAMPLE}") from e
        return io.NodeOutput(path)


class LoadCameraPath(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        files = input_files(extensions=PATH_EXTENSIONS)
        return io.Schema(
            node_id="EX4DLoadCameraPath",
            display_name="EX-4D Load Camera Path",
            category=CAMERA_CATEGORY,
            description="Load a camera path from ComfyUI's input folder: the original EX-4D tool's "
            "camera_<preset>.npz (extrinsics + intrinsics) or this pack's JSON.",
            inputs=[
                io.Combo.Input("path", options=files,
                    tooltip="A .npz or .json file in ComfyUI's input folder."),
                io.Int.Input("width", default=0, min=0, max=16384,
                             tooltip="Image width for an npz file (which stores none); 0 = 2 * cx of its intrinsics."),
                io.Int.Input("height", default=0, min=0, max=16384,
                             tooltip="Image height for an npz file; 0 = 2 * cy of its intrinsics."),
            ],
            outputs=[Camera.Output(display_name="camera")],
        )

    @classmethod
    def validate_inputs(cls, path) -> bool | str:
        ok = check_input_file(path, "path")
        if ok is True and not path.lower().endswith(PATH_EXTENSIONS):
            return f"path: '{path}' is neither an EX-4D .npz nor a camera .json"
        return ok

    @classmethod
    def fingerprint_inputs(cls, path, **kwargs) -> str:
        return input_file_fingerprint(path, "path")

    @classmethod
    def execute(cls, path, width, height) -> io.NodeOutput:
        file = resolve_input_file(path, "path")
        try:
            if file.suffix.lower() == ".npz":
                camera = ex4d_camera.CameraPath.from_ex4d_npz(file, width=width or None, height=height or None)
            else:
                camera = ex4d_camera.CameraPath.from_json(file)
        except (KeyError, ValueError, OSError) as e:
            raise ValueError(f"path: '{path}' is not a readable camera path ({e})") from e
        return io.NodeOutput(camera)


class SaveCameraPath(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DSaveCameraPath",
            display_name="EX-4D Save Camera Path",
            category=CAMERA_CATEGORY,
            description="Save a camera path into ComfyUI's output folder, as the original EX-4D tool's npz "
            "(so it moves between the two) or as JSON.",
            inputs=[
                Camera.Input("camera",
                    tooltip="The camera path to use (from a Camera Path node, or loaded)."),
                io.String.Input("filename_prefix", default="ex4d/camera",
                    tooltip="File name prefix under ComfyUI's output folder (subfolders allowed)."),
                io.Combo.Input("format", options=list(CAMERA_FORMATS), default="ex4d npz",
                    tooltip="ex4d npz: the original EX-4D tool's camera file (extrinsics + intrinsics); "
                    "json: this pack's readable format."),
            ],
            outputs=[io.String.Output(display_name="path")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, camera, filename_prefix, format) -> io.NodeOutput:
        ext = "npz" if check_choice(format, CAMERA_FORMATS, "format") == "ex4d npz" else "json"
        path, relative = output_path(filename_prefix, ext, camera.width, camera.height)
        if ext == "npz":
            camera.to_ex4d_npz(path)
        else:
            camera.to_json(path)
        return io.NodeOutput(relative, ui={"text": [relative]})


class CameraPreview(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DCameraPreview",
            display_name="EX-4D Camera Path Preview",
            category=CAMERA_CATEGORY,
            description="Top and side views of a camera path (blue = first frame, red = last, ticks = viewing "
            "direction, cross = orbit centre) over the frame-0 scene, to check a path before rendering.",
            inputs=[
                Camera.Input("camera",
                    tooltip="The camera path to use (from a Camera Path node, or loaded)."),
                Depth.Input("depth", optional=True, tooltip="Draws the frame-0 scene as points."),
                io.Image.Input("frames", optional=True, tooltip="Colours the scene points with frame 0."),
                io.Int.Input("size", default=384, min=64, max=2048, step=32, tooltip="Height of each view."),
            ],
            outputs=[io.Image.Output(display_name="image")],
        )

    @classmethod
    def execute(cls, camera, size, depth=None, frames=None) -> io.NodeOutput:
        points = colors = None
        if depth is not None:
            d = depth.depth[:1].float().cpu()
            if (d.shape[2], d.shape[1]) != (camera.width, camera.height):
                raise ValueError(f"depth is {d.shape[2]}x{d.shape[1]} but the camera is for "
                                 f"{camera.width}x{camera.height} images: use the depth the path was made from")
            step = max(1, math.ceil(math.sqrt(d.shape[1] * d.shape[2] / 40000)))
            pts = ex4d_mesh.unproject(d, camera.focal, push_border=False)[0]
            points = pts[::step, ::step].reshape(-1, 3).numpy()
            if frames is not None:
                if frames.shape[1:3] != d.shape[1:]:
                    raise ValueError(f"frames {list(frames.shape[1:3])} and depth {list(d.shape[1:])} differ in size")
                colors = frames[0, ::step, ::step, :3].reshape(-1, 3).float().cpu().numpy()
        image = ex4d_camera.path_preview(camera, points, colors, size=size)
        return io.NodeOutput(torch.from_numpy(image)[None])


NODES = [CameraPreset, CameraOrbit, CameraDolly, CameraKeyframes, LoadCameraPath, SaveCameraPath, CameraPreview]
