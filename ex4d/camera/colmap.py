"""Camera paths from COLMAP's text model: ``images.txt`` and the ``cameras.txt`` beside it.

``images.txt`` holds two lines per image, ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` and its 2D points
(not read); the quaternion and translation are world-to-camera in the OpenCV convention (x right, y down,
looking down +z). ``cameras.txt`` holds ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS``; PINHOLE (fx fy cx cy) and
SIMPLE_PINHOLE (f cx cy) are read (other models: undistort the images first). Images are read in the order of
their names, one camera per clip frame, and the path is moved so that its first camera is the source camera
(:mod:`.imports`). The renderer projects about the image centre, so the principal point is not read.

A file named ``<prefix>images.txt`` goes with ``<prefix>cameras.txt``, so several models can share a folder.
"""

from __future__ import annotations

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

IMAGES_SUFFIX = "images.txt"
MAX_BYTES = 256 << 20
OPENCV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])
PARAMETERS = {"PINHOLE": 4, "SIMPLE_PINHOLE": 3}


class _Invalid(ValueError):
    """What is wrong with a file, in words that follow its name."""


def cameras_file(images: Path) -> Path:
    """The ``cameras.txt`` that goes with ``images`` (its name with the last "images" made "cameras")."""
    prefix = images.name[: len(images.name) - len(IMAGES_SUFFIX)]
    return images.with_name(prefix + "cameras.txt")


def _lines(path: Path) -> list[str]:
    if path.stat().st_size > MAX_BYTES:
        raise _Invalid(f"is larger than {MAX_BYTES >> 20} MiB")
    return [line for line in path.read_text().splitlines() if not line.startswith("#")]


def _numbers(tokens: list[str], what: str) -> list[float]:
    try:
        values = [float(t) for t in tokens]
    except ValueError as e:
        raise _Invalid(f"has {what} that are not numbers") from e
    if not all(math.isfinite(v) for v in values):
        raise _Invalid(f"has {what} with NaN or infinite values")
    return values


def read_cameras(path: Path) -> dict[str, tuple[int, int, float]]:
    """cameras.txt: camera id -> (width, height, vertical field of view)."""
    cameras = {}
    for line in _lines(path):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) < 4:
            raise _Invalid(f"has a line that is not CAMERA_ID MODEL WIDTH HEIGHT PARAMS: '{line[:60]}'")
        camera, model = tokens[0], tokens[1]
        if model not in PARAMETERS:
            raise _Invalid(f"holds camera {camera} of model {model}; only PINHOLE and SIMPLE_PINHOLE can be rendered "
                           "(undistort the images with COLMAP's image_undistorter first)")
        values = _numbers(tokens[2:], f"camera {camera}'s size and parameters")
        if len(values) != 2 + PARAMETERS[model]:
            raise _Invalid(f"gives camera {camera} ({model}) {len(values) - 2} parameters, not {PARAMETERS[model]}")
        width, height, fx = values[0], values[1], values[2]
        fy = values[3] if model == "PINHOLE" else fx
        if min(width, height, fx, fy) <= 0 or width != int(width) or height != int(height):
            raise _Invalid(f"gives camera {camera} a size or focal length that is not positive")
        if abs(fx - fy) > 0.01 * fy:
            raise _Invalid(f"gives camera {camera} fx {fx:g} and fy {fy:g}; the renderer needs square pixels")
        cameras[camera] = (int(width), int(height), 2.0 * math.atan(height / (2.0 * fy)))
    if not cameras:
        raise _Invalid("holds no cameras")
    return cameras


def read_images(path: Path) -> list[tuple[str, np.ndarray, str]]:
    """images.txt: (name, camera-to-world in the OpenGL convention, camera id) per image, by name."""
    lines, images, i = _lines(path), [], 0
    while i < len(lines):
        tokens = lines[i].split()
        if not tokens:
            i += 1
            continue
        if len(tokens) < 10:
            raise _Invalid(f"has a line that is not IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME: "
                           f"'{lines[i][:60]}'")
        qw, qx, qy, qz, tx, ty, tz = _numbers(tokens[1:8], f"image {tokens[0]}'s pose")
        norm = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
        if norm < 1e-9:
            raise _Invalid(f"gives image {tokens[0]} a zero quaternion")
        w, x, y, z = qw / norm, qx / norm, qy / norm, qz / norm
        world_to_camera = np.eye(4)
        world_to_camera[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                                   [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                                   [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
        world_to_camera[:3, 3] = tx, ty, tz
        images.append((" ".join(tokens[9:]), np.linalg.inv(world_to_camera) @ OPENCV_TO_GL, tokens[8]))
        i += 2  # the image's points line, empty or not
    if not images:
        raise _Invalid("holds no images")
    return sorted(images, key=lambda image: image[0])


def read_colmap_path(images_path: str | Path, settings: ImportSettings = DEFAULT_SETTINGS) -> CameraPath:
    """The camera path of a COLMAP text model (``images.txt`` and the ``cameras.txt`` beside it)."""
    images_path = Path(images_path)
    cameras_path = cameras_file(images_path)
    name = f"'{images_path.name}'"
    if not cameras_path.is_file():
        raise CameraFileError(f"{name} needs '{cameras_path.name}' beside it (COLMAP's cameras of these images); "
                              "put it in the same folder")
    try:
        images = read_images(images_path)
    except (_Invalid, OSError, UnicodeDecodeError) as e:
        raise CameraFileError(f"{name} {e if isinstance(e, _Invalid) else 'is not a readable text file'}") from e
    try:
        cameras = read_cameras(cameras_path)
    except (_Invalid, OSError, UnicodeDecodeError) as e:
        text = e if isinstance(e, _Invalid) else "is not a readable text file"
        raise CameraFileError(f"'{cameras_path.name}' {text}") from e
    missing = sorted({camera for _, _, camera in images} - set(cameras))
    if missing:
        raise CameraFileError(f"{name} refers to camera {missing[0]}, which '{cameras_path.name}' does not hold")
    check_sequence_frames(len(images), settings, name)
    sizes = {cameras[camera][:2] for _, _, camera in images}
    if len(sizes) > 1:
        raise CameraFileError(f"'{cameras_path.name}' gives these images different sizes; a path needs one")
    width, height = image_size(settings, name, sizes.pop())
    cam_to_world = rigid(np.stack([m for _, m, _ in images]), name)
    lens = lens_of_fov(np.array([cameras[c][2] for _, _, c in images]), width, height, settings.focal, name)
    return camera_path(anchored_extrinsics(cam_to_world, settings.scale), lens, name)
