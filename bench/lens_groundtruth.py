"""The lens against ground truth: the pack's render of a clip filmed through a 320 px lens, seen through the
published 500 px and through the true lens, against the scene rendered directly from the target cameras.

The clip is ``scripts/make_example_clip.py``'s scene through a ``--true-focal`` px pinhole with its true depth;
the target cameras are an orbit of ``--angles`` degrees (yaw, over the clip). For each new view frame (1 ..
T - 1) the ground truth is the scene ray-cast from that camera through the true lens (pixel centres, as the
rasteriser samples), and its visibility the pixels whose surface the source camera saw in that frame (the point
projected into the source frame lands on its depth within ``--tolerance``). Figures: visibility IoU of the render's
mask against that visibility, and PSNR of the render's colour over the pixels both see. CPU is fine (the PyTorch
rasteriser).

    python bench/lens_groundtruth.py [--frames 13] [--angles 60 90] [--out bench/results/lens_groundtruth]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import make_example_clip as scene  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from records import write_report  # noqa: E402  (bench/ is the script's own folder)

from ex4d.camera import Clip, Lens, orbit  # noqa: E402
from ex4d.mesh import build_dw_mesh  # noqa: E402
from ex4d.render import render_views  # noqa: E402

GL_TO_CV = np.diag([1.0, -1.0, -1.0])  # the path's extrinsics look down -z with y up; the scene's cameras +z, y down


def camera_pose(extrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(camera-to-world rotation, centre) of a path's world-to-camera ``extrinsics`` in the scene's convention."""
    e = np.asarray(extrinsics, dtype=np.float64)
    rotation_w2c, translation = GL_TO_CV @ e[:3, :3], GL_TO_CV @ e[:3, 3]
    return rotation_w2c.T, -rotation_w2c.T @ translation


def true_visibility(depth_view: np.ndarray, rotation: np.ndarray, centre: np.ndarray, focal: float,
                    source_depth: np.ndarray, tolerance: float) -> np.ndarray:
    """[H, W] bool: the view's pixels whose surface the source camera (the origin, looking along +z, the same
    lens) saw: projected into the source frame (DW-mesh convention: pixel u at (u - W // 2) / f) inside its
    inner pixels, at the depth the source frame holds there (nearest of the four neighbours) within
    ``tolerance`` of it."""
    h, w = depth_view.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    rays = np.stack([(u - w // 2) / focal, (v - h // 2) / focal, np.ones_like(u)], -1) @ rotation.T
    finite = np.isfinite(depth_view)
    points = centre + rays * np.where(finite, depth_view, 0.0)[..., None]
    z = points[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        us, vs = focal * points[..., 0] / z + w // 2, focal * points[..., 1] / z + h // 2
    inside = finite & (z > 0) & (us >= 1) & (us <= w - 2) & (vs >= 1) & (vs <= h - 2)
    best = np.full((h, w), np.inf)
    for du in (0, 1):
        for dv in (0, 1):
            ui = np.clip(np.floor(np.where(inside, us, 1)).astype(int) + du, 0, w - 1)
            vi = np.clip(np.floor(np.where(inside, vs, 1)).astype(int) + dv, 0, h - 1)
            best = np.minimum(best, np.abs(source_depth[vi, ui] - z))
    return inside & (best <= tolerance * np.abs(z))


def measure(frames: torch.Tensor, depth: torch.Tensor, assumed_focal: float, true_focal: float, angle: float,
            ground_truth: dict, tolerance: float) -> dict:
    """The pack's render through ``assumed_focal`` against the ground truth of the ``angle`` orbit."""
    h, w = depth.shape[1:]
    clip = Clip.of_depth(depth, lens=Lens.centred(w, h, assumed_focal))
    path = orbit(clip, yaw=(0.0, angle))
    mesh = build_dw_mesh(frames, depth, focal=assumed_focal)
    result = render_views(mesh, path, backend="torch", chunk=4)
    inter = union = 0
    squared, counted = 0.0, 0
    last = {}
    for t in range(1, len(frames)):
        key = (angle, t)
        if key not in ground_truth:
            rotation, centre = camera_pose(path.extrinsics[t])
            rgb, depth_view = scene.render_view(t, true_focal, rotation, centre, offset=0.5)
            visible = true_visibility(depth_view, rotation, centre, true_focal, depth[t].numpy(), tolerance)
            ground_truth[key] = (rgb.astype(np.float32) / 255.0, visible)
        rgb, visible = ground_truth[key]
        mask = result.mask[t].numpy() > 0.5
        both = mask & visible
        inter_t, union_t = int(both.sum()), int((mask | visible).sum())
        inter, union = inter + inter_t, union + union_t
        error = (result.color[t].numpy() - rgb)[both]
        squared, counted = squared + float((error**2).sum()), counted + error.size
        last = {"iou_last": inter_t / max(union_t, 1), "mse_last": float((error**2).mean()) if error.size else math.nan}
    mse = squared / max(counted, 1)
    return {"angle": angle, "assumed_focal": assumed_focal, "true_focal": true_focal,
            "iou": inter / max(union, 1), "psnr": 10 * math.log10(1.0 / mse) if mse > 0 else math.inf,
            "iou_last": last["iou_last"], "psnr_last": 10 * math.log10(1.0 / last["mse_last"]),
            "seen_fraction": union and inter / (len(frames) - 1) / (h * w)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=13)
    ap.add_argument("--true-focal", type=float, default=320.0)
    ap.add_argument("--assumed", type=float, nargs="+", default=[500.0], help="wrong lenses to compare")
    ap.add_argument("--angles", type=float, nargs="+", default=[60.0, 90.0])
    ap.add_argument("--tolerance", type=float, default=0.03, help="relative depth match for the true visibility")
    ap.add_argument("--out", default=None, help="write <out>.txt and <out>.jsonl")
    args = ap.parse_args()
    torch.set_num_threads(2)
    start = time.perf_counter()
    rgb, depth = zip(*(scene.render_frame(t, args.true_focal) for t in range(args.frames)), strict=True)
    frames = torch.from_numpy(np.stack(rgb).astype(np.float32) / 255.0)
    depth = torch.from_numpy(np.stack(depth))
    ground_truth: dict = {}
    rows = [measure(frames, depth, focal, args.true_focal, angle, ground_truth, args.tolerance)
            for angle in args.angles for focal in (*args.assumed, args.true_focal)]
    lines = [f"Lens against ground truth: the example scene filmed through a {args.true_focal:g} px lens, "
             f"{args.frames} frames of {scene.W} x {scene.H}, true depth; an orbit (yaw 0 -> angle over the clip) "
             "rendered by the pack (PyTorch rasteriser) through the lens it assumes, against the scene ray-cast from "
             f"the same cameras through the true lens. Visibility: surface seen by the source frame (depth within "
             f"{args.tolerance:.0%}). Frames 1..T-1 pooled; 'last': the last frame (the full angle).",
             "",
             "| angle | lens assumed | visibility IoU | PSNR (both see) | IoU last frame | PSNR last frame |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['angle']:g} | {r['assumed_focal']:g} px | {r['iou']:.3f} | {r['psnr']:.1f} dB | "
                     f"{r['iou_last']:.3f} | {r['psnr_last']:.1f} dB |")
    lines.append("")
    lines.append(f"{time.perf_counter() - start:.0f} s on {torch.get_num_threads()} CPU threads")
    text = "\n".join(lines)
    print(text)
    if args.out:
        write_report(args.out, text, rows)


if __name__ == "__main__":
    main()
