"""The pure-PyTorch rasteriser's visibility pass: for every pixel centre, the nearest triangle that covers it.

Exact homogeneous rasterisation (edge functions on (X w, Y w, w), so triangles that cross the camera plane need
no clipping), traversed hierarchically: each triangle starts on the tile level where its bounding box spans at
most 2 x 2 tiles; tiles are tested against the edge functions and split until single pixels, in work items of
bounded size; the depth test is a ``scatter_reduce(amin)`` over int64 keys (depth bits << 32 | triangle id).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

EMPTY = torch.iinfo(torch.int64).max  # z-buffer key of a pixel no triangle covers
EDGES = ((1, 2), (2, 0), (0, 1))  # edge k is opposite vertex k
_DIRECT = (1, 2, 4)  # bbox sizes whose pixels are enumerated directly (no tile tests)
_QUAD_X = torch.tensor([0, 1, 0, 1])[:, None]
_QUAD_Y = torch.tensor([0, 0, 1, 1])[:, None]


def screen_homogeneous(pos: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Clip (x, y, z, w) -> (X w, Y w, w) with X, Y continuous pixel coordinates (pixel centre = index + .5)."""
    x, y, ww = pos[..., 0], pos[..., 1], pos[..., 3]
    return torch.stack([(x + ww) * (w * 0.5), (y + ww) * (h * 0.5), ww], -1)


def edge_values(e: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """e [m, 3, 3], x/y [m] -> [m, 3] edge function values at (x, y)."""
    return e[..., 0] * x[:, None] + e[..., 1] * y[:, None] + e[..., 2]


def edge_functions(s: torch.Tensor) -> torch.Tensor:
    """[n, 3, 3] screen-homogeneous corners -> [n, 3, 3] edge functions, edge k = s_i x s_j. Computed from the
    same vertex values with swapped operands an edge function is bitwise negated, so a shared edge never leaves
    a pixel centre uncovered."""
    return torch.stack([torch.cross(s[:, i], s[:, j], dim=-1) for i, j in EDGES], 1)


@dataclass
class DrawList:
    """The triangles of one rasterize call, in nvdiffrast's two layouts.

    Instanced (``starts is None``): every frame draws all of ``tri``, its vertex v being row ``b V + v`` of
    ``pos``. Ranges: frame b draws ``tri[starts[b] : starts[b] + counts[b]]``, whose indices are rows of ``pos``.
    Triangle ids are indices into ``tri`` either way.
    """

    pos: torch.Tensor  # [N, 4] float32 clip positions of all frames
    tri: torch.Tensor  # [F, 3] int64
    frames: int
    vertices_per_frame: int  # V when instanced, 0 for ranges
    starts: torch.Tensor | None = None  # [B] int64
    ends: torch.Tensor | None = None  # [B] int64, starts + counts

    @property
    def total(self) -> int:
        """Number of (frame, triangle) pairs drawn."""
        if self.starts is None:
            return self.frames * self.tri.shape[0]
        return int((self.ends - self.starts).sum())

    def pick(self, i0: int, i1: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(frame, triangle id) of the drawn pairs i0..i1-1, in frame order."""
        flat = torch.arange(i0, i1, device=self.pos.device)
        if self.starts is None:
            nf = self.tri.shape[0]
            return flat // nf, flat % nf
        counts = self.ends - self.starts
        first = torch.cumsum(counts, 0) - counts  # position of each frame's first pair in the drawn order
        frame = torch.searchsorted(first + counts, flat, right=True)
        return frame, self.starts[frame] + flat - first[frame]

    def corners(self, frame: torch.Tensor, tri_id: torch.Tensor) -> torch.Tensor:
        """[n, 3, 4] clip positions of the triangles ``tri_id`` of ``frame``."""
        return self.pos[self.tri[tri_id] + (frame * self.vertices_per_frame)[:, None]]


@dataclass
class _Tris:
    """Per-triangle set-up of one chunk (n triangles)."""

    edge: torch.Tensor  # [n, 3, 3] (a, b, c) of each edge function, multiplied by sign(det)
    z: torch.Tensor  # [n, 3] clip z
    w: torch.Tensor  # [n, 3] clip w
    box: torch.Tensor  # [n, 4] int64 pixel bbox x0, y0, x1, y1 (inclusive)
    key_id: torch.Tensor  # [n] int64: triangle id
    pix_base: torch.Tensor  # [n] int64: frame * H * W
    margin: torch.Tensor  # [n, 3] tolerance of the conservative tile test


def nearest_triangles(draw: DrawList, h: int, w: int, chunk: int, budget: int) -> torch.Tensor:
    """[frames * H * W] int64 z-buffer keys: (depth bits << 32 | triangle id) of the nearest triangle at each
    pixel centre (ties go to the lower id), :data:`EMPTY` where none covers it. ``chunk`` bounds the triangles
    set up at once, ``budget`` the tile/pixel candidates processed at once."""
    zbuf = torch.full((draw.frames * h * w + 1,), EMPTY, dtype=torch.int64, device=draw.pos.device)  # + scratch
    total, step = draw.total, max(1, chunk)
    # triangles of several frames are set up and traversed together: fewer, larger kernels
    for i0 in range(0, total, step):
        frame, tri_id = draw.pick(i0, min(total, i0 + step))
        t = _setup(draw.corners(frame, tri_id), frame, tri_id, h, w)
        if t is not None:
            _traverse(t, zbuf, w, budget)
    return zbuf[:-1]


def _setup(c: torch.Tensor, frame: torch.Tensor, tri_id: torch.Tensor, h: int, w: int) -> _Tris | None:
    """Set up the triangles with clip corners c [n, 3, 4]; cull what cannot cover a pixel centre."""
    s = screen_homogeneous(c, h, w)  # [n, 3, 3]
    cx, cy, cz, cw = c.unbind(-1)
    outside = (
        (cx > cw).all(1)
        | (cx < -cw).all(1)
        | (cy > cw).all(1)
        | (cy < -cw).all(1)
        | (cz > cw).all(1)
        | (cz < -cw).all(1)
    )
    edge = edge_functions(s)
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
    return _Tris(e, cz[idx], cw[idx], box, tri_id[idx].long(), frame[idx].long() * (h * w), margin)


def _resolve_pixels(
    t: _Tris, tri: torch.Tensor, px: torch.Tensor, py: torch.Tensor, zbuf: torch.Tensor, w: int
) -> None:
    e = t.edge[tri]
    x, y = px.to(e.dtype) + 0.5, py.to(e.dtype) + 0.5
    val = edge_values(e, x, y)
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


def _traverse(t: _Tris, zbuf: torch.Tensor, w: int, budget: int) -> None:
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
