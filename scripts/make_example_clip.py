"""Procedural example clip with its true depth: ``assets/example/clip.mp4`` and ``assets/example/depth.npz``.

A textured floor and back wall with three coloured spheres that drift slightly, ray-cast with the EX-4D
pinhole convention (f = 500 px, principal point (W // 2, H // 2), ray of pixel (u, v) = ((u - cx) / f,
(v - cy) / f, 1), x right, y down, z forward), so the stored z-depth is exactly what the DW-mesh expects.
49 frames of 512 x 320 at 30 fps, H.264 yuv420p; depth is float16 [T, H, W] under the key "depth".
Deterministic: ``python scripts/make_example_clip.py [--out assets/example]``. ``--frames 121`` extends the
same scene (the spheres keep moving at the same speed; its first 49 frames are the bundled clip's) into
``clip_121.mp4`` / ``depth_121.npz``, the long clip of ``workflows/ex4d_long.json``. ``--focal 320`` films it
through another lens (``clip_f320.mp4`` / ``depth_f320.npz``). :func:`render_view` renders the scene through any
pinhole from any pose: the ground truth of a new view (``bench/lens_groundtruth.py``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

W, H, T, FPS, FOCAL = 512, 320, 49, 30, 500.0  # T: the bundled clip's frames
FLOOR_Y = 0.9  # floor plane y = const (y points down)
WALL_Z = 7.0
LIGHT = np.array([-0.4, -0.8, -0.45]) / np.linalg.norm([-0.4, -0.8, -0.45])  # towards the light


def _spheres(t: float) -> list[tuple[np.ndarray, float, np.ndarray]]:
    s = t / (T - 1)
    return [
        (np.array([-1.1 + 0.3 * s, 0.35, 4.2]), 0.55, np.array([0.85, 0.25, 0.2])),
        (np.array([0.45, 0.5 - 0.25 * np.sin(np.pi * s), 3.3]), 0.4, np.array([0.2, 0.6, 0.9])),
        (np.array([1.45 - 0.2 * s, 0.2, 5.2]), 0.7, np.array([0.95, 0.8, 0.25])),
    ]


def render_frame(t: int, focal: float = FOCAL) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``t`` from the source camera (at the origin, looking along +z) through a ``focal`` px pinhole: RGB
    uint8 [H, W, 3] and z-depth float32 [H, W]."""
    return render_view(t, focal)


def render_view(t: int, focal: float, rotation: np.ndarray | None = None, centre: np.ndarray | None = None,
                offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``t`` of the scene through a ``focal`` px pinhole at ``centre`` (world), turned by ``rotation``
    (camera-to-world, columns x right, y down, z forward); pixel (u, v) looks along ((u + offset - W // 2) / f,
    (v + offset - H // 2) / f, 1) (``offset`` 0.5: through the pixel centres, as a rasteriser samples). RGB uint8
    [H, W, 3] and the z-depth in that camera, float32 [H, W] (inf where no surface)."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64) + offset
    d = np.stack([(u - W // 2) / focal, (v - H // 2) / focal, np.ones_like(u)], -1)  # z = 1: t is z-depth
    o = np.zeros(3) if centre is None else np.asarray(centre, dtype=np.float64)
    if rotation is not None:
        d = d @ np.asarray(rotation, dtype=np.float64).T  # camera z stays 1 along the ray: t is still z-depth
    depth = np.full((H, W), np.inf)
    color = np.zeros((H, W, 3))
    normal = np.zeros((H, W, 3))

    # back wall z = WALL_Z: brick-like texture
    with np.errstate(divide="ignore", invalid="ignore"):
        tw = np.where(d[..., 2] > 1e-9, (WALL_Z - o[2]) / d[..., 2], np.inf)
    tw = np.where(tw > 0, tw, np.inf)
    p = o + d * np.where(np.isfinite(tw), tw, 0)[..., None]
    bricks = ((np.floor(p[..., 1] / 0.3) % 2) * 0.5 + p[..., 0] / 0.6) % 1.0
    mortar = (np.abs((p[..., 1] / 0.3) % 1.0) < 0.08) | (bricks < 0.05)
    wall = np.where(mortar[..., None], [0.75, 0.72, 0.68], [0.62, 0.36, 0.28])
    hit = tw < depth
    depth[hit], color[hit], normal[hit] = tw[hit], wall[hit], [0, 0, -1]

    # floor y = FLOOR_Y: checkerboard
    with np.errstate(divide="ignore", invalid="ignore"):
        tf = np.where(d[..., 1] > 1e-6, (FLOOR_Y - o[1]) / d[..., 1], np.inf)
    tf = np.where(tf > 0, tf, np.inf)
    p = o + d * np.where(np.isfinite(tf), tf, 0)[..., None]
    checker = (np.floor(p[..., 0] / 0.5) + np.floor(p[..., 2] / 0.5)) % 2
    floor = np.where(checker[..., None] > 0, [0.85, 0.85, 0.8], [0.25, 0.3, 0.35])
    hit = tf < depth
    depth[hit], color[hit], normal[hit] = tf[hit], floor[hit], [0, -1, 0]

    for centre, radius, albedo in _spheres(t):
        rel = centre - o
        b = (d * rel).sum(-1)
        dd = (d * d).sum(-1)
        disc = b * b - dd * ((rel * rel).sum() - radius * radius)
        ts = np.where(disc > 0, (b - np.sqrt(np.maximum(disc, 0))) / dd, np.inf)
        hit = (ts > 0) & (ts < depth)
        p = o + d[hit] * ts[hit][:, None]
        n = (p - centre) / radius
        stripes = 0.85 + 0.15 * np.sign(np.sin(8 * np.arctan2(n[:, 0], n[:, 2])))
        depth[hit], color[hit], normal[hit] = ts[hit], albedo * stripes[:, None], n

    shade = 0.35 + 0.65 * np.clip((normal * LIGHT).sum(-1), 0, 1)
    rgb = np.clip(color * shade[..., None], 0, 1)
    return (rgb * 255 + 0.5).astype(np.uint8), depth.astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "assets" / "example"))
    ap.add_argument("--frames", type=int, default=T, help=f"frames to render ({T}: the bundled clip)")
    ap.add_argument("--focal", type=float, default=FOCAL, help=f"the lens's focal length in pixels ({FOCAL:g})")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import av

    suffix = ("" if args.frames == T else f"_{args.frames}") + ("" if args.focal == FOCAL else f"_f{args.focal:g}")
    clip, depth_file = out / f"clip{suffix}.mp4", out / f"depth{suffix}.npz"
    frames, depths = zip(*(render_frame(t, args.focal) for t in range(args.frames)), strict=True)
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "20", "preset": "medium", "threads": "1"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    np.savez_compressed(depth_file, depth=np.stack(depths).astype(np.float16))
    print(f"wrote {clip} ({clip.stat().st_size / 1e6:.2f} MB) and {depth_file}")


if __name__ == "__main__":
    main()
