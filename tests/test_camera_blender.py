"""Save / Load Camera Path with glTF through the real executor, and a round trip through Blender itself (headless,
where it is installed: `.ci/run` installs Debian's package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from ex4d import camera as ex4d_camera
from ex4d.camera.gltf import CAMERA_NODE

EXAMPLE = Path(__file__).resolve().parent.parent / "assets" / "example"
FRAMES = 5
BLENDER_SECONDS = 180
MOVE = 0.5  # Blender units the last key moves along x (Blender's x is glTF's and EX-4D's)

# Import our .glb, move the camera's last location key along x, export. Debian's Blender 3.4 imports meshes with
# np.bool, which numpy 1.24 to 1.26 lack: the script puts it back before importing.
BLENDER_SCRIPT = f"""
import sys
import bpy
import numpy
if not hasattr(numpy, "bool"):
    numpy.bool = bool
source, target, fps = sys.argv[sys.argv.index("--") + 1:]
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.context.scene.render.fps = int(fps)
bpy.ops.import_scene.gltf(filepath=source)
camera = bpy.data.objects["{CAMERA_NODE}"]
for curve in camera.animation_data.action.fcurves:
    if curve.data_path == "location" and curve.array_index == 0:
        key = curve.keyframe_points[-1]
        for point in (key.co, key.handle_left, key.handle_right):
            point[1] += {MOVE}
bpy.ops.export_scene.gltf(filepath=target, export_format="GLB", export_cameras=True)
"""


@pytest.fixture(scope="module")
def clip_inputs(host):
    for name in ("clip.mp4", "depth.npz"):
        shutil.copy(EXAMPLE / name, host.input_dir / name)
    return host


def shot_prompt(fmt: str = "glb", mesh: bool = True) -> dict:
    save = {"camera": ["4", 0], "filename_prefix": "ex4d/shot", "format": fmt, "fps": 15.0}
    if mesh:
        save["mesh"] = ["3", 0]
    return {
        "1": {"class_type": "EX4DLoadVideo",
              "inputs": {"video": "clip.mp4", "frame_load_cap": FRAMES, "skip_first_frames": 0, "select_every_nth": 1,
                         "target_fps": 0.0, "resize": "published (multiple of 64, long side capped)",
                         "max_resolution": 1024, "multiple": 64}},
        "2": {"class_type": "EX4DLoadDepth",
              "inputs": {"path": "depth.npz", "content": "depth", "frame_load_cap": FRAMES, "skip_first_frames": 0,
                         "select_every_nth": 1}},
        "3": {"class_type": "EX4DBuildDWMesh",
              "inputs": {"frames": ["1", 0], "depth": ["2", 0], "filter": "angle", "angle_threshold": 2.5,
                         "boundary_ratio": 2.0, "watertight": True, "focal": 500.0}},
        "4": {"class_type": "EX4DCameraOrbit",
              "inputs": {"depth": ["2", 0], "radius": 0.0, "focal": 500.0, "yaw_start": -10.0, "yaw_end": 40.0,
                         "pitch_start": 0.0, "pitch_end": 15.0, "distance": 0.0, "easing": "linear",
                         "hold_start": 0, "hold_end": 0}},
        "5": {"class_type": "EX4DSaveCameraPath", "inputs": save},
    }


def load_prompt(path: str, **widgets) -> dict:
    return {"6": {"class_type": "EX4DLoadCameraPath", "inputs": {"path": path, "width": 0, "height": 0, **widgets}},
            "7": {"class_type": "EX4DCameraPreview", "inputs": {"camera": ["6", 0], "size": 64}},
            "8": {"class_type": "PreviewImage", "inputs": {"images": ["7", 0]}}}


def save_shot(host, **kwargs) -> tuple[ex4d_camera.CameraPath, Path]:
    host.run(shot_prompt(**kwargs))
    return host.node_output("4")[0][0], host.output_dir / host.node_output("5")[0][0]


def test_save_and_load_a_glb_shot(clip_inputs):
    host = clip_inputs
    path, saved = save_shot(host)
    shutil.copy(saved, host.input_dir / "shot.glb")
    outputs = host.run(load_prompt("shot.glb"))
    back = host.node_output("6")[0][0]
    assert (back.num_frames, back.width, back.height, back.focal) == (FRAMES, 512, 320, 500.0)
    scale = np.abs(path.extrinsics).max()
    np.testing.assert_allclose(back.extrinsics, path.extrinsics, rtol=0, atol=4 * np.finfo(np.float32).eps * scale)
    # the camera editor shows the imported path as any other (Camera Path Preview's editor)
    assert outputs["7"]["ex4d_path"][0] == ex4d_camera.to_json_dict(back)


def test_a_shot_without_its_scene_and_a_mesh_of_another_clip(clip_inputs):
    host = clip_inputs
    path, saved = save_shot(host, mesh=False)
    shutil.copy(saved, host.input_dir / "alone.glb")
    host.run(load_prompt("alone.glb", frames=FRAMES, fps=15.0))
    np.testing.assert_allclose(host.node_output("6")[0][0].extrinsics, path.extrinsics, atol=1e-6)
    prompt = shot_prompt()
    prompt["4"]["inputs"]["focal"] = 400.0
    with pytest.raises(Exception, match="mesh: 512x320 at focal 500.*focal 400"):
        host.run(prompt)


def _blender() -> str | None:
    return shutil.which("blender")


@pytest.mark.skipif(_blender() is None, reason="Blender is not installed (apt-get install blender python3-numpy)")
def test_blender_round_trip_keeps_the_shot_and_reads_back_a_moved_key(clip_inputs):
    host = clip_inputs
    path, saved = save_shot(host)
    moved = host.input_dir / "blender_shot.glb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    start = time.perf_counter()
    run = subprocess.run([_blender(), "-b", "--factory-startup", "--python-exit-code", "1", "--python-expr",
                          BLENDER_SCRIPT, "--", str(saved), str(moved), "15"],
                         capture_output=True, text=True, timeout=BLENDER_SECONDS, env=env)
    print(f"Blender import + export: {time.perf_counter() - start:.1f} s")
    assert run.returncode == 0 and moved.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    host.run(load_prompt(moved.name))
    back = host.node_output("6")[0][0]
    assert (back.num_frames, back.width, back.height) == (FRAMES, 512, 320)
    np.testing.assert_allclose(back.frame_focals(), path.frame_focals(), rtol=1e-6)
    error = np.abs(back.extrinsics[:-1] - path.extrinsics[:-1]).max()
    print(f"Blender round trip, keys not moved: largest extrinsics error {error:.2e}")
    assert error < 1e-5
    np.testing.assert_allclose(back.eyes()[-1] - path.eyes()[-1], [MOVE, 0, 0], atol=1e-5)
    np.testing.assert_allclose(back.extrinsics[-1, :3, :3], path.extrinsics[-1, :3, :3], atol=1e-5)
