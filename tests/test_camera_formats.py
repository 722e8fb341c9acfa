"""Camera paths in other programs' files: glTF (Blender), nerfstudio transforms.json, COLMAP text. Round trips,
the conventions against hand-made cameras, samplers and timing, and every kind of bad file."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest
import torch

from ex4d import camera as cam
from ex4d.camera.formats import read_camera_file
from ex4d.camera.gltf import read_gltf_path, write_glb
from ex4d.camera.imports import ImportSettings
from ex4d.gltf import GltfWriter
from ex4d.mesh import DWMeshSpec, preview_gltf

EPS32 = float(np.finfo(np.float32).eps)
GL = np.diag([1.0, -1.0, -1.0, 1.0])


def _clip(frames: int = 9) -> cam.Clip:
    return cam.Clip.centred(frames, 48, 32, 3.0, focal=40.0)


def _paths() -> dict[str, cam.CameraPath]:
    clip = _clip()
    return {"orbit": cam.orbit(clip, yaw=(-20, 70), pitch=(0, 25)),
            "dolly-zoom": cam.dolly(clip, start=0.0, end=0.6, keep_subject_size=True),
            "keyframes": cam.keyframed([{"frame": 0, "yaw": 0}, {"frame": 8, "yaw": 150, "pitch": -40, "roll": 30}],
                                       clip)}


def _scene() -> GltfWriter:
    torch.manual_seed(0)
    return preview_gltf(DWMeshSpec(torch.rand(1, 32, 48, 3), 2 + torch.rand(1, 32, 48), focal=40.0), 0)


def round_trip_errors(path: cam.CameraPath, back: cam.CameraPath) -> tuple[float, float]:
    """Largest extrinsics error relative to the largest entry, largest relative focal error."""
    ext = float(np.abs(back.extrinsics - path.extrinsics).max() / np.abs(path.extrinsics).max())
    focal = float(np.abs(back.frame_focals() / path.frame_focals() - 1).max())
    return ext, focal


@pytest.mark.parametrize("with_scene", [True, False], ids=["scene", "camera alone"])
@pytest.mark.parametrize("name", list(_paths()))
def test_glb_round_trip_to_float32_precision(tmp_path, name, with_scene):
    path = _paths()[name]
    file = write_glb(path, tmp_path / "p.glb", fps=15.0, scene=_scene() if with_scene else None)
    back = read_gltf_path(file)
    assert (back.num_frames, back.width, back.height, back.focal) == (9, 48, 32, 40.0)
    assert back.lens.zooms == path.lens.zooms
    ext, focal = round_trip_errors(path, back)
    print(f"{name}: extrinsics {ext:.2e} of the largest entry, focal {focal:.2e}")
    assert ext <= 4 * EPS32 and focal <= 4 * EPS32


def test_glb_carries_the_preview_scene_and_timing(tmp_path):
    from ex4d.gltf import read_gltf

    path = _paths()["dolly-zoom"]
    doc = read_gltf(write_glb(path, tmp_path / "p.glb", fps=12.5, scene=_scene()))
    preview = _scene().gltf
    assert doc.gltf["nodes"][0] == preview["nodes"][0] and doc.gltf["meshes"] == preview["meshes"]
    camera = doc.gltf["cameras"][0]["perspective"]
    assert camera["aspectRatio"] == 48 / 32
    np.testing.assert_allclose(camera["yfov"], 2 * math.atan(16 / 40.0))
    sampler = doc.gltf["animations"][0]["samplers"][0]
    np.testing.assert_allclose(doc.accessor(sampler["input"])[:, 0], np.arange(9) / 12.5, rtol=1e-6)
    assert "KHR_animation_pointer" in doc.gltf["extensionsUsed"]  # the zoom's yfov per frame


# ----------------------------------------------------------------------------- hand-made glTF files


def _gltf_file(tmp_path, nodes: list[dict], animations: list[dict] | None = None, accessors=(),
               name: str = "hand.gltf", cameras: list[dict] | None = None) -> str:
    """A .gltf with embedded data: ``accessors`` are float32 arrays, indexed in that order."""
    doc = GltfWriter(generator="hand-made")
    for array in accessors:
        doc.add_accessor(np.asarray(array, np.float32), bounds=True)
    glb = doc.to_glb()
    jlen = int.from_bytes(glb[12:16], "little")
    gltf, binary = json.loads(glb[20:20 + jlen]), glb[28 + jlen:]
    if accessors:
        gltf["buffers"][0]["uri"] = "data:application/octet-stream;base64," + base64.b64encode(binary).decode()
    else:
        gltf.pop("buffers")
    gltf["nodes"] = nodes
    gltf["scenes"] = [{"nodes": list(range(len(nodes)))}]
    gltf["cameras"] = cameras or [{"type": "perspective", "perspective": {"yfov": 2 * math.atan(0.4),
                                                                          "aspectRatio": 1.5}}]
    gltf["meshes"] = [{"primitives": []}]
    if animations:
        gltf["animations"] = animations
    (tmp_path / name).write_text(json.dumps(gltf))
    return str(tmp_path / name)


SCENE_NODE = {"name": "dw_mesh_frame_0", "mesh": 0}
SIZE = ImportSettings(width=48, height=32)


def _expected(eyes, targets) -> np.ndarray:
    return cam.CameraPath.looking_at(np.array(eyes, float), np.array(targets, float),
                                     cam.Lens.centred(48, 32, 40.0)).extrinsics


def test_gltf_conventions_on_hand_made_cameras(tmp_path):
    """glTF: +Y up, the camera looks down its -Z. On this pack's scene (glTF world = EX-4D's turned by
    diag(1, -1, -1)), a camera at (0, 0, 5) with no rotation looks at the origin from EX-4D's (0, 0, -5);
    one at (5, 0, 0) turned +90 degrees about +Y looks at it from (5, 0, 0); a parent's transform applies,
    as a matrix (column-major) or TRS."""
    half = math.sqrt(0.5)
    cases = [
        ([SCENE_NODE, {"camera": 0, "translation": [0, 0, 5]}], (0, 0, -5)),
        ([SCENE_NODE, {"camera": 0, "translation": [5, 0, 0], "rotation": [0, half, 0, half]}], (5, 0, 0)),
        ([SCENE_NODE, {"children": [2], "translation": [0, 0, 5]}, {"camera": 0}], (0, 0, -5)),
        ([SCENE_NODE, {"children": [2], "matrix": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 3, 5, 1]},
          {"camera": 0}], (0, -3, -5)),
    ]
    for i, (nodes, eye) in enumerate(cases):
        path = read_gltf_path(_gltf_file(tmp_path, nodes, name=f"c{i}.gltf"), SIZE)
        np.testing.assert_allclose(path.extrinsics, _expected([eye], [(0, 0, 0)] if i < 3 else [(0, -3, 0)]),
                                   atol=1e-6, err_msg=f"case {i}")
        np.testing.assert_allclose(path.focal, 16 / 0.4, rtol=1e-6)  # yfov at 32 pixels high
    # the scene node itself moved (e.g. centred, as the preview is): the camera is read relative to it
    moved = [{**SCENE_NODE, "translation": [1, 2, 3]}, {"camera": 0, "translation": [1, 2, 8]}]
    np.testing.assert_allclose(read_gltf_path(_gltf_file(tmp_path, moved), SIZE).extrinsics,
                               _expected([(0, 0, -5)], [(0, 0, 0)]), atol=1e-6)


def test_a_path_from_elsewhere_starts_at_the_source_camera(tmp_path):
    """No scene of this pack: the first camera becomes the source camera, distances times ``scale``."""
    half = math.sqrt(0.5)
    animation = [{"samplers": [{"input": 0, "output": 1}, {"input": 0, "output": 2}],
                  "channels": [{"sampler": 0, "target": {"node": 0, "path": "translation"}},
                               {"sampler": 1, "target": {"node": 0, "path": "rotation"}}]}]
    # camera 0 at (10, 0, 7) turned +90 deg about Y (looking down world -X); camera 1 one unit further along
    # its view direction and one unit up
    file = _gltf_file(tmp_path, [{"camera": 0}], animation,
                      [[0.0, 1.0], [[10, 0, 7], [9, 1, 7]], [[0, half, 0, half]] * 2])
    path = read_gltf_path(file, ImportSettings(width=48, height=32, fps=1.0, scale=2.0))
    assert path.num_frames == 2
    np.testing.assert_allclose(path.extrinsics[0], GL, atol=1e-6)
    np.testing.assert_allclose(path.eyes()[1], [0, -2, 2], atol=1e-6)  # forward = +z, up = -y in EX-4D
    np.testing.assert_allclose(path.extrinsics[1, :3, :3], GL[:3, :3], atol=1e-6)


@pytest.mark.parametrize("interpolation, expected", [
    ("LINEAR", [0, 0.25, 0.5, 0.75, 1]),
    ("STEP", [0, 0, 0, 0, 1]),
    ("CUBICSPLINE", [0, 0.15625, 0.5, 0.84375, 1]),  # zero tangents: 3s^2 - 2s^3
])
def test_samplers_are_interpolated_as_the_spec_says(tmp_path, interpolation, expected):
    values = [[0, 0, 5], [1, 0, 5]]
    if interpolation == "CUBICSPLINE":
        values = [[0, 0, 0], [0, 0, 5], [0, 0, 0], [0, 0, 0], [1, 0, 5], [0, 0, 0]]
    animation = [{"samplers": [{"input": 0, "output": 1, "interpolation": interpolation}],
                  "channels": [{"sampler": 0, "target": {"node": 1, "path": "translation"}}]}]
    file = _gltf_file(tmp_path, [SCENE_NODE, {"camera": 0}], animation, [[0.0, 1.0], values])
    path = read_gltf_path(file, ImportSettings(width=48, height=32, fps=4.0))
    np.testing.assert_allclose(path.eyes()[:, 0], expected, atol=1e-6)


def test_timing_resamples_by_the_clip_frame_rate(tmp_path):
    path = _paths()["orbit"]
    file = write_glb(path, tmp_path / "p.glb", fps=30.0)
    every_other = read_gltf_path(file, ImportSettings(fps=15.0))
    assert every_other.num_frames == 5
    np.testing.assert_allclose(every_other.extrinsics, path.extrinsics[::2], atol=1e-6)
    longer = read_gltf_path(file, ImportSettings(fps=15.0, frames=7))  # held at the last key
    np.testing.assert_allclose(longer.extrinsics[4:], path.extrinsics[[8, 8, 8]], atol=1e-6)
    assert read_gltf_path(file, ImportSettings(fps=60.0)).num_frames == 17
    bigger = read_gltf_path(file, ImportSettings(width=96, height=64))  # the field of view is kept
    assert bigger.focal == pytest.approx(80.0)


# ----------------------------------------------------------------------------- nerfstudio and COLMAP


def test_nerfstudio_transforms(tmp_path):
    turn = np.eye(4)
    turn[:3, :3] = [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]  # +90 deg about y: looking down world -x
    second = turn.copy()
    second[:3, 3] = [-1, 0.5, 0]  # one unit along the view, half a unit up
    frames = [{"file_path": "images/frame_00002.png", "transform_matrix": second.tolist()},
              {"file_path": "images/frame_00001.png", "transform_matrix": turn.tolist()}]
    data = {"camera_model": "OPENCV", "fl_x": 100.0, "fl_y": 100.0, "cx": 64, "cy": 40, "w": 128, "h": 80,
            "k1": 0.01, "frames": frames}
    (tmp_path / "transforms.json").write_text(json.dumps(data))
    path = read_camera_file(tmp_path / "transforms.json")
    assert (path.num_frames, path.width, path.height, path.focal) == (2, 128, 80, 100.0)
    np.testing.assert_allclose(path.extrinsics[0], GL, atol=1e-6)  # frame_00001 first
    np.testing.assert_allclose(path.eyes()[1], [0, -0.5, 1], atol=1e-6)
    small = read_camera_file(tmp_path / "transforms.json", ImportSettings(width=64, height=40, focal=60.0))
    assert small.focal == 60.0 and small.frame_focals()[0] == pytest.approx(50.0)  # same field of view


def _colmap(tmp_path, cameras: str, prefix: str = "") -> None:
    (tmp_path / f"{prefix}cameras.txt").write_text("# Camera list\n" + cameras)
    # image 2: world-to-camera R = +30 deg about y, centre C = (1, 0, 0): t = -R C; image 1 at the origin
    a = math.radians(30)
    r = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    t = -r @ [1, 0, 0]
    q = (math.cos(a / 2), 0, math.sin(a / 2), 0)
    (tmp_path / f"{prefix}images.txt").write_text(
        "# Image list\n"
        f"2 {' '.join(map(str, q))} {' '.join(map(str, t))} 1 frame_2.png\n\n"
        "1 1 0 0 0 0 0 0 1 frame_1.png\n10.0 20.0 -1 30.0 40.0 7\n")


def test_colmap_text_model(tmp_path):
    _colmap(tmp_path, "1 PINHOLE 128 80 100 100.05 64 40\n", prefix="shot_")
    path = read_camera_file(tmp_path / "shot_images.txt")
    assert (path.num_frames, path.width, path.height) == (2, 128, 80)
    np.testing.assert_allclose(path.focal, 100.05, rtol=1e-6)  # fy: the vertical field of view
    # COLMAP's world is a camera frame (x right, y down, z forward) like EX-4D's: the second image's centre
    np.testing.assert_allclose(path.extrinsics[0], GL, atol=1e-6)
    np.testing.assert_allclose(path.eyes()[1], [1, 0, 0], atol=1e-6)
    a = math.radians(30)
    forward = path.view_matrices()[1, 2, :3]  # V's third row: the view direction in the world
    np.testing.assert_allclose(forward, [-math.sin(a), 0, math.cos(a)], atol=1e-6)
    _colmap(tmp_path, "1 SIMPLE_PINHOLE 128 80 90 64 40\n")
    assert read_camera_file(tmp_path / "images.txt").focal == pytest.approx(90.0)


# ----------------------------------------------------------------------------- bad files


def _glb_bytes(tmp_path) -> bytes:
    return write_glb(_paths()["orbit"], tmp_path / "good.glb", fps=15.0).read_bytes()


def _edited_glb(tmp_path, edit) -> bytes:
    data = _glb_bytes(tmp_path)
    jlen = int.from_bytes(data[12:16], "little")
    gltf = json.loads(data[20:20 + jlen])
    edit(gltf)
    text = json.dumps(gltf).encode()
    text += b" " * (-len(text) % 4)
    binary = data[20 + jlen:]
    return (b"glTF" + (2).to_bytes(4, "little") + (12 + 8 + len(text) + len(binary)).to_bytes(4, "little")
            + len(text).to_bytes(4, "little") + b"JSON" + text + binary)


def _set(path: list, value):
    def edit(gltf):
        target = gltf
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


BAD_GLTF = {
    "truncated.glb": (lambda tmp: _glb_bytes(tmp)[:-100], "cut short"),
    "wrong_magic.glb": (lambda tmp: b"GLTF" + _glb_bytes(tmp)[4:], "magic"),
    "version_1.glb": (lambda tmp: _glb_bytes(tmp)[:4] + b"\1\0\0\0" + _glb_bytes(tmp)[8:], "version 1"),
    "empty.glb": (lambda tmp: b"", "too short"),
    "missing_accessor.glb": (lambda tmp: _edited_glb(tmp, _set(["animations", 0, "samplers", 0, "output"], 99)),
                             "accessors 99"),
    "huge_count.glb": (lambda tmp: _edited_glb(tmp, _set(["accessors", 1, "count"], 10**12)), "holds fewer"),
    "nan_translation.glb": (lambda tmp: _edited_glb(
        tmp, lambda g: (g["nodes"][0].update(translation=[math.nan, 0, 0]), g.pop("animations"))), "3 finite"),
    "nan_matrix.glb": (lambda tmp: _edited_glb(
        tmp, lambda g: (g["nodes"][0].update(matrix=[math.nan] * 16), g.pop("animations"))), "16 finite"),
    "no_camera.glb": (lambda tmp: _edited_glb(tmp, lambda g: g["nodes"][0].pop("camera")), "no camera"),
    "orthographic.glb": (lambda tmp: _edited_glb(tmp, _set(["cameras", 0, "type"], "orthographic")),
                         "perspective"),
    "bad_interpolation.glb": (lambda tmp: _edited_glb(
        tmp, _set(["animations", 0, "samplers", 0, "interpolation"], "BEZIER")), "BEZIER"),
    "cubic_count.glb": (lambda tmp: _edited_glb(
        tmp, _set(["animations", 0, "samplers", 0, "interpolation"], "CUBICSPLINE")), "CUBICSPLINE keys"),
    "sparse.glb": (lambda tmp: _edited_glb(tmp, _set(["accessors", 1, "sparse"], {"count": 1})), "sparse"),
    "stride.glb": (lambda tmp: _edited_glb(tmp, _set(["bufferViews", 1, "byteStride"], 2)), "byteStride"),
    "yfov_zero.glb": (lambda tmp: _edited_glb(tmp, _set(["cameras", 0, "perspective", "yfov"], 0)), "field of view"),
    "cycle.glb": (lambda tmp: _edited_glb(tmp, _set(["nodes", 0, "children"], [0])), "parent"),
    "not_json.gltf": (lambda tmp: b"{not json", "JSON"),
    "no_asset.gltf": (lambda tmp: b'{"nodes": []}', "asset"),
    "outside_buffer.gltf": (lambda tmp: json.dumps({"asset": {"version": "2.0"},
                                                    "buffers": [{"byteLength": 4, "uri": "../secret.bin"}]}).encode(),
                            "beside it"),
}


@pytest.mark.parametrize("name", list(BAD_GLTF))
def test_bad_gltf_files_get_one_clear_message(tmp_path, name):
    make, words = BAD_GLTF[name]
    (tmp_path / name).write_bytes(make(tmp_path))
    with pytest.raises(cam.CameraFileError) as error:
        read_camera_file(tmp_path / name, SIZE)
    assert f"'{name}'" in str(error.value) and words in str(error.value), str(error.value)


def test_a_camera_asked_for_by_name(tmp_path):
    file = write_glb(_paths()["orbit"], tmp_path / "p.glb", fps=15.0)
    assert read_gltf_path(file, ImportSettings(camera="ex4d_camera")).num_frames == 9
    with pytest.raises(cam.CameraFileError, match="no camera named 'other'.*ex4d_camera"):
        read_gltf_path(file, ImportSettings(camera="other"))


GOOD_TRANSFORMS = {"fl_x": 50.0, "fl_y": 50.0, "w": 64, "h": 40,
                   "frames": [{"file_path": "a.png", "transform_matrix": np.eye(4).tolist()}]}
BAD_TRANSFORMS = {
    "no_matrix": ({**GOOD_TRANSFORMS, "frames": [{"file_path": "a.png"}]}, "transform_matrix"),
    "no_focal": ({k: v for k, v in GOOD_TRANSFORMS.items() if k not in ("fl_x", "fl_y")}, "focal length"),
    "nan_matrix": ({**GOOD_TRANSFORMS, "frames": [{"transform_matrix": [[math.nan] * 4] * 4}]}, "NaN"),
    "matrix_words": ({**GOOD_TRANSFORMS, "frames": [{"transform_matrix": "identity"}]}, "transform_matrix"),
    "flat_matrix": ({**GOOD_TRANSFORMS, "frames": [{"transform_matrix": np.zeros((4, 4)).tolist()}]}, "rotation"),
    "fisheye": ({**GOOD_TRANSFORMS, "camera_model": "OPENCV_FISHEYE"}, "OPENCV_FISHEYE"),
    "no_frames": ({**GOOD_TRANSFORMS, "frames": []}, "no frames"),
    "negative_focal": ({**GOOD_TRANSFORMS, "fl_y": -3}, "fl_y"),
    "stretched_pixels": ({**GOOD_TRANSFORMS, "fl_x": 80.0}, "square pixels"),
}


@pytest.mark.parametrize("name", list(BAD_TRANSFORMS))
def test_bad_transforms_json_gets_one_clear_message(tmp_path, name):
    data, words = BAD_TRANSFORMS[name]
    (tmp_path / f"{name}.json").write_text(json.dumps(data))
    with pytest.raises(cam.CameraFileError) as error:
        read_camera_file(tmp_path / f"{name}.json")
    assert f"'{name}.json'" in str(error.value) and words in str(error.value), str(error.value)


BAD_COLMAP = {
    "radial": ("1 SIMPLE_RADIAL 128 80 100 64 40 0.01\n", "SIMPLE_RADIAL"),
    "few_parameters": ("1 PINHOLE 128 80 100 64\n", "parameters"),
    "nan_focal": ("1 SIMPLE_PINHOLE 128 80 nan 64 40\n", "NaN"),
    "words": ("1 PINHOLE wide 80 100 100 64 40\n", "not numbers"),
    "other_camera": ("7 PINHOLE 128 80 100 100 64 40\n", "camera 1"),
}


@pytest.mark.parametrize("name", list(BAD_COLMAP))
def test_bad_colmap_files_get_one_clear_message(tmp_path, name):
    _colmap(tmp_path, BAD_COLMAP[name][0])
    with pytest.raises(cam.CameraFileError) as error:
        read_camera_file(tmp_path / "images.txt")
    assert "cameras.txt'" in str(error.value) or "'images.txt'" in str(error.value)
    assert BAD_COLMAP[name][1] in str(error.value), str(error.value)
    (tmp_path / "cameras.txt").unlink()
    with pytest.raises(cam.CameraFileError, match="needs 'cameras.txt' beside it"):
        read_camera_file(tmp_path / "images.txt")
    (tmp_path / "bad_images.txt").write_text("1 1 0 0 0 0 0\n")
    (tmp_path / "bad_cameras.txt").write_text("1 PINHOLE 128 80 100 100 64 40\n")
    with pytest.raises(cam.CameraFileError, match="'bad_images.txt'.*IMAGE_ID"):
        read_camera_file(tmp_path / "bad_images.txt")


def _json_paths(value, path=()):
    yield path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from _json_paths(item, path + (key,))


@pytest.mark.parametrize("fmt", ["glb", "transforms.json"])
def test_fuzzed_documents_give_camera_file_errors_only(tmp_path, fmt):
    """Random values of every JSON type put anywhere in a good document (fixed seed): the reader answers with
    a path or a CameraFileError, never another exception."""
    import random

    if fmt == "glb":
        good = _glb_bytes(tmp_path)
        base = json.loads(good[20:20 + int.from_bytes(good[12:16], "little")])
    else:
        base = {**GOOD_TRANSFORMS, "frames": GOOD_TRANSFORMS["frames"] * 3}
    places = list(_json_paths(base))[1:]
    rng = random.Random(3)
    for _trial in range(300):
        document = json.loads(json.dumps(base))
        for _ in range(rng.randint(1, 3)):
            *parents, last = rng.choice(places)
            target = document
            try:
                for key in parents:
                    target = target[key]
                target[last] = rng.choice([None, -1, 0, 7, 10**12, 1.5, "x", [], {}, [1, 2], math.nan, True])
            except (KeyError, IndexError, TypeError):
                pass  # an earlier change removed this place
        if fmt == "glb":
            data = _edited_glb(tmp_path, lambda g, d=document: (g.clear(), g.update(d)))
            (tmp_path / "fuzzed.glb").write_bytes(data)
            file = tmp_path / "fuzzed.glb"
        else:
            file = tmp_path / "fuzzed.json"
            file.write_text(json.dumps(document))
        try:
            read_camera_file(file, SIZE)
        except cam.CameraFileError:
            pass


def test_save_camera_path_with_a_scene_the_filter_hides_names_the_mesh(host):
    """Save Camera Path as glb with a DW-mesh whose first frame shows no face: a clear error naming ``mesh``."""
    import sys

    node = host.node_classes["EX4DSaveCameraPath"]
    pack = node.__module__.rsplit(".", 2)[0]  # the pack's library as the host imported it (its types)
    pack_camera, pack_mesh = sys.modules[f"{pack}.ex4d.camera"], sys.modules[f"{pack}.ex4d.mesh"]
    depth = 1.0 + 10.0 * torch.rand(1, 32, 48, generator=torch.Generator().manual_seed(0))
    mesh = pack_mesh.DWMeshSpec(torch.rand(1, 32, 48, 3), depth, focal=40.0, filter="boundary", boundary_ratio=0.0)
    camera = pack_camera.orbit(pack_camera.Clip.centred(9, 48, 32, 3.0, focal=40.0), yaw=(-20, 70), pitch=(0, 25))
    with pytest.raises(ValueError, match=r"^mesh: frame 0 of the DW-mesh has no visible faces.*leave mesh unconnected"):
        node.execute(camera=camera, filename_prefix="ex4d/hidden", format="glb", mesh=mesh, fps=15.0)
