"""Longer clips through the host's context windows: the camera embedding follows each window."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.media import save_video
from tests.test_full_workflow import full_host, tiny_version
from tests.test_wan_nodes import _apply, _clip_output, _sample, _tiny_model, files, rel_err

__all__ = ["files", "full_host"]  # the tiny models of the other generation tests, as fixtures here too

REPO = Path(__file__).resolve().parent.parent
FRAMES = 17  # 5 latent frames
SIZE = 32


@pytest.fixture(scope="module")
def clip(host, files):
    from ex4d.prompt import load_prompt_embeddings

    gen = torch.Generator().manual_seed(1)
    colour = torch.rand(FRAMES, SIZE, SIZE, 3, generator=gen) * 0.6 + 0.2
    mask = torch.ones(FRAMES, SIZE, SIZE)
    for t in range(1, FRAMES):
        mask[t, 4 : 4 + t, 6:20] = 0.0
    pos = load_prompt_embeddings(host.input_dir / "ex4d_pos.safetensors")[0][0][0]
    neg = load_prompt_embeddings(host.input_dir / "ex4d_neg.safetensors")[0][0][0]
    save_video(colour, host.input_dir / "long_colour.mp4", fps=15)  # for graph tests
    return colour, mask, pos, neg


def _patch_module(host):
    return sys.modules[host.node_classes["EX4DApply"].__module__.rsplit(".", 1)[0] + ".camera_embedding"]


def _windows(host, model, length: int, overlap: int):
    """The host's Wan Context Windows node on ``model`` (its defaults, the static schedule, no FreeNoise)."""
    node = host.node_classes["WanContextWindowsManual"]
    values = {spec.id: spec.default for spec in node.define_schema().inputs if spec.id != "model"}
    values.update(context_length=length, context_overlap=overlap, context_schedule="standard_static")
    if "freenoise" in values:
        values["freenoise"] = False
    with torch.inference_mode():
        return node.execute(model=model, **values).args[0]


def _host_windows_i2v() -> bool:
    """Whether the host's context windows cut a model's I2V conditioning per window (0.33: the model's
    resize_cond_for_context_window; 0.3.75's windows leave Wan's 5-D concat latent whole)."""
    import comfy.model_base

    return hasattr(comfy.model_base.BaseModel, "resize_cond_for_context_window")


def _ex4d(host, clip, model):
    colour, mask, pos, neg = clip
    return _apply(host, model, colour, mask, pos, neg, length=FRAMES, clip_vision_output=_clip_output(5))


def test_a_window_over_the_whole_clip_equals_no_windows(host, clip):
    out = _ex4d(host, clip, _tiny_model(host))
    plain = _sample(host, out, 2, 2.0)
    windowed = _sample(host, (_windows(host, out[0], FRAMES, 4), *out[1:]), 2, 2.0)
    assert torch.equal(windowed, plain)


def test_host_without_i2v_windows_gets_a_clear_error(host, clip):
    if _host_windows_i2v():
        pytest.skip("this host cuts the I2V conditioning per window (see the next test)")
    out = _ex4d(host, clip, _tiny_model(host))
    with pytest.raises(ValueError, match="^model: this ComfyUI's context windows do not cut the Wan I2V"):
        _sample(host, (_windows(host, out[0], 9, 4), *out[1:]), 1, 2.0)


def test_each_window_gets_the_camera_embedding_of_its_frames(host, clip, monkeypatch):
    """Every windowed forward pass adds exactly the embedding of its latent frames, as sliced by hand from
    the whole clip's embedding with the window's indices (and the anchor frame the host may put first)."""
    if not _host_windows_i2v():
        pytest.skip("this host's context windows leave Wan's I2V conditioning whole (previous test)")
    patch = _patch_module(host)
    seen: list[tuple[list[int], torch.Tensor, torch.Tensor]] = []
    call = patch.PatchEmbeddingWithCamera.__call__

    def recording(self, x):
        out = call(self, x)
        base = type(self.module).forward(self.module, x)
        window = patch.CONTEXT_WINDOW.get()
        assert window is not None, "a forward pass of windowed sampling without its window"
        anchor = getattr(window, "causal_anchor_index", None)
        frames = ([anchor] if anchor is not None and anchor >= 0 else []) + list(window.index_list)
        whole = self.camera.get(base)
        seen.append((frames, out - base, whole[:, :, frames]))
        return out

    monkeypatch.setattr(patch.PatchEmbeddingWithCamera, "__call__", recording)
    out = _ex4d(host, clip, _tiny_model(host))
    windowed = _sample(host, (_windows(host, out[0], 9, 4), *out[1:]), 2, 2.0)
    monkeypatch.undo()
    windows = {tuple(frames) for frames, _, _ in seen}
    assert len(windows) >= 2 and max(max(w) for w in windows) == (FRAMES - 1) // 4
    for frames, added, by_hand in seen:
        assert added.shape[2] == len(frames)
        assert torch.allclose(added, by_hand.expand_as(added), atol=1e-5), frames
    plain = _sample(host, out, 2, 2.0)
    assert windowed.shape == plain.shape
    assert rel_err(windowed, plain) > 1e-4  # the windows took effect


def test_seams_blend_as_the_host_defines(host, clip, monkeypatch):
    """The windowed result is the host's fuse of what each window's EX-4D forward pass gave: per frame the
    weighted mean (the node's pyramid weights) over the windows holding it, then CFG. One Euler step to sigma 0
    returns the denoised latent itself, so the sampled latent is that blend."""
    if not _host_windows_i2v():
        pytest.skip("this host's context windows leave Wan's I2V conditioning whole")
    import comfy.context_windows

    cfg = 2.0
    out = _ex4d(host, clip, _tiny_model(host))
    model = _windows(host, out[0], 9, 8)  # 3 latent frames overlapping by 2: unequal weights at the seams
    handler = model.model_options["context_handler"]
    windows = []
    combine = handler.combine_context_window_results

    def recording(x_in, sub_conds_out, sub_conds, window, window_idx, total_windows, timestep, *rest):
        weights = comfy.context_windows.get_context_weights(
            window.context_length, x_in.shape[handler.dim], window.index_list, handler, sigma=timestep,
            context_overlap=window.context_overlap)
        windows.append((list(window.index_list), [t.clone() for t in sub_conds_out], torch.tensor(weights)))
        return combine(x_in, sub_conds_out, sub_conds, window, window_idx, total_windows, timestep, *rest)

    monkeypatch.setattr(handler, "combine_context_window_results", recording)
    sampled = _sample(host, (model, *out[1:]), 1, cfg)
    assert len(windows) >= 2
    frames = sampled.shape[2]
    fused = [torch.zeros_like(sampled), torch.zeros_like(sampled)]  # positive, negative
    weight = torch.zeros(frames)
    for index_list, outputs, weights in windows:
        for i, output in enumerate(outputs):
            fused[i][:, :, index_list] += output * weights.view(1, 1, -1, 1, 1)
        weight[index_list] += weights
    assert torch.all(weight > 0)  # every latent frame lies in a window
    fused = [f / weight.view(1, 1, -1, 1, 1) for f in fused]
    expected = model.model.process_latent_out(fused[1] + cfg * (fused[0] - fused[1]))  # as the sampler returns it
    assert rel_err(sampled, expected) < 1e-5
    overlap = [f for f in range(frames) if sum(f in w[0] for w in windows) > 1]
    assert overlap, "the windows overlap: there is a seam to blend"


def test_without_windows_the_patch_sees_no_window(host, clip, monkeypatch):
    patch = _patch_module(host)
    windows = []
    call = patch.PatchEmbeddingWithCamera.__call__

    def recording(self, x):
        windows.append(patch.CONTEXT_WINDOW.get())
        return call(self, x)

    monkeypatch.setattr(patch.PatchEmbeddingWithCamera, "__call__", recording)
    _sample(host, _ex4d(host, clip, _tiny_model(host)), 1, 2.0)
    assert windows and all(w is None for w in windows)


# -------------------------------------------------------------------------------------------------
# The long example workflow

LONG_FRAMES, LONG_SIZE = 121, 64


def _tiny_long(prompt: dict) -> dict:
    """workflows/api/ex4d_long_api.json on tiny random models and a 121-frame clip of 64 x 64 with its depth."""
    prompt = json.loads(json.dumps(prompt))
    by_type: dict[str, list[str]] = {}
    for node_id, node in prompt.items():
        by_type.setdefault(node["class_type"], []).append(node_id)
    (depth,) = by_type["EX4DLoadDepth"]
    prompt[depth]["inputs"]["path"] = "long_tiny_depth.npz"
    prompt = tiny_version(prompt)  # the generation half as the whole-graph test makes it tiny
    (video,) = by_type["EX4DLoadVideo"]
    prompt[video]["inputs"].update(video="long_tiny.mp4", frame_load_cap=LONG_FRAMES, max_resolution=LONG_SIZE)
    (apply,) = by_type["EX4DApply"]
    # generated at the clip's own size: the windows cut the frame axis, which the size does not change
    prompt[apply]["inputs"].update(length=LONG_FRAMES, width=LONG_SIZE, height=LONG_SIZE)
    return prompt


@pytest.fixture(scope="module")
def long_host(full_host):
    host = full_host
    gen = torch.Generator().manual_seed(2)
    frames = torch.rand(LONG_FRAMES, LONG_SIZE, LONG_SIZE, 3, generator=gen) * 0.6 + 0.2
    save_video(frames, host.input_dir / "long_tiny.mp4", fps=30)
    depth = 2.0 + torch.rand(LONG_FRAMES, LONG_SIZE, LONG_SIZE, generator=gen)
    np.savez_compressed(host.input_dir / "long_tiny_depth.npz", depth=depth.numpy().astype(np.float16))
    return host


def test_long_workflow_samples_121_frames_in_windows(long_host):
    from harness.host import NodeExecutionError

    host = long_host
    shipped = json.loads((REPO / "workflows" / "api" / "ex4d_long_api.json").read_text())
    (windows,) = [i for i, n in shipped.items() if n["class_type"] == "WanContextWindowsManual"]
    assert shipped[windows]["inputs"]["context_length"] == 49
    prompt = _tiny_long(shipped)
    if not _host_windows_i2v():
        with pytest.raises(NodeExecutionError, match="model: this ComfyUI's context windows do not cut"):
            host.run(prompt)
        return
    host.run(prompt)
    (sampler,) = [i for i, n in shipped.items() if n["class_type"] == "EX4DWanSampler"]
    (decode,) = [i for i, n in shipped.items() if n["class_type"] == "VAEDecode"]
    latent = host.node_output(sampler)[0][0]["samples"]
    assert latent.shape[2] == (LONG_FRAMES - 1) // 4 + 1
    assert host.node_output(decode)[0][0].shape[0] == LONG_FRAMES
