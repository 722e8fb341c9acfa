"""The lens on the depth (EX4D_DEPTH): it reaches the DW-mesh, the camera path, its files and the render; a
focal widget at its default follows it, any other value overrides it with a note; depth without one keeps the
published 500 px."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ex4d import camera as ex4d_camera
from ex4d import depth as ex4d_depth
from ex4d import render as ex4d_render
from ex4d.camera import PUBLISHED_FOCAL, Clip, Lens
from ex4d.mesh import DWMeshSpec, build_dw_mesh, unproject

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "assets" / "example"
FRAMES = 4
TRUE_FOCAL = 320.0


def test_depth_without_a_lens_is_seen_through_the_published_500_px():
    depth = ex4d_depth.DepthVideo(torch.full((2, 6, 8), 3.0))
    assert depth.lens is None and not depth.metric
    lens = depth.clip_lens
    assert (lens.width, lens.height, lens.focal, lens.principal_point) == (8, 6, PUBLISHED_FOCAL, (4.0, 3.0))


def test_depth_refuses_a_lens_of_another_size_or_frame_count():
    values = torch.full((2, 6, 8), 3.0)
    with pytest.raises(ValueError, match="lens: made for 10x6"):
        ex4d_depth.DepthVideo(values, lens=Lens.centred(10, 6, 300.0))
    zoom = Lens(8, 6, Lens.centred(8, 6, 300.0).intrinsics, focals=np.array([300.0, 310.0, 320.0]))
    with pytest.raises(ValueError, match="3 per-frame focal lengths for 2"):
        ex4d_depth.DepthVideo(values, lens=zoom)


def test_lens_survives_a_move_to_another_device():
    depth = ex4d_depth.DepthVideo(torch.full((1, 6, 8), 3.0), lens=Lens.centred(8, 6, 300.0), metric=True)
    moved = depth.to("cpu")
    assert moved.lens is depth.lens and moved.metric


def test_per_frame_focals_unproject_each_frame_with_its_own():
    depth = torch.rand(3, 5, 7) + 1.0
    focals = torch.tensor([200.0, 300.0, 450.0])
    together = unproject(depth, focals)
    for t in range(3):
        torch.testing.assert_close(together[t], unproject(depth[t : t + 1], float(focals[t]))[0], rtol=0, atol=0)
    frames = torch.rand(3, 5, 7, 3)
    mesh = DWMeshSpec(frames, depth, focal=300.0, focals=focals).part(1, 3)
    torch.testing.assert_close(mesh.vertices, build_dw_mesh(frames[1:], depth[1:], focals=focals[1:]).vertices)


def test_clip_of_depth_takes_the_lens_and_refuses_another_size():
    depth = torch.full((3, 6, 8), 2.0)
    clip = Clip.of_depth(depth, lens=Lens.centred(8, 6, TRUE_FOCAL))
    assert clip.lens.focal == TRUE_FOCAL and clip.radius == pytest.approx(2.15)
    with pytest.raises(ValueError, match="lens: made for 9x6"):
        Clip.of_depth(depth, lens=Lens.centred(9, 6, TRUE_FOCAL))


def test_depth_file_keeps_its_lens(tmp_path):
    zoom = Lens(8, 6, Lens.centred(8, 6, 300.0).intrinsics, focals=np.array([300.0, 320.0], dtype=np.float32))
    depth = ex4d_depth.DepthVideo(torch.full((2, 6, 8), 3.0), lens=zoom, metric=True)
    path = ex4d_depth.write_depth_file(depth, tmp_path / "d.npz")
    lens, metric = ex4d_depth.read_depth_lens(path, 8, 6)
    assert metric and lens.focal == 300.0 and lens.focals.tolist() == [300.0, 320.0]
    published = ex4d_depth.write_depth_file(ex4d_depth.DepthVideo(depth.depth), tmp_path / "p.npz")
    assert ex4d_depth.read_depth_lens(published, 8, 6) == (None, False)
    with np.load(published) as data:
        assert sorted(data.files) == ["depth"]  # a published file stays as it was
    np.savez(tmp_path / "bad.npz", depth=depth.depth.numpy(), intrinsics=np.eye(3) * [300, 300, 1])
    with pytest.raises(ex4d_depth.DepthFileError, match="principal point"):
        ex4d_depth.read_depth_lens(tmp_path / "bad.npz", 8, 6)


# ------------------------------------------------------------------------------------------------ through the host


@pytest.fixture(scope="module")
def lens_inputs(host):
    """The bundled clip's true depth saved with a 320 px lens (as Save Depth writes a depth that has one)."""
    for f in EXAMPLE.iterdir():
        shutil.copy(f, host.input_dir / f.name)
    values = ex4d_depth.read_depth_array(EXAMPLE / "depth.npz")
    lens = Lens.centred(values.shape[2], values.shape[1], TRUE_FOCAL)
    ex4d_depth.write_depth_file(ex4d_depth.DepthVideo(torch.from_numpy(values), lens=lens),
                                host.input_dir / "depth_320.npz")
    return host


def lens_prompt(depth_file: str, mesh_focal: float = PUBLISHED_FOCAL, camera_focal: float = PUBLISHED_FOCAL,
                camera_format: str = "ex4d npz") -> dict:
    return {
        "1": {"class_type": "EX4DLoadVideo",
              "inputs": {"video": "clip.mp4", "frame_load_cap": FRAMES, "skip_first_frames": 0,
                         "select_every_nth": 1, "target_fps": 0.0,
                         "resize": "published (multiple of 64, long side capped)", "max_resolution": 1024,
                         "multiple": 64}},
        "2": {"class_type": "EX4DLoadDepth",
              "inputs": {"path": depth_file, "content": "depth", "frame_load_cap": FRAMES,
                         "skip_first_frames": 0, "select_every_nth": 1}},
        "3": {"class_type": "EX4DBuildDWMesh",
              "inputs": {"frames": ["1", 0], "depth": ["2", 0], "filter": "angle", "angle_threshold": 2.5,
                         "boundary_ratio": 2.0, "watertight": True, "focal": mesh_focal}},
        "4": {"class_type": "EX4DCameraOrbit",
              "inputs": {"depth": ["2", 0], "frames": ["1", 0], "radius": 0.0, "focal": camera_focal,
                         "yaw_start": 0.0, "yaw_end": 60.0, "pitch_start": 0.0, "pitch_end": 0.0, "distance": 0.0,
                         "easing": "linear", "hold_start": 0, "hold_end": 0}},
        "5": {"class_type": "EX4DRenderViews",
              "inputs": {"mesh": ["3", 0], "camera": ["4", 0], "backend": "torch", "chunk": 2, "antialias": True}},
        "6": {"class_type": "MaskPreview", "inputs": {"mask": ["5", 1]}},
        "7": {"class_type": "EX4DSaveCameraPath",
              "inputs": {"camera": ["4", 0], "filename_prefix": "ex4d/lens", "format": camera_format}},
    }


def test_a_depth_with_a_320_px_lens_reaches_mesh_camera_files_and_render(lens_inputs):
    host = lens_inputs
    outputs = host.run(lens_prompt("depth_320.npz"))
    depth = host.node_output("2")[0][0]
    assert depth.lens.focal == TRUE_FOCAL
    mesh, camera = host.node_output("3")[0][0], host.node_output("4")[0][0]
    assert mesh.focal == TRUE_FOCAL and camera.focal == TRUE_FOCAL
    np.testing.assert_array_equal(camera.frame_intrinsics()[:, 0, 0], TRUE_FOCAL)
    assert outputs["4"]["ex4d_scene"][0]["focal"] == TRUE_FOCAL  # the camera editor's clip
    assert "text" not in outputs.get("3", {}) and "text" not in outputs["4"]  # nothing overridden
    with np.load(host.output_dir / host.node_output("7")[0][0]) as data:
        np.testing.assert_array_equal(data["intrinsics"], Lens.centred(512, 320, TRUE_FOCAL).intrinsics)
    frames = host.node_output("1")[0][0]
    colour, mask = (v[0] for v in host.node_output("5"))
    expected = ex4d_render.render_views(build_dw_mesh(frames, depth.depth, focal=TRUE_FOCAL), camera,
                                        backend="torch", chunk=FRAMES)
    torch.testing.assert_close(colour, expected.color, rtol=0, atol=0)
    torch.testing.assert_close(mask, expected.mask, rtol=0, atol=0)
    published = ex4d_render.render_views(build_dw_mesh(frames, depth.depth), ex4d_camera.orbit(
        Clip.of_depth(depth.depth), yaw=(0, 60)), backend="torch", chunk=FRAMES)
    assert (published.mask != mask).float().mean() > 0.01  # the lens changes what the new view sees


def test_the_json_camera_file_holds_the_depths_lens(lens_inputs):
    host = lens_inputs
    host.run(lens_prompt("depth_320.npz", camera_format="json"))
    data = json.loads((host.output_dir / host.node_output("7")[0][0]).read_text())
    assert data["intrinsics"][0][0] == TRUE_FOCAL


def test_a_focal_widget_set_by_hand_overrides_the_depths_lens_with_a_note(lens_inputs):
    host = lens_inputs
    outputs = host.run(lens_prompt("depth_320.npz", mesh_focal=400.0, camera_focal=400.0))
    assert host.node_output("3")[0][0].focal == 400.0 and host.node_output("4")[0][0].focal == 400.0
    for node in ("3", "4"):
        note = outputs[node]["text"][0]
        assert "focal: 400 px overrides the depth's lens (320.0 px" in note and "set focal to 500" in note


def test_published_depth_keeps_500_px_without_a_note(lens_inputs):
    host = lens_inputs
    outputs = host.run(lens_prompt("depth.npz"))
    assert host.node_output("2")[0][0].lens is None
    assert host.node_output("3")[0][0].focal == PUBLISHED_FOCAL and host.node_output("4")[0][0].focal == PUBLISHED_FOCAL
    assert "text" not in outputs.get("3", {}) and "text" not in outputs["4"]
    assert outputs["4"]["ex4d_scene"][0]["focal"] == PUBLISHED_FOCAL


def test_depth_from_image_focal_gives_the_depth_its_lens(lens_inputs):
    host = lens_inputs
    prompt = lens_prompt("depth.npz")
    prompt["8"] = {"class_type": "EX4DDepthPreview", "inputs": {"depth": ["2", 0], "colormap": "gray"}}
    prompt["2b"] = {"class_type": "EX4DDepthFromImage",
                    "inputs": {"image": ["8", 0], "map": "disparity (bright = near)", "range": "published",
                               "near": 1.0, "far": 100.0, "focal": TRUE_FOCAL}}
    for node in ("3", "4"):
        prompt[node]["inputs"]["depth"] = ["2b", 0]
    host.run(prompt)
    assert host.node_output("2b")[0][0].lens.focal == TRUE_FOCAL
    assert host.node_output("3")[0][0].focal == TRUE_FOCAL and host.node_output("4")[0][0].focal == TRUE_FOCAL


def test_camera_editor_route_takes_the_reported_lens(host):
    import importlib

    package = host.node_classes["EX4DCameraOrbit"].__module__.rsplit(".", 1)[0]
    path_response = importlib.import_module(f"{package}._routes").path_response
    clip = {"frames": 3, "width": 64, "height": 40, "radius": 2.0, "focal": TRUE_FOCAL, "focals": None}
    inputs = {"radius": 0.0, "focal": PUBLISHED_FOCAL, "yaw_start": 0.0, "yaw_end": 30.0, "pitch_start": 0.0,
              "pitch_end": 0.0, "distance": 0.0, "easing": "linear", "hold_start": 0, "hold_end": 0}
    status, answer = path_response({"node": "EX4DCameraOrbit", "clip": clip, "inputs": inputs})
    assert status == 200 and answer["intrinsics"][0][0] == TRUE_FOCAL
    status, answer = path_response({"node": "EX4DCameraOrbit", "clip": {**clip, "focal": None}, "inputs": inputs})
    assert status == 200 and answer["intrinsics"][0][0] == PUBLISHED_FOCAL  # a clip reported before the lens
