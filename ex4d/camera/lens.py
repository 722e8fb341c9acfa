"""The lens a clip is seen through: image size, the source camera's intrinsics K and, where the focal length
changes along the clip (a zoom), each frame's focal length.

K = [[f, 0, cx], [0, f, cy], [0, 0, 1]] in pixels. The renderer projects with one focal length (square pixels)
about the image centre, so a lens whose principal point is elsewhere is refused rather than drawn wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PUBLISHED_FOCAL = 500.0
NEAR_PLANE, FAR_PLANE = 1e-3, 1e3  # the published projection's clip planes, in scene units


def intrinsics_matrix(width: int, height: int, focal: float = PUBLISHED_FOCAL) -> np.ndarray:
    """K = [[f, 0, W/2], [0, f, H/2], [0, 0, 1]] as float32 (the published file's "intrinsics")."""
    return np.array(
        [[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]], dtype=np.float32
    )


def intrinsics_per_frame(k: np.ndarray, focals: np.ndarray) -> np.ndarray:
    """K repeated for each frame with that frame's focal length on both axes, [N, 3, 3]."""
    out = np.repeat(np.asarray(k)[None], len(focals), axis=0)
    out[:, 0, 0] = out[:, 1, 1] = focals
    return out


def projection_matrix(
    width: int, height: int, focal: float = PUBLISHED_FOCAL, near: float = NEAR_PLANE, far: float = FAR_PLANE
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


@dataclass(eq=False)
class Lens:
    """``intrinsics`` [3, 3] float32: K of the source camera (the one the DW-mesh is unprojected with).
    ``focals`` [N] float32, when given, is each frame's own focal length (a zoom, e.g. a dolly-zoom); None
    (the default, and what a lens whose every frame has the source focal is normalised to) is one focal
    length for the whole clip, as published."""

    width: int
    height: int
    intrinsics: np.ndarray
    focals: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.width, self.height = int(self.width), int(self.height)
        self.intrinsics = np.ascontiguousarray(np.asarray(self.intrinsics, dtype=np.float32))
        if self.intrinsics.shape != (3, 3):
            raise ValueError(f"intrinsics must be [3, 3], got {list(self.intrinsics.shape)}")
        if self.focals is not None:
            self.focals = np.ascontiguousarray(np.asarray(self.focals, dtype=np.float32))
            if self.focals.ndim != 1:
                raise ValueError(f"focals must hold one focal length per frame, got {list(self.focals.shape)}")
        self._check()
        if self.focals is not None and np.all(self.focals == self.intrinsics[0, 0]):
            self.focals = None  # no zoom: the published single-intrinsics lens, bit for bit

    @classmethod
    def centred(cls, width: int, height: int, focal: float = PUBLISHED_FOCAL) -> Lens:
        """One focal length for the whole clip, the principal point at the image centre."""
        return cls(width, height, intrinsics_matrix(width, height, focal))

    @property
    def focal(self) -> float:
        """The source camera's focal length (the DW-mesh's); :meth:`frame_focals` gives each frame's."""
        return float(self.intrinsics[0, 0])

    @property
    def principal_point(self) -> tuple[float, float]:
        return float(self.intrinsics[0, 2]), float(self.intrinsics[1, 2])

    @property
    def zooms(self) -> bool:
        """Whether the focal length changes along the clip (``focals`` is set)."""
        return self.focals is not None

    def frame_focals(self, num_frames: int) -> np.ndarray:
        """Each of ``num_frames`` frames' focal length, [N] float64."""
        if self.focals is None:
            return np.full(num_frames, self.focal)
        return self.focals.astype(np.float64)

    def frame_intrinsics(self, num_frames: int) -> np.ndarray:
        """Each frame's K, [N, 3, 3] float32."""
        return intrinsics_per_frame(self.intrinsics, self.frame_focals(num_frames).astype(np.float32))

    def projection(self, near: float = NEAR_PLANE, far: float = FAR_PLANE) -> np.ndarray:
        """The projection of the source focal length, [4, 4] float64."""
        return projection_matrix(self.width, self.height, self.focal, near, far)

    def projections(self, near: float = NEAR_PLANE, far: float = FAR_PLANE) -> np.ndarray:
        """The projection of each frame's focal length, [N, 4, 4] float64; without a zoom the one
        :meth:`projection`, [4, 4], for every frame."""
        if self.focals is None:
            return self.projection(near, far)
        size = self.width, self.height
        return np.stack([projection_matrix(*size, float(f), near, far) for f in self.focals])

    def _check(self) -> None:
        """Refuse what the renderer cannot project as given: a size that is not positive, values that are not
        finite, intrinsics other than K = [[f, 0, W/2], [0, f, H/2], [0, 0, 1]] (one focal length, the image
        centre) and per-frame focal lengths that are not positive finite numbers."""
        width, height, k = self.width, self.height, self.intrinsics
        if width <= 0 or height <= 0:
            raise ValueError(f"width and height must be positive, got {width}x{height}")
        if self.focals is not None:
            bad = np.flatnonzero(~np.isfinite(self.focals) | (self.focals <= 0))
            if len(bad):
                raise ValueError(f"focals: the focal length of frame {int(bad[0])} is {float(self.focals[bad[0]]):g}; "
                                 "each frame needs a positive finite focal length")
        if not np.isfinite(k).all():
            raise ValueError("the camera holds NaN or infinite values (in its intrinsics); rebuild the path or "
                             "give finite intrinsics")
        fx, fy = float(k[0, 0]), float(k[1, 1])
        if fx <= 0 or abs(fy - fx) > 1e-3 * fx:
            raise ValueError(f"intrinsics: fx = {fx:g} and fy = {fy:g}; the renderer needs one positive focal "
                             "length (square pixels)")
        cx, cy = self.principal_point
        if abs(cx - width / 2) > 0.5 or abs(cy - height / 2) > 0.5:
            raise ValueError(f"intrinsics: the principal point ({cx:g}, {cy:g}) is not the centre of "
                             f"{width}x{height} ({width / 2:g}, {height / 2:g}); the renderer projects about the "
                             "centre: give the image size the path was made for")
        if abs(float(k[0, 1])) > 1e-6 or np.abs(k[2] - np.array([0, 0, 1], dtype=np.float32)).max() > 1e-6:
            raise ValueError("intrinsics: skew or a last row other than 0 0 1 cannot be rendered")
