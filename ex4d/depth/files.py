"""Depth files: an .npz (array "depth", or its only array) or .npy holding [T, H, W] or [H, W] numbers.

Never unpickles: a file holding Python objects is refused before anything in it runs.

    write_depth_file(depth, "depth.npz")                   # arrays "depth" and, where known, "disparity" and the lens
    values = read_depth_array("depth.npz")                 # [T, H, W] float32, finite
    lens, metric = read_depth_lens("depth.npz", 512, 320)  # the lens saved with it (None: published 500 px)
    depth = depth_from_values(values[::2], "disparity")    # DepthVideo, published conversion
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from ..camera.lens import Lens
from .convert import DepthVideo, depth_video_from_disparity

DEPTH_FILE_EXTENSIONS = (".npz", ".npy")
DEPTH_CONTENTS = ("depth", "disparity")
# What numpy and zipfile raise for a file that is not a complete .npz / .npy of plain arrays: not a zip or an
# npy header, truncated, damaged compressed data, an unsupported compression method, pickled objects.
_UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError)


class DepthFileError(ValueError):
    """A depth file that cannot be used as depth: unreadable, not numbers, the wrong shape or bad values."""


def write_depth_file(depth: DepthVideo, path: str | Path) -> Path:
    """Save ``depth`` as a compressed .npz: float32 "depth" [T, H, W], "disparity" where it has one, and its lens
    where it carries one: "intrinsics" [3, 3] (pixels), "focals" [T] where the source zooms, "metric"."""
    arrays = {"depth": depth.depth.float().cpu().numpy()}
    if depth.disparity is not None:
        arrays["disparity"] = depth.disparity.float().cpu().numpy()
    if depth.lens is not None:
        arrays["intrinsics"] = depth.lens.intrinsics
        if depth.lens.focals is not None:
            arrays["focals"] = depth.lens.focals
        arrays["metric"] = np.bool_(depth.metric)
    path = Path(path)
    with open(path, "wb") as f:  # a file object: numpy would append ".npz" to a name without it
        np.savez_compressed(f, **arrays)
    return path


def read_depth_array(path: str | Path) -> np.ndarray:
    """The depth frames of an .npz / .npy file as a [T, H, W] float32 array of finite numbers.

    An .npz gives its array "depth", or its only array; a [H, W] array is one frame."""
    path = Path(path)
    if path.suffix.lower() not in DEPTH_FILE_EXTENSIONS:
        raise DepthFileError(f"'{path.name}' is not an .npz or .npy file; save the depth with numpy.savez")
    unreadable = (
        f"'{path.name}' is not a readable .npz / .npy file of numbers (it is damaged, or holds Python "
        "objects, which are never loaded); save the depth as a float array with numpy.savez"
    )
    try:
        values = _load_array(path)
    except DepthFileError:
        raise
    except _UNREADABLE as e:
        raise DepthFileError(unreadable) from e
    if not isinstance(values, np.ndarray):  # an .npz member that is not an .npy array comes back as bytes
        raise DepthFileError(unreadable)
    if np.iscomplexobj(values) or not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        raise DepthFileError(
            f"'{path.name}' holds {values.dtype} values; depth must be real numbers: save it as a float array"
        )
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3:
        raise DepthFileError(
            f"'{path.name}' holds an array of shape {list(values.shape)}; save depth as "
            "[T, H, W] (frames, height, width) or one [H, W] map"
        )
    if 0 in values.shape:
        raise DepthFileError(
            f"'{path.name}' holds no depth (an array of shape {list(values.shape)}); save the "
            "depth of at least one frame"
        )
    values = np.ascontiguousarray(values, dtype=np.float32)
    if not np.isfinite(values).all():
        raise DepthFileError(f"'{path.name}' contains NaN or infinite values; fix or re-export the depth")
    return values


def read_depth_lens(path: str | Path, width: int, height: int) -> tuple[Lens | None, bool]:
    """The lens saved with the depth in an .npz (:func:`write_depth_file`) for its ``width`` x ``height`` frames,
    and whether the depth is metric; (None, False) for a file without "intrinsics" (a published depth file)."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        return None, False
    try:
        with np.load(path, allow_pickle=False) as data:
            if "intrinsics" not in data.files:
                return None, False
            k = np.asarray(data["intrinsics"], dtype=np.float32)
            focals = np.asarray(data["focals"], dtype=np.float32) if "focals" in data.files else None
            metric = bool(np.asarray(data["metric"]).item()) if "metric" in data.files else False
    except _UNREADABLE as e:
        raise DepthFileError(f"'{path.name}' holds a lens that cannot be read ({e}); save the depth again") from e
    try:
        return Lens(width, height, k, focals), metric
    except ValueError as e:
        raise DepthFileError(f"'{path.name}' holds a lens the renderer cannot use: {e}") from e


def _load_array(path: Path) -> np.ndarray | bytes:
    data = np.load(path, allow_pickle=False)
    if isinstance(data, np.ndarray):
        return data
    with data:
        names = list(data.files)
        if "depth" in names:
            return data["depth"]
        if len(names) == 1:
            return data[names[0]]
    found = f"arrays {names} but none named 'depth'" if names else "no arrays"
    raise DepthFileError(f"'{path.name}' holds {found}; save the depth as numpy.savez(file, depth=array)")


def depth_from_values(
    values: np.ndarray | torch.Tensor,
    content: str = "depth",
    name: str = "the file",
    source: str = "file",
    meta: dict | None = None,
) -> DepthVideo:
    """Depth from [T, H, W] values read from a file (``name``, for messages): ``content="depth"`` is z-depth in
    scene units (all > 0), ``"disparity"`` relative disparity, converted as published (clip-wide normalised)."""
    if content not in DEPTH_CONTENTS:
        raise ValueError(f"unknown content {content!r}; expected one of {DEPTH_CONTENTS}")
    tensor = torch.as_tensor(np.ascontiguousarray(values, dtype=np.float32))
    if content == "disparity":
        return depth_video_from_disparity(tensor, source, meta)
    if (tensor <= 0).any():
        raise DepthFileError(
            f"{name} has depth values <= 0; if it holds disparity, set content to 'disparity'"
        )
    return DepthVideo(tensor, None, source, dict(meta or {}))
