"""DW-mesh builder: layout, hidden faces, ablation, exports (checked against independent numpy code)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from ex4d.mesh import DWMeshSpec, build_dw_mesh, grid_faces, save_glb, save_ply

H, W = 24, 32


def _step_scene(t=2):
    depth = torch.full((t, H, W), 4.0)
    depth[:, 8:16, 10:22] = 2.0
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(t, H, W, 3, generator=g)
    return frames, depth


def _np_points(depth):
    d = depth.astype(np.float64).copy()
    d[:, 0, :] = d[:, -1, :] = d[:, :, 0] = d[:, :, -1] = 100.0
    u = np.arange(W)[None, None, :]
    v = np.arange(H)[None, :, None]
    return np.stack([d * (u - W // 2) / 500.0, d * (v - H // 2) / 500.0, d], -1).reshape(len(d), H * W, 3)


def _np_faces():
    out = []
    for half in (0, 1):
        for v in range(H - 1):
            for u in range(W - 1):
                tl, tr, bl, br = v * W + u, v * W + u + 1, (v + 1) * W + u, (v + 1) * W + u + 1
                out.append((bl, tl, tr) if half == 0 else (bl, tr, br))
    out += [(W - 1, 0, H * W - 1), (H * W - 1, 0, (H - 1) * W)]
    return np.array(out)


def _np_min_angle(p, f):
    a, b, c = p[f[:, 0]], p[f[:, 1]], p[f[:, 2]]

    def ang(x, y, z):
        e1, e2 = y - x, z - x
        cosv = (e1 * e2).sum(-1) / (np.linalg.norm(e1, axis=-1) * np.linalg.norm(e2, axis=-1))
        return np.degrees(np.arccos(np.clip(cosv, -1, 1)))

    return np.minimum(np.minimum(ang(a, b, c), ang(b, c, a)), ang(c, a, b))


def test_layout_vertices_faces():
    frames, depth = _step_scene()
    mesh = build_dw_mesh(frames, depth)
    assert mesh.faces.dtype == torch.int32
    assert mesh.num_faces == 2 * (H - 1) * (W - 1) + 2
    np.testing.assert_array_equal(mesh.faces.numpy(), _np_faces())
    np.testing.assert_allclose(mesh.vertices.numpy(), _np_points(depth.numpy()), rtol=1e-6, atol=1e-6)
    assert mesh.vertices.shape == (2, H * W, 3) and mesh.colors.shape == (2, H * W, 4)
    torch.testing.assert_close(mesh.frame0, frames[0])


def test_step_edge_hidden_not_deleted():
    frames, depth = _step_scene()
    mesh = build_dw_mesh(frames, depth)
    faces = _np_faces()
    pts = _np_points(depth.numpy())
    for t in range(2):
        stretched = _np_min_angle(pts[t], faces) < 2.5
        assert stretched.any() and not stretched.all()
        np.testing.assert_array_equal(mesh.stretched[t].numpy(), stretched)
        hidden = np.zeros(H * W, bool)
        hidden[faces[stretched].reshape(-1)] = True
        alpha = mesh.colors[t, :, 3].numpy()
        np.testing.assert_array_equal(alpha == 0, hidden)
        np.testing.assert_array_equal(alpha[~hidden], 255.0)
        rgb = mesh.colors[t, :, :3].numpy()
        np.testing.assert_array_equal(rgb[hidden], 0.0)
        np.testing.assert_allclose(rgb[~hidden], frames[t].reshape(-1, 3).numpy()[~hidden] * 255, rtol=1e-6)
    # watertight: nothing deleted
    assert mesh.face_keep is None and mesh.frame_faces(0).shape[0] == 2 * (H - 1) * (W - 1) + 2


def test_non_watertight_ablation_deletes():
    frames, depth = _step_scene()
    mesh = build_dw_mesh(frames, depth, watertight=False)
    ref = build_dw_mesh(frames, depth)
    assert mesh.face_keep is not None
    torch.testing.assert_close(mesh.face_keep, ~ref.stretched)
    assert mesh.frame_faces(0).shape[0] == ref.num_faces - int(ref.stretched[0].sum())
    assert bool((mesh.colors[..., 3] == 255).all())


def test_boundary_filter_formula():
    frames, depth = _step_scene()
    depth[1] += torch.linspace(0, 0.5, W)[None, :]  # a slope that is not a discontinuity
    mesh = build_dw_mesh(frames, depth, filter="boundary")
    faces = _np_faces()
    for t, pts in enumerate(_np_points(depth.numpy())):
        a, b, c = pts[faces[:, 0]], pts[faces[:, 1]], pts[faces[:, 2]]
        m = np.maximum(np.maximum(np.abs(a - b), np.abs(b - c)), np.abs(c - a))
        ref = m[:, 2] / (np.maximum(m[:, 0], m[:, 1]) + 1e-8) > 2.0
        np.testing.assert_array_equal(mesh.stretched[t].numpy(), ref)


def test_smooth_depth_hides_only_the_outer_wall():
    frames = torch.rand(1, H, W, 3)
    depth = torch.full((1, H, W), 3.0)
    mesh = build_dw_mesh(frames, depth)
    alpha = mesh.colors[0, :, 3].reshape(H, W)
    assert bool((alpha[2:-2, 2:-2] == 255).all())
    ring = torch.ones(H, W, dtype=torch.bool)
    ring[2:-2, 2:-2] = False
    # the top-left and bottom-right corners only touch faces inside the flat outer wall: not stretched
    ring[0, 0] = ring[-1, -1] = False
    assert bool((alpha[ring] == 0).all()) and alpha[0, 0] == 255 and alpha[-1, -1] == 255


def test_bad_shapes():
    with pytest.raises(ValueError):
        build_dw_mesh(torch.rand(2, H, W, 3), torch.rand(2, H, W + 1))
    with pytest.raises(ValueError):
        build_dw_mesh(torch.rand(2, H, W, 3), torch.rand(2, H, W), filter="nope")
    with pytest.raises(ValueError):
        grid_faces(1, 5)


@pytest.mark.parametrize("options", [{}, {"watertight": False}, {"filter": "boundary", "boundary_ratio": 1.5},
                                     {"filter": "none"}, {"focal": 300.0, "angle_threshold": 5.0}])
def test_parts_of_a_spec_are_the_frames_of_the_whole_mesh(options):
    t = 5
    depth = torch.full((t, H, W), 4.0)
    for i in range(t):  # a box that moves: every frame differs
        depth[i, 6 + i : 14 + i, 8 + 2 * i : 20 + 2 * i] = 2.0
    frames = torch.rand(t, H, W, 3, generator=torch.Generator().manual_seed(1))
    whole = build_dw_mesh(frames, depth, **options)
    spec = DWMeshSpec(frames, depth, **options)
    assert (spec.num_frames, spec.height, spec.width, spec.watertight) == (t, H, W, whole.watertight)
    assert torch.equal(spec.faces, whole.faces) and torch.equal(spec.frame0, whole.frame0)
    for start, stop in ((0, t), (0, 2), (2, 5), (4, 5)):
        for source in (spec, whole):
            part = source.part(start, stop)
            assert part.num_frames == stop - start
            assert torch.equal(part.vertices, whole.vertices[start:stop])
            assert torch.equal(part.colors, whole.colors[start:stop])
            assert torch.equal(part.stretched, whole.stretched[start:stop])
            assert (part.face_keep is None) == (whole.face_keep is None)
            if whole.face_keep is not None:
                assert torch.equal(part.face_keep, whole.face_keep[start:stop])
            assert torch.equal(part.faces, whole.faces) and torch.equal(part.frame0, whole.frame0)
    assert spec.frames is frames and spec.depth is depth  # nothing copied until a part is built


def test_spec_refuses_bad_inputs_when_made():
    frames, depth = _step_scene()
    with pytest.raises(ValueError, match="does not match"):
        DWMeshSpec(frames, depth[:, :, :-1])
    with pytest.raises(ValueError, match="unknown face filter"):
        DWMeshSpec(frames, depth, filter="nope")
    with pytest.raises(ValueError, match="2 x 2"):
        DWMeshSpec(frames[:, :1], depth[:, :1])


def test_ply_export(tmp_path):
    frames, depth = _step_scene()
    mesh = build_dw_mesh(frames, depth)
    path = save_ply(mesh, 1, tmp_path / "m.ply")
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode()
    assert "format binary_little_endian 1.0" in header
    assert f"element vertex {H * W}" in header and f"element face {mesh.num_faces}" in header
    vdt = np.dtype([("p", "<f4", 3), ("c", "u1", 4)])
    va = np.frombuffer(data, vdt, count=H * W, offset=end)
    ref = mesh.vertices[1].numpy() * np.array([1, -1, -1], np.float32)
    np.testing.assert_array_equal(va["p"], ref)
    np.testing.assert_array_equal(va["c"][:, 3], mesh.colors[1, :, 3].numpy().astype(np.uint8))
    fdt = np.dtype([("n", "u1"), ("i", "<i4", 3)])
    fa = np.frombuffer(data, fdt, offset=end + va.nbytes)
    assert len(fa) == mesh.num_faces and (fa["n"] == 3).all()
    np.testing.assert_array_equal(fa["i"], mesh.faces.numpy())


def test_glb_export(tmp_path):
    frames, depth = _step_scene()
    mesh = build_dw_mesh(frames, depth, watertight=False)
    path = save_glb(mesh, 0, tmp_path / "m.glb")
    data = path.read_bytes()
    magic, version, total = struct.unpack_from("<III", data, 0)
    assert (magic, version, total) == (0x46546C67, 2, len(data))
    jlen, jtype = struct.unpack_from("<II", data, 12)
    assert jtype == 0x4E4F534A and jlen % 4 == 0
    gltf = json.loads(data[20 : 20 + jlen])
    blen, btype = struct.unpack_from("<II", data, 20 + jlen)
    assert btype == 0x004E4942
    binary = data[28 + jlen : 28 + jlen + blen]
    prim = gltf["meshes"][0]["primitives"][0]
    acc = gltf["accessors"]
    pos_acc, col_acc, idx_acc = (
        acc[prim["attributes"]["POSITION"]],
        acc[prim["attributes"]["COLOR_0"]],
        acc[prim["indices"]],
    )
    assert pos_acc["count"] == H * W and col_acc["normalized"] and col_acc["type"] == "VEC4"
    n_faces = int(mesh.face_keep[0].sum())
    assert idx_acc["count"] == 3 * n_faces
    view = gltf["bufferViews"][pos_acc["bufferView"]]
    pos = np.frombuffer(binary, "<f4", count=3 * H * W, offset=view["byteOffset"]).reshape(-1, 3)
    np.testing.assert_array_equal(pos, mesh.vertices[0].numpy() * np.array([1, -1, -1], np.float32))
    np.testing.assert_allclose(pos_acc["min"], pos.min(0))
    view = gltf["bufferViews"][idx_acc["bufferView"]]
    assert view["byteOffset"] % 4 == 0
    idx = np.frombuffer(binary, "<u4", count=3 * n_faces, offset=view["byteOffset"]).reshape(-1, 3)
    np.testing.assert_array_equal(idx, mesh.frame_faces(0).numpy())


def test_preview_export_leaves_out_the_wall_and_hidden_faces(tmp_path):
    from ex4d.mesh import preview_arrays, srgb_to_linear

    frames, depth = _step_scene()
    spec = DWMeshSpec(frames, depth)
    v, rgb, f = preview_arrays(spec, 1)
    faces = _np_faces()
    points = _np_points(depth.numpy())[1]
    border = np.zeros((H, W), bool)
    border[[0, -1]] = border[:, [0, -1]] = True
    keep = ~border.reshape(-1)[faces].any(1) & (_np_min_angle(points, faces) >= 2.5)
    used = np.unique(faces[keep])
    assert len(f) == keep.sum() and len(v) == len(used)
    np.testing.assert_allclose(v, points[used] * np.array([1, -1, -1]), atol=1e-6)
    np.testing.assert_array_equal(np.sort(used[f].reshape(-1)), np.sort(faces[keep].reshape(-1)))
    np.testing.assert_array_equal(rgb, frames[1].reshape(-1, 3).numpy()[used])  # not blacked out
    assert np.abs(v).max() < 10  # the wall at depth 100 is gone
    np.testing.assert_allclose(srgb_to_linear(np.array([0.0, 0.04045, 0.5, 1.0])),
                               [0.0, 0.04045 / 12.92, 0.21404, 1.0], atol=1e-5)
    path = save_glb(spec, 1, tmp_path / "p.glb", preview=True)
    data = path.read_bytes()
    jlen = struct.unpack_from("<I", data, 12)[0]
    gltf = json.loads(data[20 : 20 + jlen])
    assert gltf["extensionsUsed"] == ["KHR_materials_unlit"]
    color = gltf["accessors"][1]
    assert (color["componentType"], color["type"], color["count"]) == (5126, "VEC3", len(v))
    np.testing.assert_allclose(gltf["nodes"][0]["translation"], -(v.min(0) + v.max(0)) / 2, atol=1e-6)
    ply = save_ply(spec, 1, tmp_path / "p.ply", preview=True).read_bytes()
    assert f"element vertex {len(v)}\n".encode() in ply and f"element face {len(f)}\n".encode() in ply


def test_preview_of_a_frame_the_filter_hides_whole_is_a_clear_error(tmp_path):
    """Random depth under the boundary filter flags every face: the preview says so, not a raw reshape error."""
    from ex4d.mesh import preview_arrays, preview_gltf

    depth = torch.full((2, H, W), 2.0)
    depth[1] = 1.0 + 10.0 * torch.rand(H, W, generator=torch.Generator().manual_seed(0))
    spec = DWMeshSpec(torch.rand(2, H, W, 3), depth, filter="boundary")
    assert len(preview_arrays(spec, 0)[2]) > 0  # the flat frame has faces to show
    message = r"frame 1 of the DW-mesh has no visible faces: the 'boundary' filter \(boundary_ratio 2\).*higher " \
              r"boundary_ratio.*or preview another frame"
    with pytest.raises(ValueError, match=message):
        preview_gltf(spec, 1)
    for save in (save_glb, save_ply):
        with pytest.raises(ValueError, match=message):
            save(spec, 1, tmp_path / "empty", preview=True)
    assert not list(tmp_path.iterdir())
    assert save_glb(spec, 1, tmp_path / "full.glb").stat().st_size > 0  # the whole mesh is still there
    with pytest.raises(ValueError, match="frame 1 of the DW-mesh has no visible faces: its face filter"):
        preview_gltf(spec.part(0, 2), 1)
    with pytest.raises(ValueError, match="3 x 3 DW-mesh has no faces off its border wall.*at least 4 x 4"):
        preview_gltf(DWMeshSpec(torch.rand(1, 3, 3, 3), torch.ones(1, 3, 3)), 0)


def test_scene_asset_is_the_dw_mesh_on_a_coarse_grid():
    from ex4d.mesh import SCENE_MAGIC, scene_asset

    frames, depth = _step_scene(1)
    asset = scene_asset(frames[0], depth[0], max_vertices=200)
    rows, cols = np.unique(np.r_[np.arange(0, H, 2), H - 1]), np.unique(np.r_[np.arange(0, W, 2), W - 1])
    assert (asset.rows, asset.cols) == (len(rows), len(cols)) and rows[-1] == H - 1 and cols[-1] == W - 1
    full = build_dw_mesh(frames, depth)
    pick = (rows[:, None] * W + cols[None]).reshape(-1)
    np.testing.assert_array_equal(asset.vertices, full.vertices[0, pick].numpy())
    hidden_full = full.colors[0, pick, 3].numpy() == 0
    hidden = asset.colors[:, 3] == 0
    assert np.all(hidden[hidden_full]) and hidden.sum() < len(hidden) * 0.8  # the full mesh's, a little wider
    np.testing.assert_array_equal(asset.faces, grid_faces(len(rows), len(cols)).numpy())
    data = asset.to_bytes()
    assert data[:8] == SCENE_MAGIC
    hlen = struct.unpack_from("<I", data, 8)[0]
    header = json.loads(data[12 : 12 + hlen])
    assert (header["rows"], header["cols"], header["vertices"], header["faces"]) == (
        asset.rows, asset.cols, len(pick), len(asset.faces))
    offset = 12 + hlen
    positions = np.frombuffer(data, "<f4", 3 * len(pick), offset).reshape(-1, 3)
    colors = np.frombuffer(data, "u1", 4 * len(pick), offset + positions.nbytes).reshape(-1, 4)
    faces = np.frombuffer(data, "<u4", offset=offset + positions.nbytes + colors.nbytes).reshape(-1, 3)
    np.testing.assert_array_equal(positions, asset.vertices)
    np.testing.assert_array_equal(colors, asset.colors)
    np.testing.assert_array_equal(faces, asset.faces)
    grey = scene_asset(None, depth[0], max_vertices=200).colors[:, :3]
    assert grey[:, 0].max() > grey[:, 0].min() and np.all(grey[:, 0] == grey[:, 1])  # shaded by depth
