"""EX-4D Load Video: the library reader and the node through the real executor."""

from __future__ import annotations

import pytest
import torch

from ex4d import video
from harness.media import save_video


def _write_clip(path, frames=12, width=130, height=100, fps=24.0):
    g = torch.Generator().manual_seed(0)
    data = torch.rand(frames, height, width, 3, generator=g)
    # A frame-index stripe so tests can tell which frames were kept.
    for i in range(frames):
        data[i, :8] = i / frames
    return save_video(data, path, fps=fps)


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1920, 1080), (1024, 576)), ((720, 480), (704, 512)), ((640, 360), (640, 384)),
     ((512, 512), (512, 512)), ((2000, 500), (1024, 256))],
)
def test_published_size_rounding(size, expected):
    assert video.published_size(*size) == expected


def test_published_size_formula_against_reference():
    # The published reader: round each side to 64; if the long side exceeds 1024, rescale the original.
    for w in range(64, 3000, 37):
        for h in (90, 333, 480, 1080, 1500):
            rw, rh = round(w / 64) * 64, round(h / 64) * 64
            if max(rw, rh) > 1024:
                s = 1024 / max(w, h)
                rw, rh = round(w * s / 64) * 64, round(h * s / 64) * 64
            assert video.published_size(w, h) == (max(rw, 64), max(rh, 64))


def test_load_video_selection(tmp_path):
    path = _write_clip(tmp_path / "c.mp4", frames=12, fps=24)
    clip = video.load_video(path, max_frames=4, skip_first=1, every_nth=2)
    assert clip.indices == [1, 3, 5, 7]
    assert clip.frames.shape == (4, 128, 128, 3)
    assert clip.fps == pytest.approx(12.0)
    assert 0.0 <= clip.frames.min() and clip.frames.max() <= 1.0
    stripe = clip.frames[:, 2, 40:80].mean(dim=(1, 2))
    assert torch.all(stripe[1:] > stripe[:-1]), "frames must come back in order"


def test_target_fps_uses_published_stride(tmp_path):
    path = _write_clip(tmp_path / "c.mp4", frames=12, fps=24)
    clip = video.load_video(path, max_frames=0, target_fps=8, multiple=0)
    assert clip.indices == [0, 3, 6, 9]
    assert clip.frames.shape[1:3] == (100, 130)


def test_not_a_video(tmp_path):
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(video.VideoError, match="not a readable video"):
        video.load_video(bad)


def test_no_frames_selected(tmp_path):
    path = _write_clip(tmp_path / "c.mp4", frames=5)
    with pytest.raises(video.NoFramesSelected, match="skip_first=50 skips all 5 frames") as e:
        video.load_video(path, skip_first=50)
    assert e.value.available == 5


def test_a_video_without_frames_or_video_stream(tmp_path):
    import av

    empty = tmp_path / "empty.mkv"  # a header, a video stream, no frames
    with av.open(str(empty), mode="w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
    with pytest.raises(video.VideoError, match="'empty.mkv' is not a readable video") as e:
        video.load_video(empty)
    assert "Errno" not in str(e.value)
    no_stream = tmp_path / "no_stream.mp4"
    with av.open(str(no_stream), mode="w") as container:
        container.add_stream("aac", rate=8000)
        container.start_encoding()
    with pytest.raises(video.VideoError, match="'no_stream.mp4' has no video stream"):
        video.load_video(no_stream)


def test_target_fps_must_be_finite(tmp_path):
    path = _write_clip(tmp_path / "c.mp4", frames=3)
    with pytest.raises(video.VideoError, match="target_fps must be a finite number"):
        video.load_video(path, target_fps=float("nan"))
