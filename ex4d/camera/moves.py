"""Camera moves around a clip's look-at point (0, 0, r): orbits, dollies along the view axis and straight
slides. Each takes the :class:`~.clip.Clip` it is made for and a :class:`~.speed.Speed`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .clip import Clip
from .lens import Lens
from .path import CameraPath
from .speed import PUBLISHED_SPEED, Speed


def spherical_eye(
    target: np.ndarray, yaw_deg: np.ndarray, pitch_deg: np.ndarray, distance: np.ndarray
) -> np.ndarray:
    """Eye on a sphere around ``target``. yaw 0 / pitch 0 is straight behind the target (-z side);
    positive yaw moves the eye to +x, positive pitch raises it (world y points down)."""
    yaw, pitch = np.deg2rad(yaw_deg), np.deg2rad(pitch_deg)
    d = np.asarray(distance, dtype=np.float64)
    offset = np.stack([np.sin(yaw) * np.cos(pitch), -np.sin(pitch), -np.cos(yaw) * np.cos(pitch)], -1)
    return target + d[..., None] * offset


def orbit(
    clip: Clip,
    yaw: tuple[float, float] = (0.0, 30.0),
    pitch: tuple[float, float] = (0.0, 0.0),
    distance: float | None = None,
    speed: Speed = PUBLISHED_SPEED,
) -> CameraPath:
    """Orbit around the target (0, 0, r) at ``distance`` (default r, so yaw = pitch = 0 is the source camera),
    yaw and pitch (degrees) going from the first to the second value of each range."""
    s = speed.progress(clip.frames)
    d = float(clip.radius) if distance is None else float(distance)
    y = yaw[0] + (yaw[1] - yaw[0]) * s
    p = pitch[0] + (pitch[1] - pitch[0]) * s
    eyes = spherical_eye(clip.target, y, p, np.full(clip.frames, d))
    return CameraPath.looking_at(eyes, clip.target, clip.lens)


def dolly(
    clip: Clip,
    start: float = 0.0,
    end: float = 0.5,
    speed: Speed = PUBLISHED_SPEED,
    keep_subject_size: bool = False,
) -> CameraPath:
    """Dolly along the source view axis: eye = (0, 0, s r) with s from ``start`` to ``end`` (fractions of r,
    must stay below 1), always looking at (0, 0, r). Positive moves toward the scene.

    ``keep_subject_size``: a dolly-zoom ("vertigo"): each frame's focal length is ``focal (r - z) / r``, so
    everything at the target's distance (the plane z = r) keeps the size it has in the source frame while
    the background recedes (dolly in, zooming out to a wider view) or looms (dolly out, zooming in)."""
    if max(start, end) >= 1.0:
        raise ValueError("dolly fractions must stay below 1 (the eye would reach the target)")
    s = speed.progress(clip.frames)
    r = float(clip.radius)
    z = r * (start + (end - start) * s)
    eyes = np.stack([np.zeros_like(z), np.zeros_like(z), z], -1)
    lens = clip.lens
    if keep_subject_size:
        lens = Lens(lens.width, lens.height, lens.intrinsics, focals=lens.focal * (r - z) / r)
    return CameraPath.looking_at(eyes, clip.target, lens)


@dataclass(frozen=True)
class Slide:
    """A straight move of the eye along one world axis (``axis``, ``sign``: which way positive goes), the
    look-at point moving with it (the view keeps its direction) or staying (the view turns to keep it)."""

    axis: int
    sign: float
    target_follows: bool


# world y points down: "up" is -y
MOVES = {
    "truck": Slide(axis=0, sign=1.0, target_follows=True),  # slide sideways, positive: to the right
    "pedestal": Slide(axis=1, sign=-1.0, target_follows=True),  # rise, positive: up
    "crane": Slide(axis=1, sign=-1.0, target_follows=False),  # rise while looking at the orbit centre
}


def move(kind: str, clip: Clip, amount: float = 0.3, speed: Speed = PUBLISHED_SPEED) -> CameraPath:
    """A straight move of :data:`MOVES` from the source camera, by ``amount`` times the radius r (negative: the
    other way): "truck" slides sideways, "pedestal" rises (the view turns not), "crane" rises while it keeps
    looking at (0, 0, r), so the view tilts down onto the subject."""
    slide = MOVES.get(kind)
    if slide is None:
        raise ValueError(f"unknown camera move {kind!r}; expected one of {tuple(MOVES)}")
    s = speed.progress(clip.frames)
    offset = np.zeros((clip.frames, 3))
    offset[:, slide.axis] = amount * float(clip.radius) * s * slide.sign
    target = clip.target
    targets = target + offset if slide.target_follows else np.broadcast_to(target, offset.shape)
    return CameraPath.looking_at(offset, targets, clip.lens)
