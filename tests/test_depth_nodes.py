"""Depth nodes through the real executor, on tiny random DepthCrafter / Depth Anything V2 folders."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from ex4d import depth as D
from harness.host import NodeExecutionError, PromptValidationError
from harness.media import save_video
from harness.tiny_depth import write_tiny_depth_anything, write_tiny_depthcrafter

T, H, W = 8, 64, 64
CLIP = "ex4d_depth_clip.mp4"


@pytest.fixture(scope="module")
def installed(host):
    write_tiny_depthcrafter(host.models_dir / "depthcrafter")
    write_tiny_depth_anything(host.models_dir / "depth_anything" / "tiny-v2")
    (host.models_dir / "depth_anything" / "incomplete").mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(T, H, W, 3, generator=gen) * 0.6 + 0.2
    save_video(frames, host.input_dir / CLIP, fps=8)
    return host


def previewed(prompt: dict, depth_node: str) -> dict:
    """The prompt plus Depth Preview -> Preview Image of ``depth_node`` (a prompt needs an output)."""
    return {**prompt,
            "90": {"class_type": "EX4DDepthPreview", "inputs": {"depth": [depth_node, 0], "colormap": "gray"}},
            "91": {"class_type": "PreviewImage", "inputs": {"images": ["90", 0]}}}


def load_clip() -> dict:
    return {"class_type": "EX4DLoadVideo",
            "inputs": {"video": CLIP, "frame_load_cap": 0, "skip_first_frames": 0, "select_every_nth": 1,
                       "target_fps": 0.0, "resize": "native", "max_resolution": 1024, "multiple": 64}}


def estimate_prompt(model: str = "DepthCrafter", **settings) -> dict:
    inputs = {"depth_model": ["2", 0], "frames": ["1", 0], "steps": 2, "guidance": 1.0, "window": 5,
              "overlap": 2, "seed": 42, "batch_size": 3, "smoothing": 1.0}
    inputs.update(settings)
    return {
        "1": load_clip(),
        "2": {"class_type": "EX4DDepthModelLoader",
              "inputs": {"model": model, "precision": "auto", "attention": "sdpa"}},
        "3": {"class_type": "EX4DEstimateDepth", "inputs": inputs},
        "4": {"class_type": "EX4DDepthPreview", "inputs": {"depth": ["3", 0], "colormap": "turbo"}},
        "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}},
    }


def test_loader_lists_installed_models(installed):
    options = installed.node_classes["EX4DDepthModelLoader"].INPUT_TYPES()["required"]["model"][1]["options"]
    assert options == ["DepthCrafter", "Depth Anything V2: tiny-v2"]  # the incomplete folder is left out


def test_nothing_installed_says_what_to_download_and_where(installed, tmp_path, monkeypatch):
    import folder_paths

    for name in ("depthcrafter", "depth_anything"):
        monkeypatch.setitem(folder_paths.folder_names_and_paths, name,
                            ([str(tmp_path / name)], folder_paths.folder_names_and_paths[name][1]))
    options = installed.node_classes["EX4DDepthModelLoader"].INPUT_TYPES()["required"]["model"][1]["options"]
    assert len(options) == 1
    prompt = estimate_prompt(model=options[0])
    with pytest.raises(PromptValidationError) as e:
        installed.run(prompt)
    text = str(e.value)
    for expected in ("tencent/DepthCrafter", "stable-video-diffusion-img2vid-xt", str(tmp_path / "depthcrafter"),
                     "DepthCrafter/unet/config.json", "Depth-Anything-V2", str(tmp_path / "depth_anything")):
        assert expected in text, expected


def test_depthcrafter_graph_matches_the_library_and_reports_each_step(installed):
    host = installed
    outputs = host.run(estimate_prompt())
    depth = host.node_output("3")[0][0]
    frames = host.node_output("1")[0][0]
    assert type(depth).__name__ == "DepthVideo" and depth.depth.shape == (T, H, W)
    assert depth.depth.min().item() == pytest.approx(D.NEAREST_DEPTH, rel=1e-5)
    assert depth.disparity.min() == 0 and depth.disparity.max() == 1
    # windows of 5 overlapping by 2 over 8 frames: starts 0 and 3 -> 2 windows x 2 steps
    assert host.progress_values("3") == [1, 2, 3, 4]
    events = [e for e in host.events("progress") if e["node"] == "3"]
    assert events[-1]["value"] == events[-1]["max"] == 4  # what the UI got (0.33 throttles the rest)
    folder = host.models_dir / "depthcrafter"
    lib = D.DepthCrafter.from_pretrained(folder, dtype=torch.float32, device="cpu")
    ref = lib.estimate(frames, steps=2, window=5, overlap=2, seed=42)
    # same numbers up to float32 noise (the host runs other kernels/threads); depth = 10000 / (3900 r)
    # magnifies that noise where r is small, so compare the disparity tightly
    torch.testing.assert_close(depth.disparity, ref.disparity, rtol=0, atol=1e-4)
    torch.testing.assert_close(depth.depth, ref.depth, rtol=1e-3, atol=0)
    preview = host.node_output("4")[0][0]
    assert preview.shape == (T, H, W, 3) and len(outputs["5"]["images"]) == T
    # the model went through ComfyUI's model management
    import comfy.model_management as mm

    loaded = [m.model.model for m in mm.current_loaded_models if m.model is not None]
    assert any(isinstance(m, torch.nn.ModuleDict) and "unet" in m for m in loaded)


def test_depthcrafter_seed_changes_the_result_and_is_repeatable(installed):
    host = installed
    host.run(estimate_prompt(seed=1))
    a = host.node_output("3")[0][0]
    host.run(estimate_prompt(seed=2))
    b = host.node_output("3")[0][0]
    host.run(estimate_prompt(seed=1))
    c = host.node_output("3")[0][0]
    assert (a.disparity - b.disparity).abs().max() > 1e-2  # far above the 1e-4 noise allowed above
    torch.testing.assert_close(a.depth, c.depth, rtol=0, atol=0)


def test_depth_anything_graph(installed):
    host = installed
    host.run(estimate_prompt(model="Depth Anything V2: tiny-v2", smoothing=0.5))
    depth = host.node_output("3")[0][0]
    assert depth.source == "depth_anything" and depth.depth.shape == (T, H, W)
    assert depth.meta["smoothing"] == 0.5
    events = [e for e in host.events("progress") if e["node"] == "3"]
    assert events[-1]["value"] == events[-1]["max"] == 3  # ceil(8 / 3) batches


def test_estimate_cancel_then_next_prompt_runs(installed):
    host = installed

    with host.interrupt_when("3") as seen, pytest.raises(InterruptedError):
        host.run(estimate_prompt(seed=99))
    assert seen and max(seen) < 4  # stopped before the last of 2 windows x 2 steps
    host.run(estimate_prompt(seed=99))
    assert host.node_output("3")[0][0].depth.shape == (T, H, W)


def test_overlap_not_below_window_is_a_clear_error(installed):
    with pytest.raises(NodeExecutionError, match="overlap: 5 must be smaller than window"):
        installed.run(estimate_prompt(window=5, overlap=5))


def test_frames_too_small_for_depthcrafter_are_refused_naming_frames_and_the_smallest_size(installed):
    prompt = estimate_prompt()
    prompt["1"] = {"class_type": "EmptyImage", "inputs": {"width": 70, "height": 46, "batch_size": 1, "color": 0}}
    with pytest.raises(NodeExecutionError, match=r"frames: 1 frame\(s\) of 70x46 are smaller than DepthCrafter "
                       r"takes.*at least 96 pixels on a side"):
        installed.run(prompt)
    prompt["1"]["inputs"]["batch_size"] = 2  # two frames give its norm groups two values: it runs
    installed.run(prompt)


def from_image_prompt(source: str, **options) -> dict:
    inputs = {"map": "disparity (bright = near)", "range": "published", "near": 1.0, "far": 100.0}
    inputs.update(options)
    prompt = previewed({"1": load_clip(), "2": {"class_type": "EX4DDepthFromImage", "inputs": inputs}}, "2")
    if source in ("image", "both"):
        inputs["image"] = ["1", 0]
    if source in ("mask", "both"):
        prompt["3"] = {"class_type": "ImageToMask", "inputs": {"image": ["1", 0], "channel": "green"}}
        inputs["mask"] = ["3", 0]
    return prompt


def test_depth_from_image_and_mask(installed):
    host = installed
    host.run(from_image_prompt("image"))
    frames = host.node_output("1")[0][0]
    depth = host.node_output("2")[0][0]
    ref = D.depth_from_map(frames)
    torch.testing.assert_close(depth.depth, ref.depth)
    host.run(from_image_prompt("mask", map="depth (bright = far)", range="near_far", near=2.0, far=20.0))
    depth = host.node_output("2")[0][0]
    green = frames[..., 1]
    near_pixel = np.unravel_index(int(green.argmin()), green.shape)
    assert depth.depth[near_pixel].item() == pytest.approx(2.0, rel=1e-5)
    assert depth.depth.max().item() == pytest.approx(20.0, rel=1e-5)


@pytest.mark.parametrize(("source", "options", "error"), [
    ("none", {}, "image: connect a depth or disparity map"),
    ("both", {}, "mask: connect one map only"),
    ("image", {"range": "near_far", "near": 5.0, "far": 2.0}, "far: 2.0 must be larger than near"),
])
def test_depth_from_image_bad_input(installed, source, options, error):
    with pytest.raises(NodeExecutionError, match=error):
        installed.run(from_image_prompt(source, **options))


def load_depth_prompt(path: str, content: str = "depth", **frames) -> dict:
    inputs = {"path": path, "content": content, "frame_load_cap": 0, "skip_first_frames": 0,
              "select_every_nth": 1}
    inputs.update(frames)
    return previewed({"1": {"class_type": "EX4DLoadDepth", "inputs": inputs}}, "1")


def test_save_then_load_depth_round_trip_and_frame_selection(installed):
    host = installed
    host.run(estimate_prompt(model="Depth Anything V2: tiny-v2"))
    original = host.node_output("3")[0][0]
    host.run({**estimate_prompt(model="Depth Anything V2: tiny-v2"),
              "6": {"class_type": "EX4DSaveDepth", "inputs": {"depth": ["3", 0], "filename_prefix": "ex4d/d"}}})
    saved = host.output_dir / host.node_output("6")[0][0]
    with np.load(saved) as data:
        assert sorted(data.files) == ["depth", "disparity"]
    (host.input_dir / "saved_depth.npz").write_bytes(saved.read_bytes())
    host.run(load_depth_prompt("saved_depth.npz"))
    torch.testing.assert_close(host.node_output("1")[0][0].depth, original.depth, rtol=0, atol=0)
    host.run(load_depth_prompt("saved_depth.npz", frame_load_cap=2, skip_first_frames=1, select_every_nth=3))
    torch.testing.assert_close(host.node_output("1")[0][0].depth, original.depth[1::3][:2], rtol=0, atol=0)


def test_load_depthcrafter_disparity_npz(installed):
    host = installed
    disparity = np.random.default_rng(0).random((3, 16, 24)).astype(np.float32)
    np.savez_compressed(host.input_dir / "dc_out.npz", depth=disparity)  # DepthCrafter names it "depth"
    host.run(load_depth_prompt("dc_out.npz", content="disparity"))
    depth = host.node_output("1")[0][0]
    torch.testing.assert_close(depth.depth, D.disparity_to_depth(torch.from_numpy(disparity)))


def test_load_depth_names_the_input_of_a_bad_file(installed):
    """The library's refusal (tests/test_depth.py: every way a file is wrong) reaches the user on 'path'."""
    np.savez(installed.input_dir / "bad_depth.npz", a=np.ones((2, 4, 4)), b=np.ones((2, 4, 4)))
    with pytest.raises(NodeExecutionError, match="path: 'bad_depth.npz' holds arrays \\['a', 'b'\\] but none named"):
        installed.run(load_depth_prompt("bad_depth.npz"))


def oom_type_name() -> str:
    """How the host reports an exception of its own out-of-memory type (its full_type_name)."""
    import comfy.model_management as mm

    return f"{mm.OOM_EXCEPTION.__module__}.{mm.OOM_EXCEPTION.__qualname__}"


def test_estimate_asks_the_host_for_the_inference_memory(installed, monkeypatch):
    import comfy.model_management as mm

    host = installed
    asked: list[dict] = []
    load_models_gpu = mm.load_models_gpu

    def recording(models, *args, **kwargs):
        asked.append(kwargs)
        return load_models_gpu(models, *args, **kwargs)

    monkeypatch.setattr(mm, "load_models_gpu", recording)
    host.run(estimate_prompt(window=5, seed=11))
    host.run(estimate_prompt(window=3, overlap=1, seed=11))
    host.run(estimate_prompt(model="Depth Anything V2: tiny-v2", batch_size=3, seed=11))
    assert [a["memory_required"] for a in asked] == [
        D.depthcrafter_inference_memory(T, H, W, 5, torch.float32, "sdpa", vae_upcast=False),
        D.depthcrafter_inference_memory(T, H, W, 3, torch.float32, "sdpa", vae_upcast=False),
        D.depth_anything_inference_memory(T, H, W, 3, torch.float32, fusion_hidden_size=16),
    ]
    assert all(a["force_full_load"] for a in asked)


@pytest.mark.parametrize(("model", "knob"), [("DepthCrafter", "window"),
                                              ("Depth Anything V2: tiny-v2", "batch_size")])
def test_out_of_memory_is_the_hosts_oom_it_unloads_and_the_next_prompt_runs(installed, monkeypatch, model, knob):
    import comfy.model_management as mm

    host = installed
    module = sys.modules[host.node_classes["EX4DEstimateDepth"].__module__]
    host.run(estimate_prompt(model=model, seed=5))
    assert mm.current_loaded_models  # the depth model stays loaded between prompts

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 40.00 GiB")

    kind = module.ex4d_depth.DepthCrafter if model == "DepthCrafter" else module.ex4d_depth.DepthAnything
    monkeypatch.setattr(kind, "estimate", oom)
    with pytest.raises(NodeExecutionError, match=f"{knob}: out of GPU memory estimating depth for 8 frames of "
                       f"64x64.*lower '{knob}'") as failed:
        host.run(estimate_prompt(model=model, seed=6))
    assert failed.value.details["exception_type"] == oom_type_name()
    assert "ran out of memory on your GPU" in failed.value.details["exception_message"]  # the host's own tips
    assert mm.current_loaded_models == []  # the host unloaded every model
    monkeypatch.undo()
    host.run(estimate_prompt(model=model, seed=6))
    assert host.node_output("3")[0][0].depth.shape == (T, H, W)


def test_out_of_memory_frees_the_failed_stage_buffers(installed):
    """The buffers a stage held when it ran out of memory are freed at once, not when the traceback goes
    (the next prompt needs that memory; the host's clean-up does not reach a traceback)."""
    import weakref

    import comfy.model_management as mm

    nodes_package = installed.node_classes["EX4DEstimateDepth"].__module__.rsplit(".", 1)[0]
    reraise = sys.modules[f"{nodes_package}._comfy"].reraise_out_of_memory
    held: list[weakref.ref] = []

    def stage() -> None:
        buffers = torch.zeros(1024, 1024)  # a render chunk's buffers, on the device in real life
        held.append(weakref.ref(buffers))
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(mm.OOM_EXCEPTION) as raised, reraise("chunk: lower it"):
        stage()
    assert raised.value.__cause__ is not None
    assert held[0]() is None


def test_reraise_out_of_memory_takes_only_out_of_memory(installed):
    import comfy.model_management as mm

    nodes_package = installed.node_classes["EX4DEstimateDepth"].__module__.rsplit(".", 1)[0]
    reraise = sys.modules[f"{nodes_package}._comfy"].reraise_out_of_memory
    cause = torch.cuda.OutOfMemoryError("CUDA out of memory")
    with pytest.raises(mm.OOM_EXCEPTION, match="^window: lower it$") as raised:
        with reraise("window: lower it"):
            raise cause
    assert raised.value.__cause__ is cause
    with pytest.raises(ValueError, match="not memory"), reraise("window: lower it"):
        raise ValueError("not memory")
    if not hasattr(mm, "ACCELERATOR_ERROR"):  # 0.3.75 knows only OOM_EXCEPTION
        return
    with pytest.raises(mm.OOM_EXCEPTION, match="window"), reraise("window: lower it"):
        raise torch.AcceleratorError("CUDA error: out of memory")
    fault = torch.AcceleratorError("CUDA error: an illegal memory access was encountered")
    with pytest.raises(torch.AcceleratorError) as raised, reraise("window: lower it"):
        raise fault
    assert raised.value is fault  # not out of memory by the host's is_oom: as it was


@pytest.mark.parametrize(("model", "knob"), [("DepthCrafter", "window"),
                                              ("Depth Anything V2: tiny-v2", "batch_size")])
def test_depth_that_cannot_fit_the_card_is_refused_before_the_model_loads(installed, monkeypatch, model, knob):
    import comfy.model_management as mm

    host = installed
    module = sys.modules[host.node_classes["EX4DEstimateDepth"].__module__]
    comfy_module = sys.modules[module.check_fits.__module__]
    loads: list = []
    monkeypatch.setattr(mm, "load_models_gpu", lambda *args, **kwargs: loads.append(args))
    monkeypatch.setattr(comfy_module, "device_memory", lambda device: 2**20)  # a 1 MiB card
    with pytest.raises(NodeExecutionError, match=f"{knob}: .* on 8 frames of 64x64 needs about .* GiB beside .* "
                       f"this GPU has 0.0 GiB for it; lower '{knob}'"):
        host.run(estimate_prompt(model=model, seed=21))
    assert loads == []
    monkeypatch.undo()  # the machine's own memory: it runs
    host.run(estimate_prompt(model=model, seed=21))
    assert host.node_output("3")[0][0].depth.shape == (T, H, W)


def test_depth_weights_move_into_one_host_block_unchanged(installed):
    module = sys.modules[installed.node_classes["EX4DDepthModelLoader"].__module__]
    depth_models = sys.modules[module.__name__.rsplit(".", 1)[0] + ".depth_models"]
    torch.manual_seed(0)
    shared = torch.nn.Linear(5, 5)
    model = torch.nn.ModuleDict({
        "a": torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.BatchNorm1d(5), shared),
        "b": torch.nn.Sequential(shared, torch.nn.Linear(5, 2).half()),
    }).eval()
    x = torch.randn(4, 3)
    before = model["b"][1](model["a"](x).half())
    tensors = [*model.parameters(), *model.buffers()]

    block = depth_models.weights_in_one_block(model)

    after = model["b"][1](model["a"](x).half())
    assert torch.equal(before, after)
    assert shared.weight is model["b"][0].weight  # the tied Parameter object is kept, and laid out once:
    assert block.nbytes == sum(-(-t.nbytes // 512) * 512 for t in tensors)
    start, end = block.data_ptr(), block.data_ptr() + block.nbytes
    for tensor in [*model.parameters(), *model.buffers()]:
        assert start <= tensor.data_ptr() and tensor.data_ptr() + tensor.nbytes <= end
        assert tensor.data_ptr() % 512 == block.data_ptr() % 512
    assert [(t.dtype, t.shape) for t in tensors] == [(t.dtype, t.shape) for t in [*model.parameters(),
                                                                                  *model.buffers()]]


def test_depth_model_on_a_host_without_dynamic_vram_keeps_the_classic_patcher(installed):
    import comfy.model_patcher

    module = sys.modules[installed.node_classes["EX4DDepthModelLoader"].__module__]
    depth_models = sys.modules[module.__name__.rsplit(".", 1)[0] + ".depth_models"]
    model = torch.nn.ModuleDict({"a": torch.nn.Linear(3, 5)})
    weight = model["a"].weight
    patcher = depth_models.depth_model_patcher(model, torch.device("cpu"), torch.device("cpu"))
    assert type(patcher) is comfy.model_patcher.ModelPatcher and not depth_models.is_dynamic(patcher)
    assert model["a"].weight is weight and model["a"].weight.data_ptr() == weight.data_ptr()  # not moved
