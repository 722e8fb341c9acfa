"""Reconstruction nodes through the real executor: depth -> DW-mesh -> camera path -> render."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ex4d import camera as ex4d_camera
from ex4d import render as ex4d_render
from ex4d.mesh import DWMeshSpec, build_dw_mesh, save_glb
from harness.host import NodeExecutionError, PromptValidationError

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "assets" / "example"
FRAMES = 5


@pytest.fixture(scope="module")
def example_inputs(host):
    for f in EXAMPLE.iterdir():
        shutil.copy(f, host.input_dir / f.name)
    return host


def reconstruction_prompt(frames: int = FRAMES, camera: dict | None = None, **render) -> dict:
    camera = camera or {"class_type": "EX4DCameraPreset",
                        "inputs": {"depth": ["2", 0], "radius": 0.0, "focal": 500.0, "preset": "angle",
                                   "angle": 30.0, "zoom_fraction": 0.5}}
    return {
        "1": {"class_type": "EX4DLoadVideo",
              "inputs": {"video": "clip.mp4", "frame_load_cap": frames, "skip_first_frames": 0,
                         "select_every_nth": 1, "target_fps": 0.0,
                         "resize": "published (multiple of 64, long side capped)", "max_resolution": 1024,
                         "multiple": 64}},
        "2": {"class_type": "EX4DLoadDepth",
              "inputs": {"path": "depth.npz", "content": "depth", "frame_load_cap": frames,
                         "skip_first_frames": 0, "select_every_nth": 1}},
        "3": {"class_type": "EX4DBuildDWMesh",
              "inputs": {"frames": ["1", 0], "depth": ["2", 0], "filter": "angle", "angle_threshold": 2.5,
                         "boundary_ratio": 2.0, "watertight": True, "focal": 500.0}},
        "4": camera,
        "5": {"class_type": "EX4DRenderViews",
              "inputs": {"mesh": ["3", 0], "camera": ["4", 0], "backend": render.get("backend", "auto"),
                         "chunk": 2, "antialias": True}},
        "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}},
        "7": {"class_type": "MaskPreview", "inputs": {"mask": ["5", 1]}},
    }


def test_reconstruction_graph_renders_colour_and_mask(example_inputs):
    host = example_inputs
    outputs = host.run(reconstruction_prompt())
    frames = host.node_output("1")[0][0]
    colour, mask = (v[0] for v in host.node_output("5"))
    assert colour.shape == (FRAMES, 320, 512, 3) and mask.shape == (FRAMES, 320, 512)
    assert set(torch.unique(mask).tolist()) <= {0.0, 1.0}
    assert torch.equal(colour[0], frames[0]) and bool(mask[0].all())  # frame 0 is the source
    hidden = 1.0 - mask[1:].mean().item()
    # published: with N < 49 frames the sweep is scaled by 49 / N (here 294 degrees), so much is hidden
    assert 0.005 < hidden < 0.95, f"the orbit should disocclude some pixels, got {hidden:.3f}"
    assert torch.all(colour[1:][mask[1:] == 0] == 0)  # colour is masked
    assert len(outputs["6"]["images"]) == FRAMES and len(outputs["7"]["images"]) == FRAMES
    previews = [e for e in host.events("preview") if e["node"] == "5"]
    assert previews and previews[-1]["size"] == (512, 320)  # the last rendered frame, shown on the node
    events = [e for e in host.events("progress") if e["node"] == "5"]
    assert events and events[-1]["value"] == events[-1]["max"]
    # Build DW-Mesh hands on a description holding the tensors the host already has; Render Views builds
    # the mesh chunk by chunk, with the same images as the library renders from the mesh built whole
    spec = host.node_output("3")[0][0]
    depth = host.node_output("2")[0][0].depth
    assert type(spec).__name__ == "DWMeshSpec" and spec.frames is frames and spec.depth is depth
    camera = host.node_output("4")[0][0]
    expected = ex4d_render.render_views(build_dw_mesh(frames, depth), camera, backend="torch", chunk=FRAMES)
    torch.testing.assert_close(colour, expected.color, rtol=0, atol=0)
    torch.testing.assert_close(mask, expected.mask, rtol=0, atol=0)


def test_camera_nodes_match_library(example_inputs):
    host = example_inputs
    host.run({**reconstruction_prompt(), "8": {"class_type": "EX4DSaveCameraPath",
                                               "inputs": {"camera": ["4", 0], "filename_prefix": "ex4d/cam",
                                                          "format": "ex4d npz"}}})
    depth = host.node_output("2")[0][0].depth
    cam = host.node_output("4")[0][0]
    clip = ex4d_camera.Clip.centred(FRAMES, 512, 320, ex4d_camera.radius_from_depth(depth[0]))
    expected = ex4d_camera.preset("30", clip)
    np.testing.assert_array_equal(cam.extrinsics, expected.extrinsics)
    saved = host.output_dir / host.node_output("8")[0][0]
    with np.load(saved) as data:
        assert sorted(data.files) == ["extrinsics", "intrinsics"]
        np.testing.assert_array_equal(data["extrinsics"], expected.extrinsics)
    # and back in through the loader, from the input folder
    shutil.copy(saved, host.input_dir / "camera_30.npz")
    prompt = reconstruction_prompt(camera={"class_type": "EX4DLoadCameraPath",
                                           "inputs": {"path": "camera_30.npz", "width": 0, "height": 0}})
    host.run(prompt)
    np.testing.assert_array_equal(host.node_output("4")[0][0].extrinsics, expected.extrinsics)


@pytest.mark.parametrize("node", [
    {"class_type": "EX4DCameraOrbit", "inputs": {"yaw_start": 0.0, "yaw_end": 20.0, "pitch_start": 0.0,
                                                  "pitch_end": 5.0, "distance": 0.0, "easing": "ease_in_out",
                                                  "hold_start": 1, "hold_end": 0}},
    {"class_type": "EX4DCameraDolly", "inputs": {"start": 0.0, "end": 0.3, "easing": "linear",
                                                  "hold_start": 0, "hold_end": 1}},
    {"class_type": "EX4DCameraKeyframes",
     "inputs": {"keyframes": json.dumps([{"frame": 0, "yaw": 0}, {"frame": 4, "yaw": 15, "pitch": 5}]),
                "easing": "linear"}},
], ids=lambda n: n["class_type"])
def test_custom_camera_nodes_run(example_inputs, node):
    host = example_inputs
    node = {"class_type": node["class_type"],
            "inputs": {"depth": ["2", 0], "radius": 0.0, "focal": 500.0, **node["inputs"]}}
    host.run(reconstruction_prompt(camera=node))
    cam = host.node_output("4")[0][0]
    assert cam.num_frames == FRAMES and (cam.width, cam.height) == (512, 320)
    # frame 0 looks from the origin along +z: V = rows (-x, y, z), then E = diag(-1, -1, -1, 1) V
    np.testing.assert_allclose(cam.extrinsics[0], np.diag([1, -1, -1, 1]).astype(np.float32), atol=1e-6)


def _glb(data: bytes) -> tuple[dict, bytes]:
    jlen = int.from_bytes(data[12:16], "little")
    return json.loads(data[20 : 20 + jlen]), data[28 + jlen :]


def test_save_dw_mesh_for_the_3d_preview(example_inputs, tmp_path):
    host = example_inputs
    prompt = reconstruction_prompt(frames=2)
    prompt["8"] = {"class_type": "EX4DSaveDWMesh",
                   "inputs": {"mesh": ["3", 0], "frame": 1, "format": "glb", "filename_prefix": "ex4d/mesh"}}
    prompt["9"] = {"class_type": "Preview3D", "inputs": {"model_file": ["8", 0]}}
    prompt["10"] = {"class_type": "EX4DSaveDWMesh",
                    "inputs": {"mesh": ["3", 0], "frame": 1, "format": "glb", "filename_prefix": "ex4d/full",
                               "full_mesh": True}}
    outputs = host.run(prompt)
    relative = host.node_output("8")[0][0]
    data = (host.output_dir / relative).read_bytes()
    assert outputs["9"]["result"][0] == relative
    frames, depth = host.node_output("1")[0][0], host.node_output("2")[0][0].depth
    # by default a file to look at: no far wall (depth 100), no hidden faces, centred, unlit source colours
    gltf, _ = _glb(data)
    position = gltf["accessors"][0]
    assert max(abs(v) for v in position["min"] + position["max"]) < 50
    np.testing.assert_allclose(np.add(position["min"], position["max"]) / 2, -np.array(gltf["nodes"][0]["translation"]),
                               atol=1e-5)
    assert "KHR_materials_unlit" in gltf["materials"][0]["extensions"]
    assert data == save_glb(DWMeshSpec(frames, depth), 1, tmp_path / "p.glb", preview=True).read_bytes()
    # full_mesh: the whole watertight mesh, frame 1 built on its own = frame 1 of the mesh built whole
    full = (host.output_dir / host.node_output("10")[0][0]).read_bytes()
    full_faces, preview_faces = (_glb(d)[0]["accessors"][2]["count"] // 3 for d in (full, data))
    assert full_faces == 2 * 319 * 511 + 2 > preview_faces > full_faces * 0.8
    whole = build_dw_mesh(frames, depth)
    assert full == save_glb(whole, 1, tmp_path / "whole.glb").read_bytes()


def test_save_dw_mesh_of_a_frame_the_filter_hides_whole_is_a_clear_error(example_inputs):
    host = example_inputs
    noise = 1.0 + 10.0 * np.random.default_rng(0).random((2, 320, 512), dtype=np.float32)
    np.savez(host.input_dir / "noise_depth.npz", depth=noise)
    prompt = {k: v for k, v in reconstruction_prompt(frames=2).items() if k in ("1", "2", "3")}  # no render
    prompt["2"]["inputs"]["path"] = "noise_depth.npz"
    prompt["3"]["inputs"].update(filter="boundary", boundary_ratio=0.0)  # any depth step hides a face
    prompt["8"] = {"class_type": "EX4DSaveDWMesh",
                   "inputs": {"mesh": ["3", 0], "frame": 1, "format": "glb", "filename_prefix": "ex4d/noise"}}
    with pytest.raises(NodeExecutionError, match="mesh: frame 1 of the DW-mesh has no visible faces: the 'boundary' "
                       r"filter \(boundary_ratio 0\).*or preview another frame \(or turn full_mesh on"):
        host.run(prompt)


def test_mismatched_camera_and_mesh_is_a_clear_error(example_inputs):
    host = example_inputs
    cam = ex4d_camera.preset("30", ex4d_camera.Clip.centred(FRAMES + 3, 512, 320, 3.0))
    ex4d_camera.write_ex4d_npz(cam, host.input_dir / "camera_long.npz")
    prompt = reconstruction_prompt(camera={"class_type": "EX4DLoadCameraPath",
                                           "inputs": {"path": "camera_long.npz", "width": 0, "height": 0}})
    with pytest.raises(NodeExecutionError, match=f"camera has {FRAMES + 3} frames but mesh has {FRAMES}"):
        host.run(prompt)


def test_depth_and_frames_of_different_length_is_a_clear_error(example_inputs):
    host = example_inputs
    prompt = reconstruction_prompt()
    prompt["2"]["inputs"]["frame_load_cap"] = FRAMES - 1
    with pytest.raises(NodeExecutionError, match=f"depth: {FRAMES - 1} frames of 512x320, but the frames are "
                       f"{FRAMES} frames of 512x320 \\(they differ in frame count or size\\); estimate the depth"):
        host.run(prompt)


def test_nan_depth_is_refused(example_inputs):
    host = example_inputs
    bad = np.load(EXAMPLE / "depth.npz")["depth"].astype(np.float32)[:FRAMES]
    bad[2, 10, 10] = np.nan
    np.savez(host.input_dir / "nan_depth.npz", depth=bad)
    prompt = reconstruction_prompt()
    prompt["2"]["inputs"]["path"] = "nan_depth.npz"
    with pytest.raises((NodeExecutionError, PromptValidationError), match="NaN"):
        host.run(prompt)


def test_render_cancel(example_inputs):
    host = example_inputs
    camera = {"class_type": "EX4DCameraPreset",
              "inputs": {"depth": ["2", 0], "radius": 0.0, "focal": 500.0, "preset": "angle", "angle": 45.0,
                         "zoom_fraction": 0.5}}
    with host.interrupt_when("5", at_value=2) as seen, pytest.raises(InterruptedError):
        host.run(reconstruction_prompt(frames=6, camera=camera))
    assert seen and max(seen) < 6  # chunks of 2 frames: stopped before the last


def test_example_workflow_runs_end_to_end(example_inputs):
    """workflows/api/ex4d_example_api.json (what ./dev demo runs), on the first frames of the bundled clip."""
    host = example_inputs
    prompt = json.loads((REPO / "workflows" / "api" / "ex4d_example_api.json").read_text())
    for node in prompt.values():
        if "frame_load_cap" in node["inputs"]:
            node["inputs"]["frame_load_cap"] = FRAMES
    outputs = host.run(prompt)
    colour, mask = (v[0] for v in host.node_output("7"))
    assert colour.shape == (FRAMES, 320, 512, 3) and mask.shape == (FRAMES, 320, 512)
    videos = [outputs[n]["images"][0] for n in ("9", "12")]
    for item in videos:
        path = host.output_dir / item["subfolder"] / item["filename"]
        assert path.suffix == ".mp4" and path.stat().st_size > 1000
    assert (host.output_dir / host.node_output("13")[0][0]).read_bytes()[:4] == b"glTF"
    with np.load(host.output_dir / host.node_output("15")[0][0]) as cam:
        assert cam["extrinsics"].shape == (FRAMES, 4, 4)
    assert len(outputs["4"]["images"]) == FRAMES  # depth preview


def test_render_out_of_memory_is_the_hosts_oom_it_unloads_and_the_next_prompt_runs(example_inputs, monkeypatch):
    import comfy.model_management as mm
    import comfy.model_patcher

    host = example_inputs
    module = sys.modules[host.node_classes["EX4DRenderViews"].__module__]
    # a model the host holds loaded (as it would the depth model or Wan) when the render runs out of memory
    device = mm.get_torch_device()
    patcher = comfy.model_patcher.ModelPatcher(torch.nn.Linear(4, 4), device, device)
    mm.load_models_gpu([patcher])
    assert any(m.model is patcher for m in mm.current_loaded_models)

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(module.ex4d_render, "render_views", oom)
    with pytest.raises(NodeExecutionError, match="chunk: out of GPU memory building and rendering the DW-mesh of "
                       "2 frames of 512x320 at once; lower 'chunk'") as failed:
        host.run(reconstruction_prompt(frames=3))
    oom_type = mm.OOM_EXCEPTION
    assert failed.value.details["exception_type"] == f"{oom_type.__module__}.{oom_type.__qualname__}"
    assert mm.current_loaded_models == []  # the host unloaded every model
    monkeypatch.undo()
    host.run(reconstruction_prompt(frames=3))
    assert host.node_output("5")[0][0].shape == (3, 320, 512, 3)


def test_render_asks_the_host_for_its_memory_first(example_inputs, monkeypatch):
    """Render Views makes room as a model load does (the host offloads the 14B DiT on a small card)."""
    import comfy.model_management as mm

    from ex4d.render import render_memory

    asked = []
    free_memory = mm.free_memory

    def recording(memory_required, device, *args, **kwargs):
        asked.append((memory_required, device))
        return free_memory(memory_required, device, *args, **kwargs)

    monkeypatch.setattr(mm, "free_memory", recording)
    example_inputs.run(reconstruction_prompt(frames=5))  # a prompt no other test runs: nothing cached
    # with the host's margin and reserve, as a model load asks
    needed = render_memory(5, 320, 512, 2, "auto") * 1.1 + mm.extra_reserved_memory()
    assert any(device == mm.get_torch_device() and required >= needed for required, device in asked), asked
    assert render_memory(49, 320, 512, 32) > render_memory(49, 320, 512, 8) > render_memory(8, 320, 512, 8) > 0


def test_render_out_of_memory_offloads_the_models_and_tries_once_more(example_inputs, monkeypatch):
    """An estimate cannot foresee every scene: a render that still runs out of memory offloads every model and
    runs again; running out a second time is the host's out-of-memory error naming 'chunk'."""
    import sys

    import comfy.model_management as mm

    from harness.host import NodeExecutionError

    host = example_inputs
    module = sys.modules[host.node_classes["EX4DRenderViews"].__module__]
    render_views = module.ex4d_render.render_views
    calls, offloaded = [], []
    monkeypatch.setattr(mm, "unload_all_models", lambda: offloaded.append(True))

    def short_of_memory(*args, failures: int, **kwargs):
        calls.append(True)
        if len(calls) <= failures:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return render_views(*args, **kwargs)

    monkeypatch.setattr(module.ex4d_render, "render_views", lambda *a, **k: short_of_memory(*a, failures=1, **k))
    host.run(reconstruction_prompt(frames=4))
    assert len(calls) == 2 and offloaded == [True]
    assert host.node_output("5")[0][0].shape == (4, 320, 512, 3)
    calls.clear()
    monkeypatch.setattr(module.ex4d_render, "render_views", lambda *a, **k: short_of_memory(*a, failures=2, **k))
    with pytest.raises(NodeExecutionError, match="chunk: out of GPU memory") as failed:
        host.run(reconstruction_prompt(frames=6))
    assert failed.value.details["exception_type"].endswith("OutOfMemoryError") and len(calls) == 2


def test_camera_path_preview_node(example_inputs):
    host = example_inputs
    prompt = reconstruction_prompt(frames=3)
    prompt["8"] = {"class_type": "EX4DCameraPreview",
                   "inputs": {"camera": ["4", 0], "depth": ["2", 0], "frames": ["1", 0], "size": 128}}
    prompt["9"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    host.run(prompt)
    image = host.node_output("8")[0][0]
    assert image.shape == (1, 128, 256, 3) and 0 <= image.min() and image.max() <= 1
    bare = {**prompt, "8": {"class_type": "EX4DCameraPreview", "inputs": {"camera": ["4", 0], "size": 128}}}
    host.run(bare)
    assert not torch.equal(host.node_output("8")[0][0], image)  # the scene points are gone


def _path_response(host, body: dict) -> tuple[int, dict]:
    """The pack's route handler as the host loaded it (the pack's package name is the host's choice)."""
    import importlib

    package = host.node_classes["EX4DCameraPreset"].__module__.rsplit(".", 1)[0]
    return importlib.import_module(f"{package}._routes").path_response(body)


def _scene_bytes(host, entry: dict) -> bytes:
    import importlib

    package = host.node_classes["EX4DCameraPreset"].__module__.rsplit(".", 1)[0]
    return importlib.import_module(f"{package}._camera_scenes").SCENES.get(entry["scene"])


@pytest.mark.parametrize("node", [
    {"class_type": "EX4DCameraPreset", "inputs": {"preset": "angle", "angle": 30.0, "zoom_fraction": 0.5,
                                                   "easing": "ease_in_out", "hold_start": 1, "hold_end": 1}},
    {"class_type": "EX4DCameraPreset", "inputs": {"preset": "crane", "angle": 30.0, "zoom_fraction": 0.5,
                                                   "amount": 0.4, "easing": "ease_out", "hold_start": 0, "hold_end": 1}},
    {"class_type": "EX4DCameraKeyframes",
     "inputs": {"keyframes": json.dumps([{"frame": 0, "yaw": 0}, {"frame": 4, "eye": [0.5, -0.2, 0.3],
                                                                  "target": [0, 0, 2]}]), "easing": "linear"}},
    {"class_type": "EX4DCameraDolly", "inputs": {"start": 0.0, "end": 0.6, "easing": "ease_in_out", "hold_start": 0,
                                                  "hold_end": 0, "zoom": "dolly-zoom (keep subject size)"}},
], ids=["preset eased", "crane", "keyframes", "dolly-zoom"])
def test_path_nodes_show_their_scene_and_the_route_gives_the_path_that_ran(example_inputs, node):
    host = example_inputs
    camera = {"class_type": node["class_type"],
              "inputs": {"depth": ["2", 0], "frames": ["1", 0], "radius": 0.0, "focal": 500.0, **node["inputs"]}}
    outputs = host.run(reconstruction_prompt(camera=camera))
    ui = outputs["4"]
    scene, shown = ui["ex4d_scene"][0], ui["ex4d_path"][0]
    depth = host.node_output("2")[0][0].depth
    assert (scene["frames"], scene["width"], scene["height"]) == (FRAMES, 512, 320)
    assert scene["radius"] == ex4d_camera.radius_from_depth(depth[0])
    data = _scene_bytes(host, scene)
    assert data[:8] == b"EX4DSCN1"
    assert not list((host.work_dir / "temp").rglob("*.bin"))  # in memory: nothing on disk
    cam = host.node_output("4")[0][0]
    np.testing.assert_array_equal(np.array(shown["extrinsics"], np.float32), cam.extrinsics)
    # the editor's route: the same numbers from the clip the node reported and the widget values
    widgets = {k: v for k, v in camera["inputs"].items() if not isinstance(v, list)}
    status, answer = _path_response(host, {"node": node["class_type"], "clip": scene, "inputs": widgets})
    assert status == 200 and answer == shown
    assert ("focals" in answer) == cam.lens.zooms  # a dolly-zoom's per-frame focal reaches the editor
    if cam.lens.zooms:
        np.testing.assert_array_equal(np.array(answer["focals"], np.float32), cam.lens.focals)
    status, answer = _path_response(host, {"node": node["class_type"], "clip": scene, "inputs": {**widgets, "focal": -1}})
    assert status == 400 and "focal" in answer["error"]


def test_dolly_zoom_node_renders_saves_and_loads(example_inputs):
    """The Dolly node's dolly-zoom: each frame's focal follows the distance to the target; Render Views renders
    it (the mesh keeps the source focal), Save / Load Camera Path carry the focal lengths in both formats."""
    host = example_inputs
    camera = {"class_type": "EX4DCameraDolly",
              "inputs": {"depth": ["2", 0], "radius": 0.0, "focal": 500.0, "start": 0.0, "end": 0.5, "easing": "linear",
                         "hold_start": 0, "hold_end": 0, "zoom": "dolly-zoom (keep subject size)"}}
    prompt = reconstruction_prompt(camera=camera)
    for key, format in (("8", "ex4d npz"), ("9", "json")):
        prompt[key] = {"class_type": "EX4DSaveCameraPath",
                       "inputs": {"camera": ["4", 0], "filename_prefix": "ex4d/vertigo", "format": format}}
    host.run(prompt)
    depth = host.node_output("2")[0][0].depth
    cam = host.node_output("4")[0][0]
    r = ex4d_camera.radius_from_depth(depth[0])
    expected = ex4d_camera.dolly(ex4d_camera.Clip.centred(FRAMES, 512, 320, r), start=0.0, end=0.5,
                                 keep_subject_size=True)
    assert cam.focal == 500.0 and cam.lens.focals.tobytes() == expected.lens.focals.tobytes()
    np.testing.assert_allclose(cam.frame_focals(), 500.0 * (1 - 0.5 * np.linspace(0, 1, FRAMES)), rtol=1e-6)
    colour = host.node_output("5")[0][0]
    saved = [host.output_dir / host.node_output(key)[0][0] for key in ("8", "9")]
    plain = {**camera, "inputs": {**camera["inputs"], "zoom": "none"}}
    host.run(reconstruction_prompt(camera=plain))
    plain_colour = host.node_output("5")[0][0]
    assert torch.equal(colour[0], plain_colour[0]) and not torch.equal(colour[-1], plain_colour[-1])
    for file in saved:
        shutil.copy(file, host.input_dir / f"vertigo{file.suffix}")
        host.run(reconstruction_prompt(camera={"class_type": "EX4DLoadCameraPath",
                                               "inputs": {"path": f"vertigo{file.suffix}", "width": 0, "height": 0}}))
        loaded = host.node_output("4")[0][0]
        assert loaded.lens.focals.tobytes() == cam.lens.focals.tobytes() and loaded.focal == 500.0
        assert torch.equal(host.node_output("5")[0][0], colour)


def test_load_scene_route_finds_the_scene_of_the_same_depth(example_inputs):
    """The editor's "load scene" action: a camera node that has not run gets the scene another camera node made
    on the same depth and frames (keyed by the nodes upstream, not their ids)."""
    import importlib

    host = example_inputs
    camera = {"class_type": "EX4DCameraPreset",
              "inputs": {"depth": ["2", 0], "frames": ["1", 0], "radius": 0.0, "focal": 500.0, "preset": "angle",
                         "angle": 30.0, "zoom_fraction": 0.5}}
    prompt = reconstruction_prompt(camera=camera)
    entry = host.run(prompt)["4"]["ex4d_scene"][0]
    package = host.node_classes["EX4DCameraPreset"].__module__.rsplit(".", 1)[0]
    scene_response = importlib.import_module(f"{package}._routes").scene_response
    # the page's graph: other ids, another (never run) camera node on the same depth and frames
    page = {str(int(k) + 10): {**v, "inputs": {n: [str(int(x[0]) + 10), x[1]] if isinstance(x, list) else x
                                               for n, x in v["inputs"].items()}} for k, v in prompt.items()}
    page["20"] = {"class_type": "EX4DCameraDolly", "inputs": {"depth": ["12", 0], "frames": ["11", 0], "start": 0.0}}
    assert scene_response({"node": "20", "prompt": page}) == (200, entry)
    assert scene_response({"node": 14, "prompt": page}) == (200, entry)
    other = {**page, "12": {**page["12"], "inputs": {**page["12"]["inputs"], "frame_load_cap": FRAMES + 1}}}
    status, answer = scene_response({"node": "20", "prompt": other})
    assert status == 404 and answer["error"].startswith("scene: no camera node has run on this depth")
    status, answer = scene_response({"node": "20", "prompt": {**page, "20": {"class_type": "EX4DCameraDolly",
                                                                             "inputs": {}}}})
    assert status == 404 and answer["error"].startswith("depth: not connected")
    assert scene_response({"node": "99", "prompt": page})[0] == 400
    assert scene_response([1])[0] == 400


def test_load_scene_route_leaves_out_display_widgets_whatever_nodes_names(example_inputs, monkeypatch):
    """A page's prompt holds display-widget values the queued prompt lacks; the scene's key leaves out what the
    node classes do not declare, found in the host's registry even where the bare name ``nodes`` is this pack's
    package (as it is for an import from the pack's own folder)."""
    import importlib
    import sys

    host = example_inputs
    camera = {"class_type": "EX4DCameraPreset",
              "inputs": {"depth": ["2", 0], "frames": ["1", 0], "radius": 0.0, "focal": 500.0, "preset": "angle",
                         "angle": 33.0, "zoom_fraction": 0.5}}  # an angle no other test runs: this one runs
    prompt = reconstruction_prompt(camera=camera)
    entry = host.run(prompt)["4"]["ex4d_scene"][0]
    package = host.node_classes["EX4DCameraPreset"].__module__.rsplit(".", 1)[0]
    scene_response = importlib.import_module(f"{package}._routes").scene_response
    page = {**prompt, "1": {**prompt["1"], "inputs": {**prompt["1"]["inputs"], "videopreview": {"hidden": False}}}}
    monkeypatch.setitem(sys.modules, "nodes", importlib.import_module(package))
    assert scene_response({"node": "4", "prompt": page}) == (200, entry)


def test_path_route_refuses_what_it_cannot_evaluate(host):
    def path_response(body):
        return _path_response(host, body)

    clip = {"frames": 5, "width": 64, "height": 32, "radius": 2.0}
    status, answer = path_response({"node": "EX4DLoadVideo", "clip": clip, "inputs": {}})
    assert status == 400 and answer["error"].startswith("node:")
    status, answer = path_response({"node": "EX4DCameraDolly", "clip": clip, "inputs": {"start": 0.0}})
    assert status == 400 and answer["error"].startswith("inputs: missing")
    preset = {"radius": 0.0, "focal": 500.0, "preset": "angle", "angle": 30.0, "zoom_fraction": 0.5}
    status, answer = path_response({"node": "EX4DCameraPreset", "clip": clip, "inputs": preset})
    assert status == 200 and len(answer["extrinsics"]) == 5  # widgets added later may be absent
    status, answer = path_response({"node": "EX4DCameraDolly", "clip": {**clip, "frames": 0}, "inputs": {}})
    assert status == 400 and answer["error"].startswith("clip:")
    keys = {"radius": 0.0, "focal": 500.0, "keyframes": "[{frame: 0}]", "easing": "linear"}
    status, answer = path_response({"node": "EX4DCameraKeyframes", "clip": clip, "inputs": keys})
    assert status == 400 and answer["error"].startswith("keyframes: not valid JSON")
    status, answer = path_response({"node": "EX4DCameraKeyframes", "clip": clip,
                                    "inputs": {**keys, "keyframes": "[{\"frame\": 0}]", "easing": "wobble"}})
    assert status == 400 and "easing" in answer["error"]
