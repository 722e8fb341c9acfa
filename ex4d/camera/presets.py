"""The published camera presets, and this pack's named moves beside them, as one table: :data:`PRESETS` maps
each name to the move it makes; an angle in degrees ("30", "60", "90" published, any other allowed) turns
around the subject by that angle.

rounds = 1 with ``sweep`` "whole clip" (the default: the angle is the angle over the whole clip), or the
published rule :func:`published_rounds` with "published rounds" (see :data:`SWEEPS`; the same at 49 frames).
The default :class:`~.speed.Speed` gives the published per-frame angles bit for bit (``linspace``) at 49
frames, and at any length with ``sweep`` "published rounds".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .clip import Clip
from .moves import MOVES, dolly, move
from .path import CameraPath
from .speed import PUBLISHED_SPEED, Speed

# How far an angle preset turns: "whole clip" turns its angle over the clip whatever its length; "published
# rounds" multiplies it by :func:`published_rounds`, as the original tool does (a 90 degree preset over 121
# frames turns 222 degrees, over 25 frames 176). They agree at 49 frames, the length EX-4D was trained on.
SWEEPS = ("whole clip", "published rounds")


def published_rounds(num_frames: int) -> float:
    """rounds = N / 49 if N >= 49 else 49 / N (as published)."""
    return num_frames / 49 if num_frames >= 49 else 49 / num_frames


@dataclass(frozen=True)
class PresetSettings:
    """The knobs presets take beside the clip and speed: how far a zoom dollies (a fraction of r, in [0, 1)),
    how far a move slides (a fraction of r), how far an angle turns (:data:`SWEEPS`)."""

    zoom_fraction: float = 0.5
    amount: float = 0.3
    sweep: str = "whole clip"


Preset = Callable[[Clip, Speed, PresetSettings], CameraPath]


def _angles(clip: Clip, speed: Speed, settings: PresetSettings, per_round: float) -> np.ndarray:
    """Each frame's angle (radians) of a turn by ``per_round`` radians a round."""
    rounds = published_rounds(clip.frames) if settings.sweep == "published rounds" else 1.0
    total = per_round * rounds
    if speed.published:
        return np.linspace(0.0, total, clip.frames)
    return total * speed.progress(clip.frames)


def half_circle(clip: Clip, speed: Speed, settings: PresetSettings) -> CameraPath:
    """"180": theta from 0 to 2 pi rounds; eye = (r sin t, 0.2 r (cos t - 1), 0)."""
    r = float(clip.radius)
    t = _angles(clip, speed, settings, 2.0 * np.pi)
    eyes = np.stack([r * np.sin(t), 0.2 * r * (np.cos(t) - 1.0), np.zeros_like(t)], -1)
    return CameraPath.looking_at(eyes, clip.target, clip.lens)


def turn(degrees: float, clip: Clip, speed: Speed, settings: PresetSettings) -> CameraPath:
    """"<A>" (degrees): theta from 0 to A pi/180 rounds; eye = (r sin t, 0.2 r (|cos t| - 1), r - r |cos t|)."""
    r = float(clip.radius)
    t = _angles(clip, speed, settings, degrees * np.pi / 180.0)
    c = np.abs(np.cos(t))
    eyes = np.stack([r * np.sin(t), 0.2 * r * (c - 1.0), r - r * c], -1)
    return CameraPath.looking_at(eyes, clip.target, clip.lens)


def zoom(sign: float, clip: Clip, speed: Speed, settings: PresetSettings) -> CameraPath:
    """"zoom_in" / "zoom_out" (never implemented in the published code; our definition): a dolly along the
    source view axis with the same look-at point: the eye moves from the origin toward the target (in) or away
    from it (out) by ``zoom_fraction`` r."""
    if not 0.0 <= settings.zoom_fraction < 1.0:
        raise ValueError("zoom_fraction must be in [0, 1)")
    return dolly(clip, start=0.0, end=sign * settings.zoom_fraction, speed=speed)


def slide(kind: str, clip: Clip, speed: Speed, settings: PresetSettings) -> CameraPath:
    """A move of :data:`~.moves.MOVES` by ``amount`` r."""
    return move(kind, clip, amount=settings.amount, speed=speed)


PRESETS: dict[str, Preset] = {
    "180": half_circle,
    "zoom_in": functools.partial(zoom, 1.0),
    "zoom_out": functools.partial(zoom, -1.0),
    **{kind: functools.partial(slide, kind) for kind in MOVES},
}


def preset_named(name: str) -> Preset:
    """The preset of a name: one of :data:`PRESETS`, or an angle in degrees such as "30"."""
    name = str(name).strip().lower()
    if name in PRESETS:
        return PRESETS[name]
    if re.fullmatch(r"\d+(\.\d+)?", name):
        return functools.partial(turn, float(name))
    raise ValueError(f"unknown camera preset {name!r}; expected an angle in degrees such as '30', or one of "
                     f"{', '.join(PRESETS)}")


def preset(name: str, clip: Clip, speed: Speed = PUBLISHED_SPEED, zoom_fraction: float = 0.5,
           amount: float = 0.3, sweep: str = "whole clip") -> CameraPath:
    """The path of a named preset (:func:`preset_named`) on ``clip``, target (0, 0, r)."""
    if sweep not in SWEEPS:
        raise ValueError(f"unknown sweep {sweep!r}; expected one of {', '.join(SWEEPS)}")
    return preset_named(name)(clip, speed, PresetSettings(zoom_fraction, amount, sweep))
