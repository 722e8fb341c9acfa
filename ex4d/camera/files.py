"""Camera path files: the published tool's ``camera_<preset>.npz`` and this pack's JSON.

Both read back bit for bit what they wrote. Reading never unpickles, and a file that is not a usable camera
path raises :class:`CameraFileError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .lens import Lens, intrinsics_per_frame
from .path import CameraPath

JSON_FORMAT = "ex4d-camera-path"

# What numpy and zipfile raise for a file that is not a complete .npz of plain arrays: not a zip, truncated,
# damaged compressed data, an unsupported compression method, pickled objects (never loaded).
_UNREADABLE = (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError)


class CameraFileError(ValueError):
    """A camera file that cannot be used as a camera path: unreadable, not an EX-4D camera file, or holding a
    camera the renderer cannot draw. The message names the file and says what is wrong with it."""


def _from_file(name: str, ext: np.ndarray, k: np.ndarray, width: int, height: int,
               focals: np.ndarray | None = None) -> CameraPath:
    """The path a file holds, or a :class:`CameraFileError` naming the file (``name``) when the renderer
    cannot draw it."""
    try:
        return CameraPath(ext, Lens(width, height, k, focals))
    except ValueError as e:
        raise CameraFileError(f"{name} holds no usable camera path: {e}") from e


# ----------------------------------------------------------------------------- EX-4D npz


def write_ex4d_npz(camera: CameraPath, path: str | Path) -> Path:
    """Write the published ``camera_<preset>.npz`` layout: "extrinsics" [N,4,4], "intrinsics" [3,3].

    A zooming path (per-frame focal) writes "intrinsics" per frame, [N,3,3], and the source camera's focal
    length as "source_focal" (a scalar): :func:`read_ex4d_npz` reads both back."""
    path = Path(path)
    lens = camera.lens
    arrays = {"extrinsics": camera.extrinsics.astype(np.float32), "intrinsics": lens.intrinsics.astype(np.float32)}
    if lens.zooms:
        arrays["intrinsics"] = camera.frame_intrinsics()
        arrays["source_focal"] = np.float32(lens.focal)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _per_frame_focals(name: str, k: np.ndarray, ext: np.ndarray,
                      source: np.ndarray | None) -> np.ndarray | None:
    """Each frame's focal length of per-frame intrinsics [N, 3, 3] that zoom (written by
    :func:`write_ex4d_npz`, with the source focal, or focal lengths that differ); None where they are all the
    same, as in the published files."""
    zooms = source is not None or (len(k) > 1 and bool(np.any(k[:, 0, 0] != k[0, 0, 0])))
    if not (zooms and k.shape[1:] == (3, 3) and np.isfinite(k).all()):
        return None
    if len(k) != len(ext):
        raise CameraFileError(f"{name} holds {len(k)} intrinsics for {len(ext)} cameras; give one per "
                              "camera, or a single 3 x 3 matrix")
    focals = k[:, 0, 0].copy()
    if np.abs(k - intrinsics_per_frame(k[0], focals)).max() > 1e-3 * float(np.abs(focals).max()):
        raise CameraFileError(f"{name} holds per-frame intrinsics that differ in more than the focal "
                              "length; the renderer needs one principal point and square pixels")
    return focals


def read_ex4d_npz(path: str | Path, width: int | None = None, height: int | None = None) -> CameraPath:
    """Read a published camera npz. Image size defaults to 2 * principal point (K = [[f,0,W/2],...])."""
    name = f"'{Path(path).name}'"
    unreadable = (f"{name} is not a readable EX-4D camera file (damaged, or holding Python objects, which "
                  "are never loaded)")
    try:
        data = np.load(Path(path), allow_pickle=False)
    except _UNREADABLE as e:
        raise CameraFileError(unreadable) from e
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise CameraFileError(f"{name} holds a single array, not an EX-4D camera file (arrays extrinsics and "
                              "intrinsics)")
    with data:
        missing = sorted({"extrinsics", "intrinsics"} - set(data.files))
        if missing:
            raise CameraFileError(f"{name} lacks the {' and '.join(missing)} of an EX-4D camera file")
        try:
            ext = np.asarray(data["extrinsics"], dtype=np.float32)
            k = np.asarray(data["intrinsics"], dtype=np.float32)
            source = np.asarray(data["source_focal"], dtype=np.float32) if "source_focal" in data.files else None
        except _UNREADABLE as e:
            raise CameraFileError(unreadable) from e
    if ext.ndim == 2:
        ext = ext[None]
    focals = None
    if k.ndim == 3 and len(k):  # per-frame intrinsics: all the same in the published files, or a zoom
        focals = _per_frame_focals(name, k, ext, source)
        k = k[0]
    if k.shape != (3, 3) or not np.isfinite(k).all():
        raise CameraFileError(f"{name} holds intrinsics that are not a 3 x 3 matrix of finite numbers")
    if focals is not None and source is not None:
        if source.shape != () or not np.isfinite(source) or source <= 0:
            raise CameraFileError(f"{name} holds a source_focal that is not one positive number")
        k = k.copy()
        k[0, 0] = k[1, 1] = source
    width = int(round(2 * float(k[0, 2]))) if width is None else width
    height = int(round(2 * float(k[1, 2]))) if height is None else height
    return _from_file(name, ext, k, width, height, focals)


# ----------------------------------------------------------------------------- JSON


def to_json_dict(camera: CameraPath) -> dict:
    """The JSON layout; a zooming path adds "focals" (each frame's focal length; "intrinsics" keeps the
    source camera's)."""
    lens = camera.lens
    # float32 -> Python float is exact, and JSON's shortest repr of that double parses back to it.
    data = {
        "format": JSON_FORMAT,
        "version": 1,
        "width": lens.width,
        "height": lens.height,
        "intrinsics": lens.intrinsics.astype(np.float64).tolist(),
        "extrinsics": camera.extrinsics.astype(np.float64).tolist(),
    }
    if lens.focals is not None:
        data["focals"] = lens.focals.astype(np.float64).tolist()
    return data


def write_json(camera: CameraPath, path: str | Path | None = None) -> str:
    """The JSON text of :func:`to_json_dict`, also written to ``path`` when given."""
    text = json.dumps(to_json_dict(camera))
    if path is not None:
        Path(path).write_text(text)
    return text


def from_json_dict(data: dict, name: str = "the camera path JSON") -> CameraPath:
    """The path of :func:`to_json_dict`'s layout; :class:`CameraFileError` naming ``name`` otherwise."""
    if not isinstance(data, dict) or data.get("format") != JSON_FORMAT:
        found = f"format {data.get('format')!r}" if isinstance(data, dict) else f"a {type(data).__name__}"
        raise CameraFileError(f"{name} is not an EX-4D camera path JSON ({found})")
    missing = [k for k in ("extrinsics", "intrinsics", "width", "height") if k not in data]
    if missing:
        raise CameraFileError(f"{name} lacks {', '.join(missing)}")
    converters = {"extrinsics": lambda v: np.array(v, dtype=np.float32),
                  "intrinsics": lambda v: np.array(v, dtype=np.float32), "width": int, "height": int}
    if data.get("focals") is not None:
        converters["focals"] = lambda v: np.array(v, dtype=np.float32)
    values = {"focals": None}
    for key, convert in converters.items():
        try:
            values[key] = convert(data[key])
        except (TypeError, ValueError, OverflowError) as e:
            raise CameraFileError(f"{name}: its {key} holds values that are not numbers") from e
    return _from_file(name, values["extrinsics"], values["intrinsics"], values["width"], values["height"],
                      values["focals"])


def read_json(text_or_path: str | Path) -> CameraPath:
    """The path of a JSON text or file (:func:`from_json_dict`)."""
    text, name = str(text_or_path), "the camera path JSON"
    if not text.lstrip().startswith("{"):
        name = f"'{Path(text_or_path).name}'"
        try:
            text = Path(text_or_path).read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise CameraFileError(f"{name} is not a readable text file") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CameraFileError(f"{name} is not valid JSON (line {e.lineno}, column {e.colno})") from e
    return from_json_dict(data, name)
