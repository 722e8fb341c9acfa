"""ex4d.adapter (reading EX-4D checkpoints, the camera encoder) and the encoder's published inputs:
ex4d.resize, ex4d.masks, ex4d.camera_inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ex4d import adapter as ad
from ex4d import camera_inputs, masks, resize
from harness.tiny_models import tiny_ex4d_state_dict, write_tiny_ex4d_checkpoint

DIM, LAYERS, FFN, HIDDEN = 128, 2, 256, 48


@pytest.mark.parametrize("fmt", ["ckpt", "safetensors"])
@pytest.mark.parametrize("key_style", ["peft", "plain", "prefixed"])
def test_load_every_key_style_and_format(tmp_path, fmt, key_style):
    path = write_tiny_ex4d_checkpoint(
        tmp_path / f"a.{fmt}", DIM, LAYERS, FFN, hidden=HIDDEN, fmt=fmt, key_style=key_style
    )
    a = ad.load_adapter(path)
    assert a.rank == 16 and a.alpha == 16.0
    assert a.hidden_dim == HIDDEN and a.out_dim == DIM and a.num_blocks == LAYERS
    assert len(a.lora) == LAYERS * len(ad.LORA_TARGETS)
    A, B = a.lora["blocks.1.ffn.0"]
    assert A.shape == (16, DIM) and B.shape == (FFN, 16)
    assert a.lora["blocks.0.ffn.2"][0].shape == (16, FFN)
    assert set(a.encoder_state) == set(ad.ENCODER_KEYS)
    assert not a.ignored_keys
    # the tensors are the ones written, whatever the names
    raw = tiny_ex4d_state_dict(DIM, LAYERS, FFN, hidden=HIDDEN, key_style="peft")
    assert torch.equal(A, raw["blocks.1.ffn.0.lora_A.default.weight"])
    assert torch.equal(a.encoder_state["latent_encoder.2.weight"], raw["latent_encoder.2.weight"])


def test_published_names_and_weights_only(tmp_path):
    path = write_tiny_ex4d_checkpoint(tmp_path / "ex4d.ckpt", DIM, LAYERS, FFN, hidden=HIDDEN)
    sd = torch.load(path, weights_only=True)
    assert "blocks.0.self_attn.q.lora_A.default.weight" in sd
    assert sd["blocks.0.self_attn.q.lora_B.default.weight"].shape == (DIM, 16)
    assert "blocks.0.cross_attn.k_img.lora_A.default.weight" not in sd
    assert sd["latent_encoder.0.weight"].shape == (HIDDEN, 32, 1, 1, 1)
    assert sd["latent_patch_embedding.weight"].shape == (DIM, HIDDEN, 1, 2, 2)


def test_wrapped_state_dict_and_alpha_entries(tmp_path):
    sd = tiny_ex4d_state_dict(DIM, 1, FFN, rank=8, hidden=HIDDEN, alpha=4.0)
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "w.pt")
    a = ad.load_adapter(tmp_path / "w.pt")
    assert a.rank == 8 and a.alpha == 4.0
    A, B = a.lora["blocks.0.self_attn.o"]
    assert torch.equal(A, sd["blocks.0.self_attn.o.lora_A.default.weight"])
    assert torch.equal(B, sd["blocks.0.self_attn.o.lora_B.default.weight"])


def test_non_ex4d_file_is_refused_with_what_was_found(tmp_path):
    torch.save(
        {"patch_embedding.weight": torch.zeros(4, 36, 1, 2, 2), "head.modulation": torch.zeros(1, 2, 4)},
        tmp_path / "dit.ckpt",
    )
    with pytest.raises(ad.AdapterError) as e:
        ad.load_adapter(tmp_path / "dit.ckpt")
    msg = str(e.value)
    assert "not an EX-4D checkpoint" in msg and "patch_embedding.weight" in msg and "dit.ckpt" in msg


def test_broken_checkpoints_are_refused(tmp_path):
    sd = tiny_ex4d_state_dict(DIM, 1, FFN, hidden=HIDDEN)
    no_enc = {k: v for k, v in sd.items() if not k.startswith("latent_patch_embedding")}
    torch.save(no_enc, tmp_path / "a.ckpt")
    with pytest.raises(ad.AdapterError, match="missing latent_patch_embedding.weight"):
        ad.load_adapter(tmp_path / "a.ckpt")
    half = {k: v for k, v in sd.items() if "blocks.0.ffn.0.lora_B" not in k}
    torch.save(half, tmp_path / "b.ckpt")
    with pytest.raises(ad.AdapterError, match="blocks.0.ffn.0 has only lora_A"):
        ad.load_adapter(tmp_path / "b.ckpt")
    bad = dict(sd, **{"latent_encoder.2.weight": torch.zeros(HIDDEN, HIDDEN + 1, 1, 1, 1)})
    torch.save(bad, tmp_path / "c.ckpt")
    with pytest.raises(ad.AdapterError, match=r"latent_encoder.2.weight has shape \[48, 49, 1, 1, 1\]"):
        ad.load_adapter(tmp_path / "c.ckpt")
    (tmp_path / "d.ckpt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ad.AdapterError, match="not a weights-only checkpoint .damaged"):
        ad.load_adapter(tmp_path / "d.ckpt")
    with pytest.raises(ad.AdapterError, match="not found"):
        ad.load_adapter(tmp_path / "missing.ckpt")


def test_pickled_objects_are_not_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.ckpt")
    with pytest.raises(ad.AdapterError, match="weights-only"):
        ad.load_adapter(tmp_path / "evil.ckpt")


def test_save_safetensors_roundtrip(tmp_path):
    a = ad.load_adapter(
        write_tiny_ex4d_checkpoint(tmp_path / "a.ckpt", DIM, LAYERS, FFN, rank=4, hidden=HIDDEN, alpha=2.0)
    )
    out = ad.save_safetensors(a, tmp_path / "conv" / "a.safetensors")
    b = ad.load_adapter(out)
    assert b.rank == 4 and b.alpha == 2.0 and b.hidden_dim == HIDDEN
    # the alpha travels with the tensors: a renamed copy (models/ex4d takes .ckpt too) keeps it
    renamed = tmp_path / "renamed.ckpt"
    renamed.write_bytes(out.read_bytes())
    assert ad.load_adapter(renamed).alpha == 2.0
    assert set(a.lora) == set(b.lora)
    for k in a.lora:
        assert torch.equal(a.lora[k][0], b.lora[k][0]) and torch.equal(a.lora[k][1], b.lora[k][1])
    for k in ad.ENCODER_KEYS:
        assert torch.equal(a.encoder_state[k], b.encoder_state[k])
    assert "EX-4D adapter" in a.describe()


def test_camera_encoder_matches_formulas(tmp_path):
    a = ad.load_adapter(write_tiny_ex4d_checkpoint(tmp_path / "a.ckpt", DIM, 1, FFN, hidden=HIDDEN))
    enc = a.camera_encoder()
    names = {n for n, _ in enc.named_parameters()}
    assert names == set(ad.ENCODER_KEYS)
    x = torch.randn(1, 32, 3, 4, 6)
    s = a.encoder_state
    h = torch.einsum("oc,bcthw->bothw", s["latent_encoder.0.weight"][:, :, 0, 0, 0], x)
    h = F.silu(h + s["latent_encoder.0.bias"][None, :, None, None, None])
    h = torch.einsum("oc,bcthw->bothw", s["latent_encoder.2.weight"][:, :, 0, 0, 0], h)
    h = F.silu(h + s["latent_encoder.2.bias"][None, :, None, None, None])
    h = torch.einsum("oc,bcthw->bothw", s["latent_encoder.4.weight"][:, :, 0, 0, 0], h)
    h = h + s["latent_encoder.4.bias"][None, :, None, None, None]
    # (1,2,2) patches, stride (1,2,2): [b, c, t, h/2, 2, w/2, 2]
    p = h.reshape(1, HIDDEN, 3, 2, 2, 3, 2)
    w = s["latent_patch_embedding.weight"][:, :, 0]  # [dim, hidden, 2, 2]
    expected = (
        torch.einsum("ocij,bcthiwj->bothw", w, p)
        + s["latent_patch_embedding.bias"][None, :, None, None, None]
    )
    out = enc(x)
    assert out.shape == (1, DIM, 3, 2, 3)
    assert torch.allclose(out, expected, atol=1e-5, rtol=1e-4)


def brute_force_erode(mask: torch.Tensor, k: int) -> torch.Tensor:
    """cv2.erode with ones((k, k)) and the default anchor/border, pixel by pixel."""
    h, w = mask.shape
    a = k // 2
    out = torch.empty_like(mask)
    for y in range(h):
        for x in range(w):
            ys = range(max(0, y - a), min(h, y - a + k))
            xs = range(max(0, x - a), min(w, x - a + k))
            out[y, x] = min(mask[yy, xx] for yy in ys for xx in xs)
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_erosion_matches_opencv_semantics(k):
    mask = (torch.rand(13, 11, generator=torch.Generator().manual_seed(k)) > 0.25).float()
    mask[4, 5] = 0.3
    assert torch.equal(masks.erode_mask(mask, k), brute_force_erode(mask, k))
    full = torch.ones(2, 9, 9)
    assert torch.equal(masks.erode_mask(full, k), full)  # the border never erodes


def test_prepare_camera_inputs_published_mapping():
    T, H, W = 5, 16, 16
    colour = torch.rand(T, H, W, 3, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(T, H, W)
    mask[1:, 4:10, 6:12] = 0.0
    mask[2, 0, 0] = 0.6  # above 0.5 -> visible (when not eroded)
    inputs = camera_inputs.prepare_camera_inputs(colour, mask, erosion=1)
    m = (mask > 0.5).float()
    assert torch.equal(inputs.binary_mask, m)
    assert torch.allclose(inputs.colour, colour * m[..., None] * 2 - 1)
    assert set(inputs.mask.unique().tolist()) == {-3.0, 1.0}
    assert inputs.mask.shape == (T, H, W, 3)
    assert torch.equal(inputs.mask[1, 5, 7], torch.tensor([-3.0, -3.0, -3.0]))
    assert inputs.colour[1, 5, 7].tolist() == [-1.0, -1.0, -1.0]
    eroded = camera_inputs.prepare_camera_inputs(colour, mask, erosion=3)
    assert eroded.binary_mask.sum() < m.sum()  # the hole grew by one pixel on each side
    assert eroded.binary_mask[1, 3, 7] == 0 and m[1, 3, 7] == 1
    with pytest.raises(ValueError, match="does not match"):
        camera_inputs.prepare_camera_inputs(colour, mask[:, :8])


def test_camera_latents():
    seen = []

    def fake_encode(video):
        seen.append(video.clone())
        return video.mean(dim=-1)[None, None].repeat(1, 16, 1, 1, 1)[:, :, ::4, ::8, ::8]

    colour = torch.rand(5, 16, 16, 3)
    inputs = camera_inputs.prepare_camera_inputs(colour, torch.ones(5, 16, 16), erosion=5)
    lat = camera_inputs.camera_latents(inputs, fake_encode)
    assert lat.shape == (1, 32, 2, 2, 2)
    assert torch.equal(seen[0], colour * 2 - 1) and torch.all(seen[1] == 1.0)


def test_published_erosion_is_drawn_per_frame_and_seeded():
    kernels = masks.published_erosion_kernels(49, seed=3)
    assert len(kernels) == 49 and set(kernels) <= set(range(2, 9))
    assert len(set(kernels)) > 3  # a kernel per frame, not one per run
    assert kernels == masks.published_erosion_kernels(49, seed=3)
    assert kernels != masks.published_erosion_kernels(49, seed=4)
    assert set(sum((masks.published_erosion_kernels(49, s) for s in range(5)), [])) == set(range(2, 9))
    assert masks.erosion_kernels(4, masks.EROSION_RANDOM, 5, seed=3) == kernels[:4]
    assert masks.erosion_kernels(4, masks.EROSION_FIXED, 5, seed=3) == [5, 5, 5, 5]
    with pytest.raises(ValueError, match="mode must be one of fixed, random per frame"):
        masks.erosion_kernels(4, "sometimes", 5, seed=3)


def test_per_frame_erosion_erodes_each_frame_with_its_kernel():
    T, H, W = 6, 19, 17
    mask = (torch.rand(T, H, W, generator=torch.Generator().manual_seed(1)) > 0.2).float()
    kernels = masks.published_erosion_kernels(T, seed=0)
    inputs = camera_inputs.prepare_camera_inputs(torch.rand(T, H, W, 3), mask, erosion=kernels)
    for t, k in enumerate(kernels):
        assert torch.equal(inputs.binary_mask[t], (brute_force_erode(mask[t], k) > 0.5).float())
    with pytest.raises(ValueError, match="erosion: 2 kernel sizes for 6"):
        camera_inputs.prepare_camera_inputs(torch.rand(T, H, W, 3), mask, erosion=[3, 3])


def bilinear_stretch_reference(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """cv2.resize(INTER_LINEAR) of [H, W, C], pixel by pixel: source = (dst + 0.5) * scale - 0.5, clamped."""
    h, w = image.shape[:2]

    def taps(dst: int, scale: float, size: int) -> tuple[int, int, float]:
        src = min(max((dst + 0.5) * scale - 0.5, 0.0), size - 1.0)
        lo = int(src)
        return lo, min(lo + 1, size - 1), src - lo

    out = torch.empty(height, width, image.shape[2])
    for y in range(height):
        y0, y1, fy = taps(y, h / height, h)
        for x in range(width):
            x0, x1, fx = taps(x, w / width, w)
            top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
            bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
            out[y, x] = top * (1 - fy) + bottom * fy
    return out


@pytest.mark.parametrize("size", [(32, 32), (48, 16), (16, 32)])
def test_stretch_is_the_published_bilinear_resize(size):
    frames = torch.rand(2, 20, 32, 3, generator=torch.Generator().manual_seed(2))
    out = resize.resize_video(frames, *size, mode=resize.RESIZE_STRETCH)
    assert out.shape == (2, size[1], size[0], 3)
    for t in range(2):
        assert torch.allclose(out[t], bilinear_stretch_reference(frames[t], *size), atol=1e-5)


@pytest.mark.parametrize(
    "render,box,expected",
    [
        ((512, 320), (512, 512), (512, 320)),  # the example: the render's own size, no resampling
        ((1024, 576), (512, 512), (512, 288)),
        ((256, 160), (512, 512), (512, 320)),  # scaled up to fill the box
        ((512, 320), (832, 480), (768, 480)),
        ((500, 300), (512, 512), (512, 304)),  # 307.2 rounded to a multiple of 16
        ((320, 512), (512, 512), (320, 512)),
        ((2000, 10), (512, 512), (512, 16)),
    ],
)
def test_render_aspect_fits_the_box(render, box, expected):
    assert resize.generation_size(*render, *box) == expected
    assert resize.generation_size(*render, *box, mode=resize.RESIZE_STRETCH) == box
    assert resize.generation_size(*render, *box, mode=resize.RESIZE_CROP) == box


def test_render_aspect_keeps_a_fitting_render_untouched():
    frames = torch.rand(3, 320, 512, 3)
    assert torch.equal(resize.resize_video(frames, 512, 512), frames)
    mask = torch.rand(3, 320, 512)
    assert resize.resize_video(mask, 512, 512).shape == (3, 320, 512)
    # a size that is not a multiple of 16 is resampled to the nearest one
    assert resize.resize_video(torch.rand(1, 300, 500, 3), 512, 512).shape == (1, 304, 512, 3)


def test_generation_size_refuses_bad_settings():
    with pytest.raises(resize.GenerationSizeError, match="got 500x512; the nearest such size is 496x512"):
        resize.generation_size(512, 320, 500, 512)
    with pytest.raises(ValueError, match="mode must be one of render aspect"):
        resize.generation_size(512, 320, 512, 512, mode="fit")


def test_first_frame_is_masked_and_truncated_to_8_bits():
    colour = torch.full((2, 4, 6, 3), 0.5)
    colour[0, 0, 0] = torch.tensor([1.0, 0.9999, 0.0])
    mask = torch.ones(2, 4, 6)
    mask[0, 2:, 3:] = 0.0  # a hole in frame 0
    inputs = camera_inputs.prepare_camera_inputs(colour, mask, erosion=0)
    first = camera_inputs.first_frame(colour, inputs)
    assert first.shape == (1, 4, 6, 3)
    assert first[0, 2:, 3:].abs().max() == 0  # masked
    assert torch.equal(first[0, 0, 0], torch.tensor([255.0, 254.0, 0.0]) / 255)  # 254.97 -> 254: truncation
    assert torch.allclose(first[0, 0, 1], torch.full((3,), 127 / 255))  # 127.5 -> 127


def test_encoder_in_frame_chunks_equals_the_whole_clip(tmp_path):
    """Every kernel spans one latent frame: encoding a few frames at a time gives the published forward pass
    (scaled, cast), whatever the chunk, with the latents left on their own device."""
    a = ad.load_adapter(write_tiny_ex4d_checkpoint(tmp_path / "a.ckpt", DIM, 1, FFN, hidden=HIDDEN))
    enc = a.camera_encoder()
    latents = torch.randn(1, 32, 7, 6, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        whole = enc(latents)
        for chunk in (1, 3, 7, 100):
            torch.testing.assert_close(enc.encode(latents, chunk_frames=chunk), whole, rtol=1e-6, atol=1e-6)
        half = enc.encode(latents, chunk_frames=2, scale=0.5, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16 and half.shape == whole.shape
    torch.testing.assert_close(half, (whole * 0.5).to(torch.bfloat16), rtol=0, atol=0)
