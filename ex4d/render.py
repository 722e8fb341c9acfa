"""Rendering DW-meshes along a camera path: nvdiffrast-like primitives in pure PyTorch, and a backend switch.

Primitives follow nvdiffrast's semantics:

- :func:`rasterize` returns ``rast`` [B, H, W, 4] = (u, v, z/w, triangle_id + 1), 0 where nothing is hit;
  an attribute at a pixel is ``u a0 + v a1 + (1 - u - v) a2`` (perspective-correct barycentrics). Pixel
  (px, py) samples NDC ``(2 (px + 0.5) / W - 1, 2 (py + 0.5) / H - 1)``: row 0 is NDC y = -1, which with the
  published projection (its -n/y entry) is the top image row, so images come out upright. Triangles are
  clipped to -w <= z <= w per pixel; nearest z/w wins, ties go to the lower triangle id (deterministic).
- :func:`interpolate` interpolates per-vertex attributes with ``rast``.
- :func:`antialias` approximates nvdiffrast's analytic silhouette antialiasing (see its docstring).

The torch rasteriser is exact homogeneous rasterisation (edge functions on (X w, Y w, w), so triangles that
cross the camera plane need no clipping), traversed hierarchically: each triangle starts on the tile level
where its bounding box spans at most 2 x 2 tiles; tiles are tested against the edge functions and split
until single pixels, in work items of bounded size; the depth test is a ``scatter_reduce(amin)`` over
int64 keys (depth bits << 32 | triangle id).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .camera import CameraPath
from .mesh import DWMesh, DWMeshSpec
from .runtime import CancelFn, Cancelled, check_cancel

ALPHA_THRESHOLD = 125.0
BACKENDS = ("auto", "nvdiffrast", "torch")
_EMPTY = torch.iinfo(torch.int64).max
_EDGES = ((1, 2), (2, 0), (0, 1))  # edge k is opposite vertex k




@dataclass
class RenderResult:
    color: torch.Tensor  # [T, H, W, 3] float in [0, 1]
    mask: torch.Tensor  # [T, H, W] float in {0, 1}
    backend: str = "torch"


# ----------------------------------------------------------------------------- clip space


def clip_positions(vertices: torch.Tensor, camera: CameraPath, frames: slice | None = None) -> torch.Tensor:
    """[T, V, 3] world points -> [T, V, 4] clip positions ``P E [p, 1]`` (matrix built in float64; ``P`` of each
    frame's own focal length when the path zooms)."""
    mats = camera.clip_matrices()
    if frames is not None:
        mats = mats[frames]
    m = torch.from_numpy(np.ascontiguousarray(mats, dtype=np.float32)).to(vertices.device)
    v = vertices.to(torch.float32)
    return torch.baddbmm(m[:, None, :, 3], v, m[:, :, :3].transpose(1, 2))


def _screen_homogeneous(pos: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Clip (x, y, z, w) -> (X w, Y w, w) with X, Y continuous pixel coordinates (pixel centre = index + .5)."""
    x, y, ww = pos[..., 0], pos[..., 1], pos[..., 3]
    return torch.stack([(x + ww) * (w * 0.5), (y + ww) * (h * 0.5), ww], -1)


# ----------------------------------------------------------------------------- torch rasteriser


@dataclass
class _Tris:
    """Per-triangle set-up of one chunk (n triangles)."""

    edge: torch.Tensor  # [n, 3, 3] (a, b, c) of each edge function, multiplied by sign(det)
    z: torch.Tensor  # [n, 3] clip z
    w: torch.Tensor  # [n, 3] clip w
    box: torch.Tensor  # [n, 4] int64 pixel bbox x0, y0, x1, y1 (inclusive)
    key_id: torch.Tensor  # [n] int64: triangle id within its frame
    pix_base: torch.Tensor  # [n] int64: frame * H * W
    margin: torch.Tensor  # [n, 3] tolerance of the conservative tile test


def _setup(
    pos: torch.Tensor, faces: torch.Tensor, frame_idx: torch.Tensor, face_idx: torch.Tensor, h: int, w: int
) -> _Tris | None:
    """Set up the triangles (frame_idx[i], face_idx[i]); cull what cannot cover a pixel centre."""
    c = pos[frame_idx[:, None], faces[face_idx].long()]  # [n, 3, 4]
    s = _screen_homogeneous(c, h, w)  # [n, 3, 3]
    cx, cy, cz, cw = c.unbind(-1)
    outside = (
        (cx > cw).all(1)
        | (cx < -cw).all(1)
        | (cy > cw).all(1)
        | (cy < -cw).all(1)
        | (cz > cw).all(1)
        | (cz < -cw).all(1)
    )
    # edge function k = s_i x s_j; computed from the same vertex values with swapped operands it is
    # bitwise negated, so a shared edge never leaves a pixel centre uncovered
    edge = torch.stack([torch.cross(s[:, i], s[:, j], dim=-1) for i, j in _EDGES], 1)
    det = (edge[:, 0] * s[:, 0]).sum(-1)
    keep = ~outside & (det != 0) & torch.isfinite(det)
    front = cw > 0
    all_front = front.all(1)
    px = s[..., 0] / cw.clamp_min(1e-30)
    py = s[..., 1] / cw.clamp_min(1e-30)
    x0 = torch.where(all_front, torch.ceil(px.min(1).values - 0.5), torch.zeros_like(det))
    x1 = torch.where(all_front, torch.floor(px.max(1).values - 0.5), torch.full_like(det, w - 1))
    y0 = torch.where(all_front, torch.ceil(py.min(1).values - 0.5), torch.zeros_like(det))
    y1 = torch.where(all_front, torch.floor(py.max(1).values - 0.5), torch.full_like(det, h - 1))
    x0, y0 = x0.clamp(0, w - 1), y0.clamp(0, h - 1)
    x1, y1 = x1.clamp(-1, w - 1), y1.clamp(-1, h - 1)
    keep &= (x0 <= x1) & (y0 <= y1)
    idx = keep.nonzero().squeeze(1)
    if idx.numel() == 0:
        return None
    sign = torch.sign(det[idx])
    e = edge[idx] * sign[:, None, None]
    margin = 1e-5 * (e[..., 0].abs() * w + e[..., 1].abs() * h + e[..., 2].abs())
    box = torch.stack([x0[idx], y0[idx], x1[idx], y1[idx]], -1).long()
    return _Tris(e, cz[idx], cw[idx], box, face_idx[idx].long(), frame_idx[idx].long() * (h * w), margin)


def _edge_values(e: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """e [m, 3, 3], x/y [m] -> [m, 3] edge function values at (x, y)."""
    return e[..., 0] * x[:, None] + e[..., 1] * y[:, None] + e[..., 2]


def _resolve_pixels(
    t: _Tris, tri: torch.Tensor, px: torch.Tensor, py: torch.Tensor, zbuf: torch.Tensor, w: int
) -> None:
    e = t.edge[tri]
    x, y = px.to(e.dtype) + 0.5, py.to(e.dtype) + 0.5
    val = _edge_values(e, x, y)
    # a pixel centre on a shared edge must not fall between the two triangles: rounding (FMA contraction
    # included) can make both edge values slightly negative, so accept a relative 1e-6 of the terms
    tol = 1e-6 * (e[..., 0].abs() * x[:, None] + e[..., 1].abs() * y[:, None] + e[..., 2].abs())
    inside = (val >= -tol).all(1)
    den = (val * t.w[tri]).sum(1)
    depth = (val * t.z[tri]).sum(1) / den
    inside &= (depth >= -1) & (depth <= 1) & (den > 0)
    bits = depth.contiguous().view(torch.int32)
    bits = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # float order -> signed int order
    key = (bits.to(torch.int64) << 32) | t.key_id[tri]
    # pixels that failed go to a scratch slot past the end instead of a compaction (no host sync)
    index = torch.where(inside, t.pix_base[tri] + py * w + px, zbuf.numel() - 1)
    zbuf.scatter_reduce_(0, index, key, reduce="amin")


_DIRECT = (1, 2, 4)  # bbox sizes whose pixels are enumerated directly (no tile tests)


def _direct(t: _Tris, tri: torch.Tensor, size: int, zbuf: torch.Tensor, w: int, budget: int) -> None:
    """Resolve every pixel of the (at most size x size) boxes of ``tri``; most DW-mesh faces are this small."""
    dy, dx = torch.meshgrid(torch.arange(size, device=tri.device), torch.arange(size, device=tri.device),
                            indexing="ij")
    dx, dy = dx.reshape(-1, 1), dy.reshape(-1, 1)
    per = max(1, budget // (size * size))
    for i in range(0, tri.numel(), per):
        part = tri[i : i + per]
        b = t.box[part]
        px, py = b[:, 0][None] + dx, b[:, 1][None] + dy  # [size^2, n]
        if size > 1:
            ok = ((px <= b[:, 2][None]) & (py <= b[:, 3][None])).reshape(-1)
            sel = ok.nonzero().squeeze(1)
            _resolve_pixels(t, part.repeat(size * size)[sel], px.reshape(-1)[sel], py.reshape(-1)[sel], zbuf, w)
        else:
            _resolve_pixels(t, part, px[0], py[0], zbuf, w)


def _traverse(t: _Tris, zbuf: torch.Tensor, h: int, w: int, budget: int) -> None:
    box = t.box
    size = torch.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]) + 1
    # one host sync for the whole chunk: how many triangles fall in each size class
    direct_class = torch.bucketize(size, torch.tensor(_DIRECT, device=size.device))
    counts = torch.bincount(direct_class, minlength=len(_DIRECT) + 1).tolist()
    order = torch.argsort(direct_class, stable=True)
    groups = torch.split(order, counts)
    for cls, tri in enumerate(groups[: len(_DIRECT)]):
        if tri.numel():
            _direct(t, tri, _DIRECT[cls], zbuf, w, budget)
    big = groups[len(_DIRECT)]
    if big.numel() == 0:
        return
    # each big triangle starts on the level where its box spans at most 2 x 2 tiles
    start = torch.ceil(torch.log2(size[big].to(torch.float64))).long().clamp_min(0)
    b = box[big]
    tx0, ty0, tx1, ty1 = b[:, 0] >> start, b[:, 1] >> start, b[:, 2] >> start, b[:, 3] >> start
    cx, cy = tx0[None] + _QUAD_X.to(b.device), ty0[None] + _QUAD_Y.to(b.device)  # [4, n]
    sel = ((cx <= tx1[None]) & (cy <= ty1[None])).reshape(-1).nonzero().squeeze(1)
    tri, tx, ty, lvl = big.repeat(4)[sel], cx.reshape(-1)[sel], cy.reshape(-1)[sel], start.repeat(4)[sel]
    order = torch.argsort(lvl, stable=True)
    counts = torch.bincount(lvl, minlength=1).tolist()
    pending: dict[int, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {}
    for level, part in enumerate(torch.split(order, counts)):
        if part.numel():
            pending.setdefault(level, []).append((tri[part], tx[part], ty[part]))
    # level-synchronous descent: all tiles of one level are tested together (few, large kernels)
    for level in range(len(counts) - 1, 0, -1):
        items = pending.pop(level, [])
        if not items:
            continue
        tri, tx, ty = (torch.cat(x) for x in zip(*items, strict=True))
        for i in range(0, tri.numel(), budget):
            child = _split_tiles(t, level, tri[i : i + budget], tx[i : i + budget], ty[i : i + budget])
            if child[0].numel():
                pending.setdefault(level - 1, []).append(child)
    items = pending.pop(0, [])
    if items:
        tri, tx, ty = (torch.cat(x) for x in zip(*items, strict=True))
        for i in range(0, tri.numel(), budget):
            _resolve_pixels(t, tri[i : i + budget], tx[i : i + budget], ty[i : i + budget], zbuf, w)


_QUAD_X = torch.tensor([0, 1, 0, 1])[:, None]
_QUAD_Y = torch.tensor([0, 0, 1, 1])[:, None]


def _split_tiles(
    t: _Tris, level: int, tri: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tiles (tri, tx, ty) of side 2**level that may hold a covered pixel centre -> their quarter tiles
    inside the triangle's box (conservative test: reject when an edge is negative on all corners)."""
    size = 1 << level
    b = t.box[tri]
    x0 = torch.maximum(tx * size, b[:, 0]).to(t.edge.dtype) + 0.5
    x1 = torch.minimum(tx * size + size - 1, b[:, 2]).to(t.edge.dtype) + 0.5
    y0 = torch.maximum(ty * size, b[:, 1]).to(t.edge.dtype) + 0.5
    y1 = torch.minimum(ty * size + size - 1, b[:, 3]).to(t.edge.dtype) + 0.5
    e = t.edge[tri]
    best = (
        e[..., 2]
        + torch.maximum(e[..., 0] * x0[:, None], e[..., 0] * x1[:, None])
        + torch.maximum(e[..., 1] * y0[:, None], e[..., 1] * y1[:, None])
    )
    ok = (best >= -t.margin[tri]).all(1)
    half = size >> 1
    cx = (tx * 2)[None] + _QUAD_X.to(tx.device)
    cy = (ty * 2)[None] + _QUAD_Y.to(ty.device)
    keep = (
        ok[None]
        & (cx * half <= b[:, 2][None])
        & (cx * half + half - 1 >= b[:, 0][None])
        & (cy * half <= b[:, 3][None])
        & (cy * half + half - 1 >= b[:, 1][None])
    )
    sel = keep.reshape(-1).nonzero().squeeze(1)
    return tri.repeat(4)[sel], cx.reshape(-1)[sel], cy.reshape(-1)[sel]


def rasterize(
    pos: torch.Tensor,
    faces: torch.Tensor,
    resolution: tuple[int, int],
    face_mask: torch.Tensor | None = None,
    chunk: int | None = None,
    budget: int = 1 << 22,
) -> torch.Tensor:
    """Rasterise clip-space triangles like ``nvdiffrast.torch.rasterize`` (first output only).

    pos: [B, V, 4] (or [V, 4]) clip positions; faces: [F, 3] int32 shared by the batch; face_mask: optional
    [B, F] bool (False = face absent in that frame). ``chunk`` bounds the triangles set up at once and
    ``budget`` the tile/pixel candidates processed at once; ``chunk=None`` takes 2**23 triangles on a GPU
    (about 3 GB of set-up) and 2**20 elsewhere. Returns [B, H, W, 4] float32.
    """
    if pos.ndim == 2:
        pos = pos[None]
    h, w = int(resolution[0]), int(resolution[1])
    bsz, device = pos.shape[0], pos.device
    pos = pos.to(torch.float32)
    faces = faces.to(device)
    nf = faces.shape[0]
    if chunk is None:
        chunk = 1 << 23 if device.type == "cuda" else 1 << 20
    zbuf = torch.full((bsz * h * w + 1,), _EMPTY, dtype=torch.int64, device=device)  # + scratch slot
    if face_mask is None:
        total = bsz * nf
        pairs = None
    else:
        pairs = face_mask.to(device).reshape(-1).nonzero().squeeze(1)
        total = pairs.numel()
    # triangles of several frames are set up and traversed together: fewer, larger kernels
    for i0 in range(0, total, max(1, chunk)):
        i1 = min(total, i0 + max(1, chunk))
        flat = torch.arange(i0, i1, device=device) if pairs is None else pairs[i0:i1]
        t = _setup(pos, faces, flat // nf, flat % nf, h, w)
        if t is not None:
            _traverse(t, zbuf, h, w, budget)
    zbuf = zbuf[:-1]
    return _rast_from_zbuf(pos, faces, zbuf, bsz, h, w)


def _rast_from_zbuf(
    pos: torch.Tensor, faces: torch.Tensor, zbuf: torch.Tensor, bsz: int, h: int, w: int
) -> torch.Tensor:
    rast = torch.zeros(bsz * h * w, 4, dtype=torch.float32, device=pos.device)
    hit = (zbuf != _EMPTY).nonzero().squeeze(1)
    if hit.numel() == 0:
        return rast.reshape(bsz, h, w, 4)
    tri = zbuf[hit] & 0xFFFFFFFF
    frame = hit // (h * w)
    pix = hit % (h * w)
    c = pos[frame[:, None], faces[tri].long()]  # [m, 3, 4]
    s = _screen_homogeneous(c, h, w)
    e = torch.stack([torch.cross(s[:, i], s[:, j], dim=-1) for i, j in _EDGES], 1)
    val = _edge_values(e, (pix % w).to(e.dtype) + 0.5, (pix // w).to(e.dtype) + 0.5)
    bary = val / val.sum(1, keepdim=True)
    depth = (bary * c[..., 2]).sum(1) / (bary * c[..., 3]).sum(1)
    rast[hit] = torch.stack([bary[:, 0], bary[:, 1], depth, (tri + 1).to(torch.float32)], -1)
    return rast.reshape(bsz, h, w, 4)


def interpolate(attr: torch.Tensor, rast: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Interpolate vertex attributes [V, C] or [B, V, C] at the rasterised pixels -> [B, H, W, C] (0 outside)."""
    bsz, h, w, _ = rast.shape
    if attr.ndim == 2:
        attr = attr[None].expand(bsz, -1, -1)
    tri = rast[..., 3].reshape(bsz, -1).long() - 1
    hit = tri >= 0
    tri = tri.clamp_min(0)
    fv = faces.to(rast.device).long()[tri]  # [B, HW, 3]
    a = torch.gather(
        attr.to(rast.device, torch.float32), 1, fv.reshape(bsz, -1, 1).expand(-1, -1, attr.shape[-1])
    ).reshape(bsz, h * w, 3, -1)
    u, v = rast[..., 0].reshape(bsz, -1, 1), rast[..., 1].reshape(bsz, -1, 1)
    out = a[:, :, 0] * u + a[:, :, 1] * v + a[:, :, 2] * (1 - u - v)
    return (out * hit[..., None]).reshape(bsz, h, w, -1)


def face_neighbours(faces: torch.Tensor) -> torch.Tensor:
    """[F, 3] int64: the face across edge k (opposite vertex k), -1 for open or non-manifold edges."""
    f = faces.long()
    nf = f.shape[0]
    a = torch.cat([f[:, i] for i, _ in _EDGES])
    b = torch.cat([f[:, j] for _, j in _EDGES])
    lo, hi = torch.minimum(a, b), torch.maximum(a, b)
    key = lo * (int(f.max()) + 1) + hi
    order = torch.argsort(key, stable=True)
    ks = key[order]
    same_next = torch.zeros_like(ks, dtype=torch.bool)
    same_next[:-1] = ks[1:] == ks[:-1]
    # only edges shared by exactly two faces are paired
    count_ok = same_next.clone()
    count_ok[:-1] &= ~same_next[1:]
    count_ok[1:] &= ~same_next[:-1]
    first = count_ok.nonzero().squeeze(1)
    nb = torch.full((3 * nf,), -1, dtype=torch.int64, device=faces.device)
    e1, e2 = order[first], order[first + 1]
    nb[e1] = e2 % nf
    nb[e2] = e1 % nf
    return nb.reshape(3, nf).t().contiguous()


def antialias(
    color: torch.Tensor,
    rast: torch.Tensor,
    pos: torch.Tensor,
    faces: torch.Tensor,
    face_mask: torch.Tensor | None = None,
    neighbours: torch.Tensor | None = None,
) -> torch.Tensor:
    """Approximate nvdiffrast's silhouette antialiasing.

    For every horizontal and vertical pair of pixels with different triangle ids, the triangle in front
    (smaller z/w; background is farthest) is checked for a silhouette edge (an open edge, or one whose
    neighbour faces the other way on screen) crossing the segment between the two pixel centres at
    parameter t (0 at the front pixel). If t > 1/2 the far pixel moves toward the front colour by t - 1/2,
    else the front pixel moves toward the far colour by 1/2 - t; contributions of all pairs add up.
    Differences to nvdiffrast: no gradients; when several silhouette edges cross one pair only the first
    is used; the exact per-pair weighting inside nvdiffrast's kernel may differ slightly, so colours can
    differ at silhouettes (and alpha there may fall on the other side of the 125 threshold).
    """
    bsz, h, w, ch = color.shape
    if pos.ndim == 2:
        pos = pos[None].expand(bsz, -1, -1)
    faces = faces.to(color.device)
    if neighbours is None:
        neighbours = face_neighbours(faces)
    f = faces.long()
    nv = pos.shape[1]
    out = color.clone().reshape(-1, ch)
    tri = rast[..., 3].long() - 1  # [B, H, W]
    depth = torch.where(tri >= 0, rast[..., 2], torch.full_like(rast[..., 2], float("inf")))
    # all frames at once: vertex v of frame b is row b * V + v of the flattened screen positions
    s = _screen_homogeneous(pos.to(torch.float32), h, w).reshape(-1, 3)  # [B*V, 3]
    proj = s[:, :2] / s[:, 2:3]
    front_v = s[:, 2] > 0
    keep_flat = face_mask.to(color.device).reshape(-1) if face_mask is not None else None
    for axis in (2, 1):  # 2: horizontal pairs (x, x+1), 1: vertical pairs (y, y+1)
        ta, tb = (tri[:, :, :-1], tri[:, :, 1:]) if axis == 2 else (tri[:, :-1], tri[:, 1:])
        da, db = (depth[:, :, :-1], depth[:, :, 1:]) if axis == 2 else (depth[:, :-1], depth[:, 1:])
        pairs = (ta != tb).nonzero()
        if pairs.numel() == 0:
            continue
        bb, i0, j0 = pairs.unbind(1)
        ta_p, tb_p = ta[bb, i0, j0], tb[bb, i0, j0]
        a_front = da[bb, i0, j0] <= db[bb, i0, j0]
        ft = torch.where(a_front, ta_p, tb_p)
        ok = ft >= 0
        ft = ft.clamp_min(0)
        base = bb * nv
        fv = f[ft] + base[:, None]  # [m, 3] rows of s
        nbr = neighbours[ft]  # [m, 3]
        det_f = _orient(s, fv)
        nb_ok = nbr >= 0
        nbc = nbr.clamp_min(0)
        if keep_flat is not None:
            nb_ok &= keep_flat[bb[:, None] * f.shape[0] + nbc]
        det_n = _orient(s, (f[nbc] + base[:, None, None]).reshape(-1, 3)).reshape(-1, 3)
        sil = ~nb_ok | (torch.sign(det_n) != torch.sign(det_f)[:, None])
        # pixel centres of the pair: A = (x, y), B = A + 1 along the axis (continuous coordinates)
        ya = i0.to(torch.float32) + 0.5
        xa = j0.to(torch.float32) + 0.5
        c_along, c_across = (xa, ya) if axis == 2 else (ya, xa)
        k_along = 0 if axis == 2 else 1
        best_t = torch.full_like(xa, -1.0)
        for k, (vi, vj) in enumerate(_EDGES):
            p, q = fv[:, vi], fv[:, vj]
            valid = sil[:, k] & front_v[p] & front_v[q]
            pa, qa = proj[p], proj[q]
            dp, dq = pa[:, 1 - k_along] - c_across, qa[:, 1 - k_along] - c_across
            cross = (dp * dq < 0) & valid
            r = dp / torch.where(cross, dp - dq, torch.ones_like(dp))
            hit = pa[:, k_along] + r * (qa[:, k_along] - pa[:, k_along]) - c_along  # 0 at A, 1 at B
            hit = torch.where(a_front, hit, 1.0 - hit)  # measured from the front pixel
            cross &= (hit >= 0) & (hit <= 1) & (best_t < 0)
            best_t = torch.where(cross, hit, best_t)
        use = ok & (best_t >= 0)
        # pairs without a silhouette crossing add zero (no compaction, no host sync)
        t_ = torch.where(use, best_t, torch.full_like(best_t, 0.5))
        i1, j1 = (i0, j0 + 1) if axis == 2 else (i0 + 1, j0)
        ia, ib = (bb * h + i0) * w + j0, (bb * h + i1) * w + j1
        flat_in = color.reshape(-1, ch)
        ca, cb = flat_in[ia], flat_in[ib]
        cf, cn = torch.where(a_front[:, None], ca, cb), torch.where(a_front[:, None], cb, ca)
        spill = (t_ - 0.5).clamp_min(0)[:, None]  # front colour into the far pixel
        shrink = (0.5 - t_).clamp_min(0)[:, None]  # far colour into the front pixel
        delta_far, delta_front = spill * (cf - cn), shrink * (cn - cf)
        out.index_add_(0, ia, torch.where(a_front[:, None], delta_front, delta_far))
        out.index_add_(0, ib, torch.where(a_front[:, None], delta_far, delta_front))
    return out.reshape(bsz, h, w, ch)


def _orient(s: torch.Tensor, fv: torch.Tensor) -> torch.Tensor:
    """Homogeneous determinant (screen orientation times w0 w1 w2) of faces fv [m, 3] from s [V, 3]."""
    a, b, c = s[fv[:, 0]], s[fv[:, 1]], s[fv[:, 2]]
    return (a * torch.cross(b, c, dim=-1)).sum(-1)


# ----------------------------------------------------------------------------- high level


def check_inputs(mesh: DWMesh | DWMeshSpec, camera: CameraPath, backend: str = "auto") -> None:
    """Refuse what :func:`render_views` cannot render, each message starting with the parameter it is about:
    a camera path of another clip (frame count, image size, focal length) or a backend this machine lacks."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: unknown value {backend!r}; choose one of {list(BACKENDS)}")
    if backend == "nvdiffrast" and not torch.cuda.is_available():
        raise ValueError("backend: 'nvdiffrast' needs a CUDA GPU; choose 'auto' or 'torch'")
    if mesh.num_frames != camera.num_frames:
        raise ValueError(
            f"camera: the camera has {camera.num_frames} frames but mesh has {mesh.num_frames}; make the camera "
            "path from the same clip's depth (one mesh per video frame, rendered from that frame's camera)"
        )
    if (camera.width, camera.height) != (mesh.width, mesh.height):
        raise ValueError(
            f"camera: the camera is for {camera.width}x{camera.height} images but the mesh is "
            f"{mesh.width}x{mesh.height}; make the camera path from the same clip's depth"
        )
    if abs(camera.focal - mesh.focal) > 1e-3 * mesh.focal:
        raise ValueError(
            f"camera: the camera has focal {camera.focal:g} but the DW-mesh was built with {mesh.focal:g}; "
            "use one focal length for both (published: 500)"
        )


def _finish(rgba: torch.Tensor, color_out: torch.Tensor, mask_out: torch.Tensor) -> None:
    """Published threshold: mask = alpha > 125; colour = rgb / 255 where visible, else 0 (written in place)."""
    visible = rgba[..., 3] > ALPHA_THRESHOLD
    mask_out.copy_(visible)
    rgb = rgba[..., :3].div(255.0).clamp_(0.0, 1.0)
    torch.mul(rgb, visible[..., None], out=color_out)


# Device memory a render needs beside the models, per pixel: for each frame of a chunk its DW-mesh (about
# 28 B: 0.36 GB for 49 frames of 512 x 512), the build's temporaries, the clip-space vertices, the rasteriser's
# buffers and the shaded frame; for every frame of the clip, the colour and mask kept on the device until the
# end (16 B). Measured peaks on an H100 (bench/results/render_memory_h100.txt), 49 frames at 512 x 320 to
# 1024 x 576, chunks 8 to 32: nvdiffrast 139-218 B a chunk pixel; the built-in rasteriser (whose tile lists
# are the largest buffers) about 440-480 B a chunk pixel on top of 0.5-0.9 GiB of set-up, and 3.8 GiB at
# chunk 32 for the bundled clip at 90 degrees (its tile lists are longer than the synthetic scene's); rounded up.
RENDER_BYTES_PER_CHUNK_PIXEL = {"nvdiffrast": 256, "torch": 768}
RENDER_FIXED_BYTES = {"nvdiffrast": 0, "torch": 1 << 30}
RENDER_BYTES_PER_OUTPUT_PIXEL = 16


def resolve_backend(backend: str) -> str:
    """The backend "auto" stands for here: nvdiffrast when CUDA is there and it imports, else torch."""
    if backend != "auto":
        return backend
    from . import _nvdiffrast

    return "nvdiffrast" if _nvdiffrast.available() else "torch"


def render_memory(frames: int, height: int, width: int, chunk: int, backend: str = "auto") -> int:
    """Bytes of device memory :func:`render_views` needs beside what is already there (an estimate that
    errs high, for a host that has to make room)."""
    pixels = height * width
    backend = resolve_backend(backend)
    chunk_bytes = min(chunk, frames) * pixels * RENDER_BYTES_PER_CHUNK_PIXEL[backend]
    return RENDER_FIXED_BYTES[backend] + chunk_bytes + frames * pixels * RENDER_BYTES_PER_OUTPUT_PIXEL


def render_views(
    mesh: DWMesh | DWMeshSpec,
    camera: CameraPath,
    backend: str = "auto",
    chunk: int = 32,
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelFn | None = None,
    device: torch.device | str | None = None,
    antialias_edges: bool = True,
    on_chunk: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> RenderResult:
    """Render frames 1..N-1 of ``mesh`` from ``camera`` (frame 0 is the source frame with a full mask).

    ``mesh``: a built :class:`DWMesh`, or a :class:`DWMeshSpec` whose mesh is built chunk by chunk on the
    render device (the same images, without the whole mesh in memory).

    backend: "nvdiffrast" (CUDA), "torch" (any device; ``device`` defaults to the mesh's) or "auto"
    (nvdiffrast when CUDA is available and it imports, else torch). ``chunk`` frames are rendered at once.
    ``progress(done, total)`` is called after each chunk, ``on_chunk(start, colour, mask)`` with its frames
    (for previews); ``cancel()`` returning True raises :class:`~ex4d.runtime.Cancelled`.
    """
    check_inputs(mesh, camera, backend)
    if backend == "auto":
        backend = resolve_backend(backend)
        if backend == "nvdiffrast":
            try:
                return _render(mesh, camera, "nvdiffrast", chunk, progress, cancel, None, antialias_edges, on_chunk)
            except (Cancelled, torch.cuda.OutOfMemoryError):
                raise
            except Exception as exc:  # plugin build failures surface on first use
                warnings.warn(
                    f"nvdiffrast failed ({exc}); falling back to the torch rasteriser", stacklevel=2
                )
                backend = "torch"
    return _render(mesh, camera, backend, chunk, progress, cancel, device, antialias_edges, on_chunk)


def _render(
    mesh: DWMesh | DWMeshSpec,
    camera: CameraPath,
    backend: str,
    chunk: int,
    progress: Callable[[int, int], None] | None,
    cancel: CancelFn | None,
    device: torch.device | str | None,
    aa: bool,
    on_chunk: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> RenderResult:
    if backend == "nvdiffrast":
        from . import _nvdiffrast

        dr = _nvdiffrast.load()
        dev = mesh.device if mesh.device.type == "cuda" else torch.device("cuda")
        glctx = dr.RasterizeCudaContext(device=dev)
    else:
        dev = torch.device(device) if device is not None else mesh.device
        dr = glctx = None
    t, h, w = mesh.num_frames, mesh.height, mesh.width
    color = torch.zeros(t, h, w, 3, dtype=torch.float32, device=dev)
    mask = torch.zeros(t, h, w, dtype=torch.float32, device=dev)
    color[0] = mesh.frame0.to(dev, torch.float32)
    mask[0] = 1.0
    faces = mesh.faces.to(dev).to(torch.int32).contiguous()
    # face adjacency for antialiasing, built once per render (not once per chunk)
    neighbours = face_neighbours(faces) if (aa and dr is None) else None
    topology = dr.antialias_construct_topology_hash(faces) if (aa and dr and mesh.watertight) else None
    done = 1
    if progress is not None:
        progress(done, t)
    for s in range(1, t, max(1, chunk)):
        check_cancel(cancel, "render")
        e = min(t, s + max(1, chunk))
        part = mesh.part(s, e, dev)
        pos = clip_positions(part.vertices, camera, slice(s, e)).contiguous()
        cols = part.colors.to(torch.float32).contiguous()
        keep = part.face_keep
        if dr is not None:
            rgba = _nvdiffrast_rgba(dr, glctx, pos, cols, faces, keep, h, w, aa, topology)
        else:
            rast = rasterize(pos, faces, (h, w), face_mask=keep)
            rgba = interpolate(cols, rast, faces)
            if aa:
                rgba = antialias(rgba, rast, pos, faces, face_mask=keep, neighbours=neighbours)
        _finish(rgba, color[s:e], mask[s:e])
        if on_chunk is not None:
            on_chunk(s, color[s:e], mask[s:e])
        done = e
        if progress is not None:
            progress(done, t)
    return RenderResult(color, mask, backend)


def _nvdiffrast_rgba(
    dr,
    glctx,
    pos: torch.Tensor,
    cols: torch.Tensor,
    faces: torch.Tensor,
    keep: torch.Tensor | None,
    h: int,
    w: int,
    aa: bool,
    topology=None,
) -> torch.Tensor:
    if keep is None:
        rast, _ = dr.rasterize(glctx, pos, faces, resolution=[h, w])
        rgba, _ = dr.interpolate(cols, rast, faces)
        return dr.antialias(rgba, rast, pos, faces, topology_hash=topology) if aa else rgba
    # the non-watertight ablation has a different face list per frame: one call per frame
    out = []
    for i in range(pos.shape[0]):
        f = faces[keep[i]].contiguous()
        rast, _ = dr.rasterize(glctx, pos[i : i + 1], f, resolution=[h, w])
        rgba, _ = dr.interpolate(cols[i : i + 1], rast, f)
        out.append(dr.antialias(rgba, rast, pos[i : i + 1], f) if aa else rgba)
    return torch.cat(out)
