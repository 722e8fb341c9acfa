"""Custom paths from keyframes: each key an eye given by yaw / pitch / distance around a target, or by its
position; the frames between keys eased from one to the next."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .clip import Clip
from .moves import spherical_eye
from .path import CameraPath
from .speed import ease


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


def _spherical_key(number: int, key: Keyframe, radius: float) -> list[float]:
    """(target x, y, z, yaw, pitch, distance, roll) of a key; a key given by ``eye`` is converted to spherical
    form around its target, so motion between keys follows arcs around the target rather than chords."""
    target = np.array(key.target if key.target is not None else (0.0, 0.0, radius), dtype=np.float64)
    if key.eye is not None:
        off = np.asarray(key.eye, dtype=np.float64) - target
        dist = float(np.linalg.norm(off))
        if dist == 0.0:
            raise ValueError(f"keyframe {number}: eye equals target; move the eye or the target")
        pitch = math.degrees(math.asin(-off[1] / dist))
        yaw = math.degrees(math.atan2(off[0], -off[2]))
    else:
        yaw, pitch = key.yaw, key.pitch
        dist = radius if key.distance is None else float(key.distance)
        if dist == 0.0:
            raise ValueError(f"keyframe {number}: distance 0 puts the eye on the target; give a distance other "
                             "than 0 (or none: the radius)")
    return [*target, yaw, pitch, dist, key.roll]


def keyframed(keyframes: Sequence[Keyframe | dict], clip: Clip, easing: str = "linear") -> CameraPath:
    """Interpolate keyframes (per segment, with ``easing``) in (target, yaw, pitch, distance, roll).

    Frames before the first / after the last key hold.
    """
    if not keyframes:
        raise ValueError("keyframed() needs at least one keyframe")
    numbered = sorted(((i, _keyframe(i, k)) for i, k in enumerate(keyframes, 1)), key=lambda ik: ik[1].frame)
    r = float(clip.radius)
    frames_arr = np.array([float(k.frame) for _, k in numbered])
    params_arr = np.array([_spherical_key(number, k, r) for number, k in numbered])
    i = np.arange(clip.frames, dtype=np.float64)
    seg = np.clip(np.searchsorted(frames_arr, i, side="right") - 1, 0, max(len(numbered) - 2, 0))
    if len(numbered) == 1:
        values = np.broadcast_to(params_arr[0], (clip.frames, params_arr.shape[1]))
    else:
        f0, f1 = frames_arr[seg], frames_arr[seg + 1]
        span = np.where(f1 > f0, f1 - f0, 1.0)
        s = ease(np.clip((i - f0) / span, 0.0, 1.0), easing)[:, None]
        values = params_arr[seg] * (1.0 - s) + params_arr[seg + 1] * s
    target = values[:, :3]
    eyes = spherical_eye(target, values[:, 3], values[:, 4], values[:, 5])
    return CameraPath.looking_at(eyes, target, clip.lens, roll_deg=values[:, 6])
