"""Camera paths: published presets against independently written formulas, file round trips, custom paths."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ex4d import camera as cam
from ex4d.camera.files import JSON_FORMAT, from_json_dict
from ex4d.camera.lens import intrinsics_matrix, projection_matrix
from ex4d.camera.path import extrinsics_from_view, look_at
from ex4d.camera.preview import path_centre
from ex4d.camera.speed import ease


def clip(frames: int, radius: float, width: int, height: int, focal: float = 500.0) -> cam.Clip:
    return cam.Clip.centred(frames, width, height, radius, focal)


def _ref_look_at(eye, target):
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    f = target - eye
    f /= np.linalg.norm(f)
    r = np.cross(f, [0.0, 1.0, 0.0])
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    u /= np.linalg.norm(u)
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = r, u, f
    m[:3, 3] = [-r @ eye, -u @ eye, -f @ eye]
    return np.diag([-1.0, -1.0, -1.0, 1.0]) @ m


def _ref_eyes(name, n, r):
    rounds = n / 49 if n >= 49 else 49 / n
    if name == "180":
        out = []
        for t in np.linspace(0, 2 * math.pi * rounds, n):
            out.append((r * math.sin(t), 0.2 * r * (math.cos(t) - 1), 0.0))
        return np.array(out)
    a = float(name)
    out = []
    for t in np.linspace(0, a * math.pi / 180 * rounds, n):
        c = abs(math.cos(t))
        out.append((r * math.sin(t), 0.2 * r * (c - 1), r - r * c))
    return np.array(out)


@pytest.mark.parametrize("name,n", [("180", 49), ("30", 49), ("60", 49), ("90", 49), ("45", 25), ("90", 98)])
def test_presets_match_published_formulas(name, n):
    r = 2.71
    path = cam.preset(name, clip(n, r, 512, 320), sweep="published rounds")
    assert path.extrinsics.shape == (n, 4, 4) and path.extrinsics.dtype == np.float32
    eyes = _ref_eyes(name, n, r)
    ref = np.stack([_ref_look_at(e, (0, 0, r)) for e in eyes]).astype(np.float32)
    np.testing.assert_allclose(path.extrinsics, ref, atol=2e-6)
    np.testing.assert_allclose(path.eyes(), eyes, atol=1e-5)
    k = np.array([[500, 0, 256], [0, 500, 160], [0, 0, 1]], np.float32)
    np.testing.assert_array_equal(path.lens.intrinsics, k)


def test_identity_camera_is_axis_flip():
    e = extrinsics_from_view(look_at((0, 0, 0), (0, 0, 1)))
    np.testing.assert_array_equal(e, np.diag([1.0, -1.0, -1.0, 1.0]))
    path = cam.preset("30", clip(49, 3.0, 64, 64))
    np.testing.assert_allclose(path.extrinsics[0], np.diag([1.0, -1.0, -1.0, 1.0]), atol=1e-7)


def test_projection_matrix_formula():
    w, h, f, n, far = 512, 320, 500.0, 1e-3, 1e3
    x = n * math.tan(math.atan(w / (2 * f)))
    y = n * math.tan(math.atan(h / (2 * f)))
    ref = np.array(
        [
            [n / x, 0, 0, 0],
            [0, -n / y, 0, 0],
            [0, 0, -(far + n) / (far - n), -2 * far * n / (far - n)],
            [0, 0, -1, 0],
        ]
    )
    np.testing.assert_allclose(projection_matrix(w, h, f), ref, rtol=1e-12)
    # a source pixel (u, v) at depth z projects back onto NDC ((u+.5)... pixel-centre mapping is render's job);
    # here: column u lands at continuous screen x = u for even W (x_ndc = (u - W/2) * 2 / W)
    p = np.array([(100 - 256) / f * 4.0, (40 - 160) / f * 4.0, 4.0, 1.0])
    clip = ref @ np.diag([1.0, -1.0, -1.0, 1.0]) @ p
    ndc = clip[:3] / clip[3]
    np.testing.assert_allclose((ndc[0] + 1) * w / 2, 100, atol=1e-9)
    np.testing.assert_allclose((ndc[1] + 1) * h / 2, 40, atol=1e-9)


def test_radius_from_depth():
    d = np.full((20, 30), 7.0)
    d[0, 5] = 0.5  # on the border: pushed to 100, ignored
    d[7, 9] = 2.0
    assert cam.radius_from_depth(d) == pytest.approx(2.15)
    assert cam.radius_from_depth(torch.from_numpy(d)[None].repeat(3, 1, 1)) == pytest.approx(2.15)


def test_npz_round_trip_exact(tmp_path):
    path = cam.preset("60", clip(49, 3.3, 512, 384))
    f = cam.write_ex4d_npz(path, tmp_path / "camera_60.npz")
    with np.load(f) as data:
        assert set(data.files) == {"extrinsics", "intrinsics"}
        assert data["extrinsics"].shape == (49, 4, 4) and data["extrinsics"].dtype == np.float32
        assert data["intrinsics"].shape == (3, 3) and data["intrinsics"].dtype == np.float32
    back = cam.read_ex4d_npz(f)
    assert (back.width, back.height) == (512, 384)
    np.testing.assert_array_equal(back.extrinsics, path.extrinsics)
    np.testing.assert_array_equal(back.lens.intrinsics, path.lens.intrinsics)


def random_poses(n: int, rng: np.random.Generator) -> np.ndarray:
    """Random world-to-camera matrices (rotation + translation), float32."""
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    ext = np.tile(np.eye(4), (n, 1, 1))
    ext[:, :3, :3], ext[:, :3, 3] = q, rng.normal(size=(n, 3)) * 3
    return ext.astype(np.float32)


def test_npz_written_by_plain_numpy_loads(tmp_path):
    ext = random_poses(5, np.random.default_rng(0))
    k = intrinsics_matrix(640, 480, 500.0)
    np.savez(tmp_path / "camera_x.npz", extrinsics=ext, intrinsics=k)
    p = cam.read_ex4d_npz(tmp_path / "camera_x.npz")
    assert (p.width, p.height, p.num_frames) == (640, 480, 5)
    np.testing.assert_array_equal(p.extrinsics, ext)


def test_json_round_trip_bit_exact(tmp_path):
    rng = np.random.default_rng(1)
    ext = random_poses(7, rng) / np.array([1, 1, 1, 1], dtype=np.float32) * np.float32(1.0)
    path = cam.CameraPath(ext, cam.Lens(512, 320, intrinsics_matrix(512, 320, 512.3)))
    text = cam.write_json(path, tmp_path / "p.json")
    assert json.loads(text)["width"] == 512
    for back in (cam.read_json(text), cam.read_json(tmp_path / "p.json")):
        assert back.extrinsics.tobytes() == path.extrinsics.tobytes()
        assert back.lens.intrinsics.tobytes() == path.lens.intrinsics.tobytes()
        assert (back.width, back.height) == (512, 320)
    with pytest.raises(ValueError):
        cam.read_json('{"format": "something-else"}')


def test_zoom_presets_dolly_along_view_axis():
    r = 3.0
    zin = cam.preset("zoom_in", clip(49, r, 256, 256))
    zout = cam.preset("zoom_out", clip(49, r, 256, 256))
    np.testing.assert_allclose(zin.eyes()[:, 2], np.linspace(0, 0.5 * r, 49), atol=1e-5)
    np.testing.assert_allclose(zout.eyes()[:, 2], np.linspace(0, -0.5 * r, 49), atol=1e-5)
    np.testing.assert_allclose(zin.eyes()[:, :2], 0, atol=1e-6)
    # view direction unchanged: all rotations equal the identity camera's
    np.testing.assert_allclose(
        zin.extrinsics[:, :3, :3], np.broadcast_to(np.diag([1.0, -1, -1]), (49, 3, 3)), atol=1e-7
    )


def test_unknown_preset_raises():
    with pytest.raises(ValueError, match="preset"):
        cam.preset("spiral", clip(10, 1.0, 64, 64))


def test_orbit_easing_and_holds():
    r = 2.0
    p = cam.orbit(clip(20, r, 128, 128), yaw=(0, 40), pitch=(0, 10), speed=cam.Speed(easing="ease_in_out", hold_start=3, hold_end=2))
    eyes = p.eyes()
    np.testing.assert_allclose(eyes[:4], 0, atol=1e-6)  # held at the source camera
    np.testing.assert_allclose(eyes[-3:], np.broadcast_to(eyes[-1], (3, 3)), atol=1e-6)
    # every eye stays on the sphere of radius r around the target
    np.testing.assert_allclose(np.linalg.norm(eyes - [0, 0, r], axis=1), r, atol=1e-5)
    yaw_end = math.degrees(math.atan2(eyes[-1, 0], -(eyes[-1, 2] - r)))
    assert yaw_end == pytest.approx(40.0, abs=1e-3)
    assert eyes[-1, 1] < 0  # positive pitch raises the eye (world y points down)
    # ease-in-out: slow start
    steps = np.linalg.norm(np.diff(eyes, axis=0), axis=1)
    assert steps[3] < steps[8]


def test_easing_curves():
    t = np.linspace(0, 1, 11)
    np.testing.assert_allclose(ease(t, "linear"), t)
    np.testing.assert_allclose(ease(t, "ease_in"), t**2)
    np.testing.assert_allclose(ease(t, "ease_in_out"), 3 * t**2 - 2 * t**3)
    with pytest.raises(ValueError):
        ease(t, "bounce")


def test_keyframes_interpolate_and_eye_keys():
    r = 3.0
    keys = [
        cam.Keyframe(frame=0),
        {"frame": 10, "yaw": 30.0},
        {"frame": 20, "yaw": 30.0, "pitch": 10.0, "roll": 5.0},
    ]
    p = cam.keyframed(keys, clip(25, r, 128, 96))
    ref = cam.orbit(clip(11, r, 128, 96), yaw=(0, 30))
    np.testing.assert_allclose(p.extrinsics[:11], ref.extrinsics, atol=1e-6)
    np.testing.assert_allclose(p.extrinsics[20:], np.broadcast_to(p.extrinsics[20], (5, 4, 4)))
    # keys given by eye: the path passes through them
    eye_key = (0.5, -0.2, 0.4)
    q = cam.keyframed([{"frame": 0}, {"frame": 8, "eye": eye_key}], clip(9, r, 64, 64))
    np.testing.assert_allclose(q.eyes()[-1], eye_key, atol=1e-5)
    np.testing.assert_allclose(q.extrinsics[-1], _ref_look_at(eye_key, (0, 0, r)), atol=1e-6)


def test_clip_matrices_shape():
    p = cam.preset("90", clip(49, 2.0, 64, 48))
    m = p.clip_matrices()
    assert m.shape == (49, 4, 4)
    np.testing.assert_allclose(
        m[0], projection_matrix(64, 48, 500.0) @ np.diag([1.0, -1, -1, 1]), atol=1e-7
    )


def test_path_centre_and_preview():
    path = cam.preset("90", clip(49, 3.0, 512, 320))
    np.testing.assert_allclose(path_centre(path), [0.0, 0.0, 3.0], atol=1e-6)  # the look-at point
    assert path_centre(cam.dolly(clip(49, 3.0, 512, 320), start=0.0, end=0.5)) is None  # parallel rays
    image = cam.path_preview(path, size=101)
    assert image.shape == (101, 202, 3) and image.dtype == np.float32
    assert np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1
    # every eye is drawn in its panel, first blue-ish, last red-ish; the centre cross is white
    assert (image[..., 2] > 0.9).any() and (image[..., 0] > 0.9).any()
    assert (image == 1.0).all(axis=-1).any()
    points = np.array([[0.0, 0.0, 3.0], [1.0, 0.5, 4.0]])
    with_points = cam.path_preview(path, points, np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]), size=101)
    assert (with_points == np.array([0.0, 1.0, 0.0], np.float32)).all(axis=-1).sum() >= 2


@pytest.mark.parametrize(("change", "error"), [
    (lambda e, k: e.__setitem__((2, 0, 3), np.nan), "NaN or infinite values \\(first at frame 2\\)"),
    (lambda e, k: e.__setitem__(slice(None), 0.0), "frame 0 are not a camera pose"),
    (lambda e, k: e.__setitem__((1, slice(0, 3), slice(0, 3)), e[1, :3, :3] * 2), "frame 1 are not a camera pose"),
    (lambda e, k: k.__setitem__((1, 1), k[1, 1] * 1.5), "fx = 500 and fy = 750"),
    (lambda e, k: k.__setitem__((0, 2), 100.0), "principal point \\(100, 240\\) is not the centre of 640x480"),
    (lambda e, k: k.__setitem__((0, 1), 3.0), "skew"),
])
def test_camera_refuses_what_the_renderer_cannot_draw(change, error):
    ext = random_poses(3, np.random.default_rng(2))
    k = intrinsics_matrix(640, 480, 500.0)
    change(ext, k)
    with pytest.raises(ValueError, match=error):
        cam.CameraPath(ext, cam.Lens(640, 480, k))


def test_zero_distance_keyframe_is_refused():
    with pytest.raises(ValueError, match="keyframe 1: eye equals target; move the eye or the target"):
        cam.keyframed([{"frame": 0, "eye": [0, 0, 1], "target": [0, 0, 1]}], clip(5, 2.0, 64, 64))
    with pytest.raises(ValueError, match="keyframe 2: distance 0 puts the eye on the target"):
        cam.keyframed([{"frame": 0}, {"frame": 4, "distance": 0}], clip(5, 2.0, 64, 64))
    nan = {"frame": 0, "yaw": float("nan"), "pitch": 0, "distance": 1}
    with pytest.raises(ValueError, match="NaN"):
        cam.keyframed([nan], clip(5, 2.0, 64, 64))


@pytest.mark.parametrize(("keys", "error"), [
    ([1, 2], "keyframe 1 is 1; give an object such as"),
    ([{"frame": 0}, {"frame": "first"}], "keyframe 2: frame must be a number, got 'first'"),
    ([{"frame": 0, "yaw": True}], "keyframe 1: yaw must be a number, got True"),
    ([{"frame": 0, "zoom": 2}], "keyframe 1 has an unknown key 'zoom'; use frame, yaw, pitch, distance, roll, eye"),
    ([{"yaw": 30}], "keyframe 1 has no frame"),
    ([{"frame": 0, "eye": [1, 2]}], "keyframe 1: eye must be \\[x, y, z\\] \\(3 numbers\\)"),
    ([{"frame": 0, "target": "abc"}], "keyframe 1: target must be \\[x, y, z\\]"),
    ([{"frame": 0, "eye": [1, 2, float("inf")]}], "keyframe 1: eye is NaN or infinite"),
])
def test_bad_keyframes_name_the_keyframe_and_key(keys, error):
    with pytest.raises(ValueError, match=error):
        cam.keyframed(keys, clip(5, 2.0, 64, 64))


def test_keyframes_take_numpy_numbers_and_none_for_defaults():
    keys = [{"frame": np.int64(0), "yaw": np.float32(10.0), "distance": None, "eye": None},
            cam.Keyframe(frame=4, yaw=20.0, eye=None)]
    expected = cam.keyframed([{"frame": 0, "yaw": 10.0}, {"frame": 4, "yaw": 20.0}], clip(5, 2.0, 64, 64))
    np.testing.assert_array_equal(cam.keyframed(keys, clip(5, 2.0, 64, 64)).extrinsics, expected.extrinsics)


@pytest.mark.parametrize("content", [b"not a zip", b"PK\x03\x04broken"])
def test_unreadable_npz_is_a_clear_error(tmp_path, content):
    (tmp_path / "c.npz").write_bytes(content)
    with pytest.raises(cam.CameraFileError, match="'c.npz' is not a readable EX-4D camera file"):
        cam.read_ex4d_npz(tmp_path / "c.npz")


def test_npz_of_another_kind_is_a_clear_error(tmp_path):
    k = intrinsics_matrix(64, 64)
    np.savez(tmp_path / "missing.npz", extrinsics=np.eye(4, dtype=np.float32)[None])
    np.savez(tmp_path / "zero.npz", extrinsics=np.zeros((2, 4, 4), np.float32), intrinsics=k)
    np.savez(tmp_path / "nan_k.npz", extrinsics=np.eye(4, dtype=np.float32)[None], intrinsics=k * np.nan)
    np.save(tmp_path / "single.npy", k)
    (tmp_path / "single.npz").write_bytes((tmp_path / "single.npy").read_bytes())
    for name, error in [("missing.npz", "'missing.npz' lacks the intrinsics of an EX-4D camera file"),
                        ("zero.npz", "'zero.npz' holds no usable camera path: the extrinsics of frame 0"),
                        ("nan_k.npz", "'nan_k.npz' holds intrinsics that are not a 3 x 3 matrix of finite"),
                        ("single.npz", "'single.npz' holds a single array")]:
        with pytest.raises(cam.CameraFileError, match=error):
            cam.read_ex4d_npz(tmp_path / name)


@pytest.mark.parametrize(("data", "error"), [
    ([1, 2], "not an EX-4D camera path JSON \\(a list\\)"),
    ({"format": "other"}, "not an EX-4D camera path JSON \\(format 'other'\\)"),
    ({"format": JSON_FORMAT}, "lacks extrinsics, intrinsics, width, height"),
    ({"format": JSON_FORMAT, "extrinsics": "x", "intrinsics": [], "width": "a", "height": 1}, "not numbers"),
    ({"format": JSON_FORMAT, "extrinsics": [], "intrinsics": [], "width": 1, "height": float("inf")},
     "its height holds values that are not numbers"),
])
def test_bad_json_is_a_clear_error(data, error):
    with pytest.raises(cam.CameraFileError, match=error):
        from_json_dict(data)


def test_bad_json_file_names_the_file(tmp_path):
    (tmp_path / "cut.json").write_text(cam.write_json(cam.orbit(clip(3, 2.0, 64, 64)))[:-20])
    with pytest.raises(cam.CameraFileError, match="'cut.json' is not valid JSON \\(line 1, column"):
        cam.read_json(tmp_path / "cut.json")
    (tmp_path / "bytes.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(cam.CameraFileError, match="'bytes.json' is not a readable text file"):
        cam.read_json(tmp_path / "bytes.json")


def test_preset_speed_curves_keep_the_published_curve():
    r, n = 2.0, 25
    published = cam.preset("60", clip(n, r, 512, 320))
    assert np.array_equal(cam.preset("60", clip(n, r, 512, 320), speed=cam.Speed(easing="linear", hold_start=0, hold_end=0)).extrinsics,
                          published.extrinsics)
    eased = cam.preset("60", clip(n, r, 512, 320), speed=cam.Speed(easing="ease_in_out", hold_start=3, hold_end=2))
    eyes, ref = eased.eyes(), published.eyes()
    np.testing.assert_allclose(eyes[:4], np.repeat(ref[:1], 4, 0), atol=1e-5)  # held, then eased out of frame 0
    np.testing.assert_allclose(eyes[-3:], np.repeat(ref[-1:], 3, 0), atol=1e-5)
    step = np.linalg.norm(np.diff(eyes, axis=0), axis=1)
    assert step[3] < step[n // 2] and step[-3] < step[n // 2]  # slow at both ends of the move
    # every eased eye lies on the published curve: its angle t gives back the same point
    t = np.arctan2(eyes[:, 0], r * np.abs(np.cos(0)) - eyes[:, 2])
    np.testing.assert_allclose(eyes[:, 1], 0.2 * r * (np.abs(np.cos(t)) - 1), atol=1e-5)
    zoom = cam.preset("zoom_in", clip(n, r, 512, 320), speed=cam.Speed(easing="ease_in", hold_end=5))
    np.testing.assert_allclose(zoom.eyes()[-6:, 2], 0.5 * r, atol=1e-6)


@pytest.mark.parametrize("name", [*cam.PRESETS, "30", "12.5"])
def test_every_preset_is_one_move_of_the_table(name):
    """The named presets and the moves beside them come from one table; each one's path is the move it names."""
    c, speed = clip(9, 2.0, 64, 48), cam.Speed("ease_in", 1, 0)
    path = cam.preset(f" {name.upper()} ", c, speed, zoom_fraction=0.4, amount=-0.3)
    if name in cam.MOVES:
        expected = cam.move(name, c, amount=-0.3, speed=speed)
    elif name.startswith("zoom"):
        expected = cam.dolly(c, start=0.0, end=0.4 if name == "zoom_in" else -0.4, speed=speed)
    else:  # a turn: the last eye at its whole angle on the published curve ("180": once around)
        t, r = math.radians(360.0 if name == "180" else float(name)), 2.0
        c = math.cos(t) if name == "180" else abs(math.cos(t))
        end = [r * math.sin(t), 0.2 * r * (c - 1), 0.0 if name == "180" else r - r * c]
        np.testing.assert_allclose(path.eyes()[-1], end, atol=1e-5)
        return
    assert path.extrinsics.tobytes() == expected.extrinsics.tobytes()
    assert cam.to_json_dict(path) == cam.to_json_dict(expected)


def test_a_clip_and_its_lens_refuse_what_no_path_can_be_made_for():
    with pytest.raises(ValueError, match="clip: frames and radius must be positive"):
        clip(0, 2.0, 64, 48)
    with pytest.raises(ValueError, match="clip: frames and radius must be positive"):
        clip(5, float("nan"), 64, 48)
    with pytest.raises(ValueError, match="width and height must be positive"):
        clip(5, 2.0, 0, 48)
    with pytest.raises(ValueError, match="fx = -1"):
        clip(5, 2.0, 64, 48, focal=-1.0)
    lens = cam.Lens.centred(64, 48, 100.0)
    assert lens.principal_point == (32.0, 24.0) and not lens.zooms
    assert cam.Lens(64, 48, lens.intrinsics, focals=[100.0, 100.0]).focals is None  # no zoom: one focal


@pytest.mark.parametrize("kind", cam.MOVES)
def test_moves(kind):
    r, n = 2.0, 9
    path = cam.move(kind, clip(n, r, 64, 48), amount=0.5, speed=cam.Speed(easing="ease_in_out"))
    eyes = path.eyes()
    np.testing.assert_allclose(path.extrinsics[0], np.diag([1, -1, -1, 1]), atol=1e-6)  # the source camera
    axis = 0 if kind == "truck" else 1
    expected_end = np.zeros(3)
    expected_end[axis] = 0.5 * r if kind == "truck" else -0.5 * r  # right for truck, up (-y) for the others
    np.testing.assert_allclose(eyes[-1], expected_end, atol=1e-6)
    assert np.all(np.diff(eyes[:, axis]) * np.sign(expected_end[axis]) > 0)
    rotations = path.extrinsics[:, :3, :3]
    if kind == "crane":  # keeps looking at the orbit centre: the view tilts
        fwd = path.view_matrices()[:, 2, :3]
        to_centre = np.array([0.0, 0.0, r]) - eyes
        np.testing.assert_allclose(fwd, to_centre / np.linalg.norm(to_centre, axis=1, keepdims=True), atol=1e-6)
        assert not np.allclose(rotations[-1], rotations[0], atol=1e-3)
    else:  # slides: the view does not turn
        np.testing.assert_allclose(rotations, np.broadcast_to(rotations[0], rotations.shape), atol=1e-6)
    with pytest.raises(ValueError, match="unknown camera move"):
        cam.move("zoom", clip(n, r, 64, 48))


# ----------------------------------------------------------------------------- per-frame focal (dolly-zoom)


def _ndc(path: cam.CameraPath, points: np.ndarray) -> np.ndarray:
    """[N, M, 2] normalised device coordinates of world points [M, 3] in every frame."""
    clip = np.einsum("nij,mj->nmi", path.clip_matrices(), np.c_[points, np.ones(len(points))])
    return clip[..., :2] / clip[..., 3:]


def test_dolly_zoom_keeps_the_subject_size():
    r, f = 3.0, 500.0
    plain = cam.dolly(clip(49, r, 512, 320, f), start=0.0, end=0.6, speed=cam.Speed(easing="ease_in_out"))
    zoom = cam.dolly(clip(49, r, 512, 320, f), start=0.0, end=0.6, keep_subject_size=True, speed=cam.Speed(easing="ease_in_out"))
    # the same eyes; each frame's focal length follows the eye's distance to the target
    assert zoom.lens.zooms and not plain.lens.zooms and plain.lens.focals is None
    assert zoom.extrinsics.tobytes() == plain.extrinsics.tobytes() and zoom.focal == f
    distance = r - plain.eyes()[:, 2]
    np.testing.assert_allclose(zoom.frame_focals(), f * distance / r, rtol=1e-6)
    assert zoom.frame_focals()[0] == f and zoom.frame_focals()[-1] == pytest.approx(0.4 * f, rel=1e-6)
    # the subject: points of the target's plane (z = r) project to the same place in every frame
    gx, gy = np.meshgrid(np.linspace(-1.0, 1.0, 5), np.linspace(-0.6, 0.6, 4))
    subject = np.c_[gx.ravel(), gy.ravel(), np.full(gx.size, r)]
    shown = _ndc(zoom, subject)
    np.testing.assert_allclose(shown, np.broadcast_to(shown[:1], shown.shape), atol=1e-5)
    size = np.ptp(_ndc(plain, subject)[..., 0], axis=1)
    assert size[-1] > 2.4 * size[0]  # a plain dolly makes it grow (2.5 times at 0.6 r)
    # the background recedes: a point twice as far moves toward the centre
    background = _ndc(zoom, np.array([[1.0, 0.5, 2 * r]]))[:, 0]
    assert abs(background[-1, 0]) < 0.7 * abs(background[0, 0])
    # moving out zooms in
    out = cam.dolly(clip(9, r, 512, 320, f), start=0.0, end=-1.0, keep_subject_size=True)
    np.testing.assert_allclose(out.frame_focals()[-1], 2 * f, rtol=1e-6)
    shown = _ndc(out, subject)
    np.testing.assert_allclose(shown, np.broadcast_to(shown[:1], shown.shape), atol=1e-5)


def test_a_path_without_zoom_stays_the_published_path():
    plain = cam.dolly(clip(49, 3.0, 512, 320), start=0.0, end=0.5)
    held = cam.dolly(clip(49, 3.0, 512, 320), start=0.0, end=0.0, keep_subject_size=True)  # no move: no zoom
    assert held.lens.focals is None
    same = cam.CameraPath(plain.extrinsics, cam.Lens(512, 320, plain.lens.intrinsics, focals=np.full(49, 500.0)))
    assert same.lens.focals is None and cam.to_json_dict(same) == cam.to_json_dict(plain)
    assert same.clip_matrices().tobytes() == plain.clip_matrices().tobytes()
    np.testing.assert_array_equal(plain.frame_intrinsics(), np.broadcast_to(plain.lens.intrinsics, (49, 3, 3)))


def test_per_frame_focal_in_the_clip_matrices():
    path = cam.dolly(clip(5, 2.0, 64, 48, 100.0), start=0.0, end=0.5, keep_subject_size=True)
    m = path.clip_matrices()
    for i, f in enumerate(path.frame_focals()):
        np.testing.assert_allclose(m[i], projection_matrix(64, 48, f) @ path.extrinsics[i].astype(np.float64))


def test_per_frame_focal_round_trips_through_npz(tmp_path):
    path = cam.dolly(clip(49, 3.0, 512, 320, 500.0), start=-0.5, end=0.5, keep_subject_size=True)
    assert path.frame_focals()[0] == pytest.approx(750.0)  # the subject keeps its size in the source frame
    f = cam.write_ex4d_npz(path, tmp_path / "camera_vertigo.npz")
    with np.load(f) as data:
        assert set(data.files) == {"extrinsics", "intrinsics", "source_focal"}
        assert data["intrinsics"].shape == (49, 3, 3) and data["intrinsics"].dtype == np.float32
        np.testing.assert_array_equal(data["intrinsics"][:, 0, 0], path.lens.focals)
        np.testing.assert_array_equal(data["intrinsics"][:, 1, 1], path.lens.focals)
        assert float(data["source_focal"]) == 500.0
    back = cam.read_ex4d_npz(f)
    assert (back.width, back.height, back.focal) == (512, 320, 500.0)
    assert back.lens.focals.tobytes() == path.lens.focals.tobytes()
    assert back.extrinsics.tobytes() == path.extrinsics.tobytes()
    assert back.clip_matrices().tobytes() == path.clip_matrices().tobytes()
    # per-frame intrinsics written by another tool (no source_focal): the source focal is frame 0's
    np.savez(tmp_path / "other.npz", extrinsics=path.extrinsics, intrinsics=path.frame_intrinsics())
    other = cam.read_ex4d_npz(tmp_path / "other.npz")
    assert other.focal == pytest.approx(750.0) and np.array_equal(other.frame_focals(), path.frame_focals())


@pytest.mark.parametrize("frames", [1, 9])
def test_a_zoom_held_at_one_focal_round_trips_through_both_formats(tmp_path, frames):
    """Every frame at the same focal length, other than the source's (a dolly-zoom held at its end, or one
    frame): the npz keeps the source focal as the JSON does."""
    path = cam.dolly(clip(frames, 3.0, 64, 48, 500.0), start=0.5, end=0.5, keep_subject_size=True)
    assert path.focal == 500.0 and np.all(path.frame_focals() == 250.0)
    for back in (cam.read_ex4d_npz(cam.write_ex4d_npz(path, tmp_path / "held.npz")),
                 cam.read_json(cam.write_json(path))):
        assert back.focal == 500.0 and back.lens.focals.tobytes() == path.lens.focals.tobytes()


def test_npz_of_structured_arrays_is_a_clear_error(tmp_path):
    record = np.zeros(4, dtype=[("a", "<f4"), ("b", "<f4")])
    np.savez(tmp_path / "records.npz", extrinsics=record, intrinsics=intrinsics_matrix(64, 64))
    with pytest.raises(cam.CameraFileError, match="'records.npz' is not a readable EX-4D camera file"):
        cam.read_ex4d_npz(tmp_path / "records.npz")


def test_per_frame_intrinsics_the_renderer_cannot_draw_are_refused(tmp_path):
    path = cam.dolly(clip(4, 3.0, 64, 48, 100.0), start=0.0, end=0.5, keep_subject_size=True)
    k = path.frame_intrinsics()
    moved = k.copy()
    moved[2, 0, 2] += 5.0
    np.savez(tmp_path / "moved.npz", extrinsics=path.extrinsics, intrinsics=moved)
    with pytest.raises(cam.CameraFileError, match="'moved.npz' holds per-frame intrinsics that differ in more"):
        cam.read_ex4d_npz(tmp_path / "moved.npz")
    np.savez(tmp_path / "short.npz", extrinsics=path.extrinsics, intrinsics=k[:3])
    with pytest.raises(cam.CameraFileError, match="'short.npz' holds 3 intrinsics for 4 cameras"):
        cam.read_ex4d_npz(tmp_path / "short.npz")
    with pytest.raises(ValueError, match="focals: the focal length of frame 1 is -3"):
        cam.CameraPath(path.extrinsics, cam.Lens(64, 48, path.lens.intrinsics, focals=[100.0, -3.0, 50.0, 50.0]))
    with pytest.raises(ValueError, match="one focal length per frame"):
        cam.CameraPath(path.extrinsics, cam.Lens(64, 48, path.lens.intrinsics, focals=[100.0, 50.0]))


def test_per_frame_focal_round_trips_through_json(tmp_path):
    path = cam.dolly(clip(13, 2.5, 512, 320, 512.3), start=0.2, end=-0.7, keep_subject_size=True, speed=cam.Speed(easing="ease_out"))
    text = cam.write_json(path, tmp_path / "p.json")
    assert len(json.loads(text)["focals"]) == 13
    for back in (cam.read_json(text), cam.read_json(tmp_path / "p.json")):
        assert back.lens.focals.tobytes() == path.lens.focals.tobytes()
        assert back.lens.intrinsics.tobytes() == path.lens.intrinsics.tobytes()
        assert back.extrinsics.tobytes() == path.extrinsics.tobytes()
    bad = {**json.loads(text), "focals": [1.0] * 12 + ["x"]}
    with pytest.raises(cam.CameraFileError, match="its focals holds values that are not numbers"):
        from_json_dict(bad)
    bad = {**json.loads(text), "focals": [0.0] * 13}
    with pytest.raises(cam.CameraFileError, match="focal length of frame 0 is 0"):
        from_json_dict(bad)


def test_preview_shows_each_frames_field_of_view():
    plain = cam.dolly(clip(49, 3.0, 512, 320), start=0.0, end=0.6)
    zoom = cam.dolly(clip(49, 3.0, 512, 320), start=0.0, end=0.6, keep_subject_size=True)
    a, b = cam.path_preview(plain, size=128), cam.path_preview(zoom, size=128)
    changed = np.abs(a - b).max(axis=-1) > 0
    assert changed.sum() > 50  # the frustum edges of the zooming path
    # wider at the end (short focal) than at the start: the edges of the last frame spread further in the top view
    assert changed[:, :128].any() and changed[:, 128:].any()


@pytest.mark.parametrize("n", [25, 49, 121])
def test_angle_preset_turns_its_angle_over_the_whole_clip(n):
    """The default sweep turns 90 degrees over any length; the published rounds only agree at 49 frames."""
    r = 2.0
    whole = cam.preset("90", clip(n, r, 512, 320))
    np.testing.assert_allclose(whole.eyes()[-1], [r, 0.2 * r * (0 - 1), r], atol=1e-5)  # theta = 90 degrees
    published = cam.preset("90", clip(n, r, 512, 320), sweep="published rounds")
    assert np.array_equal(whole.extrinsics, published.extrinsics) == (n == 49)
    with pytest.raises(ValueError, match="unknown sweep 'rounds'"):
        cam.preset("90", clip(n, r, 512, 320), sweep="rounds")
