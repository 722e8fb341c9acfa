"""workflows/api/ex4d_full_api.json, video to new viewpoint in one graph, on tiny random models.

The graph runs as shipped except for what cannot exist here: the model file names point at tiny random
files with the real layouts, the two text encodings come from stored embeddings (no umT5 here), the
CLIP-vision branch is left out (optional input) and the sizes are small: the 512 x 320 clip is loaded with
its long side at 128 and generated at the render's own aspect (EX-4D Apply's default) in a 128 x 128 box.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from harness import tiny_models as tm
from harness.tiny_depth import write_tiny_depthcrafter

REPO = Path(__file__).resolve().parent.parent
FRAMES, BOX = 9, 128


@pytest.fixture(scope="module")
def full_host(host):
    m = host.models_dir
    tm.write_tiny_wan_i2v(m / "diffusion_models" / "full_tiny_i2v.safetensors", 128, 1, 2, 256)
    tm.write_tiny_wan_vae(m / "vae" / "full_tiny_vae.safetensors")
    tm.write_tiny_ex4d_checkpoint(m / "ex4d" / "full_tiny_ex4d.ckpt", 128, 2, 256, hidden=32)
    tm.write_prompt_embeddings(host.input_dir / "full_pos.safetensors", seed=3)
    tm.write_prompt_embeddings(host.input_dir / "full_neg.safetensors", seed=4)
    if not (m / "depthcrafter" / "DepthCrafter").is_dir():
        write_tiny_depthcrafter(m / "depthcrafter")
    shutil.copy(REPO / "assets" / "example" / "clip.mp4", host.input_dir / "clip.mp4")
    return host


def tiny_version(prompt: dict) -> dict:
    prompt = json.loads(json.dumps(prompt))
    by_type = {}
    for node_id, node in prompt.items():
        by_type.setdefault(node["class_type"], []).append(node_id)
    (video,) = by_type["EX4DLoadVideo"]
    prompt[video]["inputs"].update(frame_load_cap=FRAMES, max_resolution=BOX)
    for estimate in by_type.get("EX4DEstimateDepth", []):  # the long workflow loads its true depth instead
        prompt[estimate]["inputs"].update(steps=1, window=6, overlap=2)
    prompt[by_type["UNETLoader"][0]]["inputs"]["unet_name"] = "full_tiny_i2v.safetensors"
    prompt[by_type["VAELoader"][0]]["inputs"]["vae_name"] = "full_tiny_vae.safetensors"
    prompt[by_type["EX4DAdapterLoader"][0]]["inputs"]["adapter_name"] = "full_tiny_ex4d.ckpt"
    (apply,) = by_type["EX4DApply"]
    inputs = prompt[apply]["inputs"]
    assert inputs["resize"] == "render aspect"
    inputs.update(width=BOX, height=BOX, length=FRAMES)
    for name, file in (("positive", "full_pos.safetensors"), ("negative", "full_neg.safetensors")):
        prompt[inputs[name][0]] = {"class_type": "EX4DLoadPromptEmbeddings", "inputs": {"embeddings": file}}
    del inputs["clip_vision_output"]
    for node_type in ("CLIPLoader", "CLIPVisionLoader", "CLIPVisionEncode", "ImageFromBatch"):
        for node_id in by_type[node_type]:
            del prompt[node_id]
    (sampler,) = by_type["EX4DWanSampler"]
    prompt[sampler]["inputs"]["steps"] = 2
    return prompt


def test_full_workflow_makes_the_new_view_video(full_host):
    host = full_host
    shipped = json.loads((REPO / "workflows" / "api" / "ex4d_full_api.json").read_text())
    assert {n["class_type"] for n in shipped.values()} >= {"CLIPTextEncode", "CLIPVisionEncode", "UNETLoader"}
    outputs = host.run(tiny_version(shipped))
    (save,) = [i for i, n in shipped.items() if n["class_type"] == "SaveVideo"]
    (decode,) = [i for i, n in shipped.items() if n["class_type"] == "VAEDecode"]
    (sampler,) = [i for i, n in shipped.items() if n["class_type"] == "EX4DWanSampler"]
    (render,) = [i for i, n in shipped.items() if n["class_type"] == "EX4DRenderViews"]
    _, height, width, _ = host.node_output(render)[0][0].shape
    assert width == BOX and height < BOX  # a landscape render, generated as it is: no crop, no stretch
    latent = host.node_output(sampler)[0][0]["samples"]
    assert latent.shape == (1, 16, (FRAMES - 1) // 4 + 1, height // 8, width // 8)
    frames = host.node_output(decode)[0][0]
    assert frames.shape == (FRAMES, height, width, 3)
    item = outputs[save]["images"][0]
    video = host.output_dir / item["subfolder"] / item["filename"]
    assert video.suffix == ".mp4" and video.stat().st_size > 500


CORE_DEPTH_NODES = {"LoadMoGeModel", "MoGeInference", "EX4DDepthFromGeometry"}


def test_core_depth_workflow_is_the_full_graph_with_the_hosts_moge():
    full = json.loads((REPO / "workflows" / "api" / "ex4d_full_api.json").read_text())
    core = json.loads((REPO / "workflows" / "api" / "ex4d_full_core_depth_api.json").read_text())
    depth_nodes = {"EX4DDepthModelLoader", "EX4DEstimateDepth"}
    assert {n["class_type"] for n in core.values()} - {n["class_type"] for n in full.values()} == CORE_DEPTH_NODES
    rest = {i: n for i, n in core.items() if n["class_type"] not in CORE_DEPTH_NODES}
    (geometry,) = [i for i, n in core.items() if n["class_type"] == "EX4DDepthFromGeometry"]
    (estimate,) = [i for i, n in full.items() if n["class_type"] == "EX4DEstimateDepth"]
    kept = json.dumps({i: n for i, n in full.items() if n["class_type"] not in depth_nodes})
    expected = json.loads(kept.replace(f'["{estimate}", 0]', f'["{geometry}", 0]'))
    assert rest == expected  # the same graph, its depth from MoGe


def test_core_depth_workflow_makes_the_new_view_video(full_host):
    host = full_host
    if "MoGeInference" not in host.node_classes:
        pytest.skip("this ComfyUI has no MoGe nodes (they came with 0.33)")
    import folder_paths

    from harness.tiny_geometry import write_tiny_moge

    folder = host.models_dir / "geometry_estimation"
    write_tiny_moge(folder / "full_tiny_moge.safetensors")
    folder_paths.add_model_folder_path("geometry_estimation", str(folder), is_default=True)
    prompt = tiny_version(json.loads((REPO / "workflows" / "api" / "ex4d_full_core_depth_api.json").read_text()))
    by_type = {n["class_type"]: i for i, n in prompt.items()}
    prompt[by_type["LoadMoGeModel"]]["inputs"]["model_name"] = "full_tiny_moge.safetensors"
    prompt[by_type["MoGeInference"]]["inputs"]["resolution_level"] = 0
    outputs = host.run(prompt)
    depth = host.node_output(by_type["EX4DDepthFromGeometry"])[0][0]
    geometry = host.node_output(by_type["MoGeInference"])[0][0]
    width = geometry["depth"].shape[2]
    assert depth.lens.focal == pytest.approx(float(torch.median(geometry["intrinsics"][:, 0, 0].double() * width)))
    assert host.node_output(by_type["EX4DCameraPreset"])[0][0].focal == pytest.approx(depth.lens.focal)
    item = outputs[by_type["SaveVideo"]]["images"][0]
    assert (host.output_dir / item["subfolder"] / item["filename"]).stat().st_size > 500
