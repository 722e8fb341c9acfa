"""Camera paths from nerfstudio's ``transforms.json`` (the layout ns-process-data and instant-ngp write).

Each frame's ``transform_matrix`` is camera-to-world in the OpenGL convention (x right, y up, looking down -z);
its lens is ``fl_x`` / ``fl_y`` (pixels) at ``w`` x ``h``, given once at the top or per frame. Frames are read
in the order of their ``file_path`` (as nerfstudio sorts them), one camera per clip frame; the path is moved so
that its first camera is the source camera (:mod:`.imports`). Lens distortion is not read.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .files import CameraFileError
from .imports import (
    DEFAULT_SETTINGS,
    ImportSettings,
    anchored_extrinsics,
    camera_path,
    check_sequence_frames,
    image_size,
    lens_of_fov,
    rigid,
)
from .path import CameraPath

# models whose undistorted image is a pinhole projection (their distortion, if any, is not read)
PINHOLE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL")
MAX_BYTES = 256 << 20


class _Invalid(ValueError):
    """What is wrong with the file, in words that follow its name."""


def is_transforms_json(data: object) -> bool:
    """Whether parsed JSON looks like a transforms.json (a "frames" list, no EX-4D "format")."""
    return isinstance(data, dict) and "format" not in data and isinstance(data.get("frames"), list)


def _number(frame: dict, top: dict, key: str) -> float | None:
    value = frame.get(key, top.get(key))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise _Invalid(f"its {key} is {value!r}, not a positive number")
    return float(value)


def _frame(frame: object, top: dict, i: int) -> tuple[np.ndarray, float, tuple[int, int] | None]:
    """One frame's camera-to-world matrix, vertical field of view and size (None where not given)."""
    if not isinstance(frame, dict) or "transform_matrix" not in frame:
        raise _Invalid(f"its frame {i} has no transform_matrix")
    try:
        matrix = np.array(frame["transform_matrix"], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise _Invalid(f"its frame {i}'s transform_matrix holds values that are not numbers") from e
    if matrix.shape == (3, 4):
        matrix = np.vstack([matrix, [0.0, 0.0, 0.0, 1.0]])
    if matrix.shape != (4, 4):
        raise _Invalid(f"its frame {i}'s transform_matrix is {list(matrix.shape)}, not 4 x 4")
    fl_x, fl_y = _number(frame, top, "fl_x"), _number(frame, top, "fl_y")
    fl_y = fl_y or fl_x
    height, width = _number(frame, top, "h"), _number(frame, top, "w")
    if fl_y is None or height is None:
        raise _Invalid(f"its frame {i} has no focal length and height (fl_x / fl_y and h)")
    if fl_x is not None and abs(fl_x - fl_y) > 0.01 * fl_y:
        raise _Invalid(f"has fl_x {fl_x:g} and fl_y {fl_y:g} in frame {i}; the renderer needs square pixels")
    size = (int(round(width)), int(round(height))) if width is not None else None
    return matrix, 2.0 * math.atan(height / (2.0 * fl_y)), size


def read_transforms_json(path: str | Path, settings: ImportSettings = DEFAULT_SETTINGS,
                         data: object = None) -> CameraPath:
    """The camera path of a transforms.json (``data``: its parsed JSON, when already read)."""
    name = f"'{Path(path).name}'"
    try:
        if data is None:
            if Path(path).stat().st_size > MAX_BYTES:
                raise _Invalid(f"is larger than {MAX_BYTES >> 20} MiB")
            data = json.loads(Path(path).read_text())
        return _read(data, settings, name)
    except _Invalid as e:
        raise CameraFileError(f"{name} {e}") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CameraFileError(f"{name} is not readable JSON") from e


def _read(data: object, settings: ImportSettings, name: str) -> CameraPath:
    if not is_transforms_json(data):
        raise _Invalid("is not a nerfstudio transforms.json (no 'frames' list)")
    model = data.get("camera_model", "OPENCV")
    if model not in PINHOLE_MODELS:
        raise _Invalid(f"has camera_model {model!r}; only pinhole cameras ({', '.join(PINHOLE_MODELS)}) "
                              "can be rendered")
    frames = data["frames"]
    if not frames:
        raise _Invalid("has no frames")
    if all(isinstance(f, dict) and isinstance(f.get("file_path"), str) for f in frames):
        frames = sorted(frames, key=lambda f: f["file_path"])
    check_sequence_frames(len(frames), settings, name)
    cameras = [_frame(f, data, i) for i, f in enumerate(frames)]
    sizes = {size for _, _, size in cameras}
    if len(sizes) > 1:
        raise _Invalid(f"holds frames of different sizes ({', '.join(f'{w}x{h}' for w, h in sizes)})")
    file_size = sizes.pop()
    width, height = image_size(settings, name, file_size)
    cam_to_world = rigid(np.stack([m for m, _, _ in cameras]), name)
    lens = lens_of_fov(np.array([fov for _, fov, _ in cameras]), width, height, settings.focal, name)
    return camera_path(anchored_extrinsics(cam_to_world, settings.scale), lens, name)
