"""nvdiffrast's primitives in pure PyTorch, on any device: :func:`rasterize`, :func:`interpolate`,
:func:`antialias` and :func:`antialias_construct_topology_hash`, with ``nvdiffrast.torch``'s argument order,
instanced and range modes and output layouts (conventions: :mod:`ex4d.raster`). No gradients: the
derivative outputs (``rast_db``, the attribute derivatives) are empty [B, H, W, 0] tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .raster_torch_zbuf import EDGES, EMPTY, DrawList, edge_functions, edge_values, nearest_triangles
from .raster_torch_zbuf import screen_homogeneous as _screen_homogeneous


@dataclass
class RasterizeTorchContext:
    """What :func:`rasterize` takes first, like ``nvdiffrast.torch.RasterizeCudaContext``: the device, and how
    much work is held at once. ``chunk`` bounds the triangles set up at once (None: 2**23 on a GPU, about 3 GB
    of set-up, and 2**20 elsewhere), ``budget`` the tile/pixel candidates processed at once."""

    device: torch.device | str | None = None
    chunk: int | None = None
    budget: int = 1 << 22


def rasterize(
    glctx: RasterizeTorchContext,
    pos: torch.Tensor,
    tri: torch.Tensor,
    resolution: tuple[int, int],
    ranges: torch.Tensor | None = None,
    grad_db: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rasterise clip-space triangles like ``nvdiffrast.torch.rasterize`` -> (rast [B, H, W, 4], rast_db).

    Instanced mode: pos [B, V, 4], every frame draws all of tri [F, 3]. Range mode: pos [V, 4] and ranges
    [B, 2] int32 (start, count): frame b draws ``tri[start : start + count]``. Triangle ids index ``tri`` in
    both. ``grad_db`` is accepted for nvdiffrast's signature; rast_db is always empty [B, H, W, 0].
    """
    h, w = int(resolution[0]), int(resolution[1])
    draw = _draw_list(pos, tri, ranges)
    chunk = glctx.chunk
    if chunk is None:
        chunk = 1 << 23 if draw.pos.device.type == "cuda" else 1 << 20
    zbuf = nearest_triangles(draw, h, w, chunk, glctx.budget)
    rast = _rast_from_zbuf(draw, zbuf, h, w)
    return rast, rast.new_empty(draw.frames, h, w, 0)


def _draw_list(pos: torch.Tensor, tri: torch.Tensor, ranges: torch.Tensor | None) -> DrawList:
    device = pos.device
    tri = tri.to(device).long()
    if pos.ndim == 3:
        bsz, nv = pos.shape[:2]
        return DrawList(pos.to(torch.float32).reshape(-1, 4), tri, bsz, nv)
    if pos.ndim != 2 or ranges is None or ranges.ndim != 2 or ranges.shape[1] != 2:
        raise ValueError(f"pos: expected [B, V, 4] (instanced) or [V, 4] with ranges [B, 2] (range mode), got "
                         f"{list(pos.shape)} and ranges {None if ranges is None else list(ranges.shape)}")
    ranges = ranges.to(device).long()
    return DrawList(pos.to(torch.float32), tri, ranges.shape[0], 0, ranges[:, 0], ranges[:, 0] + ranges[:, 1])


def _rast_from_zbuf(draw: DrawList, zbuf: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(u, v, z/w, id + 1) at each pixel from the z-buffer keys, recomputed from the winning triangle."""
    rast = torch.zeros(draw.frames * h * w, 4, dtype=torch.float32, device=zbuf.device)
    hit = (zbuf != EMPTY).nonzero().squeeze(1)
    if hit.numel() == 0:
        return rast.reshape(draw.frames, h, w, 4)
    tri = zbuf[hit] & 0xFFFFFFFF
    frame = hit // (h * w)
    pix = hit % (h * w)
    c = draw.corners(frame, tri)  # [m, 3, 4]
    e = edge_functions(_screen_homogeneous(c, h, w))
    val = edge_values(e, (pix % w).to(e.dtype) + 0.5, (pix // w).to(e.dtype) + 0.5)
    bary = val / val.sum(1, keepdim=True)
    depth = (bary * c[..., 2]).sum(1) / (bary * c[..., 3]).sum(1)
    rast[hit] = torch.stack([bary[:, 0], bary[:, 1], depth, (tri + 1).to(torch.float32)], -1)
    return rast.reshape(draw.frames, h, w, 4)


def interpolate(attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolate vertex attributes at the rasterised pixels like ``nvdiffrast.torch.interpolate`` -> (out
    [B, H, W, C], 0 where nothing was hit; empty derivatives [B, H, W, 0]).

    attr: [V, C] (range mode, or one set for every frame) or [B, V, C] (instanced; B may be 1, broadcast)."""
    bsz, h, w, _ = rast.shape
    attr = attr[None] if attr.ndim == 2 else attr
    attr = attr.expand(bsz, -1, -1)
    ids = rast[..., 3].reshape(bsz, -1).long() - 1
    hit = ids >= 0
    fv = tri.to(rast.device).long()[ids.clamp_min(0)]  # [B, HW, 3]
    a = torch.gather(
        attr.to(rast.device, torch.float32), 1, fv.reshape(bsz, -1, 1).expand(-1, -1, attr.shape[-1])
    ).reshape(bsz, h * w, 3, -1)
    u, v = rast[..., 0].reshape(bsz, -1, 1), rast[..., 1].reshape(bsz, -1, 1)
    out = a[:, :, 0] * u + a[:, :, 1] * v + a[:, :, 2] * (1 - u - v)
    return (out * hit[..., None]).reshape(bsz, h, w, -1), out.new_empty(bsz, h, w, 0)


def antialias_construct_topology_hash(tri: torch.Tensor) -> torch.Tensor:
    """What :func:`antialias` needs of the mesh's topology, built once for many calls (nvdiffrast's function of
    the same name): [F, 3] int64, the face across edge k (opposite vertex k), -1 for open or non-manifold edges."""
    f = tri.long()
    nf = f.shape[0]
    a = torch.cat([f[:, i] for i, _ in EDGES])
    b = torch.cat([f[:, j] for _, j in EDGES])
    lo, hi = torch.minimum(a, b), torch.maximum(a, b)
    key = lo * (int(f.max()) + 1 if nf else 1) + hi
    order = torch.argsort(key, stable=True)
    ks = key[order]
    same_next = torch.zeros_like(ks, dtype=torch.bool)
    same_next[:-1] = ks[1:] == ks[:-1]
    # only edges shared by exactly two faces are paired
    count_ok = same_next.clone()
    count_ok[:-1] &= ~same_next[1:]
    count_ok[1:] &= ~same_next[:-1]
    first = count_ok.nonzero().squeeze(1)
    nb = torch.full((3 * nf,), -1, dtype=torch.int64, device=tri.device)
    e1, e2 = order[first], order[first + 1]
    nb[e1] = e2 % nf
    nb[e2] = e1 % nf
    return nb.reshape(3, nf).t().contiguous()


def antialias(
    color: torch.Tensor,
    rast: torch.Tensor,
    pos: torch.Tensor,
    tri: torch.Tensor,
    topology_hash: torch.Tensor | None = None,
    pos_gradient_boost: float = 1.0,
) -> torch.Tensor:
    """Approximate ``nvdiffrast.torch.antialias``'s analytic silhouette antialiasing -> [B, H, W, C].

    pos: [B, V, 4] (instanced) or [V, 4] (range mode), as given to :func:`rasterize`; ``topology_hash`` from
    :func:`antialias_construct_topology_hash` (built here when None); ``pos_gradient_boost`` is accepted for
    nvdiffrast's signature.

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
    f = tri.to(color.device).long()
    neighbours = antialias_construct_topology_hash(f) if topology_hash is None else topology_hash
    # vertex v of frame b is row b * V + v of the flattened screen positions (instanced), row v (range mode)
    rows_per_frame = pos.shape[1] if pos.ndim == 3 else 0
    s = _screen_homogeneous(pos.to(torch.float32), h, w).reshape(-1, 3)  # [B*V, 3]
    out = color.clone().reshape(-1, ch)
    ids = rast[..., 3].long() - 1  # [B, H, W]
    depth = torch.where(ids >= 0, rast[..., 2], torch.full_like(rast[..., 2], float("inf")))
    for axis in (2, 1):  # 2: horizontal pairs (x, x+1), 1: vertical pairs (y, y+1)
        _blend_pairs(color, out, ids, depth, axis, s, f, neighbours, rows_per_frame)
    return out.reshape(bsz, h, w, ch)


def _blend_pairs(
    color: torch.Tensor,
    out: torch.Tensor,
    ids: torch.Tensor,
    depth: torch.Tensor,
    axis: int,
    s: torch.Tensor,
    f: torch.Tensor,
    neighbours: torch.Tensor,
    rows_per_frame: int,
) -> None:
    """Add the antialiasing of the pixel pairs along ``axis`` (2: (x, x+1), 1: (y, y+1)) into ``out``."""
    _, h, w, ch = color.shape
    ta, tb = (ids[:, :, :-1], ids[:, :, 1:]) if axis == 2 else (ids[:, :-1], ids[:, 1:])
    da, db = (depth[:, :, :-1], depth[:, :, 1:]) if axis == 2 else (depth[:, :-1], depth[:, 1:])
    pairs = (ta != tb).nonzero()
    if pairs.numel() == 0:
        return
    bb, i0, j0 = pairs.unbind(1)
    ta_p, tb_p = ta[bb, i0, j0], tb[bb, i0, j0]
    a_front = da[bb, i0, j0] <= db[bb, i0, j0]
    ft = torch.where(a_front, ta_p, tb_p)
    ok = ft >= 0
    ft = ft.clamp_min(0)
    base = bb * rows_per_frame
    fv = f[ft] + base[:, None]  # [m, 3] rows of s
    nbr = neighbours[ft]  # [m, 3]
    det_f = _orient(s, fv)
    nbc = nbr.clamp_min(0)
    det_n = _orient(s, (f[nbc] + base[:, None, None]).reshape(-1, 3)).reshape(-1, 3)
    sil = (nbr < 0) | (torch.sign(det_n) != torch.sign(det_f)[:, None])
    # pixel centres of the pair: A = (x, y), B = A + 1 along the axis (continuous coordinates)
    ya = i0.to(torch.float32) + 0.5
    xa = j0.to(torch.float32) + 0.5
    best_t = _silhouette_crossing(s, fv, sil, a_front, xa, ya, axis)
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


def _silhouette_crossing(
    s: torch.Tensor,
    fv: torch.Tensor,
    sil: torch.Tensor,
    a_front: torch.Tensor,
    xa: torch.Tensor,
    ya: torch.Tensor,
    axis: int,
) -> torch.Tensor:
    """Where the first silhouette edge of each pair's front face crosses the segment between the two pixel
    centres, measured from the front pixel (0) to the far one (1); -1 where none does."""
    proj = s[:, :2] / s[:, 2:3]
    front_v = s[:, 2] > 0
    c_along, c_across = (xa, ya) if axis == 2 else (ya, xa)
    k_along = 0 if axis == 2 else 1
    best_t = torch.full_like(xa, -1.0)
    for k, (vi, vj) in enumerate(EDGES):
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
    return best_t


def _orient(s: torch.Tensor, fv: torch.Tensor) -> torch.Tensor:
    """Homogeneous determinant (screen orientation times w0 w1 w2) of faces fv [m, 3] from s [V, 3]."""
    a, b, c = s[fv[:, 0]], s[fv[:, 1]], s[fv[:, 2]]
    return (a * torch.cross(b, c, dim=-1)).sum(-1)
