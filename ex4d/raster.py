"""The rasterisation primitives, one signature whatever runs them, and the one place a backend is chosen.

Two backends offer the same four functions with ``nvdiffrast.torch``'s signatures: nvdiffrast itself (CUDA;
:mod:`ex4d._nvdiffrast`) and its pure-PyTorch twin (any device; :mod:`ex4d.raster_torch`).

Primitives follow nvdiffrast's semantics:

- ``rasterize(ctx, pos, tri, resolution, ranges=None)`` returns ``(rast, rast_db)``, ``rast`` [B, H, W, 4] =
  (u, v, z/w, triangle_id + 1), 0 where nothing is hit; an attribute at a pixel is ``u a0 + v a1 +
  (1 - u - v) a2`` (perspective-correct barycentrics). Pixel (px, py) samples NDC ``(2 (px + 0.5) / W - 1,
  2 (py + 0.5) / H - 1)``: row 0 is NDC y = -1, which with the published projection (its -n/y entry) is the top
  image row, so images come out upright. Triangles are clipped to -w <= z <= w per pixel; nearest z/w wins,
  ties go to the lower triangle id (deterministic). Instanced mode: pos [B, V, 4], every frame draws all of
  tri; range mode: pos [V, 4] and ranges [B, 2] int32 on the CPU, frame b drawing ``tri[start : start +
  count]``; triangle ids index ``tri`` in both.
- ``interpolate(attr, rast, tri)`` returns ``(out, derivatives)``: per-vertex attributes at the pixels.
- ``antialias(color, rast, pos, tri, topology_hash=None)`` blends colours across silhouette edges, with
  ``antialias_construct_topology_hash(tri)`` built once for many calls on one mesh. The PyTorch twin
  approximates nvdiffrast's analytic antialiasing (see its docstring).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from types import ModuleType

import torch

from . import _nvdiffrast, raster_torch

BACKENDS = ("auto", "nvdiffrast", "torch")


@dataclass(frozen=True)
class Rasteriser:
    """One backend ready to run: ``dr`` holds the primitives, ``ctx`` is what its ``rasterize`` takes first."""

    name: str  # "nvdiffrast" or "torch"
    dr: ModuleType
    ctx: object
    device: torch.device


def check_backend(backend: str) -> None:
    """Refuse a backend name this machine cannot run, naming the parameter."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: unknown value {backend!r}; choose one of {list(BACKENDS)}")
    if backend == "nvdiffrast" and not torch.cuda.is_available():
        raise ValueError("backend: 'nvdiffrast' needs a CUDA GPU; choose 'auto' or 'torch'")


def resolve_backend(backend: str) -> str:
    """The backend "auto" stands for here: nvdiffrast when CUDA is there and it imports, else torch."""
    if backend != "auto":
        return backend
    return "nvdiffrast" if _nvdiffrast.available() else "torch"


def open_rasteriser(backend: str, device: torch.device) -> Rasteriser:
    """The primitives of ``backend`` ("auto", "nvdiffrast" or "torch") on ``device`` (nvdiffrast runs on
    ``device`` when it is a CUDA device, else on the current one).

    "auto" falls back to torch, with a warning, when nvdiffrast imports but cannot run (its plugin fails to
    build or load); a backend named explicitly raises instead."""
    check_backend(backend)
    name = resolve_backend(backend)
    if name == "torch":
        return _torch(device)
    cuda = device if device.type == "cuda" else torch.device("cuda")
    try:
        dr, ctx = _nvdiffrast.context(cuda)
    except torch.cuda.OutOfMemoryError:
        raise
    except _nvdiffrast.UNAVAILABLE as exc:
        if backend != "auto":
            raise
        warnings.warn(f"nvdiffrast cannot run here ({exc}); falling back to the torch rasteriser", stacklevel=3)
        return _torch(device)
    return Rasteriser("nvdiffrast", dr, ctx, cuda)


def _torch(device: torch.device) -> Rasteriser:
    return Rasteriser("torch", raster_torch, raster_torch.RasterizeTorchContext(device), device)
