"""The tiny model factory: real key names and layouts, loadable by the host's own loaders."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from harness import tiny_models as tm


@pytest.fixture(scope="module")
def files(host, tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    return {
        "i2v": tm.write_tiny_wan_i2v(d / "i2v.safetensors", dim=256, num_heads=2, num_layers=3, ffn_dim=384),
        "t2v": tm.write_tiny_wan_t2v(d / "t2v.safetensors"),
        "vae": tm.write_tiny_wan_vae(d / "vae.safetensors"),
    }


def test_i2v_has_real_names_and_layouts(files):
    sd = load_file(str(files["i2v"]))
    for key in tm.WAN_I2V_KEYS:
        assert key in sd, key
    assert sd["patch_embedding.weight"].shape == (256, 36, 1, 2, 2)
    assert sd["text_embedding.0.weight"].shape == (256, 4096)
    assert sd["img_emb.proj.1.weight"].shape == (1280, 1280)
    assert sd["blocks.2.cross_attn.k_img.weight"].shape == (256, 256)
    assert sd["blocks.0.ffn.0.weight"].shape == (384, 256)
    assert sd["head.modulation"].shape == (1, 2, 256)
    assert "blocks.3.ffn.0.weight" not in sd
    assert all(torch.isfinite(v).all() for v in sd.values())


def test_host_detects_and_loads_tiny_wan(host, files):
    import comfy.model_base
    import comfy.sd

    model = comfy.sd.load_diffusion_model(str(files["i2v"]))
    assert isinstance(model.model, comfy.model_base.WAN21) and model.model.image_to_video
    dm = model.model.diffusion_model
    assert (dm.dim, dm.num_heads, dm.num_layers, dm.ffn_dim, dm.in_dim) == (256, 2, 3, 384, 36)
    assert dm.img_emb is not None
    t2v = comfy.sd.load_diffusion_model(str(files["t2v"]))
    assert not t2v.model.image_to_video and t2v.model.diffusion_model.in_dim == 16
    assert t2v.model.diffusion_model.img_emb is None


def test_host_vae_encodes_and_decodes(host, files):
    import comfy.sd
    import comfy.utils

    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(files["vae"])))
    assert vae.latent_channels == 16
    latent = vae.encode(torch.rand(5, 32, 32, 3))
    assert latent.shape == (1, 16, 2, 4, 4) and torch.isfinite(latent).all()
    assert vae.decode(latent).shape[-4:] == (5, 32, 32, 3)


def test_bad_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="multiple of 128"):
        tm.write_tiny_wan_i2v(tmp_path / "x.safetensors", dim=100)
    with pytest.raises(ValueError, match="heads"):
        tm.write_tiny_wan_i2v(tmp_path / "x.safetensors", dim=128, num_heads=4)
    with pytest.raises(ValueError, match="key_style"):
        tm.write_tiny_ex4d_checkpoint(tmp_path / "x.ckpt", key_style="other")
    with pytest.raises(ValueError, match="fmt"):
        tm.write_tiny_ex4d_checkpoint(tmp_path / "x.ckpt", fmt="bin")
