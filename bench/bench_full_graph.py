"""The shipped full workflow (``workflows/api/ex4d_full_api.json``) at full size through the real executor.

DepthCrafter, umT5-XXL, CLIP ViT-H, the Wan 2.1 VAE, the 14B DiT and the EX-4D adapter are loaded by the
host's own loaders and memory management from random files in the layouts users download (written by
``bench/full_weights.py``), one after another on one GPU, as a user runs the graph: 49 frames, 25 steps,
CFG 5, generation at 512 x 512 (the published settings). One configuration per process (the host reads its
memory settings at import); the host is the one the harness selects (``COMFYUI_PATH`` / ``EX4D_HOST``):

    python bench/full_weights.py --comfyui $COMFYUI_PATH --models /data/models --wan bf16
    python bench/bench_full_graph.py --models /data/models --config normal   --out bench/results/full_graph_h100.jsonl
    python bench/bench_full_graph.py --models /data/models --config budget24 --out ... --oom-check
    python bench/full_weights.py ... --wan fp8   (after removing the bf16 DiT file if the disk is small)
    python bench/bench_full_graph.py --models /data/models --config fp8      --out ...
    python bench/bench_full_graph.py --table bench/results/full_graph_h100.jsonl
    python bench/bench_full_graph.py --models /data/models --config budget24 --workflow long \
        --out bench/results/long_video_h200.jsonl   (121 frames in 49-frame context windows; ComfyUI 0.33)
    python bench/bench_full_graph.py --models /data/models --config normal --speed none,fp8,compile,fp8+compile \
        --out ...   (the speed nodes side by side in one host process)

Configurations:
  normal    the bf16 DiT file, the host's normal memory management (dynamic VRAM where the host has it)
  budget24  the same on a 24 GiB card: a ballast tensor takes all but 24 GiB of the GPU before the host
            starts, so the device really has 24 GiB (CUDA context included) and the host's free-memory
            checks see what a 24 GiB card reports (the peaks below leave the ballast out)
  fp8       the fp8_e4m3fn DiT file with the host's --fast fp8_matrix_mult

Speed settings (``--speed``, a comma-separated list; default none): the pack's opt-in speed nodes inserted
before EX-4D Apply's model input:
  none         the workflow as shipped
  fp8          ... -> EX-4D FP8 Linear -> EX-4D Apply
  compile      ... -> EX-4D Compile Blocks -> EX-4D Apply
  fp8+compile  ... -> EX-4D FP8 Linear -> EX-4D Compile Blocks -> EX-4D Apply

Each configuration runs the graph: "first" right after the host starts (files read, models loaded) with
the first speed setting, then one "cached" run per speed setting, each on a copy of the clip under a name
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
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from harness.speed_nodes import SPEEDS, insert_speed  # noqa: E402  (shared with the UI workflows' writer)

GiB = 1024**3
WORKFLOWS = {"full": REPO / "workflows" / "api" / "ex4d_full_api.json",  # 49 frames, DepthCrafter depth
             "long": REPO / "workflows" / "api" / "ex4d_long_api.json"}  # 121 frames, true depth, context windows
CLIPS = {"full": (REPO / "assets" / "example" / "clip.mp4", None),
         "long": (REPO / "assets" / "example" / "clip_121.mp4", REPO / "assets" / "example" / "depth_121.npz")}
BUDGET_GIB = 24.0
WAN_FILES = {"bf16": "wan2.1_i2v_480p_14B_bf16.safetensors", "fp8": "wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors"}
CONFIGS = ("normal", "budget24", "fp8")


def speed_list(value: str) -> list[str]:
    """``--speed``'s comma-separated settings, checked."""
    speeds = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in speeds if v not in SPEEDS]
    if not speeds or unknown:
        raise argparse.ArgumentTypeError(f"speed settings are {', '.join(SPEEDS)} (comma-separated); got {value!r}")
    return speeds


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=CONFIGS)
    p.add_argument("--models", help="models folder written by bench/full_weights.py")
    p.add_argument("--workflow", choices=sorted(WORKFLOWS), default="full",
                   help="full: the shipped full workflow; long: the 121-frame one in the host's context windows")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--frames", type=int, help="frames to generate (default: the workflow's, 49 or 121)")
    p.add_argument("--attention", choices=("workflow", "host", "cudnn"), default="workflow",
                   help="EX-4D Attention Backend's backend: as the workflow ships it (cudnn), or another")
    p.add_argument("--speed", type=speed_list, default=["none"], metavar="LIST",
                   help="comma-separated speed settings, each one of: " + ", ".join(SPEEDS)
                   + " (default none); the first run uses the first, then one cached run per setting")
    p.add_argument("--first-only", action="store_true",
                   help="only the run right after the host starts (with the first --speed setting)")
    p.add_argument("--oom-check", action="store_true", help="after the runs, a graph that cannot fit, then one that can")
    p.add_argument("--out", help="append one JSON line per run to this file")
    p.add_argument("--table", help="print the table of a results file and exit")
    args = p.parse_args()
    if not args.table and not (args.config and args.models):
        p.error("--config and --models are required (or --table FILE)")
    if args.frames is None:
        args.frames = 121 if args.workflow == "long" else 49
    if args.oom_check and args.workflow != "full":
        p.error("--oom-check runs with the full workflow")
    return args


class DevicePeak:
    """Peak GPU memory in use on the device (all allocators: torch's, comfy-aimdo's, the driver's), polled."""

    def __init__(self, torch, interval: float = 0.02):
        self.torch, self.interval, self.peak = torch, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            free, total = self.torch.cuda.mem_get_info()
            self.peak = max(self.peak, total - free)
            time.sleep(self.interval)

    def __enter__(self) -> DevicePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def prompt_for(config: str, video: str, steps: int, frames: int, attention: str = "workflow",
               workflow: str = "full", speed: str = "none") -> dict[str, Any]:
    prompt = json.loads(WORKFLOWS[workflow].read_text())
    insert_speed(prompt, speed)
    for node in prompt.values():
        inputs = node["inputs"]
        match node["class_type"]:
            case "EX4DLoadVideo":
                inputs.update(video=video, frame_load_cap=frames)
            case "EX4DLoadDepth":
                inputs.update(frame_load_cap=frames)
            case "UNETLoader":
                inputs.update(unet_name=WAN_FILES["fp8" if config == "fp8" else "bf16"], weight_dtype="default")
            case "EX4DApply":  # the published settings: the 512x320 render stretched to 512x512
                inputs.update(length=frames, resize="stretch (published)", width=512, height=512)
            case "EX4DWanSampler":
                inputs.update(steps=steps)
            case "EX4DAttention" if attention != "workflow":
                inputs.update(backend=attention)
    return prompt


def oversized_prompt(config: str, steps: int, frames: int, attention: str, speed: str = "none") -> dict[str, Any]:
    # the full workflow (estimated depth)
    prompt = prompt_for(config, "oversized.mp4", steps, frames, attention, speed=speed)
    for node in prompt.values():
        if node["class_type"] == "EX4DLoadVideo":
            node["inputs"].update(resize="native")
    return prompt


def attention_backend(choice: str, workflow: str) -> str:
    if choice != "workflow":
        return choice
    nodes = json.loads(WORKFLOWS[workflow].read_text()).values()
    return next((n["inputs"]["backend"] for n in nodes if n["class_type"] == "EX4DAttention"), "host")


def rasteriser() -> str:
    """What Render Views' backend "auto" runs here."""
    from ex4d.render import resolve_backend

    return resolve_backend("auto")


def host_args_for(config: str) -> tuple[str, ...]:
    if config == "fp8":
        return ("--fast", "fp8_matrix_mult")
    return ()


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


def run_once(host, torch, prompt: dict[str, Any], record: dict[str, Any], ballast_bytes: int = 0) -> dict[str, Any]:
    from torch._dynamo.utils import counters

    from harness.host import NodeExecutionError

    class_of = {node_id: node["class_type"] for node_id, node in prompt.items()}
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    breaks = counters["graph_break"]
    breaks.clear()
    t0 = time.perf_counter()
    error = None
    with DevicePeak(torch) as device_peak:
        try:
            host.run(prompt)
        except NodeExecutionError as e:
            error = {"node_type": e.details.get("node_type"), "exception_type": e.details.get("exception_type"),
                     "message": str(e.details.get("exception_message", ""))[:600]}
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    import comfy.model_management as mm

    record = dict(record)
    record.update(
        completed=error is None,
        wall_s=round(wall, 2),
        per_node_s={f"{node_id} {class_of.get(node_id, '?')}": round(s, 2)
                    for node_id, s in host.node_seconds().items()},
        peak_alloc_gib=round((torch.cuda.max_memory_allocated() - ballast_bytes) / GiB, 2),
        peak_reserved_gib=round((torch.cuda.max_memory_reserved() - ballast_bytes) / GiB, 2),
        peak_device_gib=round((device_peak.peak - ballast_bytes) / GiB, 2),
        models_loaded_after=len(mm.current_loaded_models),
        error=error,
        graph_breaks=sum(breaks.values()),  # traced in this run (EX-4D Compile Blocks; 0 when nothing compiles)
    )
    sampler = next((node_id for node_id, node in prompt.items() if node["class_type"] == "EX4DWanSampler"), None)
    if sampler is not None:
        record.update(sampler_timing(host, sampler))
    print(json.dumps(record), flush=True)
    return record


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU")
    total_bytes = torch.cuda.mem_get_info()[1]
    ballast = None
    if args.config == "budget24":
        ballast = torch.empty(total_bytes - int(BUDGET_GIB * GiB), dtype=torch.uint8, device="cuda")
    ballast_bytes = ballast.numel() if ballast is not None else 0
    from harness.bootstrap import host_version
    from harness.host import InProcessHost

    work = Path(tempfile.mkdtemp(prefix="ex4d-full-"))
    (work / "models").symlink_to(Path(args.models).resolve(), target_is_directory=True)
    host_args = host_args_for(args.config)
    t_start = time.perf_counter()
    host = InProcessHost(work, cpu=False, host_args=host_args).start()
    start_s = time.perf_counter() - t_start
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
        "host": host_version(), "config": args.config, "frames": args.frames, "width": 512, "height": 512,
        "steps": args.steps, "cfg": 5.0, "budget_gib": BUDGET_GIB if args.config == "budget24" else None,
        "device": torch.cuda.get_device_name(), "dynamic_vram": host.dynamic_vram, "host_args": list(host_args),
        "host_start_s": round(start_s, 2), "attention": attention_backend(args.attention, args.workflow),
        "workflow": args.workflow,
        "rasteriser": rasteriser(),
    }

    def graph(speed: str, run_name: str) -> dict[str, Any]:
        prompt = prompt_for(args.config, fresh_clip(), args.steps, args.frames, args.attention, args.workflow, speed)
        return run_once(host, torch, prompt, {**base, "speed": speed, "run": run_name}, ballast_bytes)

    speeds = args.speed
    results = [graph(speeds[0], "first")]
    if not args.first_only:
        results += [graph(speed, "cached") for speed in speeds]
    if args.oom_check:
        from ex4d import video

        gen = torch.Generator().manual_seed(0)
        video.save_video(torch.rand(args.frames, 1088, 1920, 3, generator=gen), host.input_dir / "oversized.mp4",
                         fps=15)
        results.append(run_once(host, torch, oversized_prompt(args.config, args.steps, args.frames, args.attention,
                                                              speeds[0]),
                                {**base, "speed": speeds[0], "run": "oom (1920x1088 native)"}, ballast_bytes))
        results.append(graph(speeds[0], "after oom"))  # the full workflow: --oom-check needs it
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    head = (f"{'host':<8}{'config':<15}{'attn':<6}{'speed':<12}{'raster':<11}{'run':<24}{'ok':>4}{'wall s':>8}"
            f"{'alloc':>7}{'reserv':>7}{'device':>7}"
            f"{'budget':>7}{'1st':>6}{'step':>6}  slowest nodes (s)")
    print(head)
    print("-" * (len(head) + 40))
    for r in results:
        nodes = sorted(r["per_node_s"].items(), key=lambda kv: -kv[1])[:4]
        slow = ", ".join(f"{name.split(' ', 1)[1]} {s:.1f}" for name, s in nodes)
        budget = f"{r['budget_gib']:.0f}" if r.get("budget_gib") else "-"
        config = r["config"] if r.get("workflow", "full") == "full" else f"{r['config']}/{r['frames']}f"
        run = r["run"] if r.get("steps", 25) == 25 else f"{r['run']} ({r['steps']} steps)"
        print(f"{r['host']:<8}{config:<15}{r.get('attention', 'host'):<6}{r.get('speed', 'none'):<12}"
              f"{r.get('rasteriser', 'torch'):<11}"
              f"{run:<24}{'yes' if r['completed'] else 'NO':>4}{r['wall_s']:8.1f}"
              f"{r['peak_alloc_gib']:7.1f}{r['peak_reserved_gib']:7.1f}{r['peak_device_gib']:7.1f}{budget:>7}"
              f"{_seconds(r.get('sampler_first_step_s')):>6}{_seconds(r.get('sampler_step_median_s'), 2):>6}  {slow}")
        if r.get("error"):
            print(f"{'':<76}error: {r['error']['exception_type']}: {r['error']['message'][:160]!r}")
    if results:
        print(f"device: {results[-1]['device']}; alloc / reserv = torch's allocator peaks, device = peak in use on the "
              "GPU (all allocators, polled every 20 ms); GiB. 1st = EX-4D Wan Sampler's start to its first step's end "
              "(loading and weight patching included), step = median of the later CFG steps; s")


def _seconds(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    args = parse_args()
    if args.table:
        print_table([json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()])
        return
    results = run(args)
    if args.out:
        with open(args.out, "a") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    print_table(results)
    sys.stdout.flush()
    os._exit(0)  # the host's worker threads (aimdo, async offload) need not be joined


if __name__ == "__main__":
    main()
