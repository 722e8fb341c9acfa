"""Renderer (DW-mesh + camera path -> colour and mask): identity camera, analytic reprojection, disocclusions,
the ablation, backends side by side."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ex4d import raster, raster_torch, render
from ex4d.camera import CameraPath, Clip, Lens, orbit, radius_from_depth
from ex4d.mesh import DWMeshSpec, build_dw_mesh
from ex4d.runtime import Cancelled

F = 500.0


def _identity_path(t, w, h):
    return CameraPath(np.tile(np.diag([1.0, -1.0, -1.0, 1.0]), (t, 1, 1)), Lens.centred(w, h, F))


def test_identity_camera_reproduces_source():
    h, w = 36, 44
    g = torch.Generator().manual_seed(1)
    frames = torch.rand(3, h, w, 3, generator=g)
    depth = torch.full((3, h, w), 3.0)
    mesh = build_dw_mesh(frames, depth)
    out = render.render_views(mesh, _identity_path(3, w, h), backend="torch")
    assert out.color.shape == (3, h, w, 3) and out.mask.shape == (3, h, w)
    torch.testing.assert_close(out.color[0], frames[0])
    assert bool((out.mask[0] == 1).all())
    src = frames[1]
    # vertices land on integer screen coordinates, pixel centres on half-integers: at a fronto-parallel
    # plane each pixel centre lies on its quad's BL-TR diagonal, halfway: exactly the mean of those two
    expected = 0.5 * (src[1:, :-1] + src[:-1, 1:])
    inner = (slice(3, h - 4), slice(3, w - 4))
    torch.testing.assert_close(out.color[1][inner], expected[inner], atol=1e-4, rtol=0)
    assert bool((out.mask[1][inner] == 1).all())
    assert bool((out.mask[1][0, 1:] == 0).all() and (out.mask[1][1:, 0] == 0).all())


# ----------------------------------------------------------------------------- analytic scene

H, W = 96, 128
BOX = (28, 60, 40, 84)  # rows v0..v1, cols u0..u1 (inclusive) of the box front face in the source image


def _plane_depth(u, v):
    # tilted plane n.p = c, with p = z * ((u - cx)/f, (v - cy)/f, 1)
    n = np.array([0.15, -0.1, 1.0])
    rx, ry = (u - W // 2) / F, (v - H // 2) / F
    return 4.0 / (n[0] * rx + n[1] * ry + n[2])


def _scene_depth(u, v):
    d = _plane_depth(u, v)
    in_box = (v >= BOX[0]) & (v <= BOX[1]) & (u >= BOX[2]) & (u <= BOX[3])
    return np.where(in_box, 2.0, d)


def _texture(u, v):
    return np.stack([0.5 + 0.4 * np.sin(u / 7.0), 0.5 + 0.4 * np.cos(v / 5.0), 0.2 + 0.002 * (u + v)], -1)


def _scene():
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    depth = torch.from_numpy(_scene_depth(u, v)).float()[None].repeat(2, 1, 1)
    frames = torch.from_numpy(_texture(u, v)).float()[None].repeat(2, 1, 1, 1)
    return frames, depth


def _raycast(path: CameraPath, frame: int):
    """Ray-march the DW-mesh's ideal surface (a height field over source pixels) from the target camera.

    Returns (mask, colour, uncertain): mask 1 where the first hit is a surface sample (not a jump of the
    height field = a hidden stretched face); uncertain marks hits near discontinuities in the source image.
    """
    e = path.extrinsics[frame].astype(np.float64)
    eye = path.eyes()[frame]
    py, px = np.mgrid[0:H, 0:W].astype(np.float64)
    d_cv = np.stack([(px + 0.5 - W / 2) / F, (py + 0.5 - H / 2) / F, np.ones_like(px)], -1)
    d_gl = d_cv * np.array([1.0, -1.0, -1.0])
    dirs = d_gl @ e[:3, :3]  # camera -> world rotation (transpose)
    ts = np.linspace(0.3, 12.0, 3000)
    pts = eye + ts[:, None, None, None] * dirs[None]
    z = pts[..., 2]
    u = pts[..., 0] / z * F + W // 2
    v = pts[..., 1] / z * F + H // 2
    border = (u < 1.5) | (v < 1.5) | (u > W - 2.5) | (v > H - 2.5)
    ur, vr = np.clip(np.round(u), 0, W - 1), np.clip(np.round(v), 0, H - 1)
    surf = np.where(border, 100.0, _scene_depth(ur, vr))
    below = z >= surf
    first = np.argmax(below, axis=0)
    any_hit = below.any(0)
    ii = np.arange(H)[:, None]
    jj = np.arange(W)[None, :]
    prev = np.maximum(first - 1, 0)
    jump = np.abs(surf[first, ii, jj] - surf[prev, ii, jj]) > 0.3
    mask = any_hit & ~jump & ~border[first, ii, jj]
    uh, vh = u[first, ii, jj], v[first, ii, jj]
    colour = _texture(uh, vh)
    # distance (source pixels) of the hit to the box outline / image border: the mesh is uncertain there
    du = np.minimum(np.abs(uh - BOX[2]), np.abs(uh - BOX[3]))
    dv = np.minimum(np.abs(vh - BOX[0]), np.abs(vh - BOX[1]))
    near_box = ((du < 3) & (vh > BOX[0] - 3) & (vh < BOX[1] + 3)) | (
        (dv < 3) & (uh > BOX[2] - 3) & (uh < BOX[3] + 3)
    )
    near_border = (uh < 4) | (vh < 4) | (uh > W - 5) | (vh > H - 5)
    uncertain = near_box | near_border | jump
    # and within 2 target pixels of any change of the analytic mask or of an uncertain hit
    m = torch.from_numpy(mask.astype(np.float32))[None, None]
    edge = torch.nn.functional.max_pool2d(m, 5, 1, 2) != -torch.nn.functional.max_pool2d(-m, 5, 1, 2)
    unc = torch.from_numpy(uncertain.astype(np.float32))[None, None]
    uncertain = (torch.nn.functional.max_pool2d(unc, 5, 1, 2) > 0)[0, 0].numpy() | edge[0, 0].numpy()
    return mask, colour, uncertain


def _moved_path(r):
    eyes = np.array([[0.0, 0.0, 0.0], [0.03, -0.01, 0.05]])
    return CameraPath.looking_at(eyes, np.array([0.0, 0.0, r]), Lens.centred(W, H, F))


def test_moved_camera_matches_analytic_reprojection():
    frames, depth = _scene()
    r = radius_from_depth(depth[0])
    assert r == pytest.approx(2.15)
    path = _moved_path(r)
    mesh = build_dw_mesh(frames, depth)
    out = render.render_views(mesh, path, backend="torch")
    mask_ref, colour_ref, uncertain = _raycast(path, 1)
    certain = ~uncertain
    assert certain.mean() > 0.5
    got = out.mask[1].numpy() > 0.5
    inter = (got & mask_ref & certain).sum()
    union = ((got | mask_ref) & certain).sum()
    assert inter / union >= 0.99
    assert (~mask_ref & certain).sum() > 30  # the view really disoccludes something
    vis = mask_ref & got & certain
    err = np.abs(out.color[1].numpy()[vis] - colour_ref[vis])
    assert err.mean() < 0.01 and err.max() < 0.05


def test_disocclusions_are_mask_zero():
    frames, depth = _scene()
    r = radius_from_depth(depth[0])
    mesh = build_dw_mesh(frames, depth)
    # move right: the background just right of the box (hidden in the source) comes into view
    path = CameraPath.looking_at(np.array([[0.0, 0.0, 0.0], [0.03, 0.0, 0.0]]), np.array([0.0, 0.0, r]),
                                 Lens.centred(W, H, F))
    out = render.render_views(mesh, path, backend="torch")
    m = out.mask[1].numpy()
    mask_ref, _, _ = _raycast(path, 1)
    rows = slice(BOX[0] + 4, BOX[1] - 3)
    # the analytic disocclusion (background hidden in the source) is a band right of the box: all mask 0
    dis = np.zeros_like(mask_ref)
    dis[rows] = ~mask_ref[rows]
    dis[:, : W // 2] = False
    dis[:, W - 6 :] = False
    assert dis.sum() >= 3 * (BOX[1] - 3 - BOX[0] - 4)
    assert (m[dis] == 0).all()
    # and the render is not simply empty there: the box and the background around it are visible
    assert m[rows, BOX[2] + 3 : BOX[3] - 6].min() == 1.0
    assert bool((out.color[1][torch.from_numpy(m == 0)] == 0).all())


def test_non_watertight_shows_background_through_deleted_faces():
    frames, depth = _scene()
    r = radius_from_depth(depth[0])
    path = CameraPath.looking_at(np.array([[0.0, 0.0, 0.0], [0.03, 0.0, 0.0]]), np.array([0.0, 0.0, r]),
                                 Lens.centred(W, H, F))
    tight = render.render_views(build_dw_mesh(frames, depth), path, backend="torch")
    loose = render.render_views(build_dw_mesh(frames, depth, watertight=False), path, backend="torch")
    # deleted faces no longer occlude or hide: at least as much is visible, and background shows in holes
    assert loose.mask[1].sum() > tight.mask[1].sum()
    mesh = build_dw_mesh(frames, depth, watertight=False)
    pos = render.clip_positions(mesh.vertices, path)
    kept = mesh.face_keep[1].nonzero().squeeze(1)
    rast, _ = raster_torch.rasterize(raster_torch.RasterizeTorchContext(), pos[1:], mesh.faces[kept], (H, W))
    ids = rast[0, ..., 3].long() - 1
    assert not bool(mesh.stretched[1][kept[ids[ids >= 0]]].any())  # no deleted face is ever hit
    # the same mesh with its stretched faces kept (opaque) looks different where they were
    opaque = render.render_views(dataclasses.replace(mesh, face_keep=None), path, backend="torch")
    assert (opaque.color[1] - loose.color[1]).abs().amax() > 0.1


def _moving_box(t):
    """t frames of the analytic scene with the box moving from frame to frame (a different face list each)."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    depth = torch.stack([torch.from_numpy(_scene_depth(u - 3 * i, v)).float() for i in range(t)])
    frames = torch.stack([torch.from_numpy(_texture(u + 2 * i, v)).float() for i in range(t)])
    return frames, depth, orbit(Clip.centred(t, W, H, radius_from_depth(depth[0])), yaw=(0, 9), pitch=(0, 3))


_NVDIFFRAST = pytest.param("nvdiffrast", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU")])


def _nvdiffrast_or_skip():
    pytest.importorskip("nvdiffrast")
    from ex4d import _nvdiffrast

    try:
        _nvdiffrast.load()
    except _nvdiffrast.UNAVAILABLE as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"nvdiffrast unavailable: {exc}")


@pytest.mark.parametrize("backend", ["torch", _NVDIFFRAST])
@pytest.mark.parametrize("antialias_edges", [True, False])
def test_ablation_renders_in_one_call_what_a_loop_over_frames_renders(backend, antialias_edges):
    """The non-watertight ablation (a face list per frame) is drawn in range mode, all frames of a chunk in one
    call: what drawing each frame's own faces in a call of its own gives (bit for bit on the torch rasteriser;
    nvdiffrast's antialiasing adds up with atomics)."""
    if backend == "nvdiffrast":
        _nvdiffrast_or_skip()
    frames, depth, path = _moving_box(5)
    mesh = build_dw_mesh(frames, depth, watertight=False)
    out = render.render_views(mesh, path, backend=backend, antialias_edges=antialias_edges)
    primitives = raster.open_rasteriser(backend, out.color.device)
    dr, ctx = primitives.dr, primitives.ctx
    mesh = mesh.to(out.color.device)
    pos = render.clip_positions(mesh.vertices, path)
    for i in range(1, mesh.num_frames):
        tri = mesh.frame_faces(i).int().contiguous()
        assert tri.shape[0] < mesh.faces.shape[0]  # this frame deletes faces of its own
        rast, _ = dr.rasterize(ctx, pos[i : i + 1].contiguous(), tri, resolution=[H, W])
        rgba, _ = dr.interpolate(mesh.colors[i : i + 1].contiguous(), rast, tri)
        if antialias_edges:
            rgba = dr.antialias(rgba, rast, pos[i : i + 1].contiguous(), tri)
        visible = rgba[0, ..., 3] > render.ALPHA_THRESHOLD
        torch.testing.assert_close(out.mask[i], visible.float(), rtol=0, atol=0)
        atol = 0 if backend == "torch" else 1e-5
        torch.testing.assert_close(out.color[i], rgba[0, ..., :3].div(255).clamp(0, 1) * visible[..., None],
                                   rtol=0, atol=atol)


@pytest.mark.parametrize("options", [{}, {"watertight": False}, {"filter": "boundary", "antialias_edges": False}])
def test_render_of_a_spec_is_the_render_of_its_built_mesh(options):
    """A DWMeshSpec is built chunk by chunk while rendering: the same images as the mesh built whole."""
    t = 5
    frames, depth, path = _moving_box(t)  # a chunk built from the wrong frames shows
    mesh = {k: options[k] for k in ("watertight", "filter") if k in options}
    aa = options.get("antialias_edges", True)
    whole = render.render_views(build_dw_mesh(frames, depth, **mesh), path, backend="torch", antialias_edges=aa)
    assert whole.mask[1:].mean() < 0.99  # something is hidden: the comparison covers the mask too
    spec = DWMeshSpec(frames, depth, **mesh)
    for chunk in (1, 3, 32):
        seen: list[int] = []
        out = render.render_views(spec, path, backend="torch", chunk=chunk, antialias_edges=aa,
                                  on_chunk=lambda s, colour, mask: seen.append(s))  # noqa: B023
        assert seen == list(range(1, t, chunk))
        torch.testing.assert_close(out.color, whole.color, rtol=0, atol=0)
        torch.testing.assert_close(out.mask, whole.mask, rtol=0, atol=0)


def test_frame_count_mismatch_and_progress_cancel():
    frames, depth = _scene()
    mesh = build_dw_mesh(frames, depth)
    path3 = orbit(Clip.centred(3, W, H, 2.0))
    with pytest.raises(ValueError, match="3 frames.*2"):
        render.render_views(mesh, path3, backend="torch")
    calls = []
    render.render_views(
        mesh, orbit(Clip.centred(2, W, H, 2.0)), backend="torch", progress=lambda d, t: calls.append((d, t))
    )
    assert calls[0] == (1, 2) and calls[-1] == (2, 2)
    with pytest.raises(Cancelled, match="render cancelled"):
        render.render_views(mesh, orbit(Clip.centred(2, W, H, 2.0)), backend="torch", cancel=lambda: True)
    with pytest.raises(ValueError):
        render.render_views(mesh, orbit(Clip.centred(2, W, H, 2.0)), backend="opengl")


# ----------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("watertight", [True, False])
def test_nvdiffrast_matches_torch_backend(watertight):
    _nvdiffrast_or_skip()
    t, n = 6, 512
    v, u = np.mgrid[0:n, 0:n].astype(np.float64)
    d = 3.0 + 0.5 * np.sin(u / 40.0) + 0.3 * np.cos(v / 33.0)
    d = np.where((u > 180) & (u < 320) & (v > 150) & (v < 360), 1.8, d)
    depth = torch.from_numpy(d).float()[None].repeat(t, 1, 1).cuda()
    frames = torch.from_numpy(
        np.stack([0.5 + 0.4 * np.sin(u / 9), 0.5 + 0.4 * np.cos(v / 7), (u + v) / (4 * n)], -1)
    )
    frames = frames.float()[None].repeat(t, 1, 1, 1).cuda()
    mesh = build_dw_mesh(frames, depth, watertight=watertight)
    assert watertight or not bool(mesh.face_keep.all())
    path = orbit(Clip.centred(t, n, n, radius_from_depth(depth[0])), yaw=(0, 12), pitch=(0, 4))
    a = render.render_views(mesh, path, backend="nvdiffrast")
    b = render.render_views(mesh, path, backend="torch")
    assert a.backend == "nvdiffrast" and b.backend == "torch"
    # built chunk by chunk while rendering: the same images (antialiasing adds up with atomics)
    c = render.render_views(DWMeshSpec(frames, depth, watertight=watertight), path, backend="nvdiffrast", chunk=4)
    torch.testing.assert_close(c.color, a.color, rtol=0, atol=1e-5)
    torch.testing.assert_close(c.mask, a.mask, rtol=0, atol=0)
    for i in range(1, t):
        ma, mb = a.mask[i] > 0.5, b.mask[i] > 0.5
        iou = (ma & mb).sum().item() / max((ma | mb).sum().item(), 1)
        assert iou >= 0.99, (i, iou)
        both = ma & mb
        mse = ((a.color[i] - b.color[i]) ** 2)[both].mean().item()
        psnr = 10 * np.log10(1.0 / max(mse, 1e-12))
        assert psnr >= 35.0, (i, psnr)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", ["torch", "nvdiffrast"])
@pytest.mark.parametrize(("chunk", "watertight"), [(8, True), (32, True), (32, False)])
def test_render_memory_covers_the_measured_peak(backend, chunk, watertight):
    """What Render Views asks the host to free is at least what the render takes (DW-mesh built per chunk; the
    ablation drawn in range mode, a chunk at once)."""
    if backend == "nvdiffrast":
        pytest.importorskip("nvdiffrast")
    t, h, w = 49, 320, 512
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    d = 3.0 + 0.5 * np.sin(u / 40.0) + 0.3 * np.cos(v / 33.0)
    depth = torch.from_numpy(d).float()[None].repeat(t, 1, 1).cuda()
    frames = torch.rand(t, h, w, 3, generator=torch.Generator().manual_seed(0)).cuda()
    path = orbit(Clip.centred(t, w, h, radius_from_depth(depth[0])), yaw=(0, 90), pitch=(0, 10))
    spec = DWMeshSpec(frames, depth, watertight=watertight)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    render.render_views(spec, path, backend=backend, chunk=chunk, device="cuda")
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    estimate = render.render_memory(t, h, w, chunk, backend)
    assert peak <= estimate, (peak, estimate)
    assert estimate < 2 * peak + (256 << 20), (peak, estimate)  # an estimate, not a blanket reservation


def test_each_frame_is_rendered_with_its_own_focal_length():
    """A zooming path (per-frame focal): clip positions scale with each frame's focal, and the torch backend
    renders the zoomed frame magnified about the image centre."""
    h, w = 40, 56
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                indexing="ij")
    ramp = torch.stack([cols / w, rows / h, torch.full_like(rows, 0.5)], -1)  # colour linear in the pixel
    frames = ramp[None].repeat(3, 1, 1, 1)
    mesh = build_dw_mesh(frames, torch.full((3, h, w), 3.0))
    plain = _identity_path(3, w, h)
    zoom = CameraPath(plain.extrinsics, Lens(w, h, plain.lens.intrinsics, focals=[F, 2 * F, F]))
    a, b = render.clip_positions(mesh.vertices, plain), render.clip_positions(mesh.vertices, zoom)
    torch.testing.assert_close(b[1, :, :2], 2 * a[1, :, :2])
    torch.testing.assert_close(b[1, :, 2:], a[1, :, 2:])
    torch.testing.assert_close(b[[0, 2]], a[[0, 2]])
    flat = render.render_views(mesh, plain, backend="torch", antialias_edges=False)
    zoomed = render.render_views(mesh, zoom, backend="torch", antialias_edges=False)
    torch.testing.assert_close(zoomed.color[2], flat.color[2])  # frames of the source focal are unchanged
    assert bool((zoomed.mask[1] == 1).all())  # twice the focal: the inner half of the frame, all visible
    # the colour ramp is stretched to twice its width and height about the centre: half the slope per pixel
    inner = zoomed.color[1][4:-4, 4:-4]
    slope_x = (inner[:, -1, 0] - inner[:, 0, 0]).mean() / (inner.shape[1] - 1)
    slope_y = (inner[-1, :, 1] - inner[0, :, 1]).mean() / (inner.shape[0] - 1)
    assert float(slope_x) == pytest.approx(0.5 / w, rel=0.02) and float(slope_y) == pytest.approx(0.5 / h, rel=0.02)
    centre = zoomed.color[1][h // 2 - 1 : h // 2 + 1, w // 2 - 1 : w // 2 + 1, :2].mean((0, 1))
    torch.testing.assert_close(centre, flat.color[1][h // 2 - 1 : h // 2 + 1, w // 2 - 1 : w // 2 + 1, :2].mean((0, 1)),
                               atol=2e-3, rtol=0)
    with pytest.raises(ValueError, match="focal 250"):  # the mesh's focal is the source camera's, not a frame's
        half = Lens(w, h, Lens.centred(w, h, F / 2).intrinsics, focals=[F, F, F])
        render.render_views(mesh, CameraPath(plain.extrinsics, half), backend="torch")
