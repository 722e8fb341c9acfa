"""ex4d.depth: published conversion, DepthCrafter windowed inference, Depth Anything, map conversions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ex4d import depth as D
from tests.bad_inputs import CodeRunner

T, H, W = 8, 64, 64


# ---- conversion ----------------------------------------------------------------------------------------
def _reference_depth(r: np.ndarray) -> np.ndarray:
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
    ref = _reference_depth(r.double().numpy())
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
    np.testing.assert_allclose(v.depth.numpy(), _reference_depth(img.mean(-1).double().numpy()), rtol=1e-5)
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


# ---- DepthCrafter on a tiny random model ---------------------------------------------------------------
@pytest.fixture(scope="module")
def crafter_dir(tmp_path_factory):
    from harness.tiny_depth import write_tiny_depthcrafter

    return write_tiny_depthcrafter(tmp_path_factory.mktemp("depthcrafter"))


@pytest.fixture(scope="module")
def crafter(crafter_dir):
    return D.DepthCrafter.from_pretrained(crafter_dir, dtype=torch.float32, device="cpu")


def _clip(t: int = T, h: int = H, w: int = W) -> torch.Tensor:
    """A smooth moving pattern: consecutive frames are similar, as in a video."""
    v = torch.linspace(0, 1, h).view(h, 1)
    u = torch.linspace(0, 1, w).view(1, w)
    frames = []
    for i in range(t):
        frames.append(
            torch.stack(
                [
                    (0.5 + 0.4 * torch.sin(6 * u + 0.3 * i)).expand(h, w),
                    (0.5 + 0.4 * torch.cos(5 * v - 0.2 * i)).expand(h, w),
                    (u + v).expand(h, w) / 2,
                ],
                dim=-1,
            )
        )
    return torch.stack(frames)


def test_folder_check_names_missing_files(tmp_path, crafter_dir):
    empty = D.check_depthcrafter_folder(tmp_path)
    assert not empty.ok and len(empty.missing) == len(D.DEPTHCRAFTER_LAYOUT)
    assert "DepthCrafter/unet/diffusion_pytorch_model.safetensors" in empty.message
    assert "stable-video-diffusion-img2vid-xt/scheduler/scheduler_config.json" in empty.message
    full = D.check_depthcrafter_folder(crafter_dir)
    assert full.ok and full.missing == [] and "complete" in full.message

    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(crafter_dir, broken)
    (broken / "stable-video-diffusion-img2vid-xt" / "image_encoder" / "model.safetensors").unlink()
    (broken / "stable-video-diffusion-img2vid-xt" / "feature_extractor" / "preprocessor_config.json").unlink()
    check = D.check_depthcrafter_folder(broken)
    assert [m.split(" ")[0] for m in check.missing] == [
        "stable-video-diffusion-img2vid-xt/image_encoder/model.safetensors",
        "stable-video-diffusion-img2vid-xt/feature_extractor/preprocessor_config.json",
    ]
    assert "missing 2 file(s)" in check.message and "model.fp16.safetensors" in check.message
    with pytest.raises(FileNotFoundError, match="image_encoder/model.safetensors"):
        D.DepthCrafter.from_pretrained(broken, dtype=torch.float32, device="cpu")


def test_fp16_variant_files_are_accepted(tmp_path, crafter_dir):
    import shutil

    alt = tmp_path / "variant"
    shutil.copytree(crafter_dir, alt)
    vae = alt / "stable-video-diffusion-img2vid-xt" / "vae"
    (vae / "diffusion_pytorch_model.safetensors").rename(vae / "diffusion_pytorch_model.fp16.safetensors")
    assert D.check_depthcrafter_folder(alt).ok
    model = D.DepthCrafter.from_pretrained(alt, dtype=torch.float32, device="cpu")
    ref = D.DepthCrafter.from_pretrained(crafter_dir, dtype=torch.float32, device="cpu")
    for a, b in zip(model.vae.state_dict().values(), ref.vae.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_depthcrafter_estimate_shape_range_and_progress(crafter):
    calls: list[tuple[int, int]] = []
    out = crafter.estimate(_clip(), progress=lambda s, n: calls.append((s, n)))
    assert isinstance(out, D.DepthVideo) and out.source == "depthcrafter"
    assert out.depth.shape == (T, H, W) and out.depth.dtype == torch.float32
    assert out.disparity.min().item() == 0.0 and out.disparity.max().item() == pytest.approx(1.0)
    assert out.depth.min().item() == pytest.approx(10000 / 3900, rel=1e-5) and out.depth.max().item() == 1e4
    assert torch.allclose(out.depth, D.disparity_to_depth(out.disparity, normalise=False))
    assert out.disparity.std() > 1e-3  # not a constant map
    assert calls == [(i, 5) for i in range(1, 6)]  # 5 published steps, one window
    assert out.meta["steps"] == 5 and out.meta["seed"] == 42 and out.meta["window"] == 110


def test_depthcrafter_raw_disparity_is_the_channel_mean_of_the_decode(crafter):
    frames = _clip(4)
    captured = {}
    orig = crafter.decode_disparity

    def spy(latents, chunk=8):
        captured["latents"] = latents
        return orig(latents, chunk)

    crafter.decode_disparity = spy
    try:
        disp = crafter.estimate_disparity(frames)
    finally:
        del crafter.decode_disparity
    vae = crafter.vae
    with torch.no_grad():
        img = vae.decode(captured["latents"][0] / vae.config.scaling_factor, num_frames=4).sample
    expected = ((img / 2 + 0.5).clamp(0, 1)).mean(dim=1)
    assert torch.allclose(disp, expected, atol=1e-5)
    assert 0.0 <= disp.min() and disp.max() <= 1.0


def test_depthcrafter_deterministic_for_a_seed(crafter):
    frames = _clip()
    a = crafter.estimate_disparity(frames, seed=42)
    b = crafter.estimate_disparity(frames, seed=42)
    c = crafter.estimate_disparity(frames, seed=7)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-4


def test_the_encode_takes_four_frames_at_once_and_its_chunk_changes_no_result(crafter):
    """The VAE's encoder and CLIP work frame by frame (only the decoder is temporal, in the published chunks of
    8), so the encode runs 4 frames at a time for its memory and gets what it gets from 8 at a time."""
    frames = _clip()
    assert T == 8  # one chunk of 8, two of 4
    encoded, decoded = [], []
    hooks = [crafter.vae.encoder.register_forward_pre_hook(lambda _m, args: encoded.append(args[0].shape[0])),
             crafter.vae.decoder.register_forward_pre_hook(lambda _m, args: decoded.append(args[0].shape[0]))]
    try:
        default = crafter.estimate_disparity(frames, steps=2)
    finally:
        for hook in hooks:
            hook.remove()
    assert encoded == [4, 4] and decoded == [8]
    torch.testing.assert_close(crafter.estimate_disparity(frames, steps=2, encode_chunk=8), default, rtol=0,
                               atol=1e-5)
    video = frames.permute(0, 3, 1, 2) * 2 - 1
    torch.testing.assert_close(crafter.encode_latents(video), crafter.encode_latents(video, chunk=8), rtol=1e-5,
                               atol=1e-6)
    torch.testing.assert_close(crafter.encode_frames(video), crafter.encode_frames(video, chunk=8), rtol=1e-5,
                               atol=1e-6)


def test_windowed_equals_single_window_when_the_window_covers_the_clip(crafter):
    frames = _clip()
    one = crafter.estimate_disparity(frames, window=110, overlap=25)
    starts = []
    exact = crafter.estimate_disparity(frames, window=T, overlap=3, window_hook=lambda s, _: starts.append(s))
    assert starts == [0] and torch.equal(one, exact)  # a window exactly the clip's length is one window
    windowed = crafter.estimate_disparity(frames, window=4, overlap=2)
    assert windowed.shape == one.shape
    assert (windowed - one).abs().max() > 1e-4  # windows really were used


def test_window_seams_blend_and_agree(crafter):
    """Window 4, overlap 2 on 10 frames.

    1. The final latents are exactly the published blend of the windows' latents (alignment and weights).
    2. On shared frames the two windows agree far better than neighbouring frames of one window differ:
       the published overlap init (previous result + the rotated noise) makes the seam continuous. Fresh
       noise for the new window, or a window fed the wrong frames' conditioning, breaks this.
    3. In the decoded disparity, no step across a seam exceeds the largest step inside a window by much.
    """
    n = 10
    frames = _clip(n)
    windows: dict[int, torch.Tensor] = {}
    captured = {}
    orig = crafter.decode_disparity

    def spy(latents, chunk=8):
        captured["latents"] = latents.clone()
        return orig(latents, chunk)

    crafter.decode_disparity = spy
    try:
        disp = crafter.estimate_disparity(
            frames, window=4, overlap=2, window_hook=lambda s, lat: windows.__setitem__(s, lat)
        )
    finally:
        del crafter.decode_disparity
    starts = sorted(windows)
    assert starts == [0, 2, 4, 6]
    final = captured["latents"][0]
    assert final.shape[0] == n

    # 1. independent re-blend
    expect = windows[0][0].clone()
    w = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1)
    for s in starts[1:]:
        new = windows[s][0]
        expect[s : s + 2] = new[:2] * w + expect[s : s + 2] * (1 - w)
        expect = torch.cat([expect, new[2:]], dim=0)
    assert torch.allclose(final, expect, atol=1e-6)

    # 2. agreement on shared frames vs variation inside a window
    for a, b in zip(starts, starts[1:], strict=False):
        old_shared = windows[a][0, b - a : b - a + 2]
        new_shared = windows[b][0, :2]
        disagreement = (old_shared - new_shared).abs().mean().item()
        within = (windows[a][0, 1:] - windows[a][0, :-1]).abs().mean(dim=(1, 2, 3)).min().item()
        assert disagreement < 0.5 * within, (a, b, disagreement, within)

    # 3. decoded result: seam steps are like the steps inside windows
    steps_ = (disp[1:] - disp[:-1]).abs().mean(dim=(1, 2))
    seam_idx = [s for s in starts[1:]]  # step s -> s+1 is where the blend switches windows (overlap 2)
    inside = [i for i in range(n - 1) if i not in seam_idx]
    assert steps_[seam_idx].max() <= 1.5 * steps_[inside].max()


def test_later_windows_start_from_the_previous_result_and_the_rotated_noise(crafter):
    """Published long-video init: window k reuses window k-1's noise rotated by ``overlap`` frames, and its
    shared frames start at (blended result so far) + that noise at the first sigma."""
    inputs: list[torch.Tensor] = []
    windows: dict[int, torch.Tensor] = {}
    hook = crafter.unet.register_forward_pre_hook(lambda _m, args: inputs.append(args[0][:, :, :4].clone()))
    try:
        crafter.estimate_disparity(
            _clip(), window=4, overlap=2, steps=2, window_hook=lambda s, lat: windows.__setitem__(s, lat)
        )
    finally:
        hook.remove()
    sched = crafter.scheduler
    init, sigma0 = float(sched.init_noise_sigma), float(sched.sigmas[0])
    first = inputs[0::2]  # step-0 UNet inputs of windows 0, 2, 4 (scaled by 1 / sqrt(sigma0^2 + 1))
    assert len(first) == 3
    done = None
    for k, start in enumerate([0, 2, 4]):
        if k:
            recovered = first[k][0, :2] * init - first[k - 1][0, 2:4] * sigma0
            assert torch.allclose(recovered, done[0, -2:], atol=2e-3), (recovered - done[0, -2:]).abs().max()
            # the rest is window k-1's noise for its first frames: noise_0[0:2], then noise_0[2:4]
            raw = first[0][0, 2 * (k - 1) : 2 * k]
            assert torch.allclose(first[k][0, 2:], raw, atol=1e-5)
        done = D.blend_windows(done, windows[start], 2)


def test_cancel_and_progress_over_windows(crafter):
    calls: list[tuple[int, int]] = []
    crafter.estimate_disparity(
        _clip(), window=4, overlap=2, steps=2, progress=lambda s, n: calls.append((s, n))
    )
    assert calls == [(i, 6) for i in range(1, 7)]  # 3 windows x 2 steps

    seen: list[int] = []

    def cancel() -> bool:
        return len(seen) >= 3

    with pytest.raises(D.Cancelled):
        crafter.estimate_disparity(
            _clip(), window=4, overlap=2, steps=2, progress=lambda s, n: seen.append(s), cancel=cancel
        )
    assert seen == [1, 2, 3]


def test_guidance_resize_and_classic_attention(crafter_dir, crafter):
    frames = _clip(4, 48, 80)  # not multiples of 64: processed at 64 x 64, returned at 48 x 80
    base = crafter.estimate(frames, steps=2)
    assert base.depth.shape == (4, 48, 80)
    guided = crafter.estimate_disparity(frames, steps=2, guidance=1.5)
    assert (guided - crafter.estimate_disparity(frames, steps=2)).abs().max() > 1e-5
    # guidance <= 1 is no guidance at all (SVD's do_classifier_free_guidance is guidance > 1)
    assert torch.equal(crafter.estimate(frames, steps=2, guidance=0.5).depth, base.depth)
    classic = D.DepthCrafter.from_pretrained(crafter_dir, dtype=torch.float32, device="cpu", attention="classic")
    assert set(classic.modules()) == {"unet", "vae", "image_encoder"}
    assert torch.allclose(classic.estimate(frames, steps=2).depth, base.depth, rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError):
        classic.set_attention("flash9")


def test_unet_forward_uses_one_token_per_frame(crafter):
    """DepthCrafter's forward: frame i attends to embedding i only (diffusers' own forward shares one)."""
    unet = crafter.unet
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 8, 8, 8, generator=gen)
    emb = torch.randn(1, 3, unet.config.cross_attention_dim, generator=gen)
    ids = torch.tensor([[7.0, 127.0, 0.02]])
    with torch.no_grad():
        a = unet(x, torch.tensor(1.0), emb, ids)
        emb2 = emb.clone()
        emb2[0, 2] += 1.0
        b = unet(x, torch.tensor(1.0), emb2, ids)
    assert a.shape == (1, 3, 4, 8, 8)
    assert (a[0, 2] - b[0, 2]).abs().max() > 1e-4
    # frames 0 and 1 change only through temporal mixing, less than frame 2 itself
    assert (a[0, :2] - b[0, :2]).abs().max() < (a[0, 2] - b[0, 2]).abs().max()


# ---- Depth Anything V2 ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def anything(tmp_path_factory):
    from harness.tiny_depth import write_tiny_depth_anything

    folder = write_tiny_depth_anything(tmp_path_factory.mktemp("depth_anything"))
    return D.DepthAnything.from_pretrained(folder, dtype=torch.float32, device="cpu")


def test_depth_anything_runs_and_normalises(anything):
    frames = _clip(5, 48, 64)
    calls: list[tuple[int, int]] = []
    out = anything.estimate(frames, batch_size=2, input_size=126, progress=lambda s, n: calls.append((s, n)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert out.source == "depth_anything" and out.depth.shape == (5, 48, 64)
    assert out.disparity.min().item() == 0.0 and out.disparity.max().item() == pytest.approx(1.0)
    assert out.depth.min().item() == pytest.approx(10000 / 3900, rel=1e-5) and out.depth.max().item() == 1e4
    raw = anything.estimate_disparity(frames, batch_size=5, input_size=126)
    assert raw.std() > 1e-3
    assert torch.allclose(out.disparity, D.normalise_clip(raw), atol=1e-5)  # batching does not matter
    np.testing.assert_allclose(out.depth.numpy(), _reference_depth(raw.double().numpy()), rtol=1e-4)


def test_depth_anything_smoothing_and_input_size(anything, tmp_path):
    frames = _clip(6, 48, 64)
    assert D.check_depth_anything_folder(tmp_path).missing[0] == "config.json"
    raw = anything.estimate_disparity(frames, input_size=126)
    smooth = anything.estimate(frames, smoothing=0.3, input_size=126)
    expect = D.normalise_clip(D.temporal_ema(D.normalise_clip(raw), 0.3))
    assert torch.allclose(smooth.disparity, expect, atol=1e-5)
    flicker = lambda d: (d[1:] - d[:-1]).abs().mean().item()  # noqa: E731
    assert flicker(smooth.disparity) < flicker(D.normalise_clip(raw))
    from ex4d.depth.anything import dpt_input_size

    assert dpt_input_size(480, 854, 518, 14) == (518, 924)  # shorter side to 518, multiple of 14
    assert dpt_input_size(64, 64, 518, 14) == (518, 518)


# ---- inference memory ----------------------------------------------------------------------------------
GIB = 2**30
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
# Peak GPU memory allocated beyond the weights, GiB, measured on an H100 (torch 2.11, diffusers 0.35,
# transformers 5.17, random full-size weights; a probe like bench/bench_depth.py per stage, 1 or 5 steps):
# dtype, attention, width, height, frames, window, GiB
DEPTHCRAFTER_MEASURED = [
    ("fp16", "sdpa", 512, 512, 25, 110, 6.32), ("fp16", "sdpa", 512, 512, 49, 110, 6.43),
    ("fp16", "sdpa", 512, 512, 110, 110, 7.59), ("fp16", "sdpa", 1024, 576, 25, 110, 14.00),
    ("fp16", "sdpa", 1024, 576, 49, 110, 14.24), ("fp16", "sdpa", 1024, 576, 110, 110, 17.09),
    ("fp16", "sdpa", 512, 320, 25, 110, 4.03), ("fp16", "sdpa", 512, 320, 49, 110, 4.10),
    ("fp16", "sdpa", 512, 320, 110, 110, 4.75), ("fp16", "sdpa", 512, 512, 200, 110, 7.87),
    ("fp16", "sdpa", 512, 512, 49, 25, 6.43),
    ("bf16", "sdpa", 512, 512, 25, 110, 4.87), ("bf16", "sdpa", 512, 512, 49, 110, 4.97),
    ("bf16", "sdpa", 512, 512, 110, 110, 7.60), ("bf16", "sdpa", 1024, 576, 25, 110, 10.96),
    ("bf16", "sdpa", 1024, 576, 49, 110, 11.18), ("bf16", "sdpa", 1024, 576, 110, 110, 17.09),
    ("bf16", "sdpa", 512, 320, 25, 110, 3.04), ("bf16", "sdpa", 512, 320, 49, 110, 3.11),
    ("bf16", "sdpa", 512, 320, 110, 110, 4.75), ("bf16", "sdpa", 512, 512, 200, 110, 7.87),
    ("bf16", "sdpa", 512, 512, 49, 25, 4.97),
    ("bf16", "classic", 512, 512, 25, 110, 8.56), ("bf16", "classic", 512, 512, 49, 110, 16.78),
    ("bf16", "classic", 512, 320, 49, 110, 6.90), ("bf16", "classic", 512, 320, 110, 110, 15.49),
    ("fp32", "sdpa", 512, 320, 25, 110, 6.06), ("fp32", "sdpa", 512, 320, 49, 110, 6.17),
]
# The figures above and below were measured with the VAE encoding 8 frames at once, as it decodes them.
MEASURED_ENCODE_CHUNK = 8
# bench/results/depth_h100.txt: 49 frames, SDPA, peak GiB with the weights (2254.4 M parameters, 4.20 GiB)
DEPTHCRAFTER_BENCH = [("fp16", 512, 512, 10.7), ("fp16", 1024, 576, 18.5), ("bf16", 512, 512, 8.5),
                      ("bf16", 1024, 576, 13.8)]
# Depth Anything V2 (fusion_hidden_size: Small 64, Base 128, Large 256), 64 frames: fusion, dtype, width,
# height, batch, GiB
DEPTH_ANYTHING_MEASURED = [
    (64, "fp16", 512, 512, 1, 0.147), (64, "fp16", 1024, 576, 32, 4.825), (64, "fp32", 1024, 576, 1, 0.464),
    (64, "fp32", 512, 320, 32, 3.336), (128, "fp16", 512, 512, 8, 1.121), (128, "fp16", 1024, 576, 32, 7.665),
    (128, "fp32", 512, 320, 1, 0.205), (256, "fp16", 512, 512, 1, 0.289), (256, "fp16", 512, 512, 8, 1.876),
    (256, "fp16", 1024, 576, 32, 13.049), (256, "fp16", 512, 320, 8, 1.168), (256, "fp32", 1024, 576, 32, 26.031),
]


@pytest.mark.parametrize(("dtype", "attention", "width", "height", "frames", "window", "gib"),
                         DEPTHCRAFTER_MEASURED)
def test_depthcrafter_inference_memory_covers_the_measured_peaks(dtype, attention, width, height, frames,
                                                                 window, gib):
    estimate = D.depthcrafter_inference_memory(frames, height, width, window, DTYPES[dtype], attention,
                                               encode_chunk=MEASURED_ENCODE_CHUNK) / GIB
    assert gib <= estimate <= 1.12 * gib


@pytest.mark.parametrize(("dtype", "width", "height", "peak"), DEPTHCRAFTER_BENCH)
def test_depthcrafter_inference_memory_against_the_benchmark(dtype, width, height, peak):
    weights = 2254.4e6 * 2 / GIB
    estimate = D.depthcrafter_inference_memory(49, height, width, 110, DTYPES[dtype],
                                               encode_chunk=MEASURED_ENCODE_CHUNK) / GIB
    # the benchmark's bf16 runs predate the depth review fixes, after which the decode needs 0.7 / 1.6 GiB
    # more (the re-measured figures above)
    assert peak - weights <= estimate <= (1.05 if dtype == "fp16" else 1.25) * (peak - weights)


@pytest.mark.parametrize(("fusion", "dtype", "width", "height", "batch", "gib"), DEPTH_ANYTHING_MEASURED)
def test_depth_anything_inference_memory_covers_the_measured_peaks(fusion, dtype, width, height, batch, gib):
    estimate = D.depth_anything_inference_memory(64, height, width, batch, DTYPES[dtype], fusion) / GIB
    assert gib <= estimate <= 1.17 * gib


def test_inference_memory_grows_with_the_work():
    crafter = D.depthcrafter_inference_memory
    base = crafter(49, 512, 512, 110, torch.bfloat16)
    assert crafter(49, 576, 1024, 110, torch.bfloat16) > base  # larger frames
    assert crafter(110, 512, 512, 110, torch.bfloat16) > crafter(80, 512, 512, 110, torch.bfloat16) > base
    assert crafter(200, 512, 512, 110, torch.bfloat16) < crafter(200, 512, 512, 150, torch.bfloat16)  # window
    assert crafter(49, 512, 512, 110, torch.float16, encode_chunk=8) > base  # the fp16 VAE encodes in fp32
    assert crafter(49, 512, 512, 110, torch.bfloat16, "classic") > 2 * base  # the explicit attention matrix
    anything = D.depth_anything_inference_memory
    small = anything(64, 512, 512, 8, torch.float16, 256)
    assert anything(64, 512, 512, 16, torch.float16, 256) > small  # batch
    assert anything(64, 576, 1024, 8, torch.float16, 256) > small  # size
    assert anything(64, 512, 512, 8, torch.float32, 256) > small  # dtype
    assert anything(64, 512, 512, 8, torch.float16, 64) < small  # a smaller model
    assert anything(4, 512, 512, 8, torch.float16, 256) < small  # a batch no larger than the clip
    with pytest.raises(ValueError, match="window"):
        crafter(49, 512, 512, 0, torch.float16)
    with pytest.raises(ValueError, match="batch_size"):
        anything(49, 512, 512, 0, torch.float16)


def test_the_decode_is_the_peak_at_49_frames_of_512x512_in_fp16():
    """Encoding 4 frames at once in fp32 needs less than decoding 8 in fp16 (in chunks of 8 the encode was the
    peak: 6.9 GB against the decode's 5.2 GB), so fp16 needs what bf16 does: the decode, whose peak the bf16
    runs measured."""
    fp16 = D.depthcrafter_inference_memory(49, 512, 512, 110, torch.float16)
    assert fp16 == D.depthcrafter_inference_memory(49, 512, 512, 110, torch.bfloat16)
    assert fp16 < D.depthcrafter_inference_memory(49, 512, 512, 110, torch.float16, encode_chunk=8) - 1.5 * GIB
    measured_bf16 = next(gib for dtype, attention, width, height, frames, window, gib in DEPTHCRAFTER_MEASURED
                         if (dtype, attention, width, height, frames, window) == ("bf16", "sdpa", 512, 512, 49, 110))
    assert measured_bf16 <= fp16 / GIB <= 1.12 * measured_bf16


def test_models_estimate_their_own_inference_memory(crafter, anything):
    assert crafter.inference_memory(T, H, W, 5) == D.depthcrafter_inference_memory(T, H, W, 5, torch.float32)
    crafter.set_attention("classic")
    try:
        assert crafter.inference_memory(T, H, W, 5) == D.depthcrafter_inference_memory(
            T, H, W, 5, torch.float32, "classic")
    finally:
        crafter.set_attention("sdpa")
    assert anything.inference_memory(T, H, W, 3) == D.depth_anything_inference_memory(
        T, H, W, 3, torch.float32, anything.model.config.fusion_hidden_size)


# ---- GPU: full-size DepthCrafter (random weights from the real configs) ------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("size", [(512, 512), (576, 1024)])
def test_full_size_depthcrafter_49_frames_gpu(size, dtype):
    h, w = size
    from harness.tiny_depth import build_full_size_depthcrafter

    model = build_full_size_depthcrafter(DTYPES[dtype])
    frames = torch.rand(49, h, w, 3, generator=torch.Generator().manual_seed(0))
    torch.cuda.synchronize()
    weights = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = model.estimate(frames, steps=1)
    assert out.depth.shape == (49, h, w)
    assert torch.isfinite(out.depth).all()
    used = torch.cuda.max_memory_allocated() - weights
    print(f"{w}x{h}x49 {dtype}, 1 step: {used / GIB:.2f} GiB beyond the weights")
    # 1.25: other diffusers versions' VAE decode needs up to 1.6 GiB less (bench/results/depth_h100.txt)
    assert used <= model.inference_memory(49, h, w) <= 1.25 * used
    del model
    torch.cuda.empty_cache()
