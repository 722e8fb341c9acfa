"""Camera path nodes (published presets and moves, orbit, dolly, keyframes) and the path preview, each with the
camera editor.

Each path node computes its path in one classmethod, ``path(clip, **widgets)``, that both ``execute`` and the
camera editor's route (:mod:`._routes`) call: the path the editor shows is the path that runs. ``clip`` is the
clip of the connected depth at its published radius, seen through the depth's lens (500 px, as published, for
depth without one); the widgets may set both.
"""

from __future__ import annotations

import inspect
import json
import math

import torch
from comfy_api.latest import io

from ..ex4d import camera as ex4d_camera
from ..ex4d import mesh as ex4d_mesh
from ..ex4d.camera import Clip, Lens, Speed
from ..ex4d.depth import DepthVideo
from ._camera_scenes import SCENES, source_key
from ._comfy import CATEGORY
from ._types import CONNECT_FRAMES, Camera, Depth
from ._validation import CheckedNode
from .mesh import check_frames_and_depth, focal_input, focal_lens, note_ui, widget_lens

CAMERA_CATEGORY = f"{CATEGORY}/camera"
PRESETS = ("angle", *ex4d_camera.PRESETS)
DOLLY_ZOOMS = ("none", "dolly-zoom (keep subject size)")


def widget_clip(clip: Clip, radius: float, focal: float) -> Clip:
    """``clip`` as a node's widgets set it: ``radius`` (0: the clip's published radius) and ``focal`` (at its
    default the clip's own lens, the depth's; any other value that focal length about the image centre)."""
    return Clip(clip.frames, focal_lens(clip.lens, focal), float(radius) if radius > 0 else clip.radius)


def depth_clip(depth: DepthVideo) -> Clip:
    """The clip of a depth: its frames, its lens (:attr:`DepthVideo.clip_lens`), the published radius."""
    return Clip.of_depth(depth.depth, lens=depth.clip_lens)


def widget_speed(easing: str, hold_start: int = 0, hold_end: int = 0) -> Speed:
    return Speed(easing, hold_start, hold_end)


# the hidden inputs a node with the camera editor declares, so its scene can be found by source (source_key)
SCENE_SOURCE = [io.Hidden.prompt, io.Hidden.unique_id]


def scene_source(node: type[io.ComfyNode]) -> str | None:
    """:func:`source_key` of the running node (its hidden prompt and id), None outside the executor."""
    return source_key(node.hidden.prompt, node.hidden.unique_id) if node.hidden is not None else None


def scene_ui(clip: Clip, depth, frames: torch.Tensor | None, focal: float, source: str | None = None) -> dict:
    """The node's UI output for the camera editor: the key of frame 0's downsampled DW-mesh in :data:`SCENES`
    and the clip it belongs to; remembered under ``source`` (:func:`source_key`) when given."""
    values = depth.depth
    if frames is not None:
        check_frames_and_depth(frames, values, fix="frames")  # the frames only colour the depth's scene
    elif min(values.shape[1:]) < 2:
        size = f"{clip.lens.width}x{clip.lens.height}"
        raise ValueError(f"depth: {size} pixels, but a DW-mesh needs at least 2 x 2; connect the depth of a larger "
                         "video")
    asset = ex4d_mesh.scene_asset(None if frames is None else frames[0], values[0], focal=focal)
    entry = {"scene": SCENES.put(asset.to_bytes()), "frames": clip.frames, "width": clip.lens.width,
             "height": clip.lens.height, "radius": clip.radius, **lens_entry(clip.lens)}
    if source is not None:
        SCENES.remember(source, entry)
    return entry


def lens_entry(lens: Lens) -> dict:
    """The clip's lens as the camera editor sends it back (:func:`._routes.path_response`): "focal", and "focals"
    where the source zooms."""
    return {"focal": lens.focal, "focals": None if lens.focals is None else lens.focals.astype(float).tolist()}


def _common_inputs() -> list:
    return [
        Depth.Input("depth",
            tooltip="Depth of the source clip: gives frame count, size and the orbit radius."),
        io.Image.Input("frames", optional=True,
            tooltip="The source frames (optional): colour the clip's scene in the camera editor."),
        io.Float.Input("radius", default=0.0, min=0.0, max=1e4, step=0.01,
                       tooltip="Orbit radius; 0 uses the published rule (nearest depth of frame 0 + 0.15)."),
        focal_input(),
    ]


def _hold_inputs(optional: bool = False) -> list:
    """Speed-curve widgets; ``optional`` where they were added to a published node later, so prompts saved
    without them still run (with the defaults, which keep the published speed)."""
    return [
        io.Combo.Input("easing", options=list(ex4d_camera.EASINGS), default="linear", optional=optional,
            tooltip="Speed along the path: linear (constant) or eased (slow start and / or end)."),
        io.Int.Input("hold_start", default=0, min=0, max=10000, optional=optional,
                     tooltip="Frames to stay still at the start."),
        io.Int.Input("hold_end", default=0, min=0, max=10000, optional=optional,
                     tooltip="Frames to stay still at the end."),
    ]


class CameraPathNode(CheckedNode):
    """A node that makes a path from a clip and its widgets (``path``, given widgets its schema allows:
    ``execute`` and the editor's route check them first) and shows it in the camera editor."""

    what_to_connect = {"frames": CONNECT_FRAMES}

    @classmethod
    def path(cls, clip: Clip, **widgets) -> ex4d_camera.CameraPath:
        raise NotImplementedError

    @classmethod
    def path_widgets(cls) -> list[str]:
        """The widget names ``path`` takes (the camera editor sends these)."""
        return [name for name in inspect.signature(cls.path).parameters if name != "clip"]

    @classmethod
    def optional_widgets(cls) -> list[str]:
        """Those ``path`` has defaults for (widgets added later; older prompts lack them)."""
        parameters = inspect.signature(cls.path).parameters
        return [name for name, p in parameters.items() if p.default is not inspect.Parameter.empty]

    @classmethod
    def execute(cls, depth, frames=None, **widgets) -> io.NodeOutput:
        clip = depth_clip(depth)
        path = cls.path(clip, **widgets)
        lens, note = widget_lens(depth, widgets["focal"])  # the lens the scene's mesh is built through
        scene_focal = float(lens.frame_focals(clip.frames)[0])
        ui = {"ex4d_scene": [scene_ui(clip, depth, frames, scene_focal, scene_source(cls))],
              "ex4d_path": [ex4d_camera.to_json_dict(path)], **(note_ui(note) or {})}
        return io.NodeOutput(path, ui=ui)


class CameraPreset(CameraPathNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DCameraPreset",
            display_name="EX-4D Camera Path (Preset)",
            category=CAMERA_CATEGORY,
            description="The published EX-4D camera paths: '180' (full swing), an angle around the subject "
            "(30/60/90 published, any other allowed; over the whole clip, or scaled by the published rounds), "
            "or zoom in / out (a dolly along the view axis); beside them straight moves: truck (slide sideways), "
            "pedestal (rise, the view keeps its direction), crane (rise while looking at the subject). Easing and holds shape the speed along any of them.",
            inputs=[
                *_common_inputs(),
                io.Combo.Input("preset", options=list(PRESETS), default="angle",
                    tooltip="The published paths: angle (orbit by 'angle' degrees), 180 (half circle), "
                    "zoom_in / zoom_out (dolly by zoom_fraction); moves: truck, pedestal, crane (by amount)."),
                io.Float.Input("angle", default=90.0, min=0.0, max=360.0, step=1.0,
                               tooltip="Degrees around the subject for the 'angle' preset (published: 30, 60, 90)."),
                io.Float.Input("zoom_fraction", default=0.5, min=0.0, max=0.99, step=0.01,
                               tooltip="zoom_in / zoom_out: how far the eye moves, as a fraction of the radius."),
                *_hold_inputs(optional=True),
                io.Float.Input("amount", default=0.3, min=-2.0, max=2.0, step=0.01, optional=True,
                    tooltip="truck / pedestal / crane: how far the eye moves, as a fraction of the radius "
                    "(positive: right for truck, up for pedestal and crane; negative: the other way)."),
                io.Combo.Input("sweep", options=list(ex4d_camera.SWEEPS), default="whole clip", optional=True,
                    tooltip="angle and 180: whole clip turns 'angle' degrees over the clip, whatever its length. "
                    "published rounds turns it N/49 times as far on N >= 49 frames and 49/N times below, as the "
                    "original tool does (90 degrees over 121 frames: 222). Both are the same at 49 frames."),
            ],
            outputs=[Camera.Output(display_name="camera")],
            hidden=SCENE_SOURCE,
        )

    @classmethod
    def path(cls, clip: Clip, radius, focal, preset, angle, zoom_fraction, easing="linear", hold_start=0,
             hold_end=0, amount=0.3, sweep="whole clip") -> ex4d_camera.CameraPath:
        name = f"{angle:g}" if preset == "angle" else preset
        return ex4d_camera.preset(name, widget_clip(clip, radius, focal),
                                  widget_speed(easing, hold_start, hold_end), zoom_fraction=zoom_fraction, amount=amount,
                                  sweep=sweep)


class CameraOrbit(CameraPathNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DCameraOrbit",
            display_name="EX-4D Camera Path (Orbit)",
            category=CAMERA_CATEGORY,
            description="Orbit (or arc: part of an orbit) around the look-at point (0, 0, radius) with chosen "
            "yaw and pitch ranges. Yaw 0 / pitch 0 is the source camera; positive yaw moves right, positive "
            "pitch up.",
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
            hidden=SCENE_SOURCE,
        )

    @classmethod
    def path(cls, clip: Clip, radius, focal, yaw_start, yaw_end, pitch_start, pitch_end, distance, easing,
             hold_start, hold_end) -> ex4d_camera.CameraPath:
        return ex4d_camera.orbit(widget_clip(clip, radius, focal), yaw=(yaw_start, yaw_end),
                                 pitch=(pitch_start, pitch_end), distance=distance or None,
                                 speed=widget_speed(easing, hold_start, hold_end))


class CameraDolly(CameraPathNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DCameraDolly",
            display_name="EX-4D Camera Path (Dolly)",
            category=CAMERA_CATEGORY,
            description="Move the eye along the source view axis, from start to end (fractions of the radius; "
            "positive = toward the subject), looking at (0, 0, radius). zoom 'dolly-zoom' changes the focal "
            "length with the move so the subject keeps its size while the background stretches (vertigo).",
            inputs=[
                *_common_inputs(),
                io.Float.Input("start", default=0.0, min=-10.0, max=0.99, step=0.01,
                    tooltip="Dolly position at the first frame, as a fraction of the distance to the orbit "
                    "centre (0 = the source camera, 0.5 = half way in, negative = pulled back)."),
                io.Float.Input("end", default=0.5, min=-10.0, max=0.99, step=0.01,
                    tooltip="Dolly position at the last frame, same units as start."),
                *_hold_inputs(),
                io.Combo.Input("zoom", options=list(DOLLY_ZOOMS), default="none", optional=True,
                    tooltip="none: the focal length stays 'focal'. dolly-zoom: each frame's focal length "
                    "follows the distance to the look-at point (focal x distance / radius), so the subject at "
                    "that distance keeps its size in the source frame while the background recedes (moving in, "
                    "wider view) or looms (moving out, narrower view)."),
            ],
            outputs=[Camera.Output(display_name="camera")],
            hidden=SCENE_SOURCE,
        )

    @classmethod
    def path(cls, clip: Clip, radius, focal, start, end, easing, hold_start, hold_end,
             zoom="none") -> ex4d_camera.CameraPath:
        return ex4d_camera.dolly(widget_clip(clip, radius, focal), start=start, end=end,
                                 speed=widget_speed(easing, hold_start, hold_end),
                                 keep_subject_size=zoom != "none")


KEYFRAMES_EXAMPLE = json.dumps([{"frame": 0, "yaw": 0}, {"frame": 24, "yaw": 45, "pitch": 10},
                                {"frame": 48, "yaw": 90}])


class CameraKeyframes(CameraPathNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DCameraKeyframes",
            display_name="EX-4D Camera Path (Keyframes)",
            category=CAMERA_CATEGORY,
            description="A custom path from keyframes: a JSON list of {frame, yaw, pitch, distance, roll} "
            "(degrees, around (0, 0, radius)) or {frame, eye: [x, y, z], target: [x, y, z]}. The camera editor "
            "below the widgets writes this list when you drag a keyframe's eye or the target.",
            inputs=[
                *_common_inputs(),
                io.String.Input("keyframes", default=KEYFRAMES_EXAMPLE, multiline=True,
                    tooltip="JSON list of keyframes: {frame, yaw, pitch, distance, roll} in degrees around "
                    "(0, 0, radius), or {frame, eye: [x, y, z], target: [x, y, z]}; frames in "
                    "between are eased. Two keys with the same values hold the camera still."),
                io.Combo.Input("easing", options=list(ex4d_camera.EASINGS), default="ease_in_out",
                    tooltip="How the camera moves between keyframes: linear (constant speed) or eased (slow"
                    " at each keyframe)."),
            ],
            outputs=[Camera.Output(display_name="camera")],
            hidden=SCENE_SOURCE,
        )

    @classmethod
    def path(cls, clip: Clip, radius, focal, keyframes, easing) -> ex4d_camera.CameraPath:
        if not isinstance(keyframes, str):
            raise ValueError(f"keyframes: got {type(keyframes).__name__}; give JSON text such as {KEYFRAMES_EXAMPLE}")
        try:
            keys = json.loads(keyframes)
        except json.JSONDecodeError as e:
            raise ValueError(f"keyframes: not valid JSON (line {e.lineno}, column {e.colno}); give a list such as "
                             f"{KEYFRAMES_EXAMPLE}") from e
        if not isinstance(keys, list) or not keys:
            raise ValueError(f"keyframes: give a non-empty JSON list of keyframes, e.g. {KEYFRAMES_EXAMPLE}")
        try:
            return ex4d_camera.keyframed(keys, widget_clip(clip, radius, focal), easing=easing)
        except ValueError as e:
            raise ValueError(f"keyframes: {e}; example: {KEYFRAMES_EXAMPLE}") from e


class CameraPreview(CheckedNode):
    what_to_connect = {"frames": CONNECT_FRAMES}

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DCameraPreview",
            display_name="EX-4D Camera Path Preview",
            category=CAMERA_CATEGORY,
            description="Top and side views of a camera path (blue = first frame, red = last, ticks = viewing "
            "direction, cross = orbit centre; a zooming path also shows each frame's field of view) over the "
            "frame-0 scene, to check a path before rendering; the "
            "camera editor on the node shows the path in 3D over the scene once the node has run.",
            inputs=[
                Camera.Input("camera",
                    tooltip="The camera path to use (from a Camera Path node, or loaded)."),
                Depth.Input("depth", optional=True, tooltip="Draws the frame-0 scene as points."),
                io.Image.Input("frames", optional=True, tooltip="Colours the scene points with frame 0."),
                io.Int.Input("size", default=384, min=64, max=2048, step=32, tooltip="Height of each view."),
            ],
            outputs=[io.Image.Output(display_name="image")],
            hidden=SCENE_SOURCE,
        )

    @classmethod
    def execute(cls, camera, size, depth=None, frames=None) -> io.NodeOutput:
        points = colors = None
        ui = {"ex4d_path": [ex4d_camera.to_json_dict(camera)]}
        if depth is not None:
            d = depth.depth[:1].float().cpu()
            if (d.shape[2], d.shape[1]) != (camera.width, camera.height):
                raise ValueError(f"depth: {d.shape[2]}x{d.shape[1]}, but the camera is for {camera.width}x"
                                 f"{camera.height} images; connect the depth the path was made from")
            # scene_ui checks the frames too
            ui["ex4d_scene"] = [scene_ui(depth_clip(depth), depth, frames, camera.focal, scene_source(cls))]
            step = max(1, math.ceil(math.sqrt(d.shape[1] * d.shape[2] / 40000)))
            pts = ex4d_mesh.unproject(d, camera.focal, push_border=False)[0]
            points = pts[::step, ::step].reshape(-1, 3).numpy()
            if frames is not None:
                colors = frames[0, ::step, ::step, :3].reshape(-1, 3).float().cpu().numpy()
        image = ex4d_camera.path_preview(camera, points, colors, size=size)
        return io.NodeOutput(torch.from_numpy(image)[None], ui=ui)


PATH_NODES = [CameraPreset, CameraOrbit, CameraDolly, CameraKeyframes]
NODES = [*PATH_NODES, CameraPreview]
