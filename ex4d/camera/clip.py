"""What a camera path is made for: the clip's frame count, the lens it is seen through and the orbit radius."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import mesh as dw_mesh  # a module import: ex4d.mesh imports this package's lens
from .lens import PUBLISHED_FOCAL, Lens

RADIUS_MARGIN = 0.15


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
    # the radius is measured with the mesh's border wall in place, as published
    d[0, :] = d[-1, :] = dw_mesh.BORDER_DEPTH
    d[:, 0] = d[:, -1] = dw_mesh.BORDER_DEPTH
    return float(d.min() + RADIUS_MARGIN)


@dataclass(frozen=True, eq=False)
class Clip:
    """``frames`` frames seen through ``lens``; ``radius`` r places the look-at point of every generated path
    at (0, 0, r), the orbit centre in front of the source camera."""

    frames: int
    lens: Lens
    radius: float

    def __post_init__(self) -> None:
        if self.frames < 1 or not math.isfinite(self.radius) or self.radius <= 0:
            raise ValueError(f"clip: frames and radius must be positive, got {self.frames} frames, radius "
                             f"{self.radius}")

    @classmethod
    def centred(cls, frames: int, width: int, height: int, radius: float,
                focal: float = PUBLISHED_FOCAL) -> Clip:
        """A clip seen through one focal length about the image centre (:meth:`Lens.centred`)."""
        return cls(int(frames), Lens.centred(width, height, focal), float(radius))

    @classmethod
    def of_depth(cls, depth, focal: float = PUBLISHED_FOCAL, lens: Lens | None = None) -> Clip:
        """The clip of a depth video [T, H, W] (numpy or torch), at the published radius of its frame 0, seen
        through ``lens`` when given (the depth's own), else ``focal`` about the image centre."""
        if depth.ndim != 3 or depth.shape[0] == 0:
            raise ValueError(f"depth: expected [T, H, W] depth, got {list(depth.shape)}")
        t, h, w = depth.shape
        if lens is None:
            return cls.centred(t, w, h, radius_from_depth(depth[0]), focal)
        if (lens.width, lens.height) != (w, h):
            raise ValueError(f"lens: made for {lens.width}x{lens.height} images, but the depth is {w}x{h}")
        return cls(int(t), lens, radius_from_depth(depth[0]))

    @property
    def target(self) -> np.ndarray:
        """The look-at point (0, 0, r), float64."""
        return np.array([0.0, 0.0, float(self.radius)])
