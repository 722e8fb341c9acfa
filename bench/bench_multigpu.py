"""EX-4D under the host's MultiGPU CFG Split: one GPU vs the cond / uncond passes on two GPUs, same seed.

Needs ComfyUI 0.33 or later (comfy/multigpu.py) and two CUDA GPUs, e.g. on an nvidia-h200-x2 machine:

    python bench/bench_multigpu.py --comfyui /path/to/ComfyUI --config bf16 --out bench/results/multigpu.jsonl
    python bench/bench_multigpu.py --comfyui /path/to/ComfyUI --config fp8  --out bench/results/multigpu.jsonl
    python bench/bench_multigpu.py --comfyui /path/to/ComfyUI --config bf16 --attention cudnn --out ...
    python bench/bench_multigpu.py --table bench/results/multigpu.jsonl
    python bench/bench_multigpu.py --comfyui .host/comfyui-0.33.0/ComfyUI --config bf16 --tiny   # CPU: code path only

The DiT is Wan 2.1 I2V 14B with random weights, built as bench/bench_wan.py builds it (its functions, imported),
with the random EX-4D LoRA and camera encoder applied by the pack's own code; 512 x 512 x 49 (13,312 tokens),
CFG 5, the published flow-matching sigmas. The same model, noise and conditioning are sampled twice in one
process: on one GPU (the host batches cond and uncond into one forward pass when memory allows), then through
``comfy.multigpu.create_multigpu_deepclones`` (what the MultiGPU CFG Split node runs): a second copy of the DiT
on the second GPU, the uncond pass there in the host's worker thread. The host builds that copy through the
model's ``cached_patcher_init`` factory; a built model (``--load build``) gets one here that builds the same
random weights again (same generator seed); ``--load file`` loads a random file as UNETLoader does.

Printed: a table (s/step of each run, the speed-up, the relative error of the two-GPU latent against the one-GPU
latent, peak memory per device); one JSON line per run appended to ``--out``. ``--tiny`` (tiny DiT, 9 frames of
32 x 32) runs on the CPU: the host lists one CPU device, so a second one, ``cpu:0``, is listed for it; the host's
clone, load, thread-pool and scheduling code then runs for real, but nothing here measures speed, and what
needs CUDA (a second real device, set_torch_device, cross-device copies) is not exercised.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package
import bench_wan  # noqa: E402  (its host set-up, DiT builder, adapter and file loader)
from full_weights import FULL, TINY  # noqa: E402

GiB = 1024**3


@dataclass
class Run:
    mode: str  # "1gpu" or "cfg-split"
    devices: list[str]
    config: str
    ex4d: bool
    attention: str
    frames: int
    size: str
    tokens: int
    steps: int
    cfg: float
    ok: bool
    first_step_s: float = 0.0
    step_s: float = 0.0
    speedup: float | None = None
    rel_err_vs_1gpu: float | None = None
    peak_alloc_gib: dict[str, float] = field(default_factory=dict)
    device_name: str = ""
    host: str = ""
    load: str = "build"
    camera_patch_rebound: bool | None = None
    error: str = ""
    note: str = ""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=("bf16", "fp8"), help="weights bf16, or float8_e4m3fn computed in bf16")
    p.add_argument("--comfyui", help="host folder (0.33 or later for the CFG split)")
    p.add_argument("--steps", type=int, default=5, help="sampling steps per run; the first is reported apart")
    p.add_argument("--frames", type=int, default=49)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--cfg", type=float, default=5.0)
    p.add_argument("--text-tokens", type=int, default=512)
    p.add_argument("--no-ex4d", action="store_true", help="the plain Wan DiT, for comparison")
    p.add_argument("--attention", default="host", choices=("host", *bench_wan.ATTENTION_BACKENDS),
                   help="host, or EX-4D Attention Backend's override with that backend (0.33: use cudnn)")
    p.add_argument("--load", choices=("build", "file"), default="build")
    p.add_argument("--weights-dir", default=str(bench_wan.REPO / ".bench-weights"))
    p.add_argument("--max-gpus", type=int, default=2, help="the node's max_gpus")
    p.add_argument("--tiny", action="store_true", help="tiny DiT on the CPU: the code path, not the speed")
    p.add_argument("--out", help="append one JSON line per run to this file")
    p.add_argument("--table", help="print the table of a results file and exit")
    args = p.parse_args()
    if not args.table and not (args.config and args.comfyui):
        p.error("--config and --comfyui are required (or --table FILE)")
    return args


class Devices:
    def __init__(self, torch, devices):
        self.torch, self.devices = torch, devices
        self.cuda = torch.cuda.is_available() and all(d.type == "cuda" for d in devices)

    def sync(self) -> None:
        if self.cuda:
            for d in self.devices:
                self.torch.cuda.synchronize(d)

    def reset_peak(self) -> None:
        if self.cuda:
            for d in self.devices:
                self.torch.cuda.reset_peak_memory_stats(d)

    def peaks(self) -> dict[str, float]:
        if not self.cuda:
            return {}
        return {str(d): round(self.torch.cuda.max_memory_allocated(d) / GiB, 2) for d in self.devices}


def camera_patch_rebound(pack, patcher) -> bool | None:
    """Whether every device's clone runs its own patch_embedding (None: no camera patch)."""
    patcher.match_multigpu_clones()
    key = pack.patch.PATCH_EMBED_FORWARD
    found = None
    for p in (patcher, *patcher.get_additional_models_with_key("multigpu")):
        patch = p.object_patches.get(key)
        if patch is None or not hasattr(patch, "module"):
            continue
        own = patch.module is p.model.diffusion_model.patch_embedding
        found = own if found is None else (found and own)
    return found


def main() -> None:
    args = parse_args()
    if args.table:
        print_table([json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()])
        return
    import torch

    cuda = torch.cuda.is_available()
    if not args.tiny and (not cuda or torch.cuda.device_count() < 2):
        raise SystemExit("this benchmark needs two CUDA GPUs (--tiny runs the code path on the CPU)")
    size = TINY if args.tiny else FULL
    if args.tiny:
        args.frames, args.width, args.height, args.text_tokens = 9, 32, 32, 16
    cpu = args.tiny and not cuda
    host_root = Path(args.comfyui).resolve()
    bench_wan.setup_host(host_root, None, cpu=cpu, dynamic_vram=args.load == "file")
    pack = bench_wan.load_pack()
    import comfy.clip_vision
    import comfy.model_management as mm
    import comfy.sample
    import comfy.samplers

    try:
        import comfy.multigpu as multigpu
    except ImportError:
        multigpu = None
    notes = []
    primary = mm.get_torch_device()
    if multigpu is None:
        notes.append(f"ComfyUI {bench_wan.host_version(host_root)} has no comfy.multigpu (0.33 brought it): "
                     "only the one-device run is made")
    elif cpu:
        second = torch.device("cpu", 0)
        mm.get_all_torch_devices = lambda exclude_current=False: [primary, second]
        notes.append("CPU: a second device cpu:0 is listed for the host (the CFG split's real path needs two CUDA "
                     "GPUs: set_torch_device, weights and cross-device copies on the second GPU are not exercised)")
    for n in notes:
        print("NOTE:", n, flush=True)

    weight_dtype = getattr(torch, "bfloat16" if args.config == "bf16" else "float8_e4m3fn")
    t = time.perf_counter()
    if args.load == "file":
        base = bench_wan.load_wan_file(size, weight_dtype, Path(args.weights_dir))
    else:
        base = bench_wan.build_wan_i2v(size, weight_dtype)

        def rebuild(size_, dtype_, disable_dynamic=False):  # the loader factory the host's deepclone calls
            return bench_wan.build_wan_i2v(size_, dtype_)

        base.cached_patcher_init = (rebuild, (size, weight_dtype))
    print(f"DiT ({size.dim} wide, {size.layers} blocks, {args.config}) in {time.perf_counter() - t:.1f} s", flush=True)

    shape = pack.sampling.latent_shape(args.frames, args.height, args.width)
    _, _, t_lat, h_lat, w_lat = shape
    gen = torch.Generator().manual_seed(1)
    model = base
    if not args.no_ex4d:
        adapter = bench_wan.random_adapter(pack.adapter, size)
        camera_latents = torch.randn(1, 32, t_lat, h_lat, w_lat, generator=gen)
        model = pack.patch.with_camera(pack.patch.with_ex4d_lora(base, adapter), adapter, camera_latents)
    if args.attention != "host":
        model = pack.patch.with_attention(model, args.attention)
    clip = comfy.clip_vision.Output()
    clip["penultimate_hidden_states"] = torch.randn(1, bench_wan.CLIP_TOKENS, bench_wan.CLIP_DIM, generator=gen)
    concat_mask = torch.ones(1, 1, t_lat, h_lat, w_lat)
    concat_mask[:, :, :1] = 0.0
    values = {"concat_latent_image": torch.randn(shape, generator=gen), "concat_mask": concat_mask,
              "clip_vision_output": clip}
    positive = [[torch.randn(1, args.text_tokens, bench_wan.TEXT_DIM, generator=gen) * 0.1, dict(values)]]
    negative = [[torch.randn(1, args.text_tokens, bench_wan.TEXT_DIM, generator=gen) * 0.1, dict(values)]]
    latent = torch.zeros(shape)
    noise = pack.sampling.noise_for_shape(0, shape)
    sigmas = pack.sampling.flow_match_sigmas(args.steps)
    sampler = comfy.samplers.sampler_object("euler")

    def common(mode, devices) -> Run:
        return Run(mode=mode, devices=[str(d) for d in devices], config=args.config, ex4d=not args.no_ex4d,
                   attention=args.attention, frames=args.frames, size=f"{args.width}x{args.height}",
                   tokens=t_lat * (h_lat // 2) * (w_lat // 2), steps=args.steps, cfg=args.cfg, ok=False,
                   device_name=torch.cuda.get_device_name(0) if cuda else "cpu",
                   host=bench_wan.host_version(host_root), load=args.load, note="; ".join(notes))

    def sample(patcher, devices, run: Run) -> torch.Tensor | None:
        dev = Devices(torch, devices)
        stamps: list[float] = []

        def callback(step, x0, x, total):
            dev.sync()
            stamps.append(time.perf_counter())
            print(f"  {run.mode} step {step + 1}/{total}: {stamps[-1] - (stamps[-2] if len(stamps) > 1 else t1):.2f} s",
                  flush=True)

        dev.reset_peak()
        t1 = time.perf_counter()
        try:
            out = comfy.sample.sample_custom(patcher, noise, args.cfg, sampler, sigmas, positive, negative, latent,
                                             callback=callback, disable_pbar=True, seed=0)
        except Exception as e:  # noqa: BLE001 - recorded in the result
            run.error = f"{type(e).__name__}: {e}"[:500]
            print(f"  {run.mode} FAILED: {run.error}", flush=True)
            return None
        times = [b - a for a, b in zip([t1, *stamps[:-1]], stamps, strict=True)]
        run.ok, run.first_step_s = True, times[0]
        run.step_s = statistics.median(times[1:] or times)
        run.peak_alloc_gib = dev.peaks()
        return out.float().cpu()

    runs = []
    one = common("1gpu", [primary])
    ref = sample(model, [primary], one)
    runs.append(one)
    if multigpu is not None:
        mm.unload_all_models()
        split = multigpu.create_multigpu_deepclones(model, args.max_gpus, reuse_loaded=True)
        clones = split.get_additional_models_with_key("multigpu")
        devices = [primary, *(c.load_device for c in clones)]
        two = common("cfg-split", devices)
        if not clones:
            two.error = "the host found no second device"
        else:
            two.camera_patch_rebound = camera_patch_rebound(pack, split) if not args.no_ex4d else None
            if two.camera_patch_rebound is False:
                print("WARNING: the device clones' camera patch calls the primary's patch_embedding module; on two "
                      "GPUs that is a device mismatch (docs/multigpu.md)", flush=True)
            got = sample(split, devices, two)
            if got is not None and ref is not None:
                two.rel_err_vs_1gpu = ((got - ref).norm() / ref.norm()).item()
                two.speedup = one.step_s / two.step_s if two.step_s else None
        runs.append(two)
    print_table([asdict(r) for r in runs])
    if args.out:
        with open(args.out, "a") as f:
            for r in runs:
                f.write(json.dumps(asdict(r)) + "\n")


def print_table(rows: list[dict]) -> None:
    print(f"{'host':8} {'config':6} {'attn':6} {'ex4d':5} {'mode':10} {'devices':22} {'ok':4} {'1st s':>7} "
          f"{'s/step':>7} {'speedup':>8} {'rel err':>9} {'rebound':>8}  peak GiB")
    for r in rows:
        def f(v, fmt):
            return format(v, fmt) if isinstance(v, (int, float)) else "-"
        print(f"{r['host']:8} {r['config']:6} {r['attention']:6} {('yes' if r['ex4d'] else 'no'):5} {r['mode']:10} "
              f"{','.join(r['devices']):22} {('yes' if r['ok'] else 'NO'):4} {f(r['first_step_s'], '7.2f')} "
              f"{f(r['step_s'], '7.2f')} {f(r['speedup'], '8.2f')} {f(r['rel_err_vs_1gpu'], '9.2e')} "
              f"{str(r['camera_patch_rebound']):>8}  {r['peak_alloc_gib'] or '-'}")
        if r.get("error"):
            print(f"    error: {r['error']}")
    notes = {r.get("note") for r in rows if r.get("note")}
    for n in notes:
        print(f"    note: {n}")


if __name__ == "__main__":
    main()
