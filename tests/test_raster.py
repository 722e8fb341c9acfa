"""Rasterisation primitives: nvdiffrast's conventions in the PyTorch twin (raster_torch), its instanced and
range modes, and the one place a backend is chosen (raster.open_rasteriser)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ex4d import raster, raster_torch, render
from ex4d.camera import Clip, orbit
from ex4d.mesh import build_dw_mesh
from tests.test_render import H, W, _moved_path, _scene


def _rasterize(pos, tri, resolution, ranges=None, **context):
    """raster_torch.rasterize's rast, on a context of ``context`` (chunk, budget)."""
    rast, rast_db = raster_torch.rasterize(raster_torch.RasterizeTorchContext(**context), pos, tri, resolution,
                                           ranges=ranges)
    assert rast_db.shape == (*rast.shape[:3], 0)
    return rast

def test_rasterize_single_triangle_conventions():
    # NDC triangle covering the lower-left half; pixel (px, py) samples (2(px+.5)/W-1, 2(py+.5)/H-1)
    pos = torch.tensor([[[-1.0, -1.0, 0.5, 1.0], [1.0, -1.0, 0.5, 1.0], [-1.0, 1.0, 0.5, 1.0]]])
    faces = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    rast = _rasterize(pos, faces, (8, 8))
    assert rast.shape == (1, 8, 8, 4)
    py, px = np.mgrid[0:8, 0:8]
    x, y = 2 * (px + 0.5) / 8 - 1, 2 * (py + 0.5) / 8 - 1
    inside = x + y <= 0
    np.testing.assert_array_equal(rast[0, ..., 3].numpy() == 1, inside)
    # barycentrics: position = u p0 + v p1 + (1-u-v) p2
    u, v = rast[0, ..., 0].numpy(), rast[0, ..., 1].numpy()
    xr = u * -1 + v * 1 + (1 - u - v) * -1
    yr = u * -1 + v * -1 + (1 - u - v) * 1
    np.testing.assert_allclose(xr[inside], x[inside], atol=1e-5)
    np.testing.assert_allclose(yr[inside], y[inside], atol=1e-5)
    np.testing.assert_allclose(rast[0, ..., 2].numpy()[inside], 0.5, atol=1e-6)

def test_rasterize_depth_test_and_perspective():
    # two overlapping quads-worth triangles; the nearer (smaller z/w) wins regardless of order
    near = [[-1, -1, -0.5, 1], [1, -1, -0.5, 1], [0, 1, -0.5, 1]]
    far = [[-2, -2, 1.2, 2], [2, -2, 1.2, 2], [0, 2, 1.2, 2]]  # same screen triangle at w = 2, z/w = .6
    for order in ((near, far), (far, near)):
        pos = torch.tensor([order[0] + order[1]], dtype=torch.float32)
        faces = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32)
        rast = _rasterize(pos, faces, (16, 16))
        hit = rast[0, ..., 3] > 0
        near_id = 1 if order[0] is near else 2
        assert bool((rast[0, ..., 3][hit] == near_id).all())
        np.testing.assert_allclose(rast[0, ..., 2][hit].numpy(), -0.5, atol=1e-6)
    # a triangle behind the camera (w < 0) draws nothing
    pos = torch.tensor([[[-1, -1, 0.5, -1], [1, -1, 0.5, -1], [0, 1, 0.5, -1]]], dtype=torch.float32)
    assert not bool(_rasterize(pos, torch.tensor([[0, 1, 2]], dtype=torch.int32), (8, 8))[..., 3].any())

def test_shared_edges_leave_no_holes():
    g = torch.Generator().manual_seed(3)
    frames = torch.rand(2, 40, 48, 3, generator=g)
    depth = 3.0 + torch.rand(2, 40, 48, generator=g) * 0.01
    mesh = build_dw_mesh(frames, depth)
    pos = render.clip_positions(mesh.vertices, orbit(Clip.centred(2, 48, 40, 3.0), yaw=(0, 7), pitch=(0, 3)))
    rast = _rasterize(pos, mesh.faces, (40, 48))
    cov = rast[..., 3] > 0
    assert bool(cov[0, :-1, :-1].all())  # identity view: the mesh spans pixel centres up to W-1.5, H-1.5
    # moved view: no empty pixel surrounded by covered ones (a crack between two triangles)
    c = cov[1]
    inner = ~c[1:-1, 1:-1] & c[:-2, 1:-1] & c[2:, 1:-1] & c[1:-1, :-2] & c[1:-1, 2:]
    assert c.float().mean() > 0.8 and not bool(inner.any())

def test_auto_falls_back_to_torch_only_where_nvdiffrast_cannot_run(monkeypatch):
    """The one fallback: "auto" takes the torch rasteriser, with a warning, when nvdiffrast imports but its
    context (plugin) cannot be made; nvdiffrast named explicitly raises, and so does any other failure."""
    from ex4d import _nvdiffrast

    def plugin_fails(device):
        raise failure

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(_nvdiffrast, "available", lambda: True)
    monkeypatch.setattr(_nvdiffrast, "context", plugin_fails)
    failure = RuntimeError("Error building extension 'nvdiffrast_plugin'")
    with pytest.warns(UserWarning, match="falling back to the torch rasteriser"):
        chosen = raster.open_rasteriser("auto", torch.device("cpu"))
    assert chosen.name == "torch" and chosen.dr is raster_torch
    with pytest.raises(RuntimeError, match="Error building extension"):
        raster.open_rasteriser("nvdiffrast", torch.device("cpu"))
    for failure in (torch.cuda.OutOfMemoryError("CUDA out of memory"), KeyError("a bug")):
        with pytest.raises(type(failure)):
            raster.open_rasteriser("auto", torch.device("cpu"))

def test_interpolate_and_antialias_shapes():
    frames, depth = _scene()
    mesh = build_dw_mesh(frames, depth)
    path = _moved_path(2.15)
    pos = render.clip_positions(mesh.vertices, path)
    rast = _rasterize(pos, mesh.faces, (H, W))
    col, derivatives = raster_torch.interpolate(mesh.colors, rast, mesh.faces)
    assert col.shape == (2, H, W, 4) and derivatives.shape == (2, H, W, 0)
    aa = raster_torch.antialias(col, rast, pos, mesh.faces)
    assert aa.shape == col.shape
    changed = (aa - col).abs().amax(-1) > 0
    # antialiasing only touches pixels next to a triangle-id change, and only a few of them
    tri = rast[..., 3]
    diff = torch.zeros_like(changed)
    diff[:, :, :-1] |= tri[:, :, :-1] != tri[:, :, 1:]
    diff[:, :, 1:] |= tri[:, :, :-1] != tri[:, :, 1:]
    diff[:, :-1] |= tri[:, :-1] != tri[:, 1:]
    diff[:, 1:] |= tri[:, :-1] != tri[:, 1:]
    assert not bool((changed & ~diff).any())
    assert bool(changed.any())  # and it does something

def test_rasterize_chunking_is_exact():
    frames, depth = _scene()
    mesh = build_dw_mesh(frames, depth)
    pos = render.clip_positions(mesh.vertices, _moved_path(2.15))
    a = _rasterize(pos, mesh.faces, (H, W))
    b = _rasterize(pos, mesh.faces, (H, W), chunk=997, budget=1000)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # range mode: the same frames as two ranges over all frames' vertices, triangle ids counting on
    nf = mesh.faces.shape[0]
    both = torch.cat([mesh.faces, mesh.faces + pos.shape[1]]).int()
    ranges = torch.tensor([[0, nf], [nf, nf]], dtype=torch.int32)
    for context in ({}, {"chunk": 997, "budget": 1000}):
        c = _rasterize(pos.reshape(-1, 4), both, (H, W), ranges=ranges, **context)
        torch.testing.assert_close(c[..., :3], a[..., :3], rtol=0, atol=0)
        offset = nf * torch.arange(2.0)[:, None, None] * (a[..., 3] > 0)
        torch.testing.assert_close(c[..., 3], a[..., 3] + offset, rtol=0, atol=0)
