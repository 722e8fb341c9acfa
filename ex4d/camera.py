"""Camera paths for EX-4D: published presets, orbits, dollies, keyframes, EX-4D npz and JSON I/O.

Conventions (EX-4D reference, section 3). World = the source camera's frame: x right, y down, z forward,
the source camera at the origin looking along +z. ``look_at`` builds the world-to-camera matrix ``V`` whose
rows are (right, up', fwd); the published renderer negates its first three rows, ``E = diag(-1,-1,-1,1) V``,
which gives an OpenGL-style camera (x right, y up, looking down -z). ``E`` is what the published tool saves
as "extrinsics" and what :class:`CameraPath` stores. Clip position = ``P E [p, 1]`` with ``P`` from
:func:`projection_matrix`.

Everything is computed in float64 and stored as float32, like the published tool.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import re
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .mesh import BORDER_DEPTH  # the radius is measured with the mesh's border wall in place, as published

PUBLISHED_FOCAL = 500.0
RADIUS_MARGIN = 0.15
JSON_FORMAT = "ex4d-camera-path"

_FLIP = np.diag([-1.0, -1.0, -1.0, 1.0])

EASINGS = ("linear", "ease_in", "ease_out", "ease_in_out")
# What numpy and zipfile raise for a file that is not a complete .npz of plain arrays: not a zip, truncated,
# damaged compressed data, an unsupported compression method, pickled objects (never loaded).
_UNREADABLE = (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError)


class CameraFileError(ValueError):
    """A camera file that cannot be used as a camera path: unreadable, not an EX-4D camera file, or holding a
    camera the renderer cannot draw. The message names the file and says what is wrong with it."""


@dataclass
class CameraPath:
    """Per-frame cameras: ``extrinsics`` [N, 4, 4] float32 (E, world-to-camera), ``intrinsics`` [3, 3].

    ``intrinsics`` holds the source camera's focal length (the one the DW-mesh is unprojected with). ``focals``
    [N] float32, when given, is each frame's own focal length (a zoom, e.g. a dolly-zoom); None (the default,
    and what a path whose every frame has the source focal is normalised to) renders every frame with the
    focal of ``intrinsics``, as published."""

    extrinsics: np.ndarray
    intrinsics: np.ndarray
    width: int
    height: int
    focals: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.extrinsics = np.ascontiguousarray(np.asarray(self.extrinsics, dtype=np.float32))
        self.intrinsics = np.ascontiguousarray(np.asarray(self.intrinsics, dtype=np.float32))
        if self.extrinsics.ndim != 3 or self.extrinsics.shape[1:] != (4, 4):
            raise ValueError(f"extrinsics must be [N, 4, 4], got {list(self.extrinsics.shape)}")
        if self.intrinsics.shape != (3, 3):
            raise ValueError(f"intrinsics must be [3, 3], got {list(self.intrinsics.shape)}")
        if len(self.extrinsics) == 0:
            raise ValueError("a camera path needs at least one frame")
        if self.focals is not None:
            self.focals = np.ascontiguousarray(np.asarray(self.focals, dtype=np.float32))
            if self.focals.shape != (len(self.extrinsics),):
                raise ValueError(f"focals must hold one focal length per frame ({len(self.extrinsics)}), got "
                                 f"{list(self.focals.shape)}")
        self.width, self.height = int(self.width), int(self.height)
        check_camera(self.extrinsics, self.intrinsics, self.width, self.height, self.focals)
        if self.focals is not None and np.all(self.focals == self.intrinsics[0, 0]):
            self.focals = None  # no zoom: the published single-intrinsics path, bit for bit

    @property
    def num_frames(self) -> int:
        return int(self.extrinsics.shape[0])

    @property
    def focal(self) -> float:
        """The source camera's focal length (the DW-mesh's); :meth:`frame_focals` gives each frame's."""
        return float(self.intrinsics[0, 0])

    @property
    def zooms(self) -> bool:
        """Whether the focal length changes along the path (``focals`` is set)."""
        return self.focals is not None

    def frame_focals(self) -> np.ndarray:
        """Each frame's focal length, [N] float64."""
        if self.focals is None:
            return np.full(self.num_frames, self.focal)
        return self.focals.astype(np.float64)

    def frame_intrinsics(self) -> np.ndarray:
        """Each frame's K, [N, 3, 3] float32."""
        return intrinsics_per_frame(self.intrinsics, self.frame_focals().astype(np.float32))

    def __len__(self) -> int:
        return self.num_frames

    def view_matrices(self) -> np.ndarray:
        """The look-at matrices ``V`` (float64) before the published row negation."""
        return _FLIP @ self.extrinsics.astype(np.float64)

    def eyes(self) -> np.ndarray:
        """Camera centres in world coordinates, [N, 3] float64."""
        e = self.extrinsics.astype(np.float64)
        return -np.einsum("nji,nj->ni", e[:, :3, :3], e[:, :3, 3])

    def projection(self, near: float = 1e-3, far: float = 1e3) -> np.ndarray:
        return projection_matrix(self.width, self.height, self.focal, near, far)

    def clip_matrices(self, near: float = 1e-3, far: float = 1e3) -> np.ndarray:
        """``P @ E`` per frame, [N, 4, 4] float64: world point -> clip position (``P`` of each frame's focal)."""
        if self.focals is None:
            return self.projection(near, far) @ self.extrinsics.astype(np.float64)
        projections = np.stack([projection_matrix(self.width, self.height, float(f), near, far) for f in self.focals])
        return projections @ self.extrinsics.astype(np.float64)

    # ----- EX-4D npz -----
    def to_ex4d_npz(self, path: str | Path) -> Path:
        """Write the published ``camera_<preset>.npz`` layout: "extrinsics" [N,4,4], "intrinsics" [3,3].

        A zooming path (per-frame focal) writes "intrinsics" per frame, [N,3,3], and the source camera's focal
        length as "source_focal" (a scalar): :meth:`from_ex4d_npz` reads both back."""
        path = Path(path)
        arrays = {"extrinsics": self.extrinsics.astype(np.float32), "intrinsics": self.intrinsics.astype(np.float32)}
        if self.focals is not None:
            arrays["intrinsics"] = self.frame_intrinsics()
            arrays["source_focal"] = np.float32(self.focal)
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def from_ex4d_npz(
        cls, path: str | Path, width: int | None = None, height: int | None = None
    ) -> CameraPath:
        """Read a published camera npz. Image size defaults to 2 * principal point (K = [[f,0,W/2],...]).
        Never unpickles; raises :class:`CameraFileError` for a file that is not a usable camera path."""
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
            # a zoom: written by to_ex4d_npz (with the source focal), or focal lengths that differ
            zooms = source is not None or (len(k) > 1 and bool(np.any(k[:, 0, 0] != k[0, 0, 0])))
            if zooms and k.shape[1:] == (3, 3) and np.isfinite(k).all():
                if len(k) != len(ext):
                    raise CameraFileError(f"{name} holds {len(k)} intrinsics for {len(ext)} cameras; give one per "
                                          "camera, or a single 3 x 3 matrix")
                focals = k[:, 0, 0].copy()
                if np.abs(k - intrinsics_per_frame(k[0], focals)).max() > 1e-3 * float(np.abs(focals).max()):
                    raise CameraFileError(f"{name} holds per-frame intrinsics that differ in more than the focal "
                                          "length; the renderer needs one principal point and square pixels")
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
        return cls._from_file(name, ext, k, width, height, focals)

    @classmethod
    def _from_file(cls, name: str, ext: np.ndarray, k: np.ndarray, width: int, height: int,
                   focals: np.ndarray | None = None) -> CameraPath:
        """The path a file holds, or a :class:`CameraFileError` naming the file (``name``) when the renderer
        cannot draw it (:func:`check_camera`)."""
        try:
            return cls(ext, k, width, height, focals)
        except ValueError as e:
            raise CameraFileError(f"{name} holds no usable camera path: {e}") from e

    # ----- JSON -----
    def to_json_dict(self) -> dict:
        """The JSON layout; a zooming path adds "focals" (each frame's focal length; "intrinsics" keeps the
        source camera's)."""
        # float32 -> Python float is exact, and JSON's shortest repr of that double parses back to it.
        data = {
            "format": JSON_FORMAT,
            "version": 1,
            "width": self.width,
            "height": self.height,
            "intrinsics": self.intrinsics.astype(np.float64).tolist(),
            "extrinsics": self.extrinsics.astype(np.float64).tolist(),
        }
        if self.focals is not None:
            data["focals"] = self.focals.astype(np.float64).tolist()
        return data

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_json_dict())
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json_dict(cls, data: dict, name: str = "the camera path JSON") -> CameraPath:
        """The path of :meth:`to_json_dict`'s layout; :class:`CameraFileError` naming ``name`` otherwise."""
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
        return cls._from_file(name, values["extrinsics"], values["intrinsics"], values["width"], values["height"],
                              values["focals"])

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> CameraPath:
        """The path of a JSON text or file (:meth:`from_json_dict`); :class:`CameraFileError` for one that is
        not a usable camera path."""
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
        return cls.from_json_dict(data, name)


# ----------------------------------------------------------------------------- primitives


def intrinsics_per_frame(k: np.ndarray, focals: np.ndarray) -> np.ndarray:
    """K repeated for each frame with that frame's focal length on both axes, [N, 3, 3]."""
    out = np.repeat(np.asarray(k)[None], len(focals), axis=0)
    out[:, 0, 0] = out[:, 1, 1] = focals
    return out


def check_camera(extrinsics: np.ndarray, intrinsics: np.ndarray, width: int, height: int,
                 focals: np.ndarray | None = None) -> None:
    """Refuse what the renderer cannot draw as given, instead of rendering black or wrong frames: values that
    are not finite, a world-to-camera matrix that is not a rotation plus translation (an all-zero file, a
    camera whose eye equals its target), intrinsics other than K = [[f, 0, W/2], [0, f, H/2], [0, 0, 1]]
    (the projection uses one focal length and the image centre) and per-frame focal lengths (``focals``)
    that are not positive finite numbers."""
    if width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive, got {width}x{height}")
    if focals is not None:
        bad = np.flatnonzero(~np.isfinite(focals) | (focals <= 0))
        if len(bad):
            raise ValueError(f"focals: the focal length of frame {int(bad[0])} is {float(focals[bad[0]]):g}; each "
                             "frame needs a positive finite focal length")
    if not (np.isfinite(extrinsics).all() and np.isfinite(intrinsics).all()):
        bad = int((~np.isfinite(extrinsics)).any(axis=(1, 2)).argmax())
        raise ValueError(f"the camera holds NaN or infinite values (first at frame {bad}); rebuild the path "
                         "(a keyframe with eye = target, or a broken file, gives them)")
    rot = extrinsics[:, :3, :3].astype(np.float64)
    error = np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max(axis=(1, 2))
    bottom = np.abs(extrinsics[:, 3, :] - np.array([0, 0, 0, 1], dtype=np.float32)).max(axis=1)
    wrong = np.flatnonzero((error > 1e-3) | (bottom > 1e-6) | (np.linalg.det(rot) < 0))
    if len(wrong):
        raise ValueError(f"the extrinsics of frame {int(wrong[0])} are not a camera pose (rotation + translation, "
                         "last row 0 0 0 1); an all-zero or scaled matrix cannot be rendered")
    fx, fy, cx, cy = (float(intrinsics[0, 0]), float(intrinsics[1, 1]), float(intrinsics[0, 2]),
                      float(intrinsics[1, 2]))
    if fx <= 0 or abs(fy - fx) > 1e-3 * fx:
        raise ValueError(f"intrinsics: fx = {fx:g} and fy = {fy:g}; the renderer needs one positive focal length "
                         "(square pixels)")
    if abs(cx - width / 2) > 0.5 or abs(cy - height / 2) > 0.5:
        raise ValueError(f"intrinsics: the principal point ({cx:g}, {cy:g}) is not the centre of {width}x{height} "
                         f"({width / 2:g}, {height / 2:g}); the renderer projects about the centre: give the "
                         "image size the path was made for")
    if abs(float(intrinsics[0, 1])) > 1e-6 or np.abs(intrinsics[2] - np.array([0, 0, 1], dtype=np.float32)).max() > 1e-6:
        raise ValueError("intrinsics: skew or a last row other than 0 0 1 cannot be rendered")


def intrinsics_matrix(width: int, height: int, focal: float = PUBLISHED_FOCAL) -> np.ndarray:
    """K = [[f, 0, W/2], [0, f, H/2], [0, 0, 1]] as float32 (the published file's "intrinsics")."""
    return np.array(
        [[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]], dtype=np.float32
    )


def look_at(
    eye: Sequence[float] | np.ndarray,
    target: Sequence[float] | np.ndarray,
    up: Sequence[float] | np.ndarray = (0.0, 1.0, 0.0),
) -> np.ndarray:
    """World-to-camera ``V`` (float64), batched over leading dims of ``eye`` / ``target``.

    fwd = normalize(target - eye), right = normalize(fwd x up), up' = normalize(right x fwd); rows of V are
    right, up', fwd with translation -(right.eye, up'.eye, fwd.eye).
    """
    eye = np.asarray(eye, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    eye, target = np.broadcast_arrays(eye, target)
    up = np.broadcast_to(np.asarray(up, dtype=np.float64), eye.shape)

    def normalize(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    fwd = normalize(target - eye)
    right = normalize(np.cross(fwd, up))
    up2 = normalize(np.cross(right, fwd))
    v = np.zeros(eye.shape[:-1] + (4, 4))
    v[..., 0, :3], v[..., 1, :3], v[..., 2, :3] = right, up2, fwd
    v[..., 0, 3] = -(right * eye).sum(-1)
    v[..., 1, 3] = -(up2 * eye).sum(-1)
    v[..., 2, 3] = -(fwd * eye).sum(-1)
    v[..., 3, 3] = 1.0
    return v


def extrinsics_from_view(view: np.ndarray) -> np.ndarray:
    """E = diag(-1, -1, -1, 1) V (the published renderer's row negation)."""
    return _FLIP @ np.asarray(view, dtype=np.float64)


def projection_matrix(
    width: int, height: int, focal: float = PUBLISHED_FOCAL, near: float = 1e-3, far: float = 1e3
) -> np.ndarray:
    """The published OpenGL-style projection (float64). Note the -n/y entry: clip y follows image rows."""
    fov_x = 2.0 * math.atan(width / (2.0 * focal))
    fov_y = 2.0 * math.atan(height / (2.0 * focal))
    x = near * math.tan(fov_x / 2.0)
    y = near * math.tan(fov_y / 2.0)
    return np.array(
        [
            [near / x, 0.0, 0.0, 0.0],
            [0.0, -near / y, 0.0, 0.0],
            [0.0, 0.0, -(far + near) / (far - near), -2.0 * far * near / (far - near)],
            [0.0, 0.0, -1.0, 0.0],
        ]
    )


def radius_from_depth(depth_frame0) -> float:
    """Published orbit radius: min depth of frame 0 after pushing its border pixels to 100, plus 0.15.

    Accepts a numpy array or torch tensor [H, W] (or [T, H, W]: frame 0 is used).
    """
    d = depth_frame0
    if d.ndim == 3:
        d = d[0]  # before any copy: only frame 0 leaves the device
    if hasattr(d, "detach"):
        d = d.detach().float().cpu().numpy()
    d = np.array(d, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"depth must be [H, W] or [T, H, W], got {list(d.shape)}")
    d[0, :] = d[-1, :] = BORDER_DEPTH
    d[:, 0] = d[:, -1] = BORDER_DEPTH
    return float(d.min() + RADIUS_MARGIN)


def ease(t: np.ndarray, easing: str = "linear") -> np.ndarray:
    """Map progress t in [0, 1] through an easing curve (linear, ease_in t^2, ease_out, ease_in_out smoothstep)."""
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
    if easing == "linear":
        return t
    if easing == "ease_in":
        return t * t
    if easing == "ease_out":
        return 1.0 - (1.0 - t) ** 2
    if easing == "ease_in_out":
        return t * t * (3.0 - 2.0 * t)
    raise ValueError(f"unknown easing {easing!r}; expected one of {EASINGS}")


def progress(num_frames: int, easing: str = "linear", hold_start: int = 0, hold_end: int = 0) -> np.ndarray:
    """Per-frame progress in [0, 1]: 0 for the first ``hold_start`` frames, 1 for the last ``hold_end``."""
    if num_frames < 1:
        raise ValueError("num_frames must be >= 1")
    if hold_start < 0 or hold_end < 0:
        raise ValueError("hold frames must be >= 0")
    moving = num_frames - 1 - hold_start - hold_end
    i = np.arange(num_frames, dtype=np.float64)
    if moving <= 0:
        return np.where(i < hold_start, 0.0, 1.0) if hold_start < num_frames else np.zeros(num_frames)
    return ease((i - hold_start) / moving, easing)


def _path(
    eyes: np.ndarray,
    targets: np.ndarray,
    width: int,
    height: int,
    focal: float,
    roll_deg: np.ndarray | None = None,
) -> CameraPath:
    view = look_at(eyes, targets)
    if roll_deg is not None and np.any(roll_deg != 0):
        a = np.deg2rad(np.asarray(roll_deg, dtype=np.float64))
        rot = np.zeros((len(a), 4, 4))
        rot[:, 0, 0], rot[:, 0, 1] = np.cos(a), np.sin(a)
        rot[:, 1, 0], rot[:, 1, 1] = -np.sin(a), np.cos(a)
        rot[:, 2, 2] = rot[:, 3, 3] = 1.0
        view = rot @ view
    return CameraPath(
        extrinsics_from_view(view).astype(np.float32), intrinsics_matrix(width, height, focal), width, height
    )


# ----------------------------------------------------------------------------- presets


def published_rounds(num_frames: int) -> float:
    """rounds = N / 49 if N >= 49 else 49 / N (as published)."""
    return num_frames / 49 if num_frames >= 49 else 49 / num_frames


# How far an angle preset turns: "whole clip" turns its angle over the clip whatever its length; "published
# rounds" multiplies it by :func:`published_rounds`, as the original tool does (a 90 degree preset over 121
# frames turns 222 degrees, over 25 frames 176). They agree at 49 frames, the length EX-4D was trained on.
SWEEPS = ("whole clip", "published rounds")


def preset(
    name: str,
    num_frames: int,
    radius: float,
    width: int,
    height: int,
    focal: float = PUBLISHED_FOCAL,
    zoom_fraction: float = 0.5,
    easing: str = "linear",
    hold_start: int = 0,
    hold_end: int = 0,
    sweep: str = "whole clip",
) -> CameraPath:
    """A published camera preset, target (0, 0, r).

    rounds = 1 with ``sweep`` "whole clip" (the default: the angle is the angle over the whole clip), or the
    published rule :func:`published_rounds` with "published rounds" (see :data:`SWEEPS`; the same at 49 frames).

    - "180": theta = linspace(0, 2 pi rounds, N); eye = (r sin t, 0.2 r (cos t - 1), 0).
    - "<A>" (digits, degrees; 30/60/90 published): theta = linspace(0, A pi/180 rounds, N);
      eye = (r sin t, 0.2 r (|cos t| - 1), r - r |cos t|).
    - "zoom_in" / "zoom_out" (never implemented in the published code; our definition): a linear dolly along
      the source view axis with the same look-at target (0, 0, r): the eye moves from the origin to
      (0, 0, +zoom_fraction * r) (toward the target) or to (0, 0, -zoom_fraction * r) (away from it).

    ``easing`` / ``hold_start`` / ``hold_end`` reshape the speed along the same curve (:func:`progress`); their
    defaults give the published per-frame angles bit for bit (``linspace``) at 49 frames, and at any length with
    ``sweep`` "published rounds".
    """
    if num_frames < 1:
        raise ValueError("num_frames must be >= 1")
    if sweep not in SWEEPS:
        raise ValueError(f"unknown sweep {sweep!r}; expected one of {', '.join(SWEEPS)}")
    r = float(radius)
    rounds = published_rounds(num_frames) if sweep == "published rounds" else 1.0
    target = np.array([0.0, 0.0, r])
    name = str(name).strip().lower()
    published_speed = easing == "linear" and hold_start == 0 and hold_end == 0

    def angles(total: float) -> np.ndarray:
        if published_speed:
            return np.linspace(0.0, total, num_frames)
        return total * progress(num_frames, easing, hold_start, hold_end)

    if name == "180":
        t = angles(2.0 * np.pi * rounds)
        eyes = np.stack([r * np.sin(t), 0.2 * r * (np.cos(t) - 1.0), np.zeros_like(t)], -1)
    elif re.fullmatch(r"\d+(\.\d+)?", name):
        t = angles(float(name) * np.pi / 180.0 * rounds)
        c = np.abs(np.cos(t))
        eyes = np.stack([r * np.sin(t), 0.2 * r * (c - 1.0), r - r * c], -1)
    elif name in ("zoom_in", "zoom_out"):
        if not 0.0 <= zoom_fraction < 1.0:
            raise ValueError("zoom_fraction must be in [0, 1)")
        sign = 1.0 if name == "zoom_in" else -1.0
        return dolly(num_frames, r, width, height, focal, start=0.0, end=sign * zoom_fraction, easing=easing,
                     hold_start=hold_start, hold_end=hold_end)
    else:
        raise ValueError(
            f"unknown camera preset {name!r}; expected '180', an angle in degrees such as '30', "
            f"'zoom_in' or 'zoom_out'"
        )
    return _path(eyes, np.broadcast_to(target, eyes.shape), width, height, focal)


# ----------------------------------------------------------------------------- custom paths


def _spherical_eye(
    target: np.ndarray, yaw_deg: np.ndarray, pitch_deg: np.ndarray, distance: np.ndarray
) -> np.ndarray:
    """Eye on a sphere around ``target``. yaw 0 / pitch 0 is straight behind the target (-z side);
    positive yaw moves the eye to +x, positive pitch raises it (world y points down)."""
    yaw, pitch = np.deg2rad(yaw_deg), np.deg2rad(pitch_deg)
    d = np.asarray(distance, dtype=np.float64)
    offset = np.stack([np.sin(yaw) * np.cos(pitch), -np.sin(pitch), -np.cos(yaw) * np.cos(pitch)], -1)
    return target + d[..., None] * offset


def orbit(
    num_frames: int,
    radius: float,
    width: int,
    height: int,
    focal: float = PUBLISHED_FOCAL,
    yaw: tuple[float, float] = (0.0, 30.0),
    pitch: tuple[float, float] = (0.0, 0.0),
    distance: float | None = None,
    easing: str = "linear",
    hold_start: int = 0,
    hold_end: int = 0,
) -> CameraPath:
    """Orbit around the target (0, 0, r) at ``distance`` (default r, so yaw = pitch = 0 is the source camera),
    yaw and pitch (degrees) going from the first to the second value of each range."""
    s = progress(num_frames, easing, hold_start, hold_end)
    r = float(radius)
    d = r if distance is None else float(distance)
    target = np.array([0.0, 0.0, r])
    y = yaw[0] + (yaw[1] - yaw[0]) * s
    p = pitch[0] + (pitch[1] - pitch[0]) * s
    eyes = _spherical_eye(target, y, p, np.full(num_frames, d))
    return _path(eyes, np.broadcast_to(target, eyes.shape), width, height, focal)


def dolly(
    num_frames: int,
    radius: float,
    width: int,
    height: int,
    focal: float = PUBLISHED_FOCAL,
    start: float = 0.0,
    end: float = 0.5,
    easing: str = "linear",
    hold_start: int = 0,
    hold_end: int = 0,
    keep_subject_size: bool = False,
) -> CameraPath:
    """Dolly along the source view axis: eye = (0, 0, s r) with s from ``start`` to ``end`` (fractions of r,
    must stay below 1), always looking at (0, 0, r). Positive moves toward the scene.

    ``keep_subject_size``: a dolly-zoom ("vertigo"): each frame's focal length is ``focal (r - z) / r``, so
    everything at the target's distance (the plane z = r) keeps the size it has in the source frame while
    the background recedes (dolly in, zooming out to a wider view) or looms (dolly out, zooming in)."""
    if max(start, end) >= 1.0:
        raise ValueError("dolly fractions must stay below 1 (the eye would reach the target)")
    s = progress(num_frames, easing, hold_start, hold_end)
    r = float(radius)
    z = r * (start + (end - start) * s)
    eyes = np.stack([np.zeros_like(z), np.zeros_like(z), z], -1)
    path = _path(eyes, np.broadcast_to(np.array([0.0, 0.0, r]), eyes.shape), width, height, focal)
    if keep_subject_size:
        path = CameraPath(path.extrinsics, path.intrinsics, width, height, focals=float(focal) * (r - z) / r)
    return path


MOVES = ("truck", "pedestal", "crane")


def move(
    kind: str,
    num_frames: int,
    radius: float,
    width: int,
    height: int,
    focal: float = PUBLISHED_FOCAL,
    amount: float = 0.3,
    easing: str = "linear",
    hold_start: int = 0,
    hold_end: int = 0,
) -> CameraPath:
    """Straight camera moves from the source camera, by ``amount`` times the radius r (negative: the other way).

    - "truck": eye and look-at point slide sideways together (positive: to the right); the view turns not.
    - "pedestal": eye and look-at point rise together (positive: up); the view turns not.
    - "crane": the eye rises (positive: up) while it keeps looking at the orbit centre (0, 0, r), so the view
      tilts down onto the subject.
    """
    if kind not in MOVES:
        raise ValueError(f"unknown camera move {kind!r}; expected one of {MOVES}")
    s = progress(num_frames, easing, hold_start, hold_end)
    r = float(radius)
    offset = np.zeros((num_frames, 3))
    offset[:, 0 if kind == "truck" else 1] = amount * r * s * (1.0 if kind == "truck" else -1.0)  # y points down
    target = np.array([0.0, 0.0, r])
    targets = target + offset if kind in ("truck", "pedestal") else np.broadcast_to(target, offset.shape)
    return _path(offset, targets, width, height, focal)


@dataclass
class Keyframe:
    """One key of a custom path. ``frame`` is a frame index. Either give ``eye`` (world) or the spherical
    parameters yaw / pitch (degrees) / distance (default r) around ``target`` (default (0, 0, r));
    ``roll`` (degrees) turns the image about the view axis (positive: counter-clockwise on screen)."""

    frame: int
    yaw: float = 0.0
    pitch: float = 0.0
    distance: float | None = None
    roll: float = 0.0
    eye: tuple[float, float, float] | None = None
    target: tuple[float, float, float] | None = None


KEYFRAME_KEYS = tuple(f.name for f in dataclasses.fields(Keyframe))


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _keyframe(i: int, key: object) -> Keyframe:
    """Keyframe number ``i`` (from 1) of the list as a :class:`Keyframe` of finite numbers, or a ValueError
    that says which key of it to fix."""
    if isinstance(key, Keyframe):
        key = dataclasses.asdict(key)
    if not isinstance(key, Mapping):
        raise ValueError(f'keyframe {i} is {key!r:.60}; give an object such as {{"frame": 0, "yaw": 30}}')
    unknown = [name for name in key if name not in KEYFRAME_KEYS]
    if unknown:
        raise ValueError(f"keyframe {i} has an unknown key {unknown[0]!r}; use {', '.join(KEYFRAME_KEYS)}")
    if "frame" not in key:
        raise ValueError(f"keyframe {i} has no frame; give the frame number it is for")
    values: dict = {}
    for name, value in key.items():
        optional = name in ("distance", "eye", "target")
        if value is None and optional:
            values[name] = None
            continue
        if name in ("eye", "target"):
            if not (isinstance(value, list | tuple | np.ndarray) and len(value) == 3 and all(map(_is_number, value))):
                raise ValueError(f"keyframe {i}: {name} must be [x, y, z] (3 numbers), got {value!r:.60}")
            value = tuple(float(v) for v in value)
        elif _is_number(value):
            value = float(value)
        else:
            raise ValueError(f"keyframe {i}: {name} must be a number, got {value!r:.60}")
        if not np.isfinite(value).all():
            raise ValueError(f"keyframe {i}: {name} is NaN or infinite; give finite numbers")
        values[name] = value
    return Keyframe(**values)


def keyframed(
    keyframes: Sequence[Keyframe | dict],
    num_frames: int,
    radius: float,
    width: int,
    height: int,
    focal: float = PUBLISHED_FOCAL,
    easing: str = "linear",
) -> CameraPath:
    """Interpolate keyframes (per segment, with ``easing``) in (target, yaw, pitch, distance, roll).

    Keys given by ``eye`` are converted to spherical form around their target first, so motion between keys
    follows arcs around the target rather than chords. Frames before the first / after the last key hold.
    """
    if not keyframes:
        raise ValueError("keyframed() needs at least one keyframe")
    numbered = sorted(((i, _keyframe(i, k)) for i, k in enumerate(keyframes, 1)), key=lambda ik: ik[1].frame)
    keys = [k for _, k in numbered]
    r = float(radius)
    frames, params = [], []
    for number, k in numbered:
        target = np.array(k.target if k.target is not None else (0.0, 0.0, r), dtype=np.float64)
        if k.eye is not None:
            off = np.asarray(k.eye, dtype=np.float64) - target
            dist = float(np.linalg.norm(off))
            if dist == 0.0:
                raise ValueError(f"keyframe {number}: eye equals target; move the eye or the target")
            pitch = math.degrees(math.asin(-off[1] / dist))
            yaw = math.degrees(math.atan2(off[0], -off[2]))
        else:
            yaw, pitch = k.yaw, k.pitch
            dist = r if k.distance is None else float(k.distance)
            if dist == 0.0:
                raise ValueError(f"keyframe {number}: distance 0 puts the eye on the target; give a distance other "
                                 "than 0 (or none: the radius)")
        frames.append(float(k.frame))
        params.append([*target, yaw, pitch, dist, k.roll])
    frames_arr = np.array(frames)
    params_arr = np.array(params)
    i = np.arange(num_frames, dtype=np.float64)
    seg = np.clip(np.searchsorted(frames_arr, i, side="right") - 1, 0, max(len(keys) - 2, 0))
    if len(keys) == 1:
        values = np.broadcast_to(params_arr[0], (num_frames, params_arr.shape[1]))
    else:
        f0, f1 = frames_arr[seg], frames_arr[seg + 1]
        span = np.where(f1 > f0, f1 - f0, 1.0)
        s = ease(np.clip((i - f0) / span, 0.0, 1.0), easing)[:, None]
        values = params_arr[seg] * (1.0 - s) + params_arr[seg + 1] * s
    target = values[:, :3]
    eyes = _spherical_eye(target, values[:, 3], values[:, 4], values[:, 5])
    return _path(eyes, target, width, height, focal, roll_deg=values[:, 6])


def from_eyes(
    eyes: np.ndarray, targets: np.ndarray, width: int, height: int, focal: float = PUBLISHED_FOCAL
) -> CameraPath:
    """A path from explicit per-frame eye and target positions (world coordinates), up = (0, 1, 0)."""
    eyes = np.asarray(eyes, dtype=np.float64).reshape(-1, 3)
    targets = np.broadcast_to(np.asarray(targets, dtype=np.float64), eyes.shape)
    return _path(eyes, targets, width, height, focal)


# ----------------------------------------------------------------------------- preview


def _frame_ramp(t: np.ndarray) -> np.ndarray:
    """Blue (first frame) -> red (last frame) for values in [0, 1]; [..., 3] float in [0, 1]."""
    t = np.clip(t, 0.0, 1.0)[..., None]
    blue, green, red = np.array([0.15, 0.35, 1.0]), np.array([0.2, 0.9, 0.3]), np.array([1.0, 0.25, 0.15])
    return np.where(t < 0.5, blue + (green - blue) * (2 * t), green + (red - green) * (2 * t - 1))


def path_centre(camera: CameraPath) -> np.ndarray | None:
    """The point nearest to every viewing ray (least squares): the orbit centre; None when the rays are
    (nearly) parallel, as in a dolly."""
    eyes = camera.eyes()
    fwd = camera.view_matrices()[:, 2, :3]
    proj = np.eye(3)[None] - fwd[:, :, None] * fwd[:, None, :]  # projectors orthogonal to each ray
    a, b = proj.sum(0), np.einsum("nij,nj->i", proj, eyes)
    if np.linalg.cond(a) > 1e6:
        return None
    return np.linalg.solve(a, b)


def path_preview(
    camera: CameraPath,
    points: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    size: int = 384,
) -> np.ndarray:
    """A top view (x right, z up the image) and a side view (z right, y down) of the path, side by side.

    Eyes are dots coloured from blue (first frame) to red (last), each with a short tick along its viewing
    direction; the orbit centre (:func:`path_centre`), when there is one, is a white cross. ``points``
    [M, 3] (e.g. the frame-0 scene without the pushed-back border) are drawn in ``colors`` [M, 3] (0..1) or
    grey. Returns [size, 2 * size, 3] float32 in [0, 1]; both panels share one scale that fits everything.
    """
    eyes = camera.eyes()
    fwd = camera.view_matrices()[:, 2, :3]  # rows of V: right, up', fwd
    centre = path_centre(camera)
    extent = [eyes] + ([points] if points is not None and len(points) else []) + (
        [centre[None]] if centre is not None else [])
    allp = np.concatenate(extent)
    lo, hi = allp.min(0), allp.max(0)
    span = float(max((hi - lo).max(), 1e-3)) * 1.15
    mid = (lo + hi) / 2
    image = np.full((size, 2 * size, 3), 0.08, dtype=np.float32)
    image[:, size - 1 : size + 1] = 0.3  # panel divider

    def draw(p: np.ndarray, rgb: np.ndarray, radius_px: int = 0) -> None:
        rgb = np.broadcast_to(rgb, (len(p), 3))
        for panel in (0, 1):
            # top view: x to the right, z (forward) up; side view: z to the right, y down
            u, v = (p[:, 0] - mid[0], mid[2] - p[:, 2]) if panel == 0 else (p[:, 2] - mid[2], p[:, 1] - mid[1])
            col = ((u / span + 0.5) * (size - 1)).round().astype(int) + panel * size
            row = ((v / span + 0.5) * (size - 1)).round().astype(int)
            for dr in range(-radius_px, radius_px + 1):
                for dc in range(-radius_px, radius_px + 1):
                    r, c = row + dr, col + dc
                    ok = (r >= 0) & (r < size) & (c >= panel * size) & (c < (panel + 1) * size)
                    image[r[ok], c[ok]] = rgb[ok]

    if points is not None and len(points):
        draw(points, np.full(3, 0.55) if colors is None else np.clip(colors, 0.0, 1.0))
    frac = np.linspace(0.0, 1.0, len(eyes))
    steps = np.linspace(0.0, 0.08 * span, 10)[:, None, None]
    draw((eyes[None] + steps * fwd[None]).reshape(-1, 3), np.tile(_frame_ramp(frac) * 0.7, (len(steps), 1)))
    if camera.zooms:  # each frame's field of view: the four frustum edges (wide = short focal length)
        every = max(1, round(len(eyes) / 8))
        frames = np.unique(np.r_[np.arange(0, len(eyes), every), len(eyes) - 1])
        view = camera.view_matrices()[frames]
        right, up, ahead = view[:, 0, :3], view[:, 1, :3], view[:, 2, :3]
        f = camera.frame_focals()[frames][:, None]
        edges = [ahead * f + sx * right * camera.width / 2 + sy * up * camera.height / 2
                 for sx in (-1, 1) for sy in (-1, 1)]
        steps = np.linspace(0.0, 0.12 * span, 12)[:, None, None]
        for edge in edges:
            edge = edge / np.linalg.norm(edge, axis=1, keepdims=True)
            draw((eyes[frames][None] + steps * edge[None]).reshape(-1, 3),
                 np.tile(_frame_ramp(frac[frames]) * 0.5, (len(steps), 1)))
    if centre is not None:
        arm = np.linspace(-0.03, 0.03, 9) * span
        zeros = np.zeros_like(arm)
        cross = np.concatenate([np.stack([arm, zeros, zeros], 1), np.stack([zeros, arm, zeros], 1),
                                np.stack([zeros, zeros, arm], 1)])
        draw(centre + cross, np.ones(3))
    draw(eyes, _frame_ramp(frac), radius_px=2)
    return image
