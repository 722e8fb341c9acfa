"""EX-4D Depth From Geometry: the host's MoGe / Depth Anything 3 geometry (depth, mask or sky, intrinsics) as EX-4D
depth with its lens, the pixels without a surface at the far wall and one scale over the clip."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch

from ex4d import depth as ex4d_depth
from ex4d.depth import geometry
from ex4d.mesh import BORDER_DEPTH

REPO = Path(__file__).resolve().parent.parent
T, H, W = 6, 40, 64


def test_one_focal_length_per_clip_is_the_median_of_the_frames():
    k = torch.eye(3).repeat(5, 1, 1)
    k[:, 0, 0] = k[:, 1, 1] = torch.tensor([300.0, 330.0, 310.0, 500.0, 320.0])
    k[:, 0, 2], k[:, 1, 2] = W / 2, H / 2
    lens, note = geometry.lens_from_intrinsics(k, W, H)
    assert lens.focal == 320.0 and lens.focals is None and (lens.width, lens.height) == (W, H)
    assert note == "lens: 320.0 px (one per clip, frames 300.0-500.0)"
    zoom, note = geometry.lens_from_intrinsics(k, W, H, per_frame=True)
    assert zoom.focal == 320.0 and zoom.focals.tolist() == [300.0, 330.0, 310.0, 500.0, 320.0]
    assert "each frame's own" in note


def test_an_off_centre_principal_point_is_taken_at_the_centre_with_a_note():
    k = torch.tensor([[300.0, 0, 40.0], [0, 300.0, 20.0], [0, 0, 1]])
    lens, note = geometry.lens_from_intrinsics(k, W, H)
    assert lens.principal_point == (W / 2, H / 2) and "principal point (40.0, 20.0)" in note
    with pytest.raises(ValueError, match="focal lengths"):
        geometry.lens_from_intrinsics(k * torch.tensor([[-1.0], [1], [1]]), W, H)


def test_moge_intrinsics_are_normalised_by_width_and_height():
    k = torch.tensor([[[0.5, 0, 0.5], [0, 0.8, 0.5], [0, 0, 1]]])  # fx = 0.5 W = 32, fy = 0.8 H = 32
    pixels = geometry.moge_pixel_intrinsics(k, W, H)
    expected = torch.tensor([[32.0, 0, W / 2], [0, 32.0, H / 2], [0, 0, 1]], dtype=torch.float64)
    torch.testing.assert_close(pixels[0], expected)


def test_da3_intrinsics_of_the_models_image_are_scaled_to_the_frames():
    # Depth Anything 3 ran on 504 x 322 (multiples of 14) for 512 x 320 frames; its principal point is that
    # image's centre, and ray_pose's is near it
    k = torch.tensor([[[400.0, 0, 252.0], [0, 400.0, 161.0], [0, 0, 1]],
                      [[400.0, 0, 253.5], [0, 400.0, 160.2], [0, 0, 1]]])[None]
    pixels = geometry.da3_pixel_intrinsics(k, 512, 320)
    torch.testing.assert_close(pixels[:, 0, 0], torch.full((2,), 400.0 * 512 / 504, dtype=torch.float64))
    torch.testing.assert_close(pixels[:, 1, 1], torch.full((2,), 400.0 * 320 / 322, dtype=torch.float64))


def test_pixels_without_a_surface_go_to_the_far_wall():
    depth = torch.full((2, 4, 5), 3.0)
    depth[0, 0, 0] = float("inf")
    valid = torch.ones_like(depth, dtype=torch.bool)
    valid[1, 2, 2] = False
    out = geometry.far_wall(depth, valid)
    assert out[0, 0, 0] == BORDER_DEPTH and out[1, 2, 2] == BORDER_DEPTH and out[0, 1, 1] == 3.0
    deep = depth.clone()
    deep[1, 1, 1] = 250.0  # a scene reaching past the wall: the sky stays behind it
    assert geometry.far_wall(deep, valid)[1, 2, 2] == pytest.approx(252.5)


def test_align_scale_removes_per_frame_scale_jitter_and_keeps_slow_changes():
    values = torch.from_numpy(ex4d_depth.read_depth_array(REPO / "assets" / "example" / "depth.npz"))
    valid = torch.ones_like(values, dtype=torch.bool)
    rng = np.random.default_rng(0)
    noise = torch.from_numpy(np.exp(rng.normal(0.0, 0.05, len(values)))).float()
    noisy = values * noise[:, None, None]
    before = geometry.scale_jitter(noisy, valid)
    aligned, factors = geometry.align_scale(noisy, valid, window=9)
    after = geometry.scale_jitter(aligned, valid)
    assert before > 0.05 and after < before / 3, (before, after)
    whole, _ = geometry.align_scale(noisy, valid, window=len(values))
    assert geometry.scale_jitter(whole, valid) < 1e-6  # one scale for the clip
    ramp = values * torch.linspace(1.0, 2.0, len(values))[:, None, None]  # a slow dolly out
    kept, _ = geometry.align_scale(ramp, valid, window=9)
    middle = slice(10, -10)
    torch.testing.assert_close(kept[middle], ramp[middle], rtol=0.02, atol=0)


# ------------------------------------------------------------------------------- the node, on both hosts


def _node(host):
    return host.node_classes["EX4DDepthFromGeometry"]


def _run(host, **inputs):
    module = importlib.import_module(_node(host).__module__)
    defaults = {"lens": module.LENS_MODES[0], "align_scale": "auto", "window": 9}
    return _node(host).execute(**{**defaults, **inputs})


def moge_geometry(focal_px: float = 320.0) -> dict:
    """A MOGE_GEOMETRY as Run MoGe Inference gives it (apply_mask on: masked pixels inf)."""
    depth = torch.linspace(2.0, 6.0, W).repeat(T, H, 1) * torch.linspace(0.9, 1.1, T)[:, None, None]
    mask = torch.ones(T, H, W, dtype=torch.bool)
    mask[:, :5] = False  # sky
    depth[~mask] = float("inf")
    k = torch.tensor([[focal_px / W, 0, 0.5], [0, focal_px / H, 0.5], [0, 0, 1]]).repeat(T, 1, 1)
    return {"depth": depth, "mask": mask, "intrinsics": k, "points": torch.zeros(T, H, W, 3),
            "image": torch.rand(T, H, W, 3)}


def test_depth_from_moge_geometry_carries_its_lens(host):
    out = _run(host, moge_geometry=moge_geometry())
    depth = out.result[0]
    assert depth.lens.focal == pytest.approx(320.0) and depth.metric and depth.source == "moge"
    assert bool((depth.depth[:, :5] == BORDER_DEPTH).all()) and bool((depth.depth[:, 5:] < 10).all())
    note = out.ui["text"][0]
    assert note.startswith("lens: 320.0 px (one per clip") and "12.5% of pixels" in note and "scale jitter" in note


def test_depth_from_da3_geometry_mono_and_multiview(host):
    depth = torch.rand(T, H, W) + 1.0
    sky = torch.zeros(T, H, W)
    sky[:, -3:] = 0.9
    mono = _run(host, da3_geometry={"depth": depth, "sky": sky, "mode": "mono", "image": torch.rand(T, H, W, 3)})
    assert mono.result[0].lens.focal == 500.0 and "gave no camera" in mono.ui["text"][0]
    assert bool((mono.result[0].depth[:, -3:] == BORDER_DEPTH).all())
    given = _run(host, da3_geometry={"depth": depth, "mode": "mono"}, focal=280.0)
    assert given.result[0].lens.focal == 280.0
    k = torch.tensor([[250.0, 0, 28.0], [0, 250.0, 21.0], [0, 0, 1]]).repeat(1, T, 1, 1)  # ran at 56 x 42
    multi = _run(host, da3_geometry={"depth": depth, "mode": "multiview", "intrinsics": k,
                                     "extrinsics": torch.eye(4)[:3].repeat(1, T, 1, 1)})
    assert multi.result[0].lens.focal == pytest.approx(250.0 * (W / 56 + H / 42) / 2, rel=1e-5)
    assert "scale jitter" not in multi.ui["text"][0]  # auto: multiview depth has one scale already
    torch.testing.assert_close(multi.result[0].depth, depth)


@pytest.mark.parametrize("inputs, message", [
    ({}, "moge_geometry: connect one geometry"),
    ({"moge_geometry": "x"}, "moge_geometry: expected the geometry dict"),
    ({"moge_geometry": {"depth": torch.ones(T, H, W)}, "da3_geometry": {"depth": torch.ones(T, H, W)}},
     "da3_geometry: connect one geometry only"),
    ({"moge_geometry": {"depth": torch.ones(1, H, W)}}, "moge_geometry: it holds no intrinsics"),
])
def test_depth_from_geometry_refuses_what_it_cannot_use(host, inputs, message):
    with pytest.raises(ValueError, match=message):
        _run(host, **inputs)


# ------------------------------------------------------ the host's own MoGe / Depth Anything 3 nodes (0.33+)


@pytest.fixture(scope="module")
def geometry_host(host):
    """The host with a tiny MoGe and Depth Anything 3 file in models/geometry_estimation and the bundled clip."""
    if "MoGeInference" not in host.node_classes or "DA3Inference" not in host.node_classes:
        pytest.skip("this ComfyUI has no MoGe / Depth Anything 3 nodes (they came with 0.33)")
    import shutil

    import folder_paths

    from harness.tiny_geometry import write_tiny_da3_mono, write_tiny_moge

    folder = host.models_dir / "geometry_estimation"
    write_tiny_moge(folder / "tiny_moge.safetensors")
    write_tiny_da3_mono(folder / "tiny_da3_mono.safetensors")
    folder_paths.add_model_folder_path("geometry_estimation", str(folder), is_default=True)
    for f in (REPO / "assets" / "example").iterdir():
        shutil.copy(f, host.input_dir / f.name)
    return host


def geometry_prompt(source: dict) -> dict:
    """Load Video (3 frames) -> the given geometry nodes ("g1" loader, "g2" inference) -> Depth From Geometry ->
    Build DW-Mesh (saved) and a camera orbit (saved)."""
    return {
        "1": {"class_type": "EX4DLoadVideo",
              "inputs": {"video": "clip.mp4", "frame_load_cap": 3, "skip_first_frames": 0, "select_every_nth": 1,
                         "target_fps": 0.0, "resize": "published (multiple of 64, long side capped)",
                         "max_resolution": 256, "multiple": 64}},
        **source,
        "3": {"class_type": "EX4DBuildDWMesh",
              "inputs": {"frames": ["1", 0], "depth": ["d", 0], "filter": "angle", "angle_threshold": 2.5,
                         "boundary_ratio": 2.0, "watertight": True, "focal": 500.0}},
        "4": {"class_type": "EX4DCameraPreset",
              "inputs": {"depth": ["d", 0], "radius": 0.0, "focal": 500.0, "preset": "angle", "angle": 60.0,
                         "zoom_fraction": 0.5}},
        "5": {"class_type": "EX4DSaveCameraPath",
              "inputs": {"camera": ["4", 0], "filename_prefix": "ex4d/geometry", "format": "ex4d npz"}},
        "6": {"class_type": "EX4DSaveDWMesh",
              "inputs": {"mesh": ["3", 0], "frame": 0, "format": "ply", "filename_prefix": "ex4d/geometry"}},
    }


def test_moge_through_the_hosts_loader_gives_the_mesh_and_the_path_its_lens(geometry_host):
    host = geometry_host
    prompt = geometry_prompt({
        "g1": {"class_type": "LoadMoGeModel", "inputs": {"model_name": "tiny_moge.safetensors"}},
        "g2": {"class_type": "MoGeInference",
               "inputs": {"moge_model": ["g1", 0], "image": ["1", 0], "resolution_level": 0, "fov_x_degrees": 0.0,
                          "batch_size": 4, "force_projection": True, "apply_mask": True}},
        "d": {"class_type": "EX4DDepthFromGeometry",
              "inputs": {"moge_geometry": ["g2", 0], "lens": "one per clip", "align_scale": "auto", "window": 9}},
        "f": {"class_type": "MoGeGeometryToFOV", "inputs": {"moge_geometry": ["g2", 0], "axis": "vertical",
                                                             "unit": "degrees"}},
        "r": {"class_type": "MoGeRender", "inputs": {"moge_geometry": ["g2", 0], "output": "depth"}},
        "i": {"class_type": "EX4DDepthFromImage",
              "inputs": {"image": ["r", 0], "map": "disparity (bright = near)", "range": "published", "near": 1.0,
                         "far": 100.0, "focal": ["f", 1]}},
        "s": {"class_type": "EX4DSaveDepth", "inputs": {"depth": ["i", 0], "filename_prefix": "ex4d/moge_image"}},
    })
    host.run(prompt)
    geometry = host.node_output("g2")[0][0]
    t, h, w = geometry["depth"].shape
    expected = float(torch.median(geometry["intrinsics"][:, 0, 0].double() * w))
    depth = host.node_output("d")[0][0]
    assert depth.lens.focal == pytest.approx(expected, rel=1e-5) and depth.depth.shape == (t, h, w)
    assert bool(torch.isfinite(depth.depth).all()) and bool((depth.depth > 0).all())
    assert host.node_output("3")[0][0].focal == pytest.approx(expected, rel=1e-5)
    with np.load(host.output_dir / host.node_output("5")[0][0]) as data:
        assert data["intrinsics"][0, 0] == pytest.approx(expected, rel=1e-5)
    focal_pixels = host.node_output("f")[1][0]
    assert host.node_output("i")[0][0].lens.focal == pytest.approx(focal_pixels, rel=1e-5)
    saved = ex4d_depth.read_depth_lens(host.output_dir / host.node_output("s")[0][0], w, h)[0]
    assert saved.focal == pytest.approx(focal_pixels, rel=1e-5)  # Save Depth keeps the lens


def test_depth_anything_3_through_the_hosts_loader_gives_depth_and_sky(geometry_host):
    host = geometry_host
    prompt = geometry_prompt({
        "g1": {"class_type": "LoadDA3Model", "inputs": {"model_name": "tiny_da3_mono.safetensors",
                                                        "weight_dtype": "fp32"}},
        "g2": {"class_type": "DA3Inference",
               "inputs": {"da3_model": ["g1", 0], "image": ["1", 0], "resolution": 140,
                          "resize_method": "upper_bound_resize", "mode": "mono"}},
        "d": {"class_type": "EX4DDepthFromGeometry",
              "inputs": {"da3_geometry": ["g2", 0], "lens": "one per clip", "align_scale": "auto", "window": 9,
                         "focal": 300.0}},
    })
    outputs = host.run(prompt)
    geometry = host.node_output("g2")[0][0]
    assert "sky" in geometry  # the Mono / Metric head
    depth = host.node_output("d")[0][0]
    assert depth.lens.focal == 300.0 and depth.depth.shape == geometry["depth"].shape
    assert host.node_output("3")[0][0].focal == 300.0
    assert "scale jitter" in outputs["d"]["text"][0]
