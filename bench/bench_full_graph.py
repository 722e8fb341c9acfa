"""The shipped full workflow (``workflows/api/ex4d_full_api.json``) at full size through the real executor.

DepthCrafter, umT5-XXL, CLIP ViT-H, the Wan 2.1 VAE, the 14B DiT and the EX-4D adapter are loaded by the
host's own loaders and memory management from random files in the layouts users download (written by
``bench/full_weights.py``), one after another on one GPU, as a user runs the graph: 49 frames, generation at
512 x 512. Two recipes: ``published`` (the full workflow: DepthCrafter, 25 steps, CFG 5) and ``fast``
(``ex4d_fast_api.json``: the same graph with the step-distillation LoRA, 4 steps, CFG 1). One weights file and
one budget per process (the host reads its memory settings at import); the host is the one the harness selects
(``COMFYUI_PATH`` / ``EX4D_HOST``):

    python bench/full_weights.py --comfyui $COMFYUI_PATH --models /data/models --wan fp8   (or bf16, q8_0, q4_k_m)
    python bench/bench_full_graph.py --models /data/models --weights fp8 --budget-gb 12 --recipe fast,published
            --out bench/results/budgets_h100.jsonl
    python bench/bench_full_graph.py --models /data/models --weights q4_k_m --budget-gb 16 ...  (ComfyUI-GGUF's loader)
    python bench/bench_full_graph.py --models /data/models --config budget24 --oom-check --out ...
    python bench/bench_full_graph.py --table bench/results/budgets_h100.jsonl
    python bench/bench_full_graph.py --models /data/models --config budget24 --workflow long
            --out bench/results/long_video_h200.jsonl   (121 frames in 49-frame context windows; ComfyUI 0.33)
    python bench/bench_full_graph.py --models /data/models --weights bf16 --speed none,fp8,compile,fp8+compile
            --out ...   (the speed nodes side by side in one host process)

Weights (``--weights``): bf16 and fp8 (fp8_e4m3fn) through the host's UNETLoader; q8_0 and q4_k_m (GGUF)
through ComfyUI-GGUF's UnetLoaderGGUF, a third-party pack the bench expects in the host's custom_nodes
(``bench/gpu_env.sh`` puts it there on a GPU machine). ``--fp8-matmul`` starts the host with
``--fast fp8_matrix_mult``.

Budgets (``--budget-gb N``): a card with N GiB: a ballast tensor takes all but N GiB of the GPU before the host
starts, so the device really has N GiB (CUDA context included) and the host's free-memory checks see what such
a card reports (the peaks below leave the ballast out). ``--config`` names the earlier rows' combinations:
normal = bf16; budget24 = bf16 at 24 GiB; fp8 = the fp8 file with ``--fp8-matmul``.

Speed settings (``--speed``, a comma-separated list; default none): the pack's speed nodes before EX-4D Apply's
model input, exactly these (a workflow that ships one keeps it where the setting lists it, loses it where not;
ex4d_fast ships EX-4D FP8 Linear, so its "fp8" is the workflow as shipped):
  none         ... -> EX-4D Apply (the full and long workflows as shipped)
  fp8          ... -> EX-4D FP8 Linear -> EX-4D Apply
  compile      ... -> EX-4D Compile Blocks -> EX-4D Apply
  fp8+compile  ... -> EX-4D FP8 Linear -> EX-4D Compile Blocks -> EX-4D Apply

Each process runs the graph: "first" right after the host starts (files read, models loaded) with the
first recipe and speed setting, then one "cached" run per recipe (or per speed setting), each on a copy of the clip under a name
not used before, so every node after the loaders runs again with the models already loaded, as when a user
renders their next clip (a compile setting's first run includes the compilation in its sampler's first
step). ``--oom-check`` then queues (with the first speed setting) a graph that cannot fit (a 1920 x 1088 clip
at native size: DepthCrafter's window far too large for the budget), records the error, checks that the
host released its models, and runs the cached graph again to compare its time.
One JSON line per run (with its "speed"); ``--table`` prints them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))  # bench/ is not a package: its modules import each other by name
import arguments  # noqa: E402
from full_graph_prompts import (  # noqa: E402
    CLIPS,
    GGUF_WEIGHTS,
    RECIPES,
    WAN_FILES,
    attention_backend,
    oversized_prompt,
    prompt_for,
    sampler_settings,
)
from full_graph_table import print_runs  # noqa: E402
from records import append_records, read_records  # noqa: E402
from residency import Residency, evictions  # noqa: E402
from timing import DevicePeak, GiB, Gpu, Timer, gpu_profile_table  # noqa: E402

from harness.host import host_root  # noqa: E402
from harness.speed_nodes import SPEEDS  # noqa: E402

# --config: the earlier rows' names for a weights / budget / host-args combination
CONFIGS = {"normal": ("bf16", None, False), "budget24": ("bf16", 24.0, False), "fp8": ("fp8", None, True)}


def choice_list(choices, what: str):
    """An argparse type: a comma-separated list of ``choices``, checked (``what`` names them in the error)."""

    def parse(value: str) -> list[str]:
        picked = [v.strip() for v in value.split(",") if v.strip()]
        if not picked or any(v not in choices for v in picked):
            raise argparse.ArgumentTypeError(f"{what} are {', '.join(choices)} (comma-separated); got {value!r}")
        return picked

    return parse


def parse_args() -> argparse.Namespace:
    p = arguments.parser(__doc__)
    p.add_argument("--config", choices=sorted(CONFIGS),
                   help="shorthand for the earlier rows: normal = --weights bf16; budget24 = --weights bf16 "
                   "--budget-gb 24; fp8 = --weights fp8 --fp8-matmul")
    p.add_argument("--weights", choices=sorted(WAN_FILES),
                   help="the DiT file the graph loads (default bf16): bf16 / fp8 through the host's UNETLoader, "
                   "q8_0 / q4_k_m through ComfyUI-GGUF's UnetLoaderGGUF (that pack must be in the host's custom_nodes)")
    p.add_argument("--budget-gb", type=float, help="emulate a card with this much memory (a ballast tensor holds the "
                   "rest of the GPU before the host starts); default: the whole GPU")
    p.add_argument("--fp8-matmul", action="store_true", help="start the host with --fast fp8_matrix_mult")
    arguments.add_models(p, written_here=False)
    p.add_argument("--workflow", choices=("full", "long"), default="full",
                   help="full: the shipped full (or fast) workflow; long: the 121-frame one in the host's context windows")
    p.add_argument("--recipe", type=choice_list(RECIPES, "recipes"), default=["published"], metavar="LIST",
                   help="comma-separated, each one of: published (25 steps, CFG 5: the full workflow), fast (4 steps, "
                   "CFG 1, the step-distillation LoRA: ex4d_fast); the first run uses the first, then one cached "
                   "run per recipe (with --workflow full)")
    p.add_argument("--steps", type=int, help="sampler steps (default: the recipe's)")
    p.add_argument("--frames", type=int, help="frames to generate (default: the workflow's, 49 or 121)")
    p.add_argument("--attention", choices=("workflow", "host", "cudnn"), default="workflow",
                   help="EX-4D Attention Backend's backend: as the workflow ships it (cudnn), or another")
    p.add_argument("--speed", type=choice_list(SPEEDS, "speed settings"), default=["none"], metavar="LIST",
                   help="comma-separated speed settings, each one of: " + ", ".join(SPEEDS)
                   + " (default none); the first run uses the first, then one cached run per setting")
    p.add_argument("--first-only", action="store_true",
                   help="only the run right after the host starts (with the first --speed setting)")
    p.add_argument("--oom-check", action="store_true", help="after the runs, a graph that cannot fit, then one that can")
    p.add_argument("--compile-cache", metavar="DIR",
                   help="torch.compile's on-disk caches in DIR (TORCHINDUCTOR_CACHE_DIR, a folder a user may choose "
                   "and the pack keeps) instead of under the host's user folder, which is new in every bench "
                   "process: two processes with the same DIR time a restart with an empty, then a warm cache")
    p.add_argument("--profile", action="store_true",
                   help="after the runs, one more cached run of the first setting under cProfile (with --first-only: "
                   "the first run itself): the functions that took the most time printed (cumulative and own), the "
                   "profile saved beside --out")
    p.add_argument("--gpu-profile", type=int, default=0, metavar="N",
                   help="after the runs, one more cached run of the first setting under torch.profiler: the N "
                   "costliest GPU operations and kernels printed (an operation's row and its kernels' rows count "
                   "the same time)")
    arguments.add_results(p)
    args = p.parse_args()
    arguments.require(p, args, bool(args.models and (args.config or args.weights)),
                      "--models and --weights (or --config) are required")
    if args.table:
        return args
    if args.config:
        weights, budget, fp8_matmul = CONFIGS[args.config]
        args.weights = args.weights or weights
        args.budget_gb = args.budget_gb if args.budget_gb is not None else budget
        args.fp8_matmul = args.fp8_matmul or fp8_matmul
    if args.frames is None:
        args.frames = 121 if args.workflow == "long" else 49
    if args.workflow == "long" and args.recipe != ["published"]:
        p.error("--recipe fast runs with the full workflow")
    if args.oom_check and args.workflow != "full":
        p.error("--oom-check runs with the full workflow")
    if len(args.recipe) > 1 and len(args.speed) > 1:
        p.error("several recipes or several speed settings, not both")
    return args


def config_name(weights: str, budget_gib: float | None, fp8_matmul: bool) -> str:
    """The row's name: weights, then the budget and the host's fp8 matmul where set (bf16, fp8/16G, ...)."""
    return weights + (f"/{budget_gib:g}G" if budget_gib else "") + ("+mm" if fp8_matmul else "")


def rasteriser() -> str:
    """What Render Views' backend "auto" runs here."""
    from ex4d.render import resolve_backend

    return resolve_backend("auto")


def host_args_for(fp8_matmul: bool) -> tuple[str, ...]:
    return ("--fast", "fp8_matrix_mult") if fp8_matmul else ()


def sampler_timing(host, sampler_id: str) -> dict[str, Any]:
    """From the sampler node's start and its per-step progress messages: seconds before the first step
    ended (loading and weight patching included) and each later step."""
    start = next((t for (event, data), t in zip(host.server.messages, host.server.stamps, strict=True)
                  if event == "executing" and data.get("node") == sampler_id), None)
    steps = [t for (event, data), t in zip(host.server.messages, host.server.stamps, strict=True)
             if event == "progress" and data.get("node") == sampler_id]
    if start is None or not steps:
        return {}
    later = [round(b - a, 3) for a, b in itertools.pairwise(steps)]
    return {"sampler_first_step_s": round(steps[0] - start, 2), "sampler_step_s": later,
            "sampler_step_median_s": round(sorted(later)[len(later) // 2], 3) if later else None}


# where a run's time goes: node classes by stage (the sampler's first step, which loads and offloads the DiT, apart)
STAGES = {
    "depth": ("EX4DDepthModelLoader", "EX4DEstimateDepth", "EX4DLoadDepth"),
    "load": ("UNETLoader", "UnetLoaderGGUF", "VAELoader", "CLIPLoader", "CLIPVisionLoader", "EX4DAdapterLoader",
             "LoraLoaderModelOnly", "EX4DLoRA"),
    "encode": ("CLIPTextEncode", "CLIPVisionEncode"),
    "vae_encode": ("EX4DApply",),
    "sampler": ("EX4DWanSampler",),
    "vae_decode": ("VAEDecode",),
}


def time_split(per_node_s: dict[str, float], sampler: dict[str, Any]) -> dict[str, float]:
    """Seconds per stage; the sampler's into its first step (loading, offloading, patching) and the later steps."""
    stage_of = {cls: stage for stage, classes in STAGES.items() for cls in classes}
    split: dict[str, float] = {}
    for name, seconds in per_node_s.items():
        stage = stage_of.get(name.split(" ", 1)[1], "other")
        split[stage] = split.get(stage, 0.0) + seconds
    if "sampler" in split and sampler.get("sampler_first_step_s") is not None:
        split["sampler_first_step"] = sampler["sampler_first_step_s"]
        split["sampler_later_steps"] = split.pop("sampler") - sampler["sampler_first_step_s"]
    return {stage: round(seconds, 2) for stage, seconds in split.items()}


def compile_cache_counts(counters) -> dict[str, int]:
    """Dynamo's, AOTAutograd's and inductor's cache counters so far (hits, misses, bypasses), and graphs traced."""
    counts = {f"aot_{name}": n for name, n in counters["aot_autograd"].items() if "cache" in name}
    counts.update({name: n for name, n in counters["inductor"].items() if "cache" in name})
    counts["graphs_traced"] = counters["stats"]["unique_graphs"]
    return counts


# torch's own record of compile time (torch._dynamo.utils.compile_times): dynamo in all, its bytecode tracing, the
# backend (AOTAutograd + inductor, cache lookups included), guards, waiting for kernels, loading compiled modules
COMPILE_PHASES = ("_compile.compile_inner", "bytecode_tracing", "OutputGraph.call_user_compiler", "build_guards",
                  "async_compile.wait", "PyCodeCache.load_by_key_path")


def compile_seconds() -> dict[str, float]:
    """Seconds spent so far in this process in each of COMPILE_PHASES (those that ran)."""
    from torch._dynamo.utils import compile_times

    names, values = compile_times(repr="csv", aggregate=True)
    return {name: float(value) for name, value in zip(names, values, strict=True) if name in COMPILE_PHASES}


def run_once(host, torch, prompt: dict[str, Any], record: dict[str, Any], ballast_bytes: int = 0,
             out: str | None = None) -> dict[str, Any]:
    from torch._dynamo.utils import counters

    from harness.host import NodeExecutionError

    class_of = {node_id: node["class_type"] for node_id, node in prompt.items()}
    gpu = Gpu(torch)
    gpu.reset_peak()
    breaks = counters["graph_break"]
    breaks.clear()
    caches_before = compile_cache_counts(counters)
    compile_before = compile_seconds()
    error = None
    with Timer(gpu) as timer, DevicePeak(torch) as device_peak, Residency(torch) as residency:
        try:
            host.run(prompt)
        except NodeExecutionError as e:
            error = {"node_type": e.details.get("node_type"), "exception_type": e.details.get("exception_type"),
                     "message": str(e.details.get("exception_message", ""))[:600]}
    import comfy.model_management as mm

    ballast_gib = ballast_bytes / GiB
    peak_alloc, peak_reserved = gpu.peak()
    record = dict(record)
    record.update(
        completed=error is None,
        wall_s=round(timer.seconds, 2),
        per_node_s={f"{node_id} {class_of.get(node_id, '?')}": round(s, 2)
                    for node_id, s in host.node_seconds().items()},
        peak_alloc_gib=round(peak_alloc - ballast_gib, 2),
        peak_reserved_gib=round(peak_reserved - ballast_gib, 2),
        peak_device_gib=round((device_peak.peak - ballast_bytes) / GiB, 2),
        models_loaded_after=len(mm.current_loaded_models),
        error=error,
        graph_breaks=sum(breaks.values()),  # traced in this run (EX-4D Compile Blocks; 0 when nothing compiles)
        compile_caches={name: count - caches_before.get(name, 0)
                        for name, count in compile_cache_counts(counters).items() if count > caches_before.get(name, 0)},
        compile_s={phase: round(seconds - compile_before.get(phase, 0.0), 2)
                   for phase, seconds in compile_seconds().items() if seconds > compile_before.get(phase, 0.0)},
        residency=residency.by_node(host.server.messages, host.server.stamps, class_of, ballast_bytes),
    )
    models = {m for row in record["residency"].values() for m in row["models_gib"]}
    record["evicted"] = {m: lost for m in sorted(models) if (lost := evictions(record["residency"], m))}
    sampler = next((node_id for node_id, node in prompt.items() if node["class_type"] == "EX4DWanSampler"), None)
    timing = sampler_timing(host, sampler) if sampler is not None else {}
    record.update(timing, time_split_s=time_split(record["per_node_s"], timing))
    print(json.dumps(record), flush=True)
    append_records(out, [record])
    return record


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU")
    total_bytes = torch.cuda.mem_get_info()[1]
    compile_cache = "host user folder (new)"
    if args.compile_cache:
        cache = Path(args.compile_cache).resolve()
        compile_cache = "warm" if cache.is_dir() and any(cache.iterdir()) else "empty"
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache)
    ballast = None
    if args.budget_gb:
        ballast = torch.empty(total_bytes - int(args.budget_gb * GiB), dtype=torch.uint8, device="cuda")
    ballast_bytes = ballast.numel() if ballast is not None else 0
    from harness.bootstrap import host_version
    from harness.host import InProcessHost

    work = Path(tempfile.mkdtemp(prefix="ex4d-full-"))
    (work / "models").symlink_to(Path(args.models).resolve(), target_is_directory=True)
    host_args = host_args_for(args.fp8_matmul)
    t_start = time.perf_counter()
    host = InProcessHost(work, cpu=False, host_args=host_args).start()
    start_s = time.perf_counter() - t_start
    if args.weights in GGUF_WEIGHTS and "UnetLoaderGGUF" not in host.node_classes:
        raise SystemExit(f"--weights {args.weights} needs ComfyUI-GGUF in {host_root() / 'custom_nodes'}")
    clip, depth = CLIPS[args.workflow]
    copies = itertools.count()

    def fresh_clip() -> str:
        """A copy of the clip under a name not used before in this process, so the host re-runs every node."""
        name = f"{clip.stem}_{next(copies)}{clip.suffix}"
        shutil.copy(clip, host.input_dir / name)
        return name

    if depth is not None:
        shutil.copy(depth, host.input_dir / depth.name)
    base = {
        "host": host_version(), "config": config_name(args.weights, args.budget_gb, args.fp8_matmul),
        "weights": args.weights, "frames": args.frames, "width": 512, "height": 512,
        "budget_gib": args.budget_gb, "device": torch.cuda.get_device_name(), "dynamic_vram": host.dynamic_vram,
        "host_args": list(host_args), "host_start_s": round(start_s, 2),
        "attention": attention_backend(args.attention, args.workflow), "workflow": args.workflow,
        "rasteriser": rasteriser(), "compile_cache": compile_cache,
    }

    def graph(recipe: str, speed: str, run_name: str) -> dict[str, Any]:
        workflow = RECIPES[recipe] if args.workflow == "full" else args.workflow
        prompt = prompt_for(args.weights, fresh_clip(), args.frames, args.attention, workflow, speed, args.steps)
        record = {**base, **sampler_settings(prompt), "recipe": recipe, "speed": speed, "run": run_name}
        return run_once(host, torch, prompt, record, ballast_bytes, args.out)

    settings = [(recipe, speed) for recipe in args.recipe for speed in args.speed]
    if args.first_only and args.profile:  # the first run itself (loading, compiling) under the profiler
        results = [profiled(lambda: graph(*settings[0], "first (profiled)"), args.out)]
    else:
        results = [graph(*settings[0], "first")]
    if not args.first_only:
        results += [graph(recipe, speed, "cached") for recipe, speed in settings]
        if args.profile:
            results.append(profiled(lambda: graph(*settings[0], "cached (profiled)"), args.out))
        if args.gpu_profile:
            results.append(gpu_profiled(lambda: graph(*settings[0], "cached (GPU profiled)"), args.gpu_profile))
    if args.oom_check:
        from harness import media as video

        recipe, speed = settings[0]
        gen = torch.Generator().manual_seed(0)
        video.save_video(torch.rand(args.frames, 1088, 1920, 3, generator=gen), host.input_dir / "oversized.mp4",
                         fps=15)
        oversized = oversized_prompt(args.weights, args.frames, args.attention, speed, args.steps)
        results.append(run_once(host, torch, oversized,
                                {**base, **sampler_settings(oversized), "recipe": recipe, "speed": speed,
                                 "run": "oom (1920x1088 native)"}, ballast_bytes, args.out))
        results.append(graph(recipe, speed, "after oom"))  # the full workflow: --oom-check needs it
    return results


def profiled(run_graph, out: str | None) -> dict[str, Any]:
    """``run_graph()`` under cProfile (the executor runs the graph in this thread): where the host's and the pack's
    Python waits, GPU syncs included, which a stage's time alone does not say."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    record = profile.runcall(run_graph)
    stats = pstats.Stats(profile, stream=sys.stdout)
    if out:
        stats.dump_stats(str(Path(out).with_suffix(".prof")))
    for order, count in (("cumulative", 60), ("tottime", 30)):
        print(f"--- profile by {order} ---")
        stats.sort_stats(order).print_stats(count)
    return record


def gpu_profiled(run_graph, rows: int) -> dict[str, Any]:
    """``run_graph()`` under torch.profiler: the ``rows`` costliest GPU operations and kernels of the whole run,
    by self GPU time, which says what a stage's seconds are made of."""
    record, table = gpu_profile_table(run_graph, rows, width=90)
    print("--- GPU profile (self GPU time) ---")
    print(table, flush=True)
    return record


def main() -> None:
    args = parse_args()
    if args.table:
        print_runs(read_records(args.table))
        return
    print_runs(run(args))
    sys.stdout.flush()
    os._exit(0)  # the host's worker threads (aimdo, async offload) need not be joined


if __name__ == "__main__":
    main()
