"""EX-4D under the host's MultiGPU CFG Split: one GPU vs the cond / uncond passes on two GPUs, same seed.

Needs ComfyUI 0.33 or later (comfy/multigpu.py) and two CUDA GPUs, e.g. on an nvidia-h200-x2 machine:

    python bench/bench_multigpu.py --comfyui /path/to/ComfyUI --config bf16 --out bench/results/multigpu.jsonl
    python bench/bench_multigpu.py --comfyui /path/to/ComfyUI --config fp8  --out bench/results/multigpu.jsonl
    python bench/bench_multigpu.py --comfyui /path/to/ComfyUI --config bf16 --attention cudnn --out ...
    python bench/bench_multigpu.py --table bench/results/multigpu.jsonl
    python bench/bench_multigpu.py --comfyui .host/comfyui-0.33.0/ComfyUI --config bf16 --tiny   # CPU: code path only

The DiT is Wan 2.1 I2V 14B with random weights, built as bench/bench_wan.py builds it (bench/wan_model.py),
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
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package: its modules import each other
import arguments  # noqa: E402
import wan_model  # noqa: E402  (the Wan bench's host set-up, DiT, adapter and inputs)
from records import Column, append_records, print_table, read_records  # noqa: E402
from timing import Gpu, Timer  # noqa: E402


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
    p = arguments.parser(__doc__)
    p.add_argument("--config", choices=("bf16", "fp8"), help="weights bf16, or float8_e4m3fn computed in bf16")
    wan_model.add_dit_args(p, steps=5, comfyui_note=": 0.33 or later for the CFG split")
    p.add_argument("--max-gpus", type=int, default=2, help="the node's max_gpus")
    arguments.add_results(p)
    args = p.parse_args()
    arguments.require(p, args, bool(args.config and args.comfyui), "--config and --comfyui are required")
    return args


def camera_patch_rebound(pack, patcher) -> bool | None:
    """Whether every device's clone runs its own patch_embedding (None: no camera patch)."""
    patcher.match_multigpu_clones()
    key = pack.camera.PATCH_EMBED_FORWARD
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
        print_runs(read_records(args.table))
        return
    import torch

    cuda = torch.cuda.is_available()
    if not args.tiny and (not cuda or torch.cuda.device_count() < 2):
        raise SystemExit("this benchmark needs two CUDA GPUs (--tiny runs the code path on the CPU)")
    size = wan_model.dit_size(args)
    cpu = args.tiny and not cuda
    host_root = Path(args.comfyui).resolve()
    wan_model.setup_host(host_root, None, cpu=cpu, dynamic_vram=args.load == "file")
    pack = wan_model.load_pack()
    import comfy.model_management as mm
    import comfy.sample

    try:
        import comfy.multigpu as multigpu
    except ImportError:
        multigpu = None
    notes = []
    primary = mm.get_torch_device()
    if multigpu is None:
        notes.append(f"ComfyUI {wan_model.host_version(host_root)} has no comfy.multigpu (0.33 brought it): "
                     "only the one-device run is made")
    elif cpu:
        second = torch.device("cpu", 0)
        mm.get_all_torch_devices = lambda exclude_current=False: [primary, second]
        notes.append("CPU: a second device cpu:0 is listed for the host (the CFG split's real path needs two CUDA "
                     "GPUs: set_torch_device, weights and cross-device copies on the second GPU are not exercised)")
    for n in notes:
        print("NOTE:", n, flush=True)

    weight_dtype = getattr(torch, "bfloat16" if args.config == "bf16" else "float8_e4m3fn")
    with Timer(Gpu(torch)) as timer:
        if args.load == "file":
            base = wan_model.load_wan_file(size, weight_dtype, Path(args.weights_dir))
        else:
            base = wan_model.build_wan_i2v(size, weight_dtype)

            def rebuild(size_, dtype_, disable_dynamic=False):  # the loader factory the host's deepclone calls
                return wan_model.build_wan_i2v(size_, dtype_)

            base.cached_patcher_init = (rebuild, (size, weight_dtype))
    print(f"DiT ({size.dim} wide, {size.layers} blocks, {args.config}) in {timer.seconds:.1f} s", flush=True)

    inputs = wan_model.sampling_inputs(pack, args)
    model = base if args.no_ex4d else wan_model.with_random_ex4d(pack, base, size, inputs)
    if args.attention != "host":
        model = pack.speed.with_attention(model, args.attention)

    def common(mode, devices) -> Run:
        return Run(mode=mode, devices=[str(d) for d in devices], config=args.config, ex4d=not args.no_ex4d,
                   attention=args.attention, frames=args.frames, size=f"{args.width}x{args.height}",
                   tokens=inputs.tokens, steps=args.steps, cfg=args.cfg, ok=False,
                   device_name=torch.cuda.get_device_name(0) if cuda else "cpu",
                   host=wan_model.host_version(host_root), load=args.load, note="; ".join(notes))

    def sample(patcher, devices, run: Run) -> torch.Tensor | None:
        gpu = Gpu(torch, devices)
        gpu.reset_peak()
        try:
            with Timer(gpu, label=f"{run.mode} ") as timer:
                out = comfy.sample.sample_custom(patcher, inputs.noise, args.cfg, inputs.sampler, inputs.sigmas,
                                                 inputs.positive, inputs.negative, inputs.latent,
                                                 callback=timer.step, disable_pbar=True, seed=0)
        except Exception as e:  # noqa: BLE001 - recorded in the result
            run.error = f"{type(e).__name__}: {e}"[:500]
            print(f"  {run.mode} FAILED: {run.error}", flush=True)
            return None
        times = timer.steps
        run.ok, run.first_step_s = True, times[0]
        run.step_s = statistics.median(times[1:] or times)
        run.peak_alloc_gib = gpu.peaks()
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
    print_runs([asdict(r) for r in runs])
    append_records(args.out, [asdict(r) for r in runs])


COLUMNS = (
    Column("host", 8, lambda r: r["host"]),
    Column("config", 6, lambda r: r["config"]),
    Column("attn", 6, lambda r: r["attention"]),
    Column("ex4d", 5, lambda r: "yes" if r["ex4d"] else "no"),
    Column("mode", 10, lambda r: r["mode"]),
    Column("devices", 22, lambda r: ",".join(r["devices"])),
    Column("ok", 4, lambda r: "yes" if r["ok"] else "NO"),
    Column("1st s", 7, lambda r: r["first_step_s"], ".2f", ">"),
    Column("s/step", 7, lambda r: r["step_s"], ".2f", ">"),
    Column("speedup", 8, lambda r: r["speedup"], ".2f", ">"),
    Column("rel err", 9, lambda r: r["rel_err_vs_1gpu"], ".2e", ">"),
    Column("rebound", 8, lambda r: str(r["camera_patch_rebound"]), align=">"),
    Column(" peak GiB", 0, lambda r: f" {r['peak_alloc_gib'] or '-'}"),
)


def print_runs(rows: list[dict]) -> None:
    print_table(COLUMNS, rows, sep=" ", rule=None, below=lambda r: [f"    error: {r['error']}"] if r.get("error") else [])
    for n in {r.get("note") for r in rows if r.get("note")}:
        print(f"    note: {n}")


if __name__ == "__main__":
    main()
