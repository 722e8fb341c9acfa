"""Which reader a camera path file needs, by its name and, for JSON, its content."""

from __future__ import annotations

import json
from pathlib import Path

from .colmap import IMAGES_SUFFIX, read_colmap_path
from .files import CameraFileError, from_json_dict, read_ex4d_npz
from .gltf import read_gltf_path
from .imports import DEFAULT_SETTINGS, ImportSettings, check_sequence_frames
from .nerfstudio import MAX_BYTES, is_transforms_json, read_transforms_json
from .path import CameraPath

EXTENSIONS = (".npz", ".json", ".glb", ".gltf", IMAGES_SUFFIX)


def read_camera_file(path: str | Path, settings: ImportSettings = DEFAULT_SETTINGS) -> CameraPath:
    """The path in an EX-4D npz or JSON, a glTF camera animation, a nerfstudio transforms.json or a COLMAP
    images.txt (with its cameras.txt). ``settings`` as :class:`ImportSettings` says; the npz takes its width and
    height, the EX-4D JSON has its own."""
    path = Path(path)
    lower = path.name.lower()
    if lower.endswith((".glb", ".gltf")):
        return read_gltf_path(path, settings)
    if lower.endswith(IMAGES_SUFFIX):
        return read_colmap_path(path, settings)
    if lower.endswith(".npz"):
        camera = read_ex4d_npz(path, settings.width or None, settings.height or None)
    elif lower.endswith(".json"):
        camera = _read_json(path, settings)
    else:
        raise CameraFileError(f"'{path.name}' is none of the camera files read here ({', '.join(EXTENSIONS)})")
    check_sequence_frames(camera.num_frames, settings, f"'{path.name}'")
    return camera


def _read_json(path: Path, settings: ImportSettings) -> CameraPath:
    name = f"'{path.name}'"
    try:
        if path.stat().st_size > MAX_BYTES:
            raise CameraFileError(f"{name} is larger than {MAX_BYTES >> 20} MiB")
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, RecursionError) as e:
        raise CameraFileError(f"{name} is not a readable text file") from e
    except json.JSONDecodeError as e:
        raise CameraFileError(f"{name} is not valid JSON (line {e.lineno}, column {e.colno})") from e
    if is_transforms_json(data):
        return read_transforms_json(path, settings, data)
    return from_json_dict(data, name)
