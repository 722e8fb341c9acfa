"""DepthCrafter benchmark: full-size UNet / VAE / CLIP with random weights (built from the real configs, no
downloads), the published inference (5 steps, guidance 1, one window for 49 frames).

Rows: fp16 / bf16 x PyTorch SDPA attention (diffusers AttnProcessor2_0) / the classic processor
(AttnProcessor, explicit attention matrix), at 512 x 512 x 49 and 1024 x 576 x 49, x how the convolutions run
(``--variants``): as the library runs them ("published": cuDNN's default choices, the GroupNorms computed by
:func:`ex4d.depth.group_norm.split_group_norm`), with cuDNN's autotuner ("cudnn-benchmark"), with the VAE's and
UNet's 2-D convolutions in channels-last memory format ("channels-last"), or both; or with every GroupNorm of the
VAE and UNet run by PyTorch's own kernel ("torch-groupnorm", as the library ran them before) or by ``torch.compile``
(inductor: the statistics split over many thread blocks and the normalisation fused with the affine;
"compiled-groupnorm", its compile in the untimed run). Columns: total seconds, the encode's (CLIP + VAE encoder)
and the VAE decode's seconds in it, seconds per denoising step, peak GPU memory, the largest difference in
relative disparity (in [0, 1]) from the first variant's.
Each row is the second of two identical runs, so kernels and autotuner choices are already made. ``--profile N``
prints the N costliest GPU operations of one more run.

    python bench/bench_depth.py [--frames 49] [--steps 5] [--sizes 512x512,1024x576] [--dtypes fp16,bf16]
                                [--attention sdpa,classic] [--variants published,...] [--out results.jsonl]
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package: its modules import each other

import arguments  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from records import Column, append_records, table_header, table_row  # noqa: E402
from timing import Gpu, Timer, gpu_profile_table  # noqa: E402

from harness.tiny_depth import build_full_size_depthcrafter  # noqa: E402

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
COLUMNS = (
    Column("dtype", 5, lambda r: r["dtype"]),
    Column("attention", 9, lambda r: r["attention"]),
    Column("variant", 15, lambda r: r.get("variant", "published")),
    Column("size", 9, lambda r: f"{r['width']}x{r['height']}", align=">"),
    Column("total s", 8, lambda r: "OOM" if r.get("oom") else r["total_s"], ".2f", ">"),
    Column("encode s", 8, lambda r: "" if r.get("oom") else r.get("encode_s", ""), ".2f", ">"),
    Column("decode s", 8, lambda r: "" if r.get("oom") else r.get("decode_s", ""), ".2f", ">"),
    Column("s/step", 7, lambda r: "" if r.get("oom") else r["step_s"], ".3f", ">"),
    Column("peak GiB", 9, lambda r: r["peak_gib"], ".1f", ">"),
    Column("max diff", 8, lambda r: "" if r.get("oom") else r["max_diff_vs_first"], ".1e", ">"),
)


VARIANTS = ("published", "cudnn-benchmark", "channels-last", "both", "torch-groupnorm", "compiled-groupnorm")
STAGES = {"encode_frames": "encode_s", "encode_latents": "encode_s", "decode_disparity": "decode_s"}


def timed_stages(model, gpu: Gpu) -> dict[str, float]:
    """Seconds spent in the model's encode and decode stages, filled in as ``model`` runs (its methods wrapped
    on the instance)."""
    seconds = dict.fromkeys(STAGES.values(), 0.0)
    for name, key in STAGES.items():
        method = getattr(type(model), name)

        def timed(*a, _method=method, _key=key, **k):
            gpu.sync()
            t0 = time.perf_counter()
            out = _method(model, *a, **k)
            gpu.sync()
            seconds[_key] += time.perf_counter() - t0
            return out

        setattr(model, name, timed)
    return seconds


@functools.cache
def compiled_group_norm():
    """``F.group_norm`` compiled for any size: one graph per rank, group count, eps and dtype the models use (more
    than dynamo's default limit of 8 recompiles)."""
    torch._dynamo.config.recompile_limit = 64
    return torch.compile(F.group_norm, dynamic=True)


def _compiled_group_norm_forward(module: torch.nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    return compiled_group_norm()(x, module.num_groups, module.weight, module.bias, module.eps)


def prepare_variant(model, variant: str) -> None:
    """The 2-D convolutions of the UNet and the VAE in channels-last format for those variants (the 3-D ones, a
    few temporal layers, stay as they are); their GroupNorms compiled for "compiled-groupnorm", by PyTorch's own
    kernel for "torch-groupnorm", as the library runs them otherwise."""
    fmt = torch.channels_last if variant in ("channels-last", "both") else torch.contiguous_format
    for module in (*model.unet.modules(), *model.vae.modules()):
        if isinstance(module, torch.nn.Conv2d):
            module.to(memory_format=fmt)
        elif isinstance(module, torch.nn.GroupNorm):
            vars(module).pop("forward", None)
            if variant == "compiled-groupnorm":
                module.forward = types.MethodType(_compiled_group_norm_forward, module)
            elif variant == "torch-groupnorm":
                module.forward = types.MethodType(torch.nn.GroupNorm.forward, module)


@contextlib.contextmanager
def cudnn_autotuner(variant: str) -> Iterator[None]:
    """cuDNN's autotuner on for the variants that ask for it, as it was after."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = variant in ("cudnn-benchmark", "both")
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def kernel_table(model, frames: torch.Tensor, steps: int, rows: int, variant: str) -> str:
    """The ``rows`` GPU operations and kernels that took longest in one more run, with their share of its GPU
    time (an operation's row and its kernels' rows count the same time)."""
    with cudnn_autotuner(variant):
        return gpu_profile_table(lambda: model.estimate(frames, steps=steps), rows)[1]


def run_once(model, frames: torch.Tensor, steps: int, gpu: Gpu, variant: str = "published") -> dict:
    gpu.reset_peak()
    stages = timed_stages(model, gpu)
    try:
        with cudnn_autotuner(variant), Timer(gpu) as timer:
            out = model.estimate(frames, steps=steps, progress=timer.step)
    finally:
        for name in STAGES:
            vars(model).pop(name, None)
    later = timer.steps[1:]
    return {
        **{k: round(v, 3) for k, v in stages.items()},
        "total_s": timer.seconds,
        "step_s": sum(later) / len(later) if later else float("nan"),
        "peak_gib": gpu.peak()[0],
        "finite": bool(torch.isfinite(out.depth).all()),
        "disparity": out.disparity,
    }


def main() -> None:
    ap = arguments.parser(__doc__)
    ap.add_argument("--frames", type=int, default=49)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--sizes", default="512x512,1024x576", help="WxH list")
    ap.add_argument("--dtypes", default="fp16,bf16")
    ap.add_argument("--attention", default="sdpa,classic")
    ap.add_argument("--variants", default="published", help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after each row, one more run under torch.profiler: its N costliest GPU operations")
    arguments.add_results(ap, table=False)
    args = ap.parse_args()
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        sys.exit(f"--variants: {', '.join(unknown)} not among {', '.join(VARIANTS)}")
    if not torch.cuda.is_available():
        sys.exit("bench_depth needs a CUDA GPU")

    gpu = Gpu(torch)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    rows = []
    first_disparity: dict[tuple, torch.Tensor] = {}  # the first variant's, per setting, to compare with
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
        for attn, variant in itertools.product(args.attention.split(","), args.variants.split(",")):
            model.set_attention(attn)
            prepare_variant(model, variant)
            for w, h in sizes:
                gen = torch.Generator().manual_seed(0)
                frames = torch.rand(args.frames, h, w, 3, generator=gen)
                row = {"dtype": dname, "attention": attn, "variant": variant, "width": w, "height": h,
                       "frames": args.frames}
                row["steps"] = args.steps
                try:
                    run_once(model, frames, args.steps, gpu, variant)  # warm-up: kernels, cuDNN choices
                    row.update(run_once(model, frames, args.steps, gpu, variant))
                    disparity = row.pop("disparity")
                    reference = first_disparity.setdefault((dname, attn, w, h), disparity)
                    row["max_diff_vs_first"] = float((disparity - reference).abs().max())
                    shown = row
                except torch.cuda.OutOfMemoryError:
                    row["oom"] = True
                    shown = {**row, "peak_gib": gpu.peak()[0]}  # shown, not recorded: the run did not finish
                if args.profile and not row.get("oom"):
                    print(kernel_table(model, frames, args.steps, args.profile, variant), flush=True)
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
