"""DepthCrafter benchmark: full-size UNet / VAE / CLIP with random weights (built from the real configs, no
downloads), the published inference (5 steps, guidance 1, one window for 49 frames).

Rows: fp16 / bf16 x PyTorch SDPA attention (diffusers AttnProcessor2_0) / the classic processor
(AttnProcessor, explicit attention matrix), at 512 x 512 x 49 and 1024 x 576 x 49. Columns: total seconds
(CLIP + VAE encode, denoising, VAE decode), seconds per denoising step, peak GPU memory.

    python bench/bench_depth.py [--frames 49] [--steps 5] [--sizes 512x512,1024x576]
                                [--dtypes fp16,bf16] [--attention sdpa,classic] [--out results.jsonl]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package: its modules import each other

import arguments  # noqa: E402
import torch  # noqa: E402
from records import Column, append_records, table_header, table_row  # noqa: E402
from timing import Gpu, Timer  # noqa: E402

from harness.tiny_depth import build_full_size_depthcrafter  # noqa: E402

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
COLUMNS = (
    Column("dtype", 5, lambda r: r["dtype"]),
    Column("attention", 9, lambda r: r["attention"]),
    Column("size", 9, lambda r: f"{r['width']}x{r['height']}", align=">"),
    Column("total s", 8, lambda r: "OOM" if r.get("oom") else r["total_s"], ".2f", ">"),
    Column("s/step", 7, lambda r: "" if r.get("oom") else r["step_s"], ".3f", ">"),
    Column("peak GiB", 9, lambda r: r["peak_gib"], ".1f", ">"),
)


def run_once(model, frames: torch.Tensor, steps: int, gpu: Gpu) -> dict:
    gpu.reset_peak()
    with Timer(gpu) as timer:
        out = model.estimate(frames, steps=steps, progress=timer.step)
    later = timer.steps[1:]
    return {
        "total_s": timer.seconds,
        "step_s": sum(later) / len(later) if later else float("nan"),
        "peak_gib": gpu.peak()[0],
        "finite": bool(torch.isfinite(out.depth).all()),
    }


def main() -> None:
    ap = arguments.parser(__doc__)
    ap.add_argument("--frames", type=int, default=49)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--sizes", default="512x512,1024x576", help="WxH list")
    ap.add_argument("--dtypes", default="fp16,bf16")
    ap.add_argument("--attention", default="sdpa,classic")
    arguments.add_results(ap, table=False)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_depth needs a CUDA GPU")

    gpu = Gpu(torch)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    rows = []
    print(
        f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, {args.frames} frames, {args.steps} steps"
    )
    hdr = table_header(COLUMNS, " ")
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
                    run_once(model, frames[:8], 1, gpu)  # warm-up: kernels, cuDNN choices
                    row.update(run_once(model, frames, args.steps, gpu))
                    shown = row
                except torch.cuda.OutOfMemoryError:
                    row["oom"] = True
                    shown = {**row, "peak_gib": gpu.peak()[0]}  # shown, not recorded: the run did not finish
                torch.cuda.empty_cache()
                note = "" if row.get("finite", True) else "  (non-finite output: random weights)"
                print(table_row(COLUMNS, shown, " ") + note, flush=True)
                row["build_s"] = build_s
                rows.append(row)
        del model
        torch.cuda.empty_cache()
    append_records(args.out, rows)


if __name__ == "__main__":
    main()
