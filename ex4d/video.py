"""Video decoding with PyAV, frame selection and the published resize rounding."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .runtime import CancelFn, ProgressFn, check_cancel

PUBLISHED_MULTIPLE = 64
PUBLISHED_MAX_RESOLUTION = 1024


class VideoError(ValueError):
    """A file that cannot be read as a video, or a selection that yields no frames."""


class NoFramesSelected(VideoError):
    """``skip_first`` skips every frame of the video, which has ``available`` frames."""

    def __init__(self, message: str, available: int):
        super().__init__(message)
        self.available = available


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    num_frames: int  # as reported by the container; may be 0 when unknown


@dataclass
class Video:
    frames: torch.Tensor  # [T, H, W, 3] float32 in [0, 1]
    fps: float
    source_size: tuple[int, int]  # (width, height) before resizing
    indices: list[int]  # decoded frame indices that were kept


def published_size(width: int, height: int, max_resolution: int = PUBLISHED_MAX_RESOLUTION,
                   multiple: int = PUBLISHED_MULTIPLE) -> tuple[int, int]:
    """Output (width, height) of the published reader (DepthCrafter's ``read_video_frames``).

    Each side is rounded to ``multiple``; when the long side then exceeds ``max_resolution``, the
    original size is scaled so its long side is ``max_resolution`` and rounded again. Python's
    round (half to even) is what the published code uses.
    """
    if width <= 0 or height <= 0:
        raise VideoError(f"invalid frame size {width}x{height}")
    out_w = round(width / multiple) * multiple
    out_h = round(height / multiple) * multiple
    if max_resolution > 0 and max(out_w, out_h) > max_resolution:
        scale = max_resolution / max(width, height)
        out_w = round(width * scale / multiple) * multiple
        out_h = round(height * scale / multiple) * multiple
    return max(out_w, multiple), max(out_h, multiple)


def _open(path: str | Path):
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video file not found: {path}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise VideoError(f"'{path.name}' is not a readable video (damaged, empty, or not a video); choose a "
                         "video file such as an .mp4") from e
    if not container.streams.video:
        container.close()
        raise VideoError(f"'{path.name}' has no video stream (audio only, or empty); choose a video file")
    return container


def probe(path: str | Path) -> VideoInfo:
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or 30
        return VideoInfo(stream.codec_context.width, stream.codec_context.height, float(rate),
                         int(stream.frames or 0))
    finally:
        container.close()


def frame_stride(native_fps: float, target_fps: float | None) -> int:
    """Published rule: keep every round(native / target)-th frame (at least 1); 0 or None keeps all."""
    if not target_fps or target_fps <= 0:
        return 1
    return max(round(native_fps / target_fps), 1)


def load_video(
    path: str | Path,
    max_frames: int = 49,
    skip_first: int = 0,
    every_nth: int = 1,
    target_fps: float | None = None,
    size: tuple[int, int] | None = None,
    max_resolution: int = PUBLISHED_MAX_RESOLUTION,
    multiple: int = PUBLISHED_MULTIPLE,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> Video:
    """Decode frames as float32 RGB in [0, 1].

    Frames are selected as ``skip_first``, then every ``every_nth`` (times the published fps stride
    when ``target_fps`` is set), up to ``max_frames`` (0 = all). They are resized to ``size`` when
    given, else to ``published_size(w, h, max_resolution, multiple)``; ``multiple=0`` keeps the
    native size. ``cancel()`` is checked between frames (:mod:`ex4d.runtime`).
    """
    import av

    if max_frames < 0 or skip_first < 0 or every_nth < 1:
        raise VideoError("max_frames and skip_first must be >= 0 and every_nth >= 1")
    if target_fps is not None and not math.isfinite(target_fps):
        raise VideoError(f"target_fps must be a finite number, got {target_fps}")
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        native_fps = float(stream.average_rate or stream.guessed_rate or 30)
        src_w, src_h = stream.codec_context.width, stream.codec_context.height
        if size is not None:
            out_w, out_h = size
        elif multiple > 0:
            out_w, out_h = published_size(src_w, src_h, max_resolution, multiple)
        else:
            out_w, out_h = src_w, src_h
        step = every_nth * frame_stride(native_fps, target_fps)
        fps = native_fps / step
        total_hint = max_frames or max((int(stream.frames or 0) - skip_first) // step, 0)
        frames: list[np.ndarray] = []
        indices: list[int] = []
        decoded = 0
        try:
            for index, frame in enumerate(container.decode(stream)):
                decoded = index + 1
                if index < skip_first or (index - skip_first) % step:
                    continue
                check_cancel(cancel, "video decoding")
                if (frame.width, frame.height) != (out_w, out_h):
                    frame = frame.reformat(width=out_w, height=out_h, interpolation="BICUBIC")
                frames.append(frame.to_ndarray(format="rgb24"))
                indices.append(index)
                if progress is not None:
                    progress(len(frames), total_hint)
                if max_frames and len(frames) >= max_frames:
                    break
        except av.error.FFmpegError as e:
            raise VideoError(f"'{Path(path).name}' is damaged: decoding failed after {decoded} frames; re-encode "
                             "it or choose another video") from e
    finally:
        container.close()
    if not decoded:
        raise VideoError(f"'{Path(path).name}' holds no frames; choose another video")
    if not frames:  # the first frame after the skipped ones is always kept: skip_first skipped them all
        raise NoFramesSelected(f"skip_first={skip_first} skips all {decoded} frames of '{Path(path).name}'",
                               available=decoded)
    data = torch.from_numpy(np.stack(frames)).float().div_(255.0)
    return Video(frames=data, fps=fps, source_size=(src_w, src_h), indices=indices)

