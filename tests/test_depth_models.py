"""ex4d.depth's models on tiny random weights: DepthCrafter's windowed inference and Depth Anything V2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ex4d import depth as D
from tests.test_depth import reference_depth

T, H, W = 8, 64, 64


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
    np.testing.assert_allclose(out.depth.numpy(), reference_depth(raw.double().numpy()), rtol=1e-4)


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
