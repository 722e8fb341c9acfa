"""Every bad input gets one clear error (issue #12), through the real server.

Each case is a small prompt with one bad value for one node of the pack (node "1"; the rest of the graph is
valid). It must fail at queue time (/prompt refuses it, the error attached to that input) when the value alone
decides, else when the node runs; the message must name that one input first, say what to do and hold no raw
exception text; nothing may be left in the output or temp folders; a pickled file's code must never run; and
the server must serve the next prompt. The module prints one summary line and asserts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from tests.bad_inputs import (
    CLIP,
    DROP,
    MARKER,
    SOURCES,
    WIDGETS,
    Error,
    Graphs,
    Reply,
    base_nodes,
    check_code_runner,
    host_checks_v3_combos,
    message_problems,
    serving,
    submit,
    written_files,
)

pytestmark = pytest.mark.server

NAN, INF = math.nan, math.inf

QUEUE, RUN = "queue", "run"
CHOICE = "choice"  # an unknown combo value: 0.33 refuses it at queue time; 0.3.75 leaves it to the node
CHOICE_STAGE = QUEUE if host_checks_v3_combos() else RUN


@dataclass(frozen=True)
class Case:
    id: str
    node: str  # the class of node "1", the node under test
    values: dict  # its bad value(s); every other input is valid
    input: str  # the one input the error must be about
    stage: str  # QUEUE, RUN or CHOICE
    text: str = ""  # what the message must also hold
    known: str = ""  # "owner: <file> — <change>": a fix due in a file another engineer owns
    known_where: str = "both"  # "both", or CHOICE: only where the host leaves unknown choices to the node

    @property
    def expected_stage(self) -> str:
        return CHOICE_STAGE if self.stage == CHOICE else self.stage

    @property
    def is_known(self) -> bool:
        return bool(self.known) and (self.known_where == "both" or CHOICE_STAGE == RUN)


def cases(node: str, *rows: tuple) -> list[Case]:
    """Rows of (id, values, input, stage[, text[, known[, known_where]]]) for one node class."""
    return [Case(f"{node.removeprefix('EX4D')}: {row[0]}", node, *row[1:]) for row in rows]


# Tables: one row per line reads better than one value per line.
# fmt: off
BAD_PREFIXES = (
    ("prefix leaves the output folder", {"filename_prefix": "../escape"}, "filename_prefix", QUEUE, "output folder"),
    ("prefix absolute", {"filename_prefix": "/ex4d_bad_inputs/abs"}, "filename_prefix", QUEUE, "output folder"),
    ("prefix null byte", {"filename_prefix": "ex4d/a\x00b"}, "filename_prefix", QUEUE, "null"),
    ("prefix too long", {"filename_prefix": "x" * 300}, "filename_prefix", QUEUE, "shorten"),
)


CASES: list[Case] = [
    *cases(
        "EX4DLoadVideo",
        ("missing file", {"video": "nope.mp4"}, "video", QUEUE, "nope.mp4"),
        ("parent folder", {"video": f"../{CLIP}"}, "video", QUEUE, "outside"),
        ("deep traversal", {"video": "../../../../etc/passwd"}, "video", QUEUE, "outside"),
        ("absolute path outside", {"video": "/etc/passwd"}, "video", QUEUE, "outside"),
        ("traversal in an annotated name", {"video": "../../../etc/passwd [temp]"}, "video", QUEUE, "outside"),
        ("missing output file", {"video": "nope.mp4 [output]"}, "video", QUEUE, "output folder"),
        ("no file chosen", {"video": ""}, "video", QUEUE, "no file chosen"),
        ("null byte", {"video": f"{CLIP}\x00.txt"}, "video", QUEUE, "null character"),
        ("a number", {"video": 7}, "video", QUEUE, "file name"),
        ("a folder", {"video": "folder"}, "video", QUEUE, "not found"),
        ("not a video", {"video": "fake.mp4"}, "video", RUN, "fake.mp4"),
        ("zero bytes", {"video": "zero.mp4"}, "video", RUN, "zero.mp4"),
        ("a video stream without frames", {"video": "empty.mkv"}, "video", RUN, "empty.mkv"),
        ("audio only", {"video": "audio.m4a"}, "video", RUN, "no video stream"),
        ("cut short", {"video": "cut.mp4"}, "video", RUN, "cut.mp4"),
        ("a depth file", {"video": "depth.npz"}, "video", RUN, "depth.npz"),
        ("frame_load_cap below 0", {"frame_load_cap": -1}, "frame_load_cap", QUEUE),
        ("frame_load_cap above max", {"frame_load_cap": 10001}, "frame_load_cap", QUEUE),
        ("frame_load_cap a word", {"frame_load_cap": "five"}, "frame_load_cap", QUEUE),
        ("skip_first_frames below 0", {"skip_first_frames": -1}, "skip_first_frames", QUEUE),
        (
            "skip_first_frames past the end",
            {"skip_first_frames": 500},
            "skip_first_frames",
            RUN,
            "500 skips all 5 frames",
        ),
        ("select_every_nth 0", {"select_every_nth": 0}, "select_every_nth", QUEUE),
        ("select_every_nth above max", {"select_every_nth": 1001}, "select_every_nth", QUEUE),
        ("target_fps below 0", {"target_fps": -0.5}, "target_fps", QUEUE),
        ("target_fps above max", {"target_fps": 241.0}, "target_fps", QUEUE),
        ("target_fps NaN", {"target_fps": NAN}, "target_fps", RUN, "finite"),
        ("target_fps infinite", {"target_fps": INF}, "target_fps", QUEUE),
        ("target_fps minus infinity", {"target_fps": -INF}, "target_fps", QUEUE),
        ("unknown resize", {"resize": "bogus"}, "resize", CHOICE),
        ("empty resize", {"resize": ""}, "resize", CHOICE),
        ("max_resolution below min", {"max_resolution": 63}, "max_resolution", QUEUE),
        ("max_resolution above max", {"max_resolution": 8193}, "max_resolution", QUEUE),
        ("multiple below min", {"multiple": 7}, "multiple", QUEUE),
        ("multiple above max", {"multiple": 257}, "multiple", QUEUE),
        ("select_every_nth 0 through a link", {"select_every_nth": ["int_0", 0]}, "select_every_nth", RUN),
        (
            "skip_first_frames negative through a link",
            {"skip_first_frames": ["int_negative", 0]},
            "skip_first_frames",
            RUN,
        ),
        ("target_fps NaN through a link", {"target_fps": ["float_nan", 0]}, "target_fps", RUN),
        ("frame_load_cap linked to a FLOAT", {"frame_load_cap": ["float_nan", 0]}, "frame_load_cap", QUEUE),
        ("video linked to an IMAGE", {"video": ["video", 0]}, "video", QUEUE),
        ("video left out", {"video": DROP}, "video", QUEUE),
    ),
    *cases(
        "EX4DLoadDepth",
        ("missing file", {"path": "nope.npz"}, "path", QUEUE, "nope.npz"),
        ("parent folder", {"path": "../depth.npz"}, "path", QUEUE, "outside"),
        ("absolute path outside", {"path": "/etc/passwd"}, "path", QUEUE, "outside"),
        ("no file chosen", {"path": ""}, "path", QUEUE),
        ("null byte", {"path": "depth.npz\x00"}, "path", QUEUE, "null character"),
        ("a number", {"path": 5}, "path", QUEUE),
        ("a text file", {"path": "notes.txt"}, "path", QUEUE, ".npz or .npy"),
        ("a video", {"path": CLIP}, "path", QUEUE, ".npz or .npy"),
        ("pickled objects in an npz", {"path": "pickled.npz"}, "path", RUN, "never loaded"),
        ("pickled objects in an npy", {"path": "pickled.npy"}, "path", RUN, "never loaded"),
        ("a pickle named .npz", {"path": "raw_pickle.npz"}, "path", RUN, "never loaded"),
        ("not a zip", {"path": "not_zip.npz"}, "path", RUN, "not a readable"),
        ("truncated npz", {"path": "truncated.npz"}, "path", RUN, "not a readable"),
        ("damaged compressed data", {"path": "damaged.npz"}, "path", RUN, "not a readable"),
        ("empty npy", {"path": "empty.npy"}, "path", RUN, "not a readable"),
        ("truncated npy", {"path": "truncated.npy"}, "path", RUN, "not a readable"),
        ("no arrays", {"path": "no_arrays.npz"}, "path", RUN, "no arrays"),
        ("a member that is not an array", {"path": "bytes_member.npz"}, "path", RUN, "not a readable"),
        ("two arrays, none named depth", {"path": "two_arrays.npz"}, "path", RUN, "none named 'depth'"),
        ("complex numbers", {"path": "complex.npz"}, "path", RUN, "complex64"),
        ("strings", {"path": "strings.npz"}, "path", RUN, "real numbers"),
        ("structured records", {"path": "structured.npy"}, "path", RUN, "real numbers"),
        ("dates", {"path": "dates.npy"}, "path", RUN, "datetime64"),
        ("four dimensions", {"path": "four_d.npz"}, "path", RUN, "[T, H, W]"),
        ("one dimension", {"path": "one_d.npy"}, "path", RUN, "[T, H, W]"),
        ("a single number", {"path": "scalar.npy"}, "path", RUN, "[T, H, W]"),
        ("no frames", {"path": "no_frames.npz"}, "path", RUN, "at least one frame"),
        ("zero width", {"path": "no_width.npz"}, "path", RUN, "at least one frame"),
        ("NaN", {"path": "nan.npz"}, "path", RUN, "NaN"),
        ("infinite", {"path": "inf.npz"}, "path", RUN, "infinite"),
        ("NaN disparity", {"path": "nan.npz", "content": "disparity"}, "path", RUN, "NaN"),
        ("zeros", {"path": "zeros.npz"}, "path", RUN, "set content to 'disparity'"),
        ("negative", {"path": "negative.npy"}, "path", RUN, "<= 0"),
        ("unknown content", {"content": "bogus"}, "content", CHOICE),
        ("frame_load_cap below 0", {"frame_load_cap": -1}, "frame_load_cap", QUEUE),
        ("skip_first_frames below 0", {"skip_first_frames": -1}, "skip_first_frames", QUEUE),
        (
            "skip_first_frames past the end",
            {"skip_first_frames": 99},
            "skip_first_frames",
            RUN,
            "99 skips all 5 frames",
        ),
        ("select_every_nth 0", {"select_every_nth": 0}, "select_every_nth", QUEUE),
        ("select_every_nth above max", {"select_every_nth": 1001}, "select_every_nth", QUEUE),
        ("select_every_nth 0 through a link", {"select_every_nth": ["int_0", 0]}, "select_every_nth", RUN),
        ("frame_load_cap negative through a link", {"frame_load_cap": ["int_negative", 0]}, "frame_load_cap", RUN),
        ("path left out", {"path": DROP}, "path", QUEUE),
    ),
    *cases(
        "EX4DSaveDepth",
        *BAD_PREFIXES,
        ("prefix climbs out of a subfolder", {"filename_prefix": "ex4d/../../up"}, "filename_prefix", QUEUE),
        (
            "prefix through a link leaves the output folder",
            {"filename_prefix": ["string_up", 0]},
            "filename_prefix",
            RUN,
            "output folder",
        ),
        ("depth linked to an IMAGE", {"depth": ["video", 0]}, "depth", QUEUE),
        ("depth left out", {"depth": DROP}, "depth", QUEUE),
    ),
    *cases(
        "EX4DDepthPreview",
        ("unknown colormap", {"colormap": "bogus"}, "colormap", CHOICE),
        ("empty colormap", {"colormap": ""}, "colormap", CHOICE),
        ("depth linked to a MASK", {"depth": ["mask", 0]}, "depth", QUEUE),
        ("depth linked to a camera", {"depth": ["camera", 0]}, "depth", QUEUE),
    ),
    *cases(
        "EX4DDepthFromImage",
        ("unknown map", {"map": "bogus"}, "map", CHOICE),
        ("image a number", {"image": 3}, "image", RUN, "not a link"),
        ("unknown range", {"range": "bogus"}, "range", CHOICE),
        ("near 0", {"near": 0.0}, "near", QUEUE),
        ("near negative", {"near": -1.0}, "near", QUEUE),
        ("far above max", {"far": 1e5}, "far", QUEUE),
        ("near NaN", {"near": NAN}, "near", RUN, "finite"),
        ("far NaN", {"far": NAN}, "far", RUN, "finite"),
        ("near NaN through a link", {"near": ["float_nan", 0]}, "near", RUN),
        ("near beyond far", {"range": "near_far", "near": 5.0, "far": 2.0}, "far", RUN, "larger than near"),
        ("near equals far", {"range": "near_far", "near": 3.0, "far": 3.0}, "far", RUN, "larger than near"),
        ("no map connected", {"image": DROP}, "image", RUN, "connect"),
        ("image and mask connected", {"mask": ["mask", 0]}, "mask", RUN, "one map only"),
        ("a NaN mask", {"image": DROP, "mask": ["nan_mask", 0]}, "mask", RUN, "NaN"),
        ("image linked to a MASK", {"image": ["mask", 0]}, "image", QUEUE),
        ("mask linked to an IMAGE", {"image": DROP, "mask": ["video", 0]}, "mask", QUEUE),
        ("focal negative", {"focal": -1.0}, "focal", QUEUE),
        ("focal NaN", {"focal": NAN}, "focal", RUN, "finite"),
    ),
    *cases(
        "EX4DDepthFromGeometry",
        ("no geometry connected", {}, "moge_geometry", RUN, "connect one geometry"),
        ("moge_geometry linked to an IMAGE", {"moge_geometry": ["video", 0]}, "moge_geometry", QUEUE),
        ("unknown lens", {"lens": "bogus"}, "lens", CHOICE),
        ("window 0", {"window": 0}, "window", QUEUE),
        ("focal negative", {"focal": -1.0}, "focal", QUEUE),
        ("focal NaN", {"focal": NAN}, "focal", RUN, "finite"),
    ),
    *cases(
        "EX4DDepthModelLoader",
        ("model not installed", {"model": "Depth Pro"}, "model", QUEUE, "refresh"),
        ("no model chosen", {"model": ""}, "model", QUEUE),
        ("model a path", {"model": "../depth_anything/tiny-v2"}, "model", QUEUE),
        ("model null byte", {"model": "Depth\x00"}, "model", QUEUE),
        ("unknown precision", {"precision": "fp8"}, "precision", CHOICE),
        ("unknown attention", {"attention": "flash"}, "attention", CHOICE),
    ),
    *cases(
        "EX4DEstimateDepth",
        ("steps 0", {"steps": 0}, "steps", QUEUE),
        ("steps above max", {"steps": 101}, "steps", QUEUE),
        ("guidance below 1", {"guidance": 0.5}, "guidance", QUEUE),
        ("depth_model a number", {"depth_model": 1}, "depth_model", RUN, "not a link"),
        ("guidance NaN", {"guidance": NAN}, "guidance", RUN, "finite"),
        ("window 1", {"window": 1}, "window", QUEUE),
        ("overlap below 0", {"overlap": -1}, "overlap", QUEUE),
        ("overlap above max", {"overlap": 1000}, "overlap", QUEUE),
        ("seed below 0", {"seed": -1}, "seed", QUEUE),
        ("batch_size 0", {"batch_size": 0}, "batch_size", QUEUE),
        ("smoothing 0", {"smoothing": 0.0}, "smoothing", QUEUE),
        ("smoothing above 1", {"smoothing": 1.5}, "smoothing", QUEUE),
        ("smoothing NaN", {"smoothing": NAN}, "smoothing", RUN, "finite"),
        ("steps negative through a link", {"steps": ["int_negative", 0]}, "steps", RUN),
        (
            "overlap not below window",
            {"depth_model": ["crafter", 0], "window": 5, "overlap": 5},
            "overlap",
            RUN,
            "smaller than window",
        ),
        ("frames linked to a MASK", {"frames": ["mask", 0]}, "frames", QUEUE),
        ("depth_model linked to depth", {"depth_model": ["depth", 0]}, "depth_model", QUEUE),
        ("frames left out", {"frames": DROP}, "frames", QUEUE),
    ),
    *cases(
        "EX4DBuildDWMesh",
        ("unknown filter", {"filter": "bogus"}, "filter", CHOICE),
        ("angle_threshold below 0", {"angle_threshold": -1.0}, "angle_threshold", QUEUE),
        ("angle_threshold above max", {"angle_threshold": 61.0}, "angle_threshold", QUEUE),
        ("boundary_ratio below 0", {"boundary_ratio": -1.0}, "boundary_ratio", QUEUE),
        ("focal NaN through a link", {"focal": ["float_nan", 0]}, "focal", RUN, "finite"),
        ("focal 0", {"focal": 0.0}, "focal", QUEUE),
        ("frames linked to a MASK", {"frames": ["mask", 0]}, "frames", QUEUE),
        ("depth linked to an IMAGE", {"depth": ["video", 0]}, "depth", QUEUE),
        ("depth of other frames", {"frames": ["short_video", 0]}, "depth", RUN, "frames"),
        ("a 1x1 clip", {"frames": ["dot", 0], "depth": ["dot_depth", 0]}, "frames", RUN, "2 x 2"),
    ),
    *cases(
        "EX4DSaveDWMesh",
        ("frame past the end", {"frame": 5}, "frame", RUN, "choose a frame from 0 to 4"),
        ("frame below 0", {"frame": -1}, "frame", QUEUE),
        ("frame negative through a link", {"frame": ["int_negative", 0]}, "frame", RUN),
        ("unknown format", {"format": "obj"}, "format", CHOICE),
        *BAD_PREFIXES,
        ("mesh linked to a camera", {"mesh": ["camera", 0]}, "mesh", QUEUE),
    ),
    *cases(
        "EX4DCameraPreset",
        ("unknown preset", {"preset": "360"}, "preset", CHOICE),
        ("unknown sweep", {"sweep": "rounds"}, "sweep", CHOICE),
        ("angle above 360", {"angle": 361.0}, "angle", QUEUE),
        ("angle below 0", {"angle": -1.0}, "angle", QUEUE),
        ("zoom_fraction 1", {"zoom_fraction": 1.0}, "zoom_fraction", QUEUE),
        ("radius below 0", {"radius": -1.0}, "radius", QUEUE),
        ("focal 0", {"focal": 0.0}, "focal", QUEUE),
        ("focal NaN", {"focal": NAN}, "focal", RUN, "finite"),
        (
            "zoom_fraction NaN through a link",
            {"preset": "zoom_in", "zoom_fraction": ["float_nan", 0]},
            "zoom_fraction",
            RUN,
            "finite",
        ),
        ("depth linked to an IMAGE", {"depth": ["video", 0]}, "depth", QUEUE),
        ("depth left out", {"depth": DROP}, "depth", QUEUE),
    ),
    *cases(
        "EX4DCameraOrbit",
        ("yaw_start above 180", {"yaw_start": 181.0}, "yaw_start", QUEUE),
        ("yaw_end below -180", {"yaw_end": -181.0}, "yaw_end", QUEUE),
        ("pitch_start 90", {"pitch_start": 90.0}, "pitch_start", QUEUE),
        ("pitch_end -90", {"pitch_end": -90.0}, "pitch_end", QUEUE),
        ("distance below 0", {"distance": -1.0}, "distance", QUEUE),
        ("unknown easing", {"easing": "bounce"}, "easing", CHOICE),
        ("hold_start below 0", {"hold_start": -1}, "hold_start", QUEUE),
        ("hold_end above max", {"hold_end": 10001}, "hold_end", QUEUE),
        ("yaw_end NaN", {"yaw_end": NAN}, "yaw_end", RUN, "finite"),
        ("frames of another size", {"frames": ["dot", 0]}, "frames", RUN, "connect the frames"),
    ),
    *cases(
        "EX4DCameraDolly",
        ("start 1", {"start": 1.0}, "start", QUEUE),
        ("end below min", {"end": -11.0}, "end", QUEUE),
        ("unknown easing", {"easing": ""}, "easing", CHOICE),
        ("unknown zoom", {"zoom": "vertigo"}, "zoom", CHOICE),
    ),
    *cases(
        "EX4DCameraKeyframes",
        ("malformed JSON", {"keyframes": '[{"frame": 0, "yaw": 10'}, "keyframes", RUN, "not valid JSON (line 1"),
        ("empty list", {"keyframes": "[]"}, "keyframes", RUN, "non-empty"),
        ("numbers", {"keyframes": "[1, 2]"}, "keyframes", RUN, "keyframe 1 is 1"),
        ("frame a word", {"keyframes": '[{"frame": "first", "yaw": 10}]'}, "keyframes", RUN, "'first'"),
        ("unknown key", {"keyframes": '[{"frame": 0, "zoom": 2}]'}, "keyframes", RUN, "'zoom'"),
        (
            "eye on the target",
            {"keyframes": '[{"frame": 0, "eye": [0, 0, 1], "target": [0, 0, 1]}]'},
            "keyframes",
            RUN,
            "eye equals target",
        ),
        ("zero distance", {"keyframes": '[{"frame": 0, "yaw": 30, "distance": 0}]'}, "keyframes", RUN, "distance"),
        ("yaw NaN", {"keyframes": '[{"frame": 0, "yaw": NaN}]'}, "keyframes", RUN, "NaN"),
        ("eye of two numbers", {"keyframes": '[{"frame": 0, "eye": [1, 2]}]'}, "keyframes", RUN, "[x, y, z]"),
        ("unknown easing", {"easing": "bounce"}, "easing", CHOICE),
        ("keyframes linked to an INT", {"keyframes": ["int_0", 0]}, "keyframes", QUEUE),
    ),
    *cases(
        "EX4DLoadCameraPath",
        ("missing file", {"path": "nope.json"}, "path", QUEUE, "nope.json"),
        ("parent folder", {"path": "../camera.json"}, "path", QUEUE, "outside"),
        ("absolute path outside", {"path": "/etc/passwd"}, "path", QUEUE, "outside"),
        ("no file chosen", {"path": ""}, "path", QUEUE),
        ("null byte", {"path": "camera.json\x00"}, "path", QUEUE),
        ("a text file", {"path": "notes.txt"}, "path", QUEUE, "notes.txt"),
        ("left out", {"path": DROP}, "path", QUEUE),
        ("pickled objects", {"path": "camera_pickled.npz"}, "path", RUN, "never loaded"),
        ("a pickle named .npz", {"path": "raw_pickle.npz"}, "path", RUN, "never loaded"),
        ("not a zip", {"path": "not_zip.npz"}, "path", RUN, "not a readable"),
        ("malformed JSON", {"path": "camera_malformed.json"}, "path", RUN, "not valid JSON"),
        ("width a word", {"path": "camera_strings.json"}, "path", RUN, "width"),
        ("no intrinsics", {"path": "camera_no_intrinsics.npz"}, "path", RUN, "intrinsics"),
        ("another JSON format", {"path": "camera_other.json"}, "path", RUN, "something else"),
        ("all-zero extrinsics", {"path": "camera_zero.npz"}, "path", RUN, "frame 0"),
        ("NaN extrinsics", {"path": "camera_nan.npz"}, "path", RUN, "NaN"),
        ("NaN intrinsics", {"path": "camera_nan.json"}, "path", RUN, "NaN"),
        ("no frames", {"path": "camera_no_frames.json"}, "path", RUN),
        ("truncated glb", {"path": "camera_truncated.glb"}, "path", RUN, "cut short"),
        ("glb of the wrong magic", {"path": "camera_magic.glb"}, "path", RUN, "magic"),
        ("glb missing an accessor", {"path": "camera_no_accessor.glb"}, "path", RUN, "accessors 99"),
        ("glb of a huge count", {"path": "camera_huge.glb"}, "path", RUN, "holds fewer"),
        ("gltf NaN matrix", {"path": "camera_nan.gltf", "width": 8, "height": 8}, "path", RUN, "finite"),
        ("glb camera not there", {"path": "camera.glb", "camera_name": "other"}, "path", RUN, "ex4d_camera"),
        ("transforms.json without focal length", {"path": "transforms_no_focal.json"}, "path", RUN, "fl_x"),
        ("transforms.json NaN matrix", {"path": "transforms_nan.json"}, "path", RUN, "NaN"),
        ("COLMAP camera not PINHOLE", {"path": "radial_images.txt"}, "path", RUN, "SIMPLE_RADIAL"),
        ("COLMAP without cameras.txt", {"path": "lonely_images.txt"}, "path", RUN, "lonely_cameras.txt"),
        ("an EX-4D JSON read at another frame count", {"path": "camera.json", "frames": 3}, "path", RUN, "frames"),
        ("scale 0", {"path": "camera.glb", "scale": 0.0}, "scale", QUEUE),
        ("fps NaN through a link", {"path": "camera.glb", "fps": ["float_nan", 0]}, "fps", RUN),
        ("width below 0", {"width": -1}, "width", QUEUE),
        ("height above max", {"height": 16385}, "height", QUEUE),
        ("width negative through a link", {"path": "camera.npz", "width": ["int_negative", 0]}, "width", RUN),
    ),
    *cases(
        "EX4DSaveCameraPath",
        *BAD_PREFIXES,
        ("unknown format", {"format": "csv"}, "format", CHOICE),
        ("camera linked to depth", {"camera": ["depth", 0]}, "camera", QUEUE),
        ("mesh linked to a camera", {"format": "glb", "mesh": ["camera", 0]}, "mesh", QUEUE),
        ("fps 0", {"format": "glb", "fps": 0.0}, "fps", QUEUE),
        ("mesh of another focal length", {"format": "glb", "camera": ["focal_camera", 0], "mesh": ["mesh", 0]},
         "mesh", RUN, "focal"),
    ),
    *cases(
        "EX4DCameraPreview",
        ("size below min", {"size": 63}, "size", QUEUE),
        ("size above max", {"size": 2049}, "size", QUEUE),
        ("size negative through a link", {"size": ["int_negative", 0]}, "size", RUN),
        ("depth of another size", {"depth": ["dot_depth", 0]}, "depth", RUN, "32x32"),
        ("frames of another size", {"depth": ["depth", 0], "frames": ["big_video", 0]}, "frames", RUN, "connect"),
        ("camera left out", {"camera": DROP}, "camera", QUEUE),
    ),
    *cases(
        "EX4DRenderViews",
        ("chunk 0", {"chunk": 0}, "chunk", QUEUE),
        ("chunk above max", {"chunk": 257}, "chunk", QUEUE),
        ("chunk 0 through a link", {"chunk": ["int_0", 0]}, "chunk", RUN),
        ("unknown backend", {"backend": "opengl"}, "backend", CHOICE),
        ("nvdiffrast without a GPU", {"backend": "nvdiffrast"}, "backend", RUN, "CUDA"),
        ("camera with more frames", {"camera": ["long_camera", 0]}, "camera", RUN, "8 frames"),
        ("camera for a larger image", {"camera": ["big_camera", 0]}, "camera", RUN, "64x64"),
        ("camera of another focal length", {"camera": ["focal_camera", 0]}, "camera", RUN, "focal"),
        ("mesh linked to a camera", {"mesh": ["camera", 0]}, "mesh", QUEUE),
        ("camera linked to a mesh", {"camera": ["mesh", 0]}, "camera", QUEUE),
        ("mesh left out", {"mesh": DROP}, "mesh", QUEUE),
        ("mesh null", {"mesh": None}, "mesh", RUN),
        ("camera null", {"camera": None}, "camera", RUN),
    ),
    *cases(
        "EX4DAdapterLoader",
        ("missing file", {"adapter_name": "nope.ckpt"}, "adapter_name", QUEUE, "nope.ckpt"),
        ("pickled code", {"adapter_name": "pickled.ckpt"}, "adapter_name", RUN, "weights-only"),
        ("a number", {"adapter_name": 5}, "adapter_name", QUEUE, "file name"),
    ),
    *cases(
        "EX4DSaveAdapterSafetensors",
        BAD_PREFIXES[0],
        ("adapter linked to a model", {"adapter": ["unet", 0]}, "adapter", QUEUE),
        ("adapter a number", {"adapter": 5}, "adapter", RUN, "not a link"),
    ),
    *cases(
        "EX4DLoRA",
        ("strength above max", {"strength": 11.0}, "strength", QUEUE),
        ("a T2V model", {"model": ["t2v", 0]}, "model", RUN),
        ("model linked to a VAE", {"model": ["vae", 0]}, "model", QUEUE),
        ("adapter a number", {"adapter": 5}, "adapter", RUN, "not a link"),
        ("model a string", {"model": "wan.safetensors"}, "model", RUN, "not a link"),
    ),
    *cases(
        "EX4DAttention",
        ("unknown backend", {"backend": "flash"}, "backend", CHOICE),
        ("model linked to a VAE", {"model": ["vae", 0]}, "model", QUEUE),
        ("model left out", {"model": DROP}, "model", QUEUE),
    ),
    *[case for node in ("EX4DFP8Linear", "EX4DCompileBlocks") for case in cases(
        node,
        ("model linked to a VAE", {"model": ["vae", 0]}, "model", QUEUE),
        ("model left out", {"model": DROP}, "model", QUEUE),
        ("model a string", {"model": "wan.safetensors"}, "model", RUN, "not a link"),
    )],
    *cases(
        "EX4DApply",
        ("width below min", {"width": 15}, "width", QUEUE),
        ("vae a number", {"vae": 5}, "vae", RUN, "not a link"),
        ("length 0 through a link", {"length": ["int_0", 0]}, "length", RUN),
        ("positive a string", {"positive": "a cat"}, "positive", RUN, "not a link"),
        ("clip_vision_output a number", {"clip_vision_output": 1}, "clip_vision_output", RUN, "not a link"),
        ("height above max", {"height": 8193}, "height", QUEUE),
        ("length 0", {"length": 0}, "length", QUEUE),
        ("length not 4k + 1", {"length": 6}, "length", RUN, "4k + 1"),
        ("mask_erosion above max", {"mask_erosion": 65}, "mask_erosion", QUEUE),
        ("erosion_seed below 0", {"erosion_seed": -1}, "erosion_seed", QUEUE),
        ("unknown resize", {"resize": "fill"}, "resize", CHOICE),
        ("unknown erosion_mode", {"erosion_mode": "none"}, "erosion_mode", CHOICE),
        ("colour shorter than length", {"colour": ["short_video", 0]}, "colour", RUN, "lower length"),
        ("mask of another size", {"mask": ["big_mask", 0]}, "mask", RUN, "64x64"),
        ("vae linked to a model", {"vae": ["unet", 0]}, "vae", QUEUE),
        ("colour left out", {"colour": DROP}, "colour", QUEUE),
    ),
    *cases(
        "EX4DWanSampler",
        ("steps 0", {"steps": 0}, "steps", QUEUE),
        ("cfg below 0", {"cfg": -1.0}, "cfg", QUEUE),
        ("negative a number", {"negative": 0}, "negative", RUN, "not a link"),
        ("steps 0 through a link", {"steps": ["int_0", 0]}, "steps", RUN),
        ("cfg NaN through a link", {"cfg": ["float_nan", 0]}, "cfg", RUN, "finite"),
        ("cfg above max", {"cfg": 101.0}, "cfg", QUEUE),
        ("shift 0", {"shift": 0.0}, "shift", QUEUE),
        ("seed below 0", {"seed": -1}, "seed", QUEUE),
        ("latent linked to an IMAGE", {"latent": ["video", 0]}, "latent", QUEUE),
    ),
    *cases(
        "EX4DSavePromptEmbeddings",
        BAD_PREFIXES[0],
        ("conditioning linked to an IMAGE", {"conditioning": ["video", 0]}, "conditioning", QUEUE),
        ("conditioning a number", {"conditioning": 7}, "conditioning", RUN, "not a link"),
    ),
    *cases(
        "EX4DLoadPromptEmbeddings",
        ("missing file", {"embeddings": "nope.safetensors"}, "embeddings", QUEUE, "nope.safetensors"),
        ("parent folder", {"embeddings": "../prompt.safetensors"}, "embeddings", QUEUE, "outside"),
        ("no file chosen", {"embeddings": ""}, "embeddings", QUEUE),
        ("left out", {"embeddings": DROP}, "embeddings", QUEUE),
        ("a number", {"embeddings": 5}, "embeddings", QUEUE, "file name"),
        ("pickled code", {"embeddings": "prompt_pickled.safetensors"}, "embeddings", RUN, "Save Prompt Embeddings"),
        ("another file", {"embeddings": "prompt_other.safetensors"}, "embeddings", RUN, "Save Prompt Embeddings"),
    ),
]
# fmt: on


# ---------------------------------------------------------------------------------------------------------
# Running the cases


@dataclass
class Outcome:
    reply: Reply
    problems: list[str]  # why the error is not one clear error on the case's input ([]: it is)
    files_left: list[str]
    code_ran: bool
    server_after: str  # '' when the server served on


def judge(case: Case, reply: Reply) -> list[str]:
    """Why ``reply`` is not one clear error about ``case.input`` at the expected stage ([] when it is)."""
    if reply.stage == "crash":
        return [f"crash: {reply.crash}"]
    if reply.stage == "accepted":
        return ["accepted: the prompt ran without an error"]
    problems = []
    if reply.stage != case.expected_stage:
        problems.append(f"failed at {reply.stage} time, expected at {case.expected_stage} time")
    if len(reply.errors) != 1:
        problems.append(f"{len(reply.errors)} errors, expected one: {reply.errors}")
    for error in reply.errors:
        if error.node != "1":
            problems.append(f"error on node {error.node}, not on the node under test: {error}")
        if reply.stage == QUEUE and error.input != case.input:
            problems.append(f"attached to {error.input!r}, not to {case.input!r}: {error.text}")
        if error.ours or reply.stage == RUN:
            problems += [f"{p}: {error.text!r}" for p in message_problems(error.text, case.input)]
        if case.text not in error.text:
            problems.append(f"does not mention {case.text!r}: {error.text!r}")
    return problems


@pytest.fixture(scope="module")
def server(bad_input_server):
    """The bad-input suite's server (tests/conftest.py), without a code-run marker another suite left."""
    (bad_input_server.work_dir / MARKER).unlink(missing_ok=True)
    return bad_input_server


@pytest.fixture(scope="module")
def outcomes(server) -> dict[str, Outcome]:
    """Every case, queued in table order against one server (each must leave it serving the next)."""
    graphs = Graphs(server.get_json("/object_info"), SOURCES, WIDGETS)
    base = base_nodes(graphs)
    marker = server.work_dir / MARKER
    # every base node once: the graph around node "1" runs (so a case's failure is its own), and whatever the
    # base nodes write as previews is there before the cases, not counted as left behind by them
    shown = {f"show {name}": {"class_type": "PreviewAny", "inputs": {"source": [name, 0]}} for name in base}
    warm_up = submit(server, {**base, **shown})
    assert warm_up.stage == "accepted", warm_up
    results = {}
    for case in CASES:
        if case.node not in graphs.info:  # test_every_node_of_the_pack_has_cases says more
            results[case.id] = Outcome(Reply("queue"), [f"the host lists no node {case.node}"], [], False, "")
            continue
        before = written_files(server.work_dir)
        reply = submit(server, Graphs.prompt(graphs.node(case.node, **case.values), base))
        left = sorted(written_files(server.work_dir) - before)
        for name in left:  # so that the next case starts clean
            (server.work_dir / name).unlink()
        code_ran = marker.exists()
        marker.unlink(missing_ok=True)
        after = serving(server)
        if after:  # start a new server, so that the other cases still say something
            server.stop()
            server.start()
        results[case.id] = Outcome(reply, judge(case, reply), left, code_ran, after)
    return results


def params() -> list:
    return [
        pytest.param(
            case,
            id=case.id,
            marks=[pytest.mark.xfail(strict=True, reason=case.known)] if case.is_known else [],
        )
        for case in CASES
    ]


@pytest.mark.parametrize("case", params())
def test_bad_input_gets_one_clear_error(outcomes, case):
    outcome = outcomes[case.id]
    assert not outcome.code_ran, "the file's pickled code ran"
    assert not outcome.files_left, f"files left behind: {outcome.files_left}"
    assert not outcome.server_after, outcome.server_after
    assert not outcome.problems, "\n".join(outcome.problems)


def test_every_node_of_the_pack_has_cases(server):
    info = server.get_json("/object_info")
    pack = {name for name, spec in info.items() if spec.get("category", "").startswith("EX-4D")}
    assert pack == {case.node for case in CASES}


def test_the_server_serves_a_good_prompt_after_all_cases(server, outcomes):
    graphs = Graphs(server.get_json("/object_info"), SOURCES, WIDGETS)
    assert (
        submit(server, Graphs.prompt(graphs.node("EX4DDepthPreview"), base_nodes(graphs))).stage == "accepted"
    )


def test_summary(outcomes, capsys):
    total = len(outcomes)
    known = {c.id for c in CASES if c.is_known}
    crashes = [
        i for i, o in outcomes.items() if (o.reply.stage == "crash" or o.server_after) and i not in known
    ]
    unclear = [i for i, o in outcomes.items() if o.problems and i not in known and i not in crashes]
    clear = [i for i, o in outcomes.items() if not o.problems]
    files = sum(len(o.files_left) for o in outcomes.values())
    code = sum(o.code_ran for o in outcomes.values())
    slowest = max(outcomes.items(), key=lambda item: item[1].reply.seconds)
    line = (
        f"bad inputs: {total} cases, {len(clear)} clear, {len(unclear)} unclear, {len(crashes)} crashes, "
        f"{files} files left behind, {code} code run from a file; {len(known)} known to owners (xfail); "
        f"slowest {slowest[0]!r} {slowest[1].reply.seconds:.1f} s"
    )
    with capsys.disabled():
        print(f"\n{line}")
    assert total >= 150
    assert (unclear, crashes, files, code) == ([], [], 0, 0), line
    assert len(clear) + len(known) == total, line


# ---------------------------------------------------------------------------------------------------------
# The judge itself: each way a reply can be wrong is caught


def test_judge_refuses_what_is_not_one_clear_error():
    case = Case("x", "EX4DLoadVideo", {}, "video", QUEUE, "nope")
    mine = Error("1", "video", "custom_validation_failed", "video: 'nope.mp4' was not found; upload it")
    assert judge(case, Reply(QUEUE, [mine])) == []
    other_input = Error(
        "1", "resize", "custom_validation_failed", "video: 'nope.mp4' was not found; upload it"
    )
    assert judge(case, Reply(QUEUE, [mine, other_input]))  # the message repeated on a second input
    assert judge(case, Reply(QUEUE, [other_input]))
    assert judge(case, Reply(RUN, [Error("1", None, "ValueError", mine.text)]))  # too late
    assert judge(
        case, Reply(QUEUE, [Error("1", "video", "custom_validation_failed", "'nope.mp4' not found")])
    )
    assert judge(
        case, Reply(QUEUE, [Error("1", "video", "custom_validation_failed", "video: nope [Errno 2]")])
    )
    assert judge(
        case, Reply(QUEUE, [Error("1", "video", "custom_validation_failed", "video: nope.mp4 is bad")])
    )
    assert judge(case, Reply(QUEUE, [Error("2", "video", "custom_validation_failed", mine.text)]))
    assert judge(case, Reply("accepted"))
    assert judge(case, Reply("crash", crash="HTTP 500"))
    host_check = Error("1", "video", "value_not_in_list", "Value not in list: video: 'nope' not in [...]")
    assert judge(case, Reply(QUEUE, [host_check])) == []  # the host's own check, on the input


def test_the_pickled_payload_would_run(tmp_path):
    check_code_runner(tmp_path / "marker")  # raises if unpickling did not create its marker


def test_summary_counts_match_the_table():
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    assert all(c.stage in (QUEUE, RUN, CHOICE) for c in CASES)
