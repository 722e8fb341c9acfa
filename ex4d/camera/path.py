"""The camera path: one world-to-camera pose per frame, seen through a :class:`~.lens.Lens`.

Conventions (EX-4D reference, section 3). World = the source camera's frame: x right, y down, z forward,
the source camera at the origin looking along +z. :func:`look_at` builds the world-to-camera matrix ``V``
whose rows are (right, up', fwd); the published renderer negates its first three rows,
``E = diag(-1,-1,-1,1) V``, which gives an OpenGL-style camera (x right, y up, looking down -z). ``E`` is what
the published tool saves as "extrinsics" and what :class:`CameraPath` stores. Clip position = ``P E [p, 1]``
with ``P`` from :func:`~.lens.projection_matrix`.

Everything is computed in float64 and stored as float32, like the published tool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .lens import FAR_PLANE, NEAR_PLANE, Lens

_FLIP = np.diag([-1.0, -1.0, -1.0, 1.0])


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


def rolled(view: np.ndarray, roll_deg: np.ndarray) -> np.ndarray:
    """``view`` [N, 4, 4] turned about each frame's view axis by ``roll_deg`` (positive: counter-clockwise on
    screen)."""
    a = np.deg2rad(np.asarray(roll_deg, dtype=np.float64))
    rot = np.zeros((len(a), 4, 4))
    rot[:, 0, 0], rot[:, 0, 1] = np.cos(a), np.sin(a)
    rot[:, 1, 0], rot[:, 1, 1] = -np.sin(a), np.cos(a)
    rot[:, 2, 2] = rot[:, 3, 3] = 1.0
    return rot @ view


def check_poses(extrinsics: np.ndarray) -> None:
    """Refuse poses the renderer cannot draw, instead of rendering black or wrong frames: values that are not
    finite, and a world-to-camera matrix that is not a rotation plus translation (an all-zero file, a camera
    whose eye equals its target)."""
    if not np.isfinite(extrinsics).all():
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


@dataclass(eq=False)
class CameraPath:
    """Per-frame cameras: ``extrinsics`` [N, 4, 4] float32 (E, world-to-camera) and the ``lens`` every frame is
    seen through (its per-frame focal lengths, when it zooms, one per frame)."""

    extrinsics: np.ndarray
    lens: Lens

    def __post_init__(self) -> None:
        self.extrinsics = np.ascontiguousarray(np.asarray(self.extrinsics, dtype=np.float32))
        if self.extrinsics.ndim != 3 or self.extrinsics.shape[1:] != (4, 4):
            raise ValueError(f"extrinsics must be [N, 4, 4], got {list(self.extrinsics.shape)}")
        if len(self.extrinsics) == 0:
            raise ValueError("a camera path needs at least one frame")
        if self.lens.focals is not None and self.lens.focals.shape != (len(self.extrinsics),):
            raise ValueError(f"focals must hold one focal length per frame ({len(self.extrinsics)}), got "
                             f"{list(self.lens.focals.shape)}")
        check_poses(self.extrinsics)

    @classmethod
    def looking_at(cls, eyes: np.ndarray, targets: np.ndarray, lens: Lens,
                   roll_deg: np.ndarray | None = None) -> CameraPath:
        """The path of per-frame eye and target positions (world coordinates), up = (0, 1, 0), each frame
        turned about its view axis by ``roll_deg`` when given."""
        eyes = np.asarray(eyes, dtype=np.float64).reshape(-1, 3)
        view = look_at(eyes, np.broadcast_to(np.asarray(targets, dtype=np.float64), eyes.shape))
        if roll_deg is not None and np.any(roll_deg != 0):
            view = rolled(view, roll_deg)
        return cls(extrinsics_from_view(view).astype(np.float32), lens)

    @property
    def num_frames(self) -> int:
        return int(self.extrinsics.shape[0])

    def __len__(self) -> int:
        return self.num_frames

    @property
    def width(self) -> int:
        return self.lens.width

    @property
    def height(self) -> int:
        return self.lens.height

    @property
    def focal(self) -> float:
        """The source camera's focal length (the DW-mesh's); :meth:`frame_focals` gives each frame's."""
        return self.lens.focal

    def frame_focals(self) -> np.ndarray:
        """Each frame's focal length, [N] float64."""
        return self.lens.frame_focals(self.num_frames)

    def frame_intrinsics(self) -> np.ndarray:
        """Each frame's K, [N, 3, 3] float32."""
        return self.lens.frame_intrinsics(self.num_frames)

    def view_matrices(self) -> np.ndarray:
        """The look-at matrices ``V`` (float64) before the published row negation."""
        return _FLIP @ self.extrinsics.astype(np.float64)

    def eyes(self) -> np.ndarray:
        """Camera centres in world coordinates, [N, 3] float64."""
        e = self.extrinsics.astype(np.float64)
        return -np.einsum("nji,nj->ni", e[:, :3, :3], e[:, :3, 3])

    def clip_matrices(self, near: float = NEAR_PLANE, far: float = FAR_PLANE) -> np.ndarray:
        """``P @ E`` per frame, [N, 4, 4] float64: world point -> clip position (``P`` of each frame's focal)."""
        return self.lens.projections(near, far) @ self.extrinsics.astype(np.float64)
