"""Frame-to-frame scale jitter of per-frame depth, before and after EX-4D Depth From Geometry's scale alignment.

A monocular estimator (MoGe, Depth Anything 3 in mono mode) sees each frame alone, so each frame's depth has
its own scale. No real weights run here, so the test clip is the bundled scene's true depth with that per-frame
scale put in: each frame multiplied by exp(N(0, --sigma)) (seeded), and its top rows marked as sky. Jitter is the
RMS change of a frame's median log depth from the frame before (:func:`ex4d.depth.geometry.scale_jitter`);
"scale error" is the RMS of each frame's log scale against the true depth's after one factor for the clip.

    python bench/scale_jitter.py [--sigma 0.05] [--frames 49] [--out bench/results/scale_jitter]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from records import write_report  # noqa: E402  (bench/ is the script's own folder)

from ex4d.depth import geometry, read_depth_array  # noqa: E402


def scale_error(depth: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor) -> float:
    """RMS over frames of log(median depth / true depth), after removing the clip's mean of it."""
    logs = torch.stack([(depth[t][valid[t]] / truth[t][valid[t]]).double().log().median() for t in range(len(depth))])
    return float((logs - logs.mean()).square().mean().sqrt())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigma", type=float, default=0.05, help="per-frame log-scale noise (0.05: about 5 %%)")
    ap.add_argument("--frames", type=int, default=49)
    ap.add_argument("--window", type=int, default=9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write <out>.txt and <out>.jsonl")
    args = ap.parse_args()
    truth = torch.from_numpy(read_depth_array(REPO / "assets" / "example" / "depth.npz")[: args.frames])
    valid = torch.ones_like(truth, dtype=torch.bool)
    valid[:, :20] = False  # "sky": the aligner must ignore it
    rng = np.random.default_rng(args.seed)
    noise = torch.from_numpy(np.exp(rng.normal(0.0, args.sigma, len(truth)))).float()
    noisy = truth * noise[:, None, None]
    rows = [{"depth": "true", "jitter": geometry.scale_jitter(truth, valid), "scale_error": 0.0}]
    rows.append({"depth": f"per-frame scale, sigma {args.sigma:g}", "jitter": geometry.scale_jitter(noisy, valid),
                 "scale_error": scale_error(noisy, truth, valid)})
    for name, window in ((f"aligned: running median of {args.window}", args.window), ("aligned: one for the clip",
                                                                                       len(truth))):
        aligned, _ = geometry.align_scale(noisy, valid, window)
        rows.append({"depth": name, "jitter": geometry.scale_jitter(aligned, valid),
                     "scale_error": scale_error(aligned, truth, valid)})
    lines = [f"Scale jitter: the bundled clip's true depth ({len(truth)} frames), each frame scaled by "
             f"exp(N(0, {args.sigma:g})) (seed {args.seed}) as a per-frame monocular estimate is; top 20 rows sky.",
             "", "| depth | frame-to-frame jitter (RMS) | scale error vs true (RMS) |", "|---|---|---|"]
    lines += [f"| {r['depth']} | {r['jitter']:.2%} | {r['scale_error']:.2%} |" for r in rows]
    text = "\n".join(lines)
    print(text)
    if args.out:
        write_report(args.out, text, rows)


if __name__ == "__main__":
    main()
