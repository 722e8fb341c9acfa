"""ex4d.depth: the published conversion, maps from other nodes, depth files and DepthCrafter's windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ex4d import depth as D
from tests.bad_inputs import CodeRunner


# ---- conversion ----------------------------------------------------------------------------------------
def reference_depth(r: np.ndarray) -> np.ndarray:
    """EX-4D's conversion written out in numpy, as the reference states it."""
    r = (r - r.min()) / (r.max() - r.min())
    d = 3900.0 * r
    d = np.maximum(d, 1e-5)
    return np.clip(10000.0 / d, 1e-4, 1e4)


def test_disparity_to_depth_reference_numbers():
    r = torch.tensor([[[0.0, 0.5, 1.0, 1.0 / 3900.0]]])
    z = D.disparity_to_depth(r)
    assert z[0, 0, 2].item() == pytest.approx(10000 / 3900, rel=1e-6)  # nearest surface ~2.564
    assert z[0, 0, 2].item() == pytest.approx(D.NEAREST_DEPTH)
    assert z[0, 0, 1].item() == pytest.approx(10000 / 1950, rel=1e-6)
    assert z[0, 0, 0].item() == 1e4  # r = 0: 10000 / 1e-5 = 1e9, clipped to the far limit
    assert z[0, 0, 3].item() == pytest.approx(1e4, rel=1e-4)  # d = 1 exactly


def test_disparity_to_depth_matches_numpy_reference_on_unnormalised_input():
    gen = torch.Generator().manual_seed(0)
    r = torch.rand(3, 17, 23, generator=gen) * 7.0 - 2.0  # arbitrary affine range, as a model returns
    ours = D.disparity_to_depth(r).numpy()
    ref = reference_depth(r.double().numpy())
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    assert ours.min() == pytest.approx(10000 / 3900, rel=1e-5) and ours.max() == 1e4
    # Normalisation is over the whole clip, not per frame: a frame with a smaller range stays nearer/farther.
    r2 = torch.stack([torch.linspace(0, 1, 10).view(1, 10), torch.linspace(0, 0.5, 10).view(1, 10)])
    z2 = D.disparity_to_depth(r2)
    assert z2[1].min().item() == pytest.approx(10000 / 1950, rel=1e-5)


def test_normalise_constant_gives_zeros_not_nan():
    z = D.disparity_to_depth(torch.full((2, 4, 4), 3.0))
    assert torch.isfinite(z).all() and (z == 1e4).all()


def test_depth_video_validates_shapes():
    with pytest.raises(ValueError):
        D.DepthVideo(torch.ones(4, 4))
    with pytest.raises(ValueError):
        D.DepthVideo(torch.ones(2, 4, 4), torch.ones(2, 4, 5))
    v = D.depth_video_from_disparity(torch.rand(2, 4, 5), "test")
    assert (v.num_frames, v.height, v.width) == (2, 4, 5)
    assert v.disparity.min() == 0 and v.disparity.max() == 1


def test_temporal_ema():
    x = torch.tensor([0.0, 1.0, 1.0, 1.0]).view(4, 1, 1)
    y = D.temporal_ema(x, 0.5).flatten().tolist()
    assert y == pytest.approx([0.0, 0.5, 0.75, 0.875])
    assert torch.equal(D.temporal_ema(x, 1.0), x)
    with pytest.raises(ValueError):
        D.temporal_ema(x, 0.0)


# ---- conversions from other nodes' maps ----------------------------------------------------------------
def _ramp_image(t: int = 2, h: int = 4, w: int = 5) -> torch.Tensor:
    ramp = torch.linspace(0, 1, w).view(1, 1, w, 1).expand(t, h, w, 3).clone()
    return ramp


def test_depth_from_image_published_disparity_and_inverted():
    img = _ramp_image()
    v = D.depth_from_map(img)  # bright = near
    assert v.depth.shape == (2, 4, 5)
    assert v.depth[..., -1].max().item() == pytest.approx(10000 / 3900, rel=1e-6)
    assert (v.depth[..., 0] == 1e4).all()
    np.testing.assert_allclose(v.depth.numpy(), reference_depth(img.mean(-1).double().numpy()), rtol=1e-5)
    inv = D.depth_from_map(img, invert=True)  # bright = far
    assert inv.depth[..., 0].max().item() == pytest.approx(10000 / 3900, rel=1e-6)
    assert (inv.depth[..., -1] == 1e4).all()
    # A MASK of the same values gives the same depth as the IMAGE.
    assert torch.equal(D.depth_from_map(img[..., 0]).depth, v.depth)
    # Channels are averaged: a map only in the red channel is a third as bright, same after normalising.
    red = torch.zeros_like(img)
    red[..., 0] = img[..., 0]
    assert torch.allclose(D.depth_from_map(red).depth, v.depth)


def test_depth_from_image_near_far_and_metric():
    img = _ramp_image()
    n = img[0, 0, :, 0]  # 0 .. 1
    disp = D.depth_from_map(img, mode="near_far", near=2.0, far=50.0)
    got = disp.depth[0, 0]
    assert got[-1].item() == pytest.approx(2.0) and got[0].item() == pytest.approx(50.0)
    expected = 1.0 / (1 / 50.0 + n * (1 / 2.0 - 1 / 50.0))  # linear in inverse depth
    assert torch.allclose(got, expected, rtol=1e-5)
    dep = D.depth_from_map(img, invert=True, mode="near_far", near=2.0, far=50.0)
    assert torch.allclose(dep.depth[0, 0], 2.0 + n * 48.0, rtol=1e-5)  # linear in depth
    metric = torch.tensor([[[0.5, 3.0, 2e5]]])
    assert torch.allclose(
        D.depth_from_map(metric, invert=True, mode="metric").depth, torch.tensor([[[0.5, 3.0, 1e4]]])
    )
    assert torch.allclose(
        D.depth_from_map(metric, mode="metric").depth, torch.tensor([[[2.0, 1 / 3.0, 1e-4]]])
    )
    with pytest.raises(ValueError):
        D.depth_from_map(img, mode="near_far", near=5.0, far=1.0)
    with pytest.raises(ValueError):
        D.depth_from_map(img, mode="bogus")


def test_preview_colormaps():
    for name in ("turbo", "inferno", "gray"):
        lut = D.colormap_lut(name)
        assert lut.shape == (256, 3) and lut.min() >= 0 and lut.max() <= 1
    turbo = D.colormap_lut("turbo")
    assert turbo[25, 2] > 2 * turbo[25, 0] and turbo[230, 0] > 2 * turbo[230, 2]  # blue far end, red near end
    inferno = D.colormap_lut("inferno")
    assert inferno[0].sum() < 0.05 and inferno[-1].sum() > 2.5  # black -> pale yellow
    assert (inferno.sum(-1)[1:] >= inferno.sum(-1)[:-1] - 1e-3).all()  # brightness rises
    v = D.depth_from_map(_ramp_image())
    img = D.depth_preview(v, "gray")
    assert img.shape == (2, 4, 5, 3)
    assert torch.allclose(img[..., 0], v.disparity, atol=1 / 255)  # gray: near = white
    no_disp = D.DepthVideo(v.depth.clone())
    assert torch.allclose(D.depth_preview(no_disp, "gray"), img, atol=2 / 255)
    with pytest.raises(ValueError):
        D.colormap_lut("jet")


# ---- depth files ---------------------------------------------------------------------------------------
def test_depth_file_round_trip(tmp_path):
    saved = D.depth_video_from_disparity(torch.rand(3, 4, 5), "test")
    path = D.write_depth_file(saved, tmp_path / "clip_depth.npz")
    with np.load(path) as data:
        assert sorted(data.files) == ["depth", "disparity"]
    values = D.read_depth_array(path)
    assert values.dtype == np.float32 and values.shape == (3, 4, 5)
    np.testing.assert_array_equal(values, saved.depth.numpy())
    loaded = D.depth_from_values(values, "depth", meta={"file": path.name})
    torch.testing.assert_close(loaded.depth, saved.depth, rtol=0, atol=0)
    assert loaded.disparity is None and loaded.meta == {"file": path.name}


def test_depth_files_other_layouts(tmp_path):
    one_map = np.full((4, 5), 2.0, dtype=np.float64)
    np.save(tmp_path / "map.npy", one_map)
    assert D.read_depth_array(tmp_path / "map.npy").shape == (1, 4, 5)  # one [H, W] map is one frame
    np.savez(tmp_path / "only.npz", values=np.arange(1, 21, dtype=np.int16).reshape(1, 4, 5))
    assert D.read_depth_array(tmp_path / "only.npz").dtype == np.float32  # the only array, whatever its name
    disparity = np.random.default_rng(0).random((2, 4, 5)).astype(np.float32)
    converted = D.depth_from_values(disparity, "disparity")  # DepthCrafter's saved .npz holds disparity
    torch.testing.assert_close(converted.depth, D.disparity_to_depth(torch.from_numpy(disparity)))


def _bad_depth_files(folder, marker) -> dict[str, str]:
    """File name -> what the refusal says, for each way a depth file can be wrong."""
    good = np.full((2, 4, 4), 3.0, dtype=np.float32)
    np.savez(folder / "pickled.npz", depth=np.array([CodeRunner(marker)], dtype=object))
    np.save(folder / "pickled.npy", np.array([CodeRunner(marker)], dtype=object), allow_pickle=True)
    np.savez_compressed(folder / "whole.npz", depth=good)
    data = (folder / "whole.npz").read_bytes()
    (folder / "truncated.npz").write_bytes(data[: len(data) // 2])
    (folder / "empty.npy").write_bytes(b"")
    np.savez(folder / "two.npz", a=good, b=good)
    np.savez(folder / "complex.npz", depth=good.astype(np.complex64))
    np.savez(folder / "words.npz", depth=np.array(["a", "b"]))
    np.savez(folder / "four_d.npz", depth=good[None])
    np.savez(folder / "no_frames.npz", depth=good[:0])
    nan = good.copy()
    nan[1, 2, 3] = np.nan
    np.savez(folder / "nan.npz", depth=nan)
    (folder / "depth.txt").write_text("3.0")
    return {
        "pickled.npz": "holds Python objects, which are never loaded",
        "pickled.npy": "holds Python objects, which are never loaded",
        "truncated.npz": "is not a readable .npz / .npy file",
        "empty.npy": "is not a readable .npz / .npy file",
        "two.npz": r"holds arrays \['a', 'b'\] but none named 'depth'",
        "complex.npz": "holds complex64 values; depth must be real numbers",
        "words.npz": "holds <U1 values",
        "four_d.npz": r"shape \[1, 2, 4, 4\]; save depth as \[T, H, W\]",
        "no_frames.npz": "holds no depth",
        "nan.npz": "contains NaN or infinite values",
        "depth.txt": "is not an .npz or .npy file",
    }


def test_bad_depth_files_are_refused_without_running_their_code(tmp_path):
    marker = tmp_path / "code_ran"
    for name, refusal in _bad_depth_files(tmp_path, marker).items():
        with pytest.raises(D.DepthFileError, match=f"^'{name}' .*{refusal}") as refused:
            D.read_depth_array(tmp_path / name)
        assert "Error" not in str(refused.value) and "allow_pickle" not in str(refused.value), name
    assert not marker.exists(), "a pickled depth file ran its code"


def test_depth_must_be_positive():
    with pytest.raises(D.DepthFileError, match="^'d.npz' has depth values <= 0; if it holds disparity, set content"):
        D.depth_from_values(np.zeros((1, 2, 2), np.float32), "depth", name="'d.npz'")
    with pytest.raises(ValueError, match="unknown content"):
        D.depth_from_values(np.ones((1, 2, 2), np.float32), "inverse depth")


# ---- windows -------------------------------------------------------------------------------------------
def test_window_starts():
    assert D.window_starts(49, 110, 25) == ([0], 49, 0)
    assert D.window_starts(8, 4, 2) == ([0, 2, 4], 4, 2)
    assert D.window_starts(9, 4, 2) == ([0, 2, 4, 6], 4, 2)
    starts, win, ov = D.window_starts(300, 110, 25)
    assert starts == [0, 85, 170, 255] and (win, ov) == (110, 25)  # published: while start < T - overlap


def test_blend_windows_formula_and_continuity():
    """Windows that disagree by a constant: the published blend ramps across the overlap instead of cutting."""
    ov, win, n = 5, 12, 26
    starts, _, _ = D.window_starts(n, win, ov)
    frames = torch.arange(n, dtype=torch.float32)
    done = None
    pieces = []
    for k, s in enumerate(starts):
        e = min(s + win, n)
        piece = (0.1 * frames[s:e] + 3.0 * k).view(1, -1, 1)  # smooth inside, offset 3 between windows
        pieces.append((s, piece))
        done = D.blend_windows(done, piece, ov)
    assert done.shape == (1, n, 1)
    out = done.flatten()
    # Exact published formula on the shared frames.
    w = torch.linspace(0, 1, ov)
    (s0, p0), (s1, p1) = pieces[0], pieces[1]
    shared = out[s1 : s1 + ov]
    assert torch.allclose(shared, p1.flatten()[:ov] * w + p0.flatten()[s1 - s0 : s1 - s0 + ov] * (1 - w))
    assert out[s1].item() == pytest.approx(p0.flatten()[s1 - s0].item())  # first shared frame: old window
    assert out[s1 + ov - 1].item() == pytest.approx(p1.flatten()[ov - 1].item())  # last: new window
    jumps = (out[1:] - out[:-1]).abs()
    within = 0.1
    assert jumps.max().item() <= within + 3.0 / (ov - 1) + 1e-5  # a ramp, never the 3.0 step
    hard_cut = torch.cat([p0.flatten()[: s1 - s0], p1.flatten()])
    assert (
        hard_cut[1:] - hard_cut[:-1]
    ).abs().max() > jumps.max() * 2  # the test can tell a cut from a blend
    # fp16 latents: mixed in float32 (the published weights are float32) and rounded once
    g = torch.Generator().manual_seed(0)
    old, new = (torch.randn(1, 30, 4, generator=g).half() for _ in range(2))
    mixed = D.blend_windows(old, new, 24)[:, 6:30]
    wf = torch.linspace(0, 1, 24).view(1, 24, 1)
    assert mixed.dtype == torch.float16
    assert torch.equal(mixed, (new[:, :24].float() * wf + old[:, 6:].float() * (1 - wf)).half())
