"""DepthCrafter benchmark: full-size UNet / VAE / CLIP with random weights (built from the real configs, no
downloads), the published inference (5 steps, guidance 1, one window for 49 frames).

Rows: fp16 / bf16 x PyTorch SDPA attention (diffusers AttnProcessor2_0) / the classic processor
(AttnProcessor, explicit attention matrix), at 512 x 512 x 49 and 1024 x 576 x 49. Columns: total seconds
(CLIP + VAE encode, denoising, VAE decode), seconds per denoising step, peak GPU memory.

    python bench/bench_depth.py [--frames 49] [--steps 5] [--sizes 512x512,1024x576]
                                [--dtypes fp16,bf16] [--attention sdpa,classic] [--out results.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from harness.tiny_depth import build_full_size_depthcrafter  # noqa: E402

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def run_once(model, frames: torch.Tensor, steps: int) -> dict:
    stamps: list[float] = []

    def progress(step: int, total: int) -> None:
        torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = model.estimate(frames, steps=steps, progress=progress)
    torch.cuda.synchronize()
    total = time.perf_counter() - t0
    per_step = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else float("nan")
    return {
        "total_s": total,
        "step_s": per_step,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
        "finite": bool(torch.isfinite(out.depth).all()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=49)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--sizes", default="512x512,1024x576", help="WxH list")
    ap.add_argument("--dtypes", default="fp16,bf16")
    ap.add_argument("--attention", default="sdpa,classic")
    ap.add_argument("--out", default="", help="append JSON lines here")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_depth needs a CUDA GPU")

    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    rows = []
    print(
        f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, {args.frames} frames, {args.steps} steps"
    )
    hdr = f"{'dtype':5} {'attention':9} {'size':>9} {'total s':>8} {'s/step':>7} {'peak GiB':>9}"
    print(hdr)
    print("-" * len(hdr))
    for dname in args.dtypes.split(","):
        t0 = time.perf_counter()
        model = build_full_size_depthcrafter(DTYPES[dname], "cuda")
        build_s = time.perf_counter() - t0
        for attn in args.attention.split(","):
            model.set_attention(attn)
            for w, h in sizes:
                gen = torch.Generator().manual_seed(0)
                frames = torch.rand(args.frames, h, w, 3, generator=gen)
                row = {"dtype": dname, "attention": attn, "width": w, "height": h, "frames": args.frames}
                row["steps"] = args.steps
                try:
                    run_once(model, frames[:8], 1)  # warm-up: kernels, cuDNN choices
                    row.update(run_once(model, frames, args.steps))
                    line = f"{row['total_s']:8.2f} {row['step_s']:7.3f} {row['peak_gib']:9.1f}"
                    if not row["finite"]:
                        line += "  (non-finite output: random weights)"
                except torch.cuda.OutOfMemoryError:
                    row["oom"] = True
                    line = f"{'OOM':>8} {'':7} {torch.cuda.max_memory_allocated() / 2**30:9.1f}"
                torch.cuda.empty_cache()
                print(f"{dname:5} {attn:9} {f'{w}x{h}':>9} {line}", flush=True)
                row["build_s"] = build_s
                rows.append(row)
        del model
        torch.cuda.empty_cache()
    if args.out:
        with open(args.out, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
