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

The DiT is built by the host (its model detection picks WAN21_I2V from the real names and shapes: dim
5120, 40 blocks, 40 heads, FFN 13824, 36 input channels), with random weights made on the GPU (no
33 GB file), then left on the offload device as the host's loaders leave it. The EX-4D LoRA (rank 16
on q/k/v/o of self- and cross-attention and ffn.0/ffn.2, 40 blocks) and camera encoder (32 -> 1024 ->
5120) are random too, applied with the pack's own EX-4D Apply code. Sampling is the EX-4D Wan
Sampler's: the host's sampler with the published sigmas, CFG batched by the host when memory allows.

Configurations (weights stored / compute):
  bf16         bf16 / bf16, the host's normal memory management
  fp8          float8_e4m3fn / bf16 (the host's fp8 weight option), normal memory management
  lowmem       float8_e4m3fn / bf16, the host's partial loading under --budget-gb (default 24)
  lowmem-bf16  bf16 / bf16, partial loading under --budget-gb
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package
from full_weights import (  # noqa: E402  (the one writer of the random DiT file, and its sizes)
    FULL,
    IN_DIM,
    TEXT_DIM,
    TINY,
    DiTSize,
    wan_file_name,
    write_wan_file,
)

GiB = 1024**3

CLIP_TOKENS, CLIP_DIM, RANK = 257, 1280, 16
ATTENTION_BACKENDS = ("cudnn", "flash", "efficient", "math")  # ex4d.attention.BACKENDS (no torch import here)


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
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=sorted(CONFIGS), help="configuration to run (one per process)")
    p.add_argument(
        "--comfyui", default=os.environ.get("COMFYUI_PATH"), help="host folder (or env COMFYUI_PATH)"
    )
    p.add_argument("--steps", type=int, default=3, help="sampling steps; the first one is reported apart")
    p.add_argument("--frames", type=int, default=49)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--cfg", type=float, default=5.0, help="CFG scale (1.0 skips the unconditional pass)")
    p.add_argument("--text-tokens", type=int, default=512, help="umT5 context length (published: 512)")
    p.add_argument("--no-ex4d", action="store_true", help="the plain Wan DiT, for comparison")
    p.add_argument("--attention", default="host", choices=("host", *ATTENTION_BACKENDS),
                   help="host: the host's attention; else EX-4D Attention Backend's patch with that backend")
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
    p.add_argument(
        "--headroom-gb",
        type=float,
        default=4.0,
        help="lowmem: memory kept free for activations when the host decides how many weights fit",
    )
    p.add_argument(
        "--tiny",
        action="store_true",
        help="tiny DiT, 9 frames of 32x32, CPU allowed: checks the code path, not the speed",
    )
    p.add_argument("--load", choices=("build", "file"), default="build",
                   help="build: random weights made on the GPU; file: a random safetensors file through the "
                        "host's loader, as a user loads one (dynamic VRAM where the host has it)")
    p.add_argument("--weights-dir", default=str(REPO / ".bench-weights"),
                   help="--load file: folder of the random model files (written once, reused)")
    p.add_argument("--profile", action="store_true",
                   help="after the timed steps, one more CFG step under torch.profiler: GPU seconds by kind of "
                        "kernel (attention, matmul, inductor-fused, other) and its busiest kernels")
    p.add_argument("--out", help="append the result as one JSON line to this file")
    p.add_argument("--table", help="print the table of a results file and exit")
    args = p.parse_args()
    if args.errors and args.errors < 2:
        p.error("--errors needs at least 2 steps (the one-step prediction is measured as well)")
    if not args.table and not args.config:
        p.error("--config is required (or --table FILE)")
    if args.config and not args.comfyui:
        p.error("give the ComfyUI folder with --comfyui or COMFYUI_PATH")
    return args


def setup_host(host: Path, reserve_vram_gb: float | None, cpu: bool = False, dynamic_vram: bool = False) -> bool:
    """Put the host on sys.path and set its arguments before any comfy module reads them; with
    ``dynamic_vram``, start the host's dynamic VRAM where it has it. Returns whether that is on."""
    sys.path.insert(0, str(REPO))
    from harness.bootstrap import put_on_path

    # where torchvision / torchaudio do not import, the test harness's placeholders stand in (no Wan path
    # uses them)
    put_on_path(host)
    from comfy.cli_args import args

    args.disable_auto_launch = True
    args.cpu = cpu
    if reserve_vram_gb is not None:
        args.reserve_vram = reserve_vram_gb
    if not dynamic_vram:
        import comfy.model_management  # noqa: F401  (reads args now)

        return False
    # as the host's main.py (the test harness's copy of its steps, shared with the whole-graph bench)
    from harness.host import start_dynamic_vram

    return start_dynamic_vram(args)


def load_wan_file(size: DiTSize, weight_dtype, weights_dir: Path):
    """The DiT from a file through the host's loader, as the UNETLoader node loads it."""
    import comfy.sd
    import torch

    path = weights_dir / wan_file_name(size, str(weight_dtype).removeprefix("torch."))
    if not path.exists():
        t = time.perf_counter()
        write_wan_file(path, size, weight_dtype)
        print(f"wrote {path.name} ({path.stat().st_size / GiB:.1f} GiB) in {time.perf_counter() - t:.1f} s",
              flush=True)
        torch.cuda.empty_cache()
    return comfy.sd.load_diffusion_model(str(path))


def load_pack() -> types.SimpleNamespace:
    """The pack's glue and library under a private package name, without its node registry."""
    root = types.ModuleType("ex4d_pack")
    root.__path__ = [str(REPO)]
    sys.modules["ex4d_pack"] = root
    nodes_pkg = types.ModuleType("ex4d_pack.nodes")
    nodes_pkg.__path__ = [str(REPO / "nodes")]
    sys.modules["ex4d_pack.nodes"] = nodes_pkg
    return types.SimpleNamespace(
        patch=importlib.import_module("ex4d_pack.nodes._wan_patch"),
        adapter=importlib.import_module("ex4d_pack.ex4d.adapter"),
        sampling=importlib.import_module("ex4d_pack.ex4d.sampling"),
    )


def build_wan_i2v(size: DiTSize, weight_dtype):
    """The host's WAN21 I2V model, random weights, as a ModelPatcher on the offload device."""
    import comfy.ldm.wan.model
    import comfy.model_detection
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.ops
    import torch

    with torch.device("meta"):
        meta = comfy.ldm.wan.model.WanModel(
            model_type="i2v",
            in_dim=IN_DIM,
            dim=size.dim,
            ffn_dim=size.ffn,
            num_heads=size.heads,
            num_layers=size.layers,
            text_dim=TEXT_DIM,
            out_dim=16,
            operations=comfy.ops.disable_weight_init,
        )
    config = comfy.model_detection.model_config_from_unet(meta.state_dict(), "")
    if type(config).__name__ != "WAN21_I2V":
        raise SystemExit(f"the host detected {type(config).__name__}, expected WAN21_I2V")
    load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
    manual_cast = mm.unet_manual_cast(weight_dtype, load_device, config.supported_inference_dtypes)
    config.set_inference_dtype(weight_dtype, manual_cast)
    model = config.get_model({}, "", device=load_device)
    gen = torch.Generator(load_device).manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            # Drawn in bf16 and converted, since not every kernel (fill_, randn) exists for float8.
            if p.ndim == 1 and name.endswith("weight"):
                value = torch.ones(p.shape, device=load_device, dtype=torch.bfloat16)  # norms
            else:
                value = torch.randn(p.shape, generator=gen, device=load_device, dtype=torch.bfloat16) * 0.02
            p.copy_(value.to(p.dtype))
    model = model.to(offload_device)
    mm.soft_empty_cache()
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)


def random_adapter(adapter_mod, size: DiTSize):
    """A random EX-4D adapter with the published shapes (rank 16 LoRA, 32 -> 1024 -> 5120 encoder)."""
    sys.path.insert(0, str(REPO))
    from harness.tiny_models import tiny_ex4d_state_dict

    sd = tiny_ex4d_state_dict(
        size.dim, size.layers, size.ffn, rank=RANK, hidden=size.encoder_hidden, lora_scale=0.05
    )
    return adapter_mod.split_state_dict(sd, "random EX-4D")


class Gpu:
    """CUDA timing and memory figures; zeros on the CPU (--tiny)."""

    def __init__(self, torch):
        self.torch = torch
        self.cuda = torch.cuda.is_available()

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()

    def peak(self) -> tuple[float, float]:
        if not self.cuda:
            return 0.0, 0.0
        return self.torch.cuda.max_memory_allocated() / GiB, self.torch.cuda.max_memory_reserved() / GiB

    def total_gib(self) -> float:
        return self.torch.cuda.mem_get_info()[1] / GiB if self.cuda else 0.0

    def name(self) -> str:
        return self.torch.cuda.get_device_name() if self.cuda else "cpu"


def run(args: argparse.Namespace) -> Iterator[Result | dict]:
    import torch

    gpu = Gpu(torch)
    if not gpu.cuda and not args.tiny:
        raise SystemExit("this benchmark needs a CUDA GPU (--tiny runs the code path on the CPU)")
    size = TINY if args.tiny else FULL
    if args.tiny:
        args.frames, args.width, args.height, args.text_tokens = 9, 32, 32, 16
    cfg = CONFIGS[args.config]
    reserve = None
    if cfg.partial and gpu.cuda:
        # The host keeps `reserve_vram` free; leave it budget - headroom for weights, the rest for activations.
        reserve = max(0.0, gpu.total_gib() - args.budget_gb + args.headroom_gb)
    host_root = Path(args.comfyui).resolve()
    dynamic = setup_host(host_root, reserve, cpu=not gpu.cuda, dynamic_vram=args.load == "file")
    pack = load_pack()
    import comfy.clip_vision
    import comfy.model_management as mm
    import comfy.sample
    import comfy.samplers

    weight_dtype = getattr(torch, cfg.weight_dtype)
    t = time.perf_counter()
    if args.load == "file":
        base = load_wan_file(size, weight_dtype, Path(args.weights_dir))
        how = f"loaded through comfy.sd.load_diffusion_model as {type(base).__name__} (dynamic VRAM {dynamic})"
    else:
        base = build_wan_i2v(size, weight_dtype)
        how = "built"
    print(f"{how}: the random {size.dim}-wide, {size.layers}-block DiT ({cfg.weight_dtype}) in "
          f"{time.perf_counter() - t:.1f} s", flush=True)

    shape = pack.sampling.latent_shape(args.frames, args.height, args.width)
    _, _, t_lat, h_lat, w_lat = shape
    gen = torch.Generator().manual_seed(1)
    model = base
    if not args.no_ex4d:
        adapter = random_adapter(pack.adapter, size)
        print(adapter.describe(), flush=True)
        camera_latents = torch.randn(1, 32, t_lat, h_lat, w_lat, generator=gen)
        model = pack.patch.with_camera(pack.patch.with_ex4d_lora(base, adapter), adapter, camera_latents)
    settings = args.settings.split(",") if args.settings else ["+".join([
        *([args.attention] if args.attention != "host" else []), *(["fp8"] if args.fp8_linear else []),
        *(["compile"] if args.compile else [])])]

    clip = comfy.clip_vision.Output()
    clip["penultimate_hidden_states"] = torch.randn(1, CLIP_TOKENS, CLIP_DIM, generator=gen)
    concat_mask = torch.ones(1, 1, t_lat, h_lat, w_lat)
    concat_mask[:, :, :1] = 0.0
    values = {
        "concat_latent_image": torch.randn(shape, generator=gen),
        "concat_mask": concat_mask,
        "clip_vision_output": clip,
    }
    positive = [[torch.randn(1, args.text_tokens, TEXT_DIM, generator=gen) * 0.1, dict(values)]]
    negative = [[torch.randn(1, args.text_tokens, TEXT_DIM, generator=gen) * 0.1, dict(values)]]
    latent = torch.zeros(shape)
    noise = pack.sampling.noise_for_shape(0, shape)
    sigmas = pack.sampling.flow_match_sigmas(args.steps)
    sampler = comfy.samplers.sampler_object("euler")
    if args.errors and not args.settings:
        yield attention_errors(args, pack, model, noise, positive, negative, latent, sampler, gpu)
        return

    for setting in settings:
        patched = with_setting(pack, model, setting)
        parts = setting.split("+")
        attention = next((part for part in parts if part in ATTENTION_BACKENDS), "host")
        compiled = "compile" in parts
        if compiled:
            torch._dynamo.reset()
            torch._dynamo.utils.counters.clear()
            torch._logging.set_logs(graph_breaks=True)  # where each break sits, in the log
        gpu.sync()
        gpu.reset_peak()
        t0 = time.perf_counter()
        mm.load_models_gpu([patched])  # weights to the GPU, LoRA merged (what the sampler would do first)
        gpu.sync()
        load_s = time.perf_counter() - t0
        resident = patched.loaded_size() / GiB
        print(f"{setting or 'host'}: loaded in {load_s:.1f} s, {resident:.1f} GiB of weights on the GPU", flush=True)

        times = timed_sample(comfy.sample.sample_custom, gpu, patched, noise, args.cfg, sampler, sigmas, positive,
                             negative, latent)
        torch._logging.set_logs()
        resident = max(resident, patched.loaded_size() / GiB)
        peak_alloc, peak_reserved = gpu.peak()
        result = Result(
            config=args.config,
            ex4d=not args.no_ex4d,
            weights=cfg.weight_dtype,
            frames=args.frames,
            size=f"{args.width}x{args.height}",
            tokens=t_lat * (h_lat // 2) * (w_lat // 2),
            steps=args.steps,
            load_s=load_s,
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
            attention=attention,
            linear="fp8" if "fp8" in parts else "host",
            compiled=compiled,
            compile_check=compile_check(base) if compiled else None,
        )
        if args.profile:
            result.profile = profile_step(gpu, patched, noise, args.cfg, sampler, sigmas[-2:], positive, negative,
                                          latent)
        yield result
    if args.errors:
        yield attention_errors(args, pack, model, noise, positive, negative, latent, sampler, gpu)


def timed_sample(sample_custom, gpu, model, noise, cfg, sampler, sigmas, positive, negative, latent) -> list[float]:
    """The sampler's run; the seconds of each of its steps."""
    stamps: list[float] = []

    def callback(step, x0, x, total):
        gpu.sync()
        stamps.append(time.perf_counter())
        print(f"  step {step + 1}/{total}: {stamps[-1] - (stamps[-2] if len(stamps) > 1 else start):.2f} s",
              flush=True)

    start = time.perf_counter()
    sample_custom(model, noise, cfg, sampler, sigmas, positive, negative, latent, callback=callback,
                  disable_pbar=True, seed=0)
    gpu.sync()
    return [b - a for a, b in zip([start, *stamps[:-1]], stamps, strict=True)]


def compile_check(base) -> dict:
    """Whether Compile Blocks compiled whole blocks: dynamo's graph breaks (any break splits a block's graph, and
    the code around it runs unfused) and the versions of the block code it compiled (recompiles past dynamo's
    limit run uncompiled)."""
    import torch

    block = base.model.diffusion_model.blocks[0]
    breaks = torch._dynamo.utils.counters["graph_break"]
    return {
        "graph_breaks": sum(breaks.values()),
        "break_reasons": [reason.splitlines()[0] for reason in breaks][:5],
        "block_versions": len(torch._dynamo.eval_frame._debug_get_cache_entry_list(type(block).forward.__code__)),
    }


# GPU kernel name -> what it does, first match wins (cuDNN's and PyTorch's attention kernels, cuBLAS / CUTLASS /
# Triton-template matmuls, the kernels inductor generated, then everything else: eager norms, elementwise, copies)
KERNEL_KINDS = (
    ("attention", ("sdpa", "fmha", "flash", "attention")),
    ("matmul", ("triton_tem", "gemm", "nvjet", "cutlass", "xmma", "f8f8bf16")),
    ("inductor-fused", ("triton_",)),  # its fused names list the ops, _scaled_mm's quantizing among them
    ("matmul", ("scaled_mm",)),
)


def profile_step(gpu, model, noise, cfg, sampler, sigmas, positive, negative, latent) -> dict:
    """One CFG step under torch.profiler: GPU seconds by kind of kernel (KERNEL_KINDS), printed with the busiest
    kernels, and returned."""
    import comfy.sample
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if gpu.cuda else [])]
    with profile(activities=activities) as prof:
        comfy.sample.sample_custom(model, noise, cfg, sampler, sigmas, positive, negative, latent,
                                   disable_pbar=True, seed=0)
        gpu.sync()
    kernels = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA]
    kinds: dict[str, float] = {}
    for event in kernels:
        name = event.key.lower()
        kind = next((k for k, marks in KERNEL_KINDS if any(m in name for m in marks)), "other")
        kinds[kind] = kinds.get(kind, 0.0) + event.self_device_time_total / 1e6
    busiest = sorted(kernels, key=lambda e: e.self_device_time_total, reverse=True)[:12]
    print("  GPU s by kind: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(kinds.items())), flush=True)
    for event in busiest:
        print(f"    {event.self_device_time_total / 1e6:7.3f} s {event.count:5d}x  {event.key[:110]}", flush=True)
    return {"kinds_s": kinds, "busiest": [[e.key[:160], e.count, e.self_device_time_total / 1e6] for e in busiest]}


def with_setting(pack, model, setting: str):
    """``model`` with a speed setting: '+'-joined parts, each an attention backend, ``fp8`` (EX-4D FP8 Linear)
    or ``compile`` (EX-4D Compile Blocks, applied last as in the workflows); '' or ``host`` leaves it as is."""
    parts = [p for p in setting.split("+") if p and p != "host"]
    for part in parts:
        if part in ATTENTION_BACKENDS:
            model = pack.patch.with_attention(model, part)
        elif part == "fp8":
            model = pack.patch.with_fp8_linear(model)
        elif part == "exact32":
            model = model.clone()
            model.model_options["transformer_options"][pack.patch.ATTENTION_OVERRIDE] = fp32_attention
        elif part != "compile":
            raise SystemExit(f"unknown setting part {part!r} (attention backends, exact32, fp8, compile)")
    return pack.patch.with_compiled_blocks(model) if "compile" in parts else model


def fp32_attention(func, q, k, v, heads, mask=None, skip_reshape=False, skip_output_reshape=False, **kwargs):
    """The error reference (an ``optimized_attention_override``): attention computed in float32 by PyTorch's math
    kernel, a few heads at a time, rounded to the input's dtype once at the end."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if mask is not None:
        return func(q, k, v, heads, mask=mask, skip_reshape=skip_reshape, skip_output_reshape=skip_output_reshape,
                    **kwargs)
    if not skip_reshape:
        q, k, v = (t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (q, k, v))
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    chunk = 4
    with sdpa_kernel([SDPBackend.MATH]):
        for b in range(q.shape[0]):
            for h in range(0, q.shape[1], chunk):
                sl = (b, slice(h, h + chunk))
                out[sl] = F.scaled_dot_product_attention(q[sl].float(), k[sl].float(), v[sl].float(),
                                                         scale=kwargs.get("scale")).to(q.dtype)
    return out if skip_output_reshape else out.transpose(1, 2).flatten(2)


def kernel_errors(tokens: int, heads: int, head_dim: int) -> dict:
    """One self-attention call at EX-4D's shape (CFG batch 2, random bf16 q, k, v of unit variance): each exact
    SDPA backend's relative error against float32 attention, and the error of rounding that float32 result to
    bf16 (the least any bf16 kernel can have)."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    gen = torch.Generator("cuda").manual_seed(3)
    q, k, v = (torch.randn(2, heads, tokens, head_dim, generator=gen, device="cuda", dtype=torch.bfloat16)
               for _ in range(3))
    exact = fp32_attention(None, q, k, v, heads, skip_reshape=True, skip_output_reshape=True)  # bf16-rounded
    reference = torch.empty(q.shape, dtype=torch.float32, device="cuda")
    with sdpa_kernel([SDPBackend.MATH]):
        for b in range(2):
            for h in range(0, heads, 4):
                sl = (b, slice(h, h + 4))
                reference[sl] = F.scaled_dot_product_attention(q[sl].float(), k[sl].float(), v[sl].float())

    def rel(a) -> float:
        return ((a.float() - reference).norm() / reference.norm()).item()

    errors = {"bf16 rounding of the fp32 result": rel(exact)}
    for name, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION),
                          ("efficient", SDPBackend.EFFICIENT_ATTENTION)):
        with sdpa_kernel([backend]):
            errors[name] = rel(F.scaled_dot_product_attention(q, k, v))
    print("  one attention call vs float32: " + ", ".join(f"{n} {e:.2e}" for n, e in errors.items()), flush=True)
    return errors


def attention_errors(args, pack, model, noise, positive, negative, latent, sampler, gpu) -> dict:
    """Relative error (Frobenius) of each setting's output against the host's (host attention and Linear),
    same model and inputs: one prediction (one Euler step from sigma 1 to 0 gives the model's x0 estimate)
    and, for the first ``--error-latents`` settings, a whole ``args.errors``-step latent. With ``exact32`` among
    the settings, every prediction (the host's too) is also compared with that float32-attention one."""
    import comfy.sample
    import torch

    def sample(m, steps: int):
        out = comfy.sample.sample_custom(m, noise, args.cfg, sampler, pack.sampling.flow_match_sigmas(steps),
                                         positive, negative, latent, disable_pbar=True, seed=0)
        gpu.sync()
        return out.float()

    def rel(a, b) -> float:
        return ((a - b).norm() / b.norm()).item()

    settings = [b for b in args.error_settings.split(",") if b]
    errors = {"host": host_version(Path(args.comfyui).resolve()), "attention": "host", "config": args.config, "device": gpu.name(), "frames": args.frames,
              "size": f"{args.width}x{args.height}", "cfg": args.cfg, "steps": args.errors,
              "bf16_eps": 2.0**-8, "prediction_rel_err": {}, "latent_rel_err": {}, "vs_exact32": {}}
    if gpu.cuda and not args.tiny:
        _, _, frames, height, width = latent.shape
        errors["kernel_rel_err"] = kernel_errors(frames * (height // 2) * (width // 2), 40, 128)
    predictions = {"host": sample(model, 1)}
    patched = {setting: with_setting(pack, model, setting) for setting in settings}
    for setting in settings:
        if "compile" in setting:
            torch._dynamo.reset()
        predictions[setting] = sample(patched[setting], 1)
        errors["prediction_rel_err"][setting] = rel(predictions[setting], predictions["host"])
        print(f"  one prediction, {setting} vs host: {errors['prediction_rel_err'][setting]:.2e}", flush=True)
    if "exact32" in predictions:
        for setting, prediction in predictions.items():
            if setting != "exact32":
                errors["vs_exact32"][setting] = rel(prediction, predictions["exact32"])
        print("  one prediction vs exact32: " + ", ".join(f"{s} {e:.2e}" for s, e in errors["vs_exact32"].items()),
              flush=True)
    reference = sample(model, args.errors)
    for setting in settings[: args.error_latents]:
        if "compile" in setting:
            torch._dynamo.reset()
        errors["latent_rel_err"][setting] = rel(sample(patched[setting], args.errors), reference)
        print(f"  {args.errors}-step latent, {setting} vs host: {errors['latent_rel_err'][setting]:.2e}", flush=True)
    return errors


def host_version(root: Path) -> str:
    from harness.bootstrap import host_version as version

    return version(root)


def print_table(results: list[dict]) -> None:
    head = (
        f"{'host':<8}{'load':<6}{'patcher':<9}{'config':<12}{'setting':<20}{'EX-4D':>6}{'size':>13}{'load s':>8}{'step 1 s':>9}{'s/step':>8}{'25 steps s':>11}"
        f"{'peak GiB':>9}{'reserved':>9}{'resident':>9}{'budget':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        budget = f"{r['budget_gib']:.0f}" if r.get("budget_gib") else "-"
        size = f"{r['size']}x{r['frames']}"
        print(
            f"{r.get('host', '') or '?':<8}{r.get('load', 'build'):<6}"
            f"{'dynamic' if 'Dynamic' in r.get('patcher', '') else 'classic':<9}{r['config']:<12}"
            f"{setting_name(r):<20}{'yes' if r['ex4d'] else 'no':>6}{size:>13}{r['load_s']:8.1f}"
            f"{r['first_step_s']:9.2f}{r['step_s']:8.2f}{25 * r['step_s']:11.1f}{r['peak_alloc_gib']:9.1f}"
            f"{r['peak_reserved_gib']:9.1f}{r['resident_weights_gib']:9.1f}{budget:>8}"
        )
    for r in results:
        notes = []
        if r.get("profile"):
            kinds = r["profile"]["kinds_s"]
            notes.append(f"GPU s of one CFG step {sum(kinds.values()):.3f}: "
                         + ", ".join(f"{k} {v:.3f}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])))
        if r.get("compile_check"):
            check = r["compile_check"]
            notes.append(f"{check['graph_breaks']} graph breaks, {check['block_versions']} compiled block versions")
        if notes:
            print(f"  {setting_name(r)}: " + "; ".join(notes))
    if results:
        print(
            f"device: {results[-1]['device']}; s/step = median of the steps after the first (one CFG step: "
            "cond + uncond); peak = torch max allocated during load + sampling"
        )


def setting_name(r: dict) -> str:
    """'cudnn+fp8+compile' style: the attention, then fp8 Linear and compiled blocks where on."""
    parts = [r.get("attention", "host"), *(["fp8"] if r.get("linear") == "fp8" else []),
             *(["compile"] if r.get("compiled") else [])]
    return "+".join(parts)


def print_errors(results: list[dict]) -> None:
    for r in results:
        if r.get("kernel_rel_err"):
            print("one self-attention call against float32 attention: "
                  + ", ".join(f"{k} {e:.1e}" for k, e in r["kernel_rel_err"].items()))
        if r.get("vs_exact32"):
            print("one prediction against the model with float32 attention (exact32): "
                  + ", ".join(f"{k} {e:.1e}" for k, e in r["vs_exact32"].items()))
        one = ", ".join(f"{b} {e:.1e}" for b, e in r["prediction_rel_err"].items())
        many = ", ".join(f"{b} {e:.1e}" for b, e in r["latent_rel_err"].items())
        print(f"setting vs the host's attention and Linear ({r['config']}, {r['size']}x{r['frames']}, CFG {r['cfg']:g}): relative error of "
              f"one prediction: {one}; of a {r['steps']}-step latent: {many} (bf16 epsilon "
              f"{r['bf16_eps']:.1e})")


def main() -> None:
    args = parse_args()
    if args.table:
        lines = [json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()]
        print_table([r for r in lines if "prediction_rel_err" not in r])
        print_errors([r for r in lines if "prediction_rel_err" in r])
        return
    import torch

    with torch.inference_mode():  # as the host's executor runs every node
        for result in run(args):
            line = result if isinstance(result, dict) else asdict(result)
            if args.out:  # one line per result as it comes: a later setting's failure keeps the earlier ones
                with open(args.out, "a") as f:
                    f.write(json.dumps(line) + "\n")
            if isinstance(result, dict):
                print(json.dumps(line), flush=True)
            else:
                print_table([line])

if __name__ == "__main__":
    main()
