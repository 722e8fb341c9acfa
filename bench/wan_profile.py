"""One CFG step of the Wan bench under torch.profiler: where the GPU's time goes, by kind of kernel."""

from __future__ import annotations

# GPU kernel name -> what it does, first match wins (cuDNN's and PyTorch's attention kernels, cuBLAS / CUTLASS /
# Triton-template matmuls, the kernels inductor generated, then everything else: eager norms, elementwise, copies)
KERNEL_KINDS = (
    ("attention", ("sdpa", "fmha", "flash", "attention")),
    ("matmul", ("triton_tem", "gemm", "nvjet", "cutlass", "xmma", "f8f8bf16")),
    ("inductor-fused", ("triton_",)),  # its fused names list the ops, _scaled_mm's quantizing among them
    ("matmul", ("scaled_mm",)),
)


def profile_step(gpu, model, cfg: float, inputs, sigmas) -> dict:
    """One CFG step (``sigmas``: two of them) under torch.profiler: GPU seconds by kind of kernel (KERNEL_KINDS),
    printed with the busiest kernels, and returned."""
    import comfy.sample
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if gpu.cuda else [])]
    with profile(activities=activities) as prof:
        comfy.sample.sample_custom(model, inputs.noise, cfg, inputs.sampler, sigmas, inputs.positive,
                                   inputs.negative, inputs.latent, disable_pbar=True, seed=0)
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
