"""bench/full_weights.py: the random model files load through the host's own loaders and the pack's.

The files are written at ``--scale tiny`` (CLIP ViT-H at full size: the host allows no other), the
full-size layouts are checked from their shapes alone (meta tensors, nothing written).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import encoder_weights as ew  # noqa: E402
import full_weights as fw  # noqa: E402

WAN_BF16 = "diffusion_models/wan2.1_i2v_480p_14B_bf16.safetensors"
WAN_FP8 = "diffusion_models/wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors"
VAE = "vae/wan_2.1_vae.safetensors"
TEXT_ENCODER = "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors"
CLIP_VISION = "clip_vision/clip_vision_h.safetensors"
EX4D = "ex4d/ex4d.ckpt"


@pytest.fixture(scope="module")
def models(host, tmp_path_factory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("full_weights") / "models"
    fw.write_all(root, scale="tiny", wan="bf16", log=lambda _line: None)
    fw.write_all(root, parts=("wan",), scale="tiny", wan="fp8", log=lambda _line: None)
    yield root
    shutil.rmtree(root)  # 1.2 GiB of CLIP ViT-H that pytest would otherwise keep for three runs


def _open(path: Path):
    from safetensors import safe_open

    return safe_open(str(path), framework="pt")


def test_files_in_the_layout_users_download(models):
    for rel in (WAN_BF16, WAN_FP8, VAE, TEXT_ENCODER, CLIP_VISION, EX4D):
        assert (models / rel).is_file(), rel
    with _open(models / TEXT_ENCODER) as f:
        keys = set(f.keys())
        assert f.get_tensor("scaled_fp8").dtype == torch.float8_e4m3fn
        q = "encoder.block.0.layer.0.SelfAttention.q"
        assert f.get_tensor(f"{q}.weight").dtype == torch.float8_e4m3fn
        assert f.get_tensor(f"{q}.scale_weight").shape == ()
        assert f.get_tensor("shared.weight").dtype == torch.bfloat16
        assert f.metadata()["format"] == "pt"
    assert sum(k.endswith(".scale_weight") for k in keys) == 168  # 24 blocks x q, k, v, o, wi_0, wi_1, wo
    with _open(models / WAN_FP8) as f:
        assert f.get_tensor("blocks.0.self_attn.q.weight").dtype == torch.float8_e4m3fn
        assert f.get_tensor("blocks.0.self_attn.q.bias").dtype == torch.bfloat16


def test_streamed_safetensors_match_their_layout_and_are_aligned(tmp_path):
    layout = {
        "a.weight": fw.TensorSpec((3, 5), torch.bfloat16, std=0.02),
        "a.scale": fw.TensorSpec((), torch.float32, data=torch.tensor(0.5)),
        "bytes": fw.TensorSpec((3,), torch.uint8, data=torch.tensor([1, 2, 3], dtype=torch.uint8)),
        "marker": fw.TensorSpec((0,), torch.float8_e4m3fn),
        "norm.weight": fw.TensorSpec((7,), torch.float16, fill=1.0),
    }
    path = tmp_path / "t.safetensors"
    fw.write_safetensors(path, layout, {"format": "pt"})
    assert path.stat().st_size == fw.safetensors_size(layout, {"format": "pt"})
    with _open(path) as f:
        for name, spec in layout.items():
            t = f.get_tensor(name)
            assert (tuple(t.shape), t.dtype) == (spec.shape, spec.dtype), name
        assert f.get_tensor("a.scale").item() == 0.5
        assert f.get_tensor("bytes").tolist() == [1, 2, 3]
        assert torch.equal(f.get_tensor("norm.weight"), torch.ones(7, dtype=torch.float16))
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    assert header_len % 8 == 0
    for name, entry in header.items():
        if name != "__metadata__":
            assert entry["data_offsets"][0] % layout[name].dtype.itemsize == 0, name


@pytest.mark.parametrize("rel", [WAN_BF16, WAN_FP8])
def test_wan_dit_loads_as_wan21_i2v(models, rel):
    import comfy.sd

    model = comfy.sd.load_diffusion_model(str(models / rel))
    assert type(model.model.model_config).__name__ == "WAN21_I2V"
    assert model.model.diffusion_model.dim == fw.TINY.dim


def test_wan_vae_loads_and_decodes(models):
    import comfy.sd
    import comfy.utils

    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(models / VAE)))
    assert vae.latent_channels == 16
    image = vae.decode(torch.randn(1, 16, 1, 4, 4))
    assert image.shape[-3:] == (32, 32, 3) and torch.isfinite(image).all()


def test_full_size_umt5_is_detected_as_t5_xxl(host):
    import comfy.sd

    layout = ew.umt5_layout(ew.umt5_config("full"))
    sd = {name: torch.empty(spec.shape, dtype=spec.dtype, device="meta") for name, spec in layout.items()}
    assert comfy.sd.detect_te_model(sd) == comfy.sd.TEModel.T5_XXL
    assert comfy.sd.t5xxl_detect([sd])["dtype_t5"] == torch.bfloat16


def test_umt5_scaled_fp8_loads_as_the_wan_text_encoder_and_encodes(models, caplog, monkeypatch):
    """The tiny file through ``load_clip``: the hosts detect umT5-XXL by block 23's full-size wi_1 (0.33 by
    its 10240 rows), checked at full size above, so here detection answers as it does for the real file."""
    import comfy.sd

    monkeypatch.setattr(comfy.sd, "detect_te_model", lambda sd: comfy.sd.TEModel.T5_XXL)
    caplog.set_level(logging.WARNING)
    clip = comfy.sd.load_clip([str(models / TEXT_ENCODER)], clip_type=comfy.sd.CLIPType.WAN,
                              model_options={"umt5xxl_model_config": ew.UMT5_TINY})
    assert not [r for r in caplog.records if "clip missing" in r.getMessage()]
    loaded = clip.cond_stage_model.state_dict()
    q = "umt5xxl.transformer.encoder.block.0.layer.0.SelfAttention.q"
    scale = loaded.get(f"{q}.scale_weight", loaded.get(f"{q}.weight_scale"))  # 0.3.75 / 0.33's name
    assert loaded[f"{q}.weight"].dtype == torch.float8_e4m3fn
    assert scale is not None and math.isclose(float(scale), 1 / math.sqrt(4096))  # the file's, not 1
    tokens = clip.tokenize(ew.workflow_prompts()[0])
    ids = [t[0] for t in tokens["umt5xxl"][0]]
    assert ids[0] > 2 and 1 in ids and max(ids) < ew.UMT5_TINY["vocab_size"]  # words, then </s>, then pads
    cond = clip.encode_from_tokens(tokens)
    assert cond.shape == (1, 512, 4096) and torch.isfinite(cond).all()


def test_clip_vision_loads_as_vit_h(models, caplog):
    import comfy.clip_vision

    caplog.set_level(logging.WARNING)
    clip_vision = comfy.clip_vision.load(str(models / CLIP_VISION))
    assert clip_vision is not None
    assert not [r for r in caplog.records if "missing clip vision" in r.getMessage()]
    layers = clip_vision.model.vision_model.encoder.layers
    assert len(layers) == 32 and layers[0].mlp.fc1.weight.shape == (5120, 1280)


def test_depth_loader_lists_and_loads_the_depthcrafter_folder(host, models, monkeypatch):
    import folder_paths

    monkeypatch.setitem(folder_paths.folder_names_and_paths, "depthcrafter",
                        ([str(models / "depthcrafter")], folder_paths.folder_names_and_paths["depthcrafter"][1]))
    loader = host.node_classes["EX4DDepthModelLoader"]
    assert "DepthCrafter" in loader.INPUT_TYPES()["required"]["model"][1]["options"]
    loaded = loader.execute("DepthCrafter", "fp32", "sdpa").result[0]
    assert loaded.kind == "depthcrafter"
    assert loaded.model.unet.conv_in.weight.dtype == torch.float32


def test_ex4d_checkpoint_loads_through_the_pack(models):
    from ex4d.adapter import load_adapter

    adapter = load_adapter(models / EX4D)
    assert (adapter.rank, adapter.alpha, adapter.num_blocks) == (16, 16.0, fw.TINY.layers)
    assert (adapter.hidden_dim, adapter.out_dim) == (fw.TINY.encoder_hidden, fw.TINY.dim)
    assert not adapter.ignored_keys


def test_existing_files_are_kept(models):
    lines: list[str] = []
    before = (models / VAE).stat().st_mtime_ns
    fw.write_all(models, parts=("vae", "ex4d"), scale="tiny", log=lines.append)
    assert (models / VAE).stat().st_mtime_ns == before
    assert sum(line.startswith("kept") for line in lines) == 2


def test_full_size_layouts(host):
    """The real shapes, from the host's modules on the meta device: nothing is drawn or written."""
    files = {f.rel: f for f in fw.plan(("wan", "vae", "text_encoder", "ex4d"), "full", "bf16")}
    assert math.isclose(files[WAN_BF16].nbytes / fw.GiB, 30.5, abs_tol=0.1)
    assert math.isclose(fw.ex4d_nbytes(fw.FULL) / 4 / 1e6, 99.8, abs_tol=0.1)  # parameters, millions
    wan = fw.wan_layout(fw.FULL, torch.float8_e4m3fn)
    assert wan["blocks.39.ffn.0.weight"].shape == (13824, 5120)
    assert wan["patch_embedding.weight"].shape == (5120, 36, 1, 2, 2)
    assert math.isclose(sum(s.nbytes for s in wan.values()) / fw.GiB, 15.3, abs_tol=0.1)
    vae = fw.wan_vae_layout(fw.WAN_VAE_DIM["full"])
    assert vae["decoder.head.0.gamma"].shape == (96, 1, 1, 1)
    te = ew.umt5_layout(ew.umt5_config("full"))
    assert te["shared.weight"].shape == (256384, 4096)
    assert te["encoder.block.23.layer.1.DenseReluDense.wi_1.weight"].shape == (10240, 4096)
    assert te["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].shape == (32, 64)
    assert math.isclose(files[TEXT_ENCODER].nbytes / 1e9, 6.73, abs_tol=0.02)


def test_full_size_depthcrafter_layout(host):
    layouts = fw.depthcrafter_layouts("full")
    unet = layouts["DepthCrafter/unet/diffusion_pytorch_model.safetensors"][1]
    assert unet["conv_in.weight"].shape == (320, 8, 3, 3) and unet["conv_in.weight"].dtype == torch.float16
    assert math.isclose(sum(s.nbytes for s in unet.values()) / 1e9, 3.05, abs_tol=0.01)
    svd = "stable-video-diffusion-img2vid-xt"
    encoder = layouts[f"{svd}/image_encoder/model.fp16.safetensors"][1]
    assert encoder["visual_projection.weight"].shape == (1024, 1280)
    assert layouts[f"{svd}/image_encoder/config.json"][0]["num_hidden_layers"] == 32
