"""How far the Wan bench's speed settings move the DiT's output: each setting against the host's attention and
Linear layers (and against float32 attention), one prediction and a many-step latent; and one attention call of
each SDPA backend against float32 attention."""

from __future__ import annotations

import argparse
from pathlib import Path

from wan_model import host_version
from wan_settings import math_attention, with_setting

# the relative-error record's mark among the timing records of a results file
MARK = "prediction_rel_err"


def _rel(a, b) -> float:
    return ((a - b).norm() / b.norm()).item()


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
    reference = math_attention(q, k, v, torch.float32)
    errors = {"bf16 rounding of the fp32 result": _rel(math_attention(q, k, v, torch.bfloat16).float(), reference)}
    for name, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION),
                          ("efficient", SDPBackend.EFFICIENT_ATTENTION)):
        with sdpa_kernel([backend]):
            errors[name] = _rel(F.scaled_dot_product_attention(q, k, v).float(), reference)
    print("  one attention call vs float32: " + ", ".join(f"{n} {e:.2e}" for n, e in errors.items()), flush=True)
    return errors


def attention_errors(args: argparse.Namespace, pack, model, inputs, gpu) -> dict:
    """Relative error (Frobenius) of each setting's output against the host's (host attention and Linear),
    same model and inputs: one prediction (one Euler step from sigma 1 to 0 gives the model's x0 estimate)
    and, for the first ``--error-latents`` settings, a whole ``args.errors``-step latent. With ``exact32`` among
    the settings, every prediction (the host's too) is also compared with that float32-attention one."""
    import comfy.sample
    import torch

    def sample(m, steps: int):
        out = comfy.sample.sample_custom(m, inputs.noise, args.cfg, inputs.sampler,
                                         pack.sampling.flow_match_sigmas(steps), inputs.positive, inputs.negative,
                                         inputs.latent, disable_pbar=True, seed=0)
        gpu.sync()
        return out.float()

    settings = [b for b in args.error_settings.split(",") if b]
    errors = {"host": host_version(Path(args.comfyui).resolve()), "attention": "host", "config": args.config,
              "device": gpu.name(), "frames": args.frames, "size": f"{args.width}x{args.height}", "cfg": args.cfg,
              "steps": args.errors, "bf16_eps": 2.0**-8, MARK: {}, "latent_rel_err": {}, "vs_exact32": {}}
    if gpu.cuda and not args.tiny:
        errors["kernel_rel_err"] = kernel_errors(inputs.tokens, 40, 128)
    predictions = {"host": sample(model, 1)}
    patched = {setting: with_setting(pack, model, setting) for setting in settings}
    for setting in settings:
        if "compile" in setting:
            torch._dynamo.reset()
        predictions[setting] = sample(patched[setting], 1)
        errors[MARK][setting] = _rel(predictions[setting], predictions["host"])
        print(f"  one prediction, {setting} vs host: {errors[MARK][setting]:.2e}", flush=True)
    if "exact32" in predictions:
        for setting, prediction in predictions.items():
            if setting != "exact32":
                errors["vs_exact32"][setting] = _rel(prediction, predictions["exact32"])
        print("  one prediction vs exact32: " + ", ".join(f"{s} {e:.2e}" for s, e in errors["vs_exact32"].items()),
              flush=True)
    reference = sample(model, args.errors)
    for setting in settings[: args.error_latents]:
        if "compile" in setting:
            torch._dynamo.reset()
        errors["latent_rel_err"][setting] = _rel(sample(patched[setting], args.errors), reference)
        print(f"  {args.errors}-step latent, {setting} vs host: {errors['latent_rel_err'][setting]:.2e}", flush=True)
    return errors


def print_errors(results: list[dict]) -> None:
    for r in results:
        if r.get("kernel_rel_err"):
            print("one self-attention call against float32 attention: "
                  + ", ".join(f"{k} {e:.1e}" for k, e in r["kernel_rel_err"].items()))
        if r.get("vs_exact32"):
            print("one prediction against the model with float32 attention (exact32): "
                  + ", ".join(f"{k} {e:.1e}" for k, e in r["vs_exact32"].items()))
        one = ", ".join(f"{b} {e:.1e}" for b, e in r[MARK].items())
        many = ", ".join(f"{b} {e:.1e}" for b, e in r["latent_rel_err"].items())
        print(f"setting vs the host's attention and Linear ({r['config']}, {r['size']}x{r['frames']}, "
              f"CFG {r['cfg']:g}): relative error of one prediction: {one}; of a {r['steps']}-step latent: {many} "
              f"(bf16 epsilon {r['bf16_eps']:.1e})")
