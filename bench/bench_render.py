"""Render-stage benchmark: build + render of 49 frames at 512 x 512, side by side.

Rows: nvdiffrast (total, and its own rasterize + interpolate + antialias on prebuilt clip-space meshes: the
floor), the torch backend on the GPU, the torch backend on the CPU with 2 threads.

    python bench/bench_render.py [--frames 49] [--size 512] [--repeat 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package: its modules import each other

import arguments  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from timing import Gpu, best_seconds  # noqa: E402

from ex4d import render  # noqa: E402
from ex4d.camera import Clip, preset, radius_from_depth  # noqa: E402
from ex4d.mesh import build_dw_mesh  # noqa: E402


def scene(t: int, n: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    v, u = np.mgrid[0:n, 0:n].astype(np.float32)
    frames, depths = [], []
    for i in range(t):
        d = 3.0 + 0.4 * np.sin(u / 37.0 + 0.05 * i) + 0.3 * np.cos(v / 29.0)
        box = (u > n * 0.35 + i) & (u < n * 0.6 + i) & (v > n * 0.3) & (v < n * 0.7)
        depths.append(np.where(box, 1.8, d))
        frames.append(
            np.stack([0.5 + 0.4 * np.sin(u / 9.0 + i), 0.5 + 0.4 * np.cos(v / 7.0), (u + v) / (2 * n)], -1)
        )
    return (
        torch.from_numpy(np.stack(frames)).float().clamp(0, 1).to(device),
        torch.from_numpy(np.stack(depths)).float().to(device),
    )


def timed(fn, device: str, repeat: int) -> float:
    return best_seconds(fn, Gpu(torch, [device]), repeat)


def main() -> None:
    ap = arguments.parser(__doc__)
    ap.add_argument("--frames", type=int, default=49)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    t, n = args.frames, args.size
    rows: list[tuple[str, str]] = []
    cuda = torch.cuda.is_available()

    def build_render(device: str, backend: str):
        frames, depth = scene(t, n, device)
        path = preset("30", Clip.centred(t, n, n, radius_from_depth(depth[0])))

        def run():
            mesh = build_dw_mesh(frames, depth)
            return render.render_views(mesh, path, backend=backend)

        return run

    # nvdiffrast
    if cuda:
        try:
            from ex4d import _nvdiffrast

            dr = _nvdiffrast.load()
            total = timed(build_render("cuda", "nvdiffrast"), "cuda", args.repeat)
            frames, depth = scene(t, n, "cuda")
            mesh = build_dw_mesh(frames, depth)
            path = preset("30", Clip.centred(t, n, n, radius_from_depth(depth[0])))
            pos = render.clip_positions(mesh.vertices, path).contiguous()
            faces = mesh.faces.contiguous()
            cols = mesh.colors.contiguous()
            glctx = dr.RasterizeCudaContext(device="cuda")
            topology = dr.antialias_construct_topology_hash(faces)  # built once, as nvdiffrast recommends

            def floor():
                rast, _ = dr.rasterize(glctx, pos, faces, resolution=[n, n])
                col, _ = dr.interpolate(cols, rast, faces)
                dr.antialias(col, rast, pos, faces, topology_hash=topology)

            rows.append(("nvdiffrast, build + render (GPU)", f"{total * 1e3:9.1f} ms"))
            rows.append(
                (
                    "nvdiffrast raster+interp+AA only (floor)",
                    f"{timed(floor, 'cuda', args.repeat) * 1e3:9.1f} ms",
                )
            )
        except Exception as exc:
            rows.append(("nvdiffrast", f"unavailable ({type(exc).__name__}: {exc})"[:100]))
    else:
        rows.append(("nvdiffrast", "unavailable (no CUDA)"))

    if cuda:
        rows.append(
            (
                "torch backend, build + render (GPU)",
                f"{timed(build_render('cuda', 'torch'), 'cuda', args.repeat) * 1e3:9.1f} ms",
            )
        )
    else:
        rows.append(("torch backend (GPU)", "unavailable (no CUDA)"))

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cpu = timed(build_render("cpu", "torch"), "cpu", 1)  # one timed run: tens of seconds each
        rows.append(("torch backend, build + render (CPU, 2 threads, 1 run)", f"{cpu * 1e3:9.1f} ms"))
    finally:
        torch.set_num_threads(threads)

    print(
        f"\nEX-4D render stage: {t} frames at {n} x {n} ({2 * (n - 1) ** 2 + 2} faces per frame), best of runs"
    )
    width = max(len(r[0]) for r in rows)
    print("-" * (width + 24))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if cuda:
        print(f"device: {torch.cuda.get_device_name()}")


if __name__ == "__main__":
    main()
