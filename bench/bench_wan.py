"""EX-4D generation speed and memory at full Wan 2.1 I2V 14B shapes, through the host's own machinery.

One configuration per process (the host's memory settings are read at import), e.g.:

    python bench/bench_wan.py --comfyui /path/to/ComfyUI --config bf16   --out wan.jsonl
    python bench/bench_wan.py --comfyui /path/to/ComfyUI --config fp8    --out wan.jsonl
    python bench/bench_wan.py --comfyui /path/to/ComfyUI --config lowmem --out wan.jsonl
    python bench/bench_wan.py --comfyui /path/to/ComfyUI --config bf16 --settings cudnn,cudnn+fp8+compile --profile
    python bench/bench_wan.py --table wan.jsonl          # all results so far, one table
    python bench/bench_wan.py --comfyui /path/to/ComfyUI --config fp8 --load file --weights-dir /data/wan

``--load file`` loads the DiT the way a user does: a safetensors file in the layout of ComfyUI's
repackaged ``wan2.1_i2v_480p_14B_{bf16,fp8_e4m3fn}.safetensors`` (random weights, written to
``--weights-dir`` first if absent: 33 GB bf16, 17 GB fp8) through the host's own loader
``comfy.sd.load_diffusion_model`` (the file's writer is ``bench/full_weights.py``'s). On a host with
dynamic VRAM (0.33 on NVIDIA) the bench starts it as the host's main.py does, so the loader hands back the
host's dynamic model patcher, which applies weight patches (the EX-4D LoRA) at each cast instead of
merging them at load.

The DiT, the EX-4D adapter and the inputs are ``bench/wan_model.py``'s (random weights, the published
shapes). Sampling is the EX-4D Wan Sampler's: the host's sampler with the published sigmas, CFG batched by
the host when memory allows.

Configurations (weights stored / compute):
  bf16         bf16 / bf16, the host's normal memory management
  fp8          float8_e4m3fn / bf16 (the host's fp8 weight option), normal memory management
  lowmem       float8_e4m3fn / bf16, the host's partial loading under --budget-gb (default 24)
  lowmem-bf16  bf16 / bf16, partial loading under --budget-gb
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package: its modules import each other
import arguments  # noqa: E402
from records import Column, append_records, print_table, read_records  # noqa: E402
from timing import GiB, Gpu, Timer  # noqa: E402
from wan_errors import MARK, attention_errors, print_errors  # noqa: E402
from wan_model import (  # noqa: E402
    add_dit_args,
    build_wan_i2v,
    dit_size,
    host_version,
    load_pack,
    load_wan_file,
    sampling_inputs,
    setup_host,
    with_random_ex4d,
)
from wan_profile import profile_step  # noqa: E402
from wan_settings import ATTENTION_BACKENDS, compile_check, setting_name, with_setting  # noqa: E402


@dataclass(frozen=True)
class Config:
    weight_dtype: str
    partial: bool  # limit the host's view of GPU memory so it offloads part of the weights


CONFIGS = {
    "bf16": Config("bfloat16", False),
    "fp8": Config("float8_e4m3fn", False),
    "lowmem": Config("float8_e4m3fn", True),
    "lowmem-bf16": Config("bfloat16", True),
}


@dataclass
class Result:
    config: str
    ex4d: bool
    weights: str
    frames: int
    size: str
    tokens: int
    steps: int
    load_s: float
    first_step_s: float
    step_s: float
    peak_alloc_gib: float
    peak_reserved_gib: float
    resident_weights_gib: float
    budget_gib: float | None
    device: str
    load: str = "build"
    host: str = ""
    patcher: str = ""
    attention: str = "host"
    linear: str = "host"  # host: the host's Linear layers; fp8: EX-4D FP8 Linear
    compiled: bool = False  # EX-4D Compile Blocks
    compile_check: dict | None = None  # compile_check(): graph breaks, compiled versions of the block code
    profile: dict | None = None  # profile_step(): GPU seconds of one CFG step by kind of kernel


def parse_args() -> argparse.Namespace:
    p = arguments.parser(__doc__)
    p.add_argument("--config", choices=sorted(CONFIGS), help="configuration to run (one per process)")
    add_dit_args(p, steps=3)
    p.add_argument("--fp8-linear", action="store_true", help="EX-4D FP8 Linear on the blocks' Linear layers")
    p.add_argument("--compile", action="store_true", help="EX-4D Compile Blocks (torch.compile, inductor)")
    p.add_argument("--settings", help="comma-separated speed settings timed side by side in this process on the "
                                      "same model (instead of --attention / --fp8-linear / --compile), each "
                                      "'+'-joined as in --error-settings, e.g. cudnn,cudnn+compile,cudnn+fp8+compile")
    p.add_argument("--errors", type=int, metavar="STEPS", default=0,
                   help="after the timings of --settings (instead of timing without it): the relative error "
                        "of each --error-settings setting against the "
                        "model with the host's attention and Linear layers, of one prediction and of a STEPS-step "
                        "latent (same model, inputs, seed)")
    p.add_argument("--error-settings", default="cudnn,efficient,flash",
                   help="comma-separated settings for --errors, each an attention backend and/or fp8 and/or compile "
                        "joined by '+', e.g. cudnn+fp8+compile; exact32 is the float32 attention reference (each "
                        "setting's prediction is compared with it as well)")
    p.add_argument("--error-latents", type=int, default=1, metavar="N",
                   help="how many of the --error-settings (the first N) also get the STEPS-step latent")
    p.add_argument("--budget-gb", type=float, default=24.0, help="GPU memory budget of the lowmem configs")
    p.add_argument("--headroom-gb", type=float, default=4.0,
                   help="lowmem: memory kept free for activations when the host decides how many weights fit")
    p.add_argument("--profile", action="store_true",
                   help="after the timed steps, one more CFG step under torch.profiler: GPU seconds by kind of "
                        "kernel (attention, matmul, inductor-fused, other) and its busiest kernels")
    arguments.add_results(p)
    args = p.parse_args()
    if args.errors and args.errors < 2:
        p.error("--errors needs at least 2 steps (the one-step prediction is measured as well)")
    arguments.require(p, args, bool(args.config), "--config is required")
    if args.config:
        arguments.require_comfyui(p, args)
    return args


def run(args: argparse.Namespace) -> Iterator[Result | dict]:
    import torch

    gpu = Gpu(torch)
    if not gpu.cuda and not args.tiny:
        raise SystemExit("this benchmark needs a CUDA GPU (--tiny runs the code path on the CPU)")
    size = dit_size(args)
    cfg = CONFIGS[args.config]
    reserve = None
    if cfg.partial and gpu.cuda:
        # The host keeps `reserve_vram` free; leave it budget - headroom for weights, the rest for activations.
        reserve = max(0.0, gpu.total_gib() - args.budget_gb + args.headroom_gb)
    host_root = Path(args.comfyui).resolve()
    dynamic = setup_host(host_root, reserve, cpu=not gpu.cuda, dynamic_vram=args.load == "file")
    pack = load_pack()
    import comfy.model_management as mm

    weight_dtype = getattr(torch, cfg.weight_dtype)
    with Timer(gpu) as timer:
        if args.load == "file":
            base = load_wan_file(size, weight_dtype, Path(args.weights_dir))
            how = f"loaded through comfy.sd.load_diffusion_model as {type(base).__name__} (dynamic VRAM {dynamic})"
        else:
            base = build_wan_i2v(size, weight_dtype)
            how = "built"
    print(f"{how}: the random {size.dim}-wide, {size.layers}-block DiT ({cfg.weight_dtype}) in "
          f"{timer.seconds:.1f} s", flush=True)

    inputs = sampling_inputs(pack, args)
    model = base if args.no_ex4d else with_random_ex4d(pack, base, size, inputs)
    settings = args.settings.split(",") if args.settings else ["+".join([
        *([args.attention] if args.attention != "host" else []), *(["fp8"] if args.fp8_linear else []),
        *(["compile"] if args.compile else [])])]
    if args.errors and not args.settings:
        yield attention_errors(args, pack, model, inputs, gpu)
        return

    for setting in settings:
        patched = with_setting(pack, model, setting)
        parts = setting.split("+")
        compiled = "compile" in parts
        if compiled:
            torch._dynamo.reset()
            torch._dynamo.utils.counters.clear()
            torch._logging.set_logs(graph_breaks=True)  # where each break sits, in the log
        gpu.reset_peak()
        with Timer(gpu) as load:
            mm.load_models_gpu([patched])  # weights to the GPU, LoRA merged (what the sampler would do first)
        resident = patched.loaded_size() / GiB
        print(f"{setting or 'host'}: loaded in {load.seconds:.1f} s, {resident:.1f} GiB of weights on the GPU",
              flush=True)

        times = timed_sample(gpu, patched, args.cfg, inputs)
        torch._logging.set_logs()
        resident = max(resident, patched.loaded_size() / GiB)
        peak_alloc, peak_reserved = gpu.peak()
        result = Result(
            config=args.config,
            ex4d=not args.no_ex4d,
            weights=cfg.weight_dtype,
            frames=args.frames,
            size=f"{args.width}x{args.height}",
            tokens=inputs.tokens,
            steps=args.steps,
            load_s=load.seconds,
            first_step_s=times[0],
            step_s=statistics.median(times[1:] or times),
            peak_alloc_gib=peak_alloc,
            peak_reserved_gib=peak_reserved,
            resident_weights_gib=resident,
            budget_gib=args.budget_gb if cfg.partial else None,
            device=gpu.name(),
            load=args.load,
            host=host_version(host_root),
            patcher=type(base).__name__,
            attention=next((part for part in parts if part in ATTENTION_BACKENDS), "host"),
            linear="fp8" if "fp8" in parts else "host",
            compiled=compiled,
            compile_check=compile_check(base) if compiled else None,
        )
        if args.profile:
            result.profile = profile_step(gpu, patched, args.cfg, inputs, inputs.sigmas[-2:])
        yield result
    if args.errors:
        yield attention_errors(args, pack, model, inputs, gpu)


def timed_sample(gpu: Gpu, model, cfg: float, inputs) -> list[float]:
    """The sampler's run; the seconds of each of its steps."""
    import comfy.sample

    with Timer(gpu, label="") as timer:
        comfy.sample.sample_custom(model, inputs.noise, cfg, inputs.sampler, inputs.sigmas, inputs.positive,
                                   inputs.negative, inputs.latent, callback=timer.step, disable_pbar=True, seed=0)
    return timer.steps


COLUMNS = (
    Column("host", 8, lambda r: r.get("host", "") or "?"),
    Column("load", 6, lambda r: r.get("load", "build")),
    Column("patcher", 9, lambda r: "dynamic" if "Dynamic" in r.get("patcher", "") else "classic"),
    Column("config", 12, lambda r: r["config"]),
    Column("setting", 20, setting_name),
    Column("EX-4D", 6, lambda r: "yes" if r["ex4d"] else "no", align=">"),
    Column("size", 13, lambda r: f"{r['size']}x{r['frames']}", align=">"),
    Column("load s", 8, lambda r: r["load_s"], ".1f", ">"),
    Column("step 1 s", 9, lambda r: r["first_step_s"], ".2f", ">"),
    Column("s/step", 8, lambda r: r["step_s"], ".2f", ">"),
    Column("25 steps s", 11, lambda r: 25 * r["step_s"], ".1f", ">"),
    Column("peak GiB", 9, lambda r: r["peak_alloc_gib"], ".1f", ">"),
    Column("reserved", 9, lambda r: r["peak_reserved_gib"], ".1f", ">"),
    Column("resident", 9, lambda r: r["resident_weights_gib"], ".1f", ">"),
    Column("budget", 8, lambda r: r.get("budget_gib") or None, ".0f", ">"),
)


def notes(r: dict) -> str:
    """A timing's profile and compile check, where it has them."""
    found = []
    if r.get("profile"):
        kinds = r["profile"]["kinds_s"]
        found.append(f"GPU s of one CFG step {sum(kinds.values()):.3f}: "
                     + ", ".join(f"{k} {v:.3f}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])))
    if r.get("compile_check"):
        check = r["compile_check"]
        found.append(f"{check['graph_breaks']} graph breaks, {check['block_versions']} compiled block versions")
    return f"  {setting_name(r)}: " + "; ".join(found) if found else ""


def print_timings(results: list[dict]) -> None:
    print_table(COLUMNS, results)
    for line in filter(None, map(notes, results)):
        print(line)
    if results:
        print(
            f"device: {results[-1]['device']}; s/step = median of the steps after the first (one CFG step: "
            "cond + uncond); peak = torch max allocated during load + sampling"
        )


def main() -> None:
    args = parse_args()
    if args.table:
        lines = read_records(args.table)
        print_timings([r for r in lines if MARK not in r])
        print_errors([r for r in lines if MARK in r])
        return
    import torch

    with torch.inference_mode():  # as the host's executor runs every node
        for result in run(args):
            line = result if isinstance(result, dict) else asdict(result)
            append_records(args.out, [line])  # as each comes: a later setting's failure keeps the earlier ones
            if isinstance(result, dict):
                print(json.dumps(line), flush=True)
            else:
                print_timings([line])


if __name__ == "__main__":
    main()
