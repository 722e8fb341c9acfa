"""What reading a camera path from another program's file (glTF, nerfstudio, COLMAP) shares: the settings a
reader takes, and the conversion of its cameras into EX-4D's conventions (see :mod:`.path`).

Those programs give each camera as a camera-to-world matrix ``M`` in the OpenGL camera convention (x right,
y up, looking down -z). The world of a glTF scene this pack exported is EX-4D's world turned by
``G = diag(1, -1, -1, 1)`` (y up, z backwards, the source camera at the origin looking down -z), so there
``E = M^-1 G`` (:func:`extrinsics_in_scene`). A path from elsewhere lives in a world of its own: it is moved
rigidly so that its first camera is the source camera, its distances multiplied by ``scale``
(:func:`anchored_extrinsics`).

The lens keeps each camera's vertical field of view: focal length in pixels = (height / 2) / tan(yfov / 2)
at the image height the path is made for (:func:`lens_of_fov`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .files import CameraFileError
from .lens import Lens, intrinsics_matrix
from .path import CameraPath

GL_AXES = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True)
class ImportSettings:
    """``width`` / ``height``: the image size (0: the file's); ``frames``: the clip's frame count (0: as the file
    has it); ``fps``: the clip's frame rate, to time a glTF animation (0: the file's); ``focal``: the source
    camera's focal length in pixels (0: the file's); ``scale``: what a path from elsewhere is multiplied by;
    ``camera``: the glTF camera to read, by node or camera name ("": the first animated one)."""

    width: int = 0
    height: int = 0
    frames: int = 0
    fps: float = 0.0
    focal: float = 0.0
    scale: float = 1.0
    camera: str = ""


DEFAULT_SETTINGS = ImportSettings()


def rigid(matrices: np.ndarray, name: str) -> np.ndarray:
    """Camera-to-world matrices [N, 4, 4] with any scale or shear taken out of their rotation (the nearest
    rotation), float64; a mirrored or degenerate matrix is refused."""
    m = np.array(matrices, dtype=np.float64)
    if not np.isfinite(m).all():
        raise CameraFileError(f"{name} holds camera matrices with NaN or infinite values")
    u, s, vt = np.linalg.svd(m[:, :3, :3])
    if (s[:, -1] <= 1e-9 * np.maximum(s[:, 0], 1e-300)).any() or (np.linalg.det(u @ vt) < 0).any():
        bad = int(np.flatnonzero((s[:, -1] <= 1e-9 * s[:, 0]) | (np.linalg.det(u @ vt) < 0))[0])
        raise CameraFileError(f"{name}: camera {bad}'s matrix is not a rotation and translation (mirrored or "
                              "flattened)")
    m[:, :3, :3] = u @ vt
    m[:, 3] = (0.0, 0.0, 0.0, 1.0)
    return m


def extrinsics_in_scene(cam_to_scene: np.ndarray) -> np.ndarray:
    """E [N, 4, 4] of cameras given in the world of a scene this pack exported (camera-to-scene matrices)."""
    return np.linalg.inv(cam_to_scene) @ GL_AXES


def anchored_extrinsics(cam_to_world: np.ndarray, scale: float) -> np.ndarray:
    """E [N, 4, 4] of cameras from elsewhere: the first one becomes the source camera (a rigid move of the
    whole path) and every distance is multiplied by ``scale``."""
    relative = np.linalg.inv(cam_to_world) @ cam_to_world[0]  # first camera's coordinates -> each camera's
    relative[:, :3, 3] *= scale
    return relative @ GL_AXES


def image_size(settings: ImportSettings, name: str, file_size: tuple[int, int] | None,
               aspect: float | None = None) -> tuple[int, int]:
    """The size a path is made for: the settings', else the file's, else one side from the other and the
    file's aspect ratio."""
    width, height = file_size if file_size is not None else (0, 0)
    width, height = settings.width or width, settings.height or height
    if aspect is not None and math.isfinite(aspect) and aspect > 0:
        if width and not height:
            height = max(1, round(width / aspect))
        elif height and not width:
            width = max(1, round(height * aspect))
    if not (width and height):
        raise CameraFileError(f"{name} gives no image size; set width and height to the clip's")
    return int(width), int(height)


def lens_of_fov(yfov: np.ndarray, width: int, height: int, source_focal: float, name: str) -> Lens:
    """A lens whose frame i sees ``yfov[i]`` radians vertically; the source camera's focal is
    ``source_focal`` (0: frame 0's)."""
    yfov = np.asarray(yfov, dtype=np.float64)
    if not (np.isfinite(yfov).all() and (yfov > 0).all() and (yfov < math.pi).all()):
        raise CameraFileError(f"{name} holds a field of view that is not between 0 and 180 degrees")
    focals = (height / 2.0) / np.tan(yfov / 2.0)
    source = float(source_focal) if source_focal > 0 else float(focals[0])
    try:
        return Lens(width, height, intrinsics_matrix(width, height, source), focals.astype(np.float32))
    except ValueError as e:
        raise CameraFileError(f"{name} holds no usable lens: {e}") from e


def camera_path(extrinsics: np.ndarray, lens: Lens, name: str) -> CameraPath:
    try:
        return CameraPath(extrinsics.astype(np.float32), lens)
    except ValueError as e:
        raise CameraFileError(f"{name} holds no usable camera path: {e}") from e


def check_sequence_frames(count: int, settings: ImportSettings, name: str) -> None:
    """A file of one camera per image is read whole: ``frames`` must be 0 or its count."""
    if settings.frames not in (0, count):
        raise CameraFileError(f"{name} holds {count} cameras, not {settings.frames}; set frames to 0 (or "
                              f"{count}) for this file")
