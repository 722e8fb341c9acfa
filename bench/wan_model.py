"""The Wan 2.1 I2V 14B DiT that the Wan benches (``bench_wan.py``, ``bench_multigpu.py``) sample, through the
host's own machinery: the host set up, the pack's code loaded, the DiT built with random weights or loaded from a
random file, the EX-4D adapter applied, the sampler's inputs; and the arguments that choose them.

The DiT is built by the host (its model detection picks WAN21_I2V from the real names and shapes: dim 5120, 40
blocks, 40 heads, FFN 13824, 36 input channels), with random weights made on the GPU (no 33 GB file), then left
on the offload device as the host's loaders leave it. The EX-4D LoRA (rank 16 on q/k/v/o of self- and
cross-attention and ffn.0/ffn.2, 40 blocks) and camera encoder (32 -> 1024 -> 5120) are random too, applied with
the pack's own EX-4D Apply code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package: its modules import each other
import arguments  # noqa: E402
from full_weights import (  # noqa: E402  (the one writer of the random DiT file, and its sizes)
    FULL,
    IN_DIM,
    TEXT_DIM,
    TINY,
    DiTSize,
    wan_file_name,
    write_wan_file,
)
from timing import GiB  # noqa: E402
from wan_settings import ATTENTION_BACKENDS  # noqa: E402

CLIP_TOKENS, CLIP_DIM, RANK = 257, 1280, 16


def add_dit_args(p: argparse.ArgumentParser, steps: int, comfyui_note: str = "") -> None:
    """The arguments both Wan benches take: the host, the sampling, EX-4D, the attention and the DiT's source."""
    arguments.add_comfyui(p, comfyui_note)
    p.add_argument("--steps", type=int, default=steps, help="sampling steps; the first one is reported apart")
    p.add_argument("--frames", type=int, default=49)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--cfg", type=float, default=5.0, help="CFG scale (1.0 skips the unconditional pass)")
    p.add_argument("--text-tokens", type=int, default=512, help="umT5 context length (published: 512)")
    p.add_argument("--no-ex4d", action="store_true", help="the plain Wan DiT, for comparison")
    p.add_argument("--attention", default="host", choices=("host", *ATTENTION_BACKENDS),
                   help="host: the host's attention; else EX-4D Attention Backend's patch with that backend")
    p.add_argument("--tiny", action="store_true",
                   help="tiny DiT, 9 frames of 32x32, CPU allowed: checks the code path, not the speed")
    p.add_argument("--load", choices=("build", "file"), default="build",
                   help="build: random weights made on the GPU; file: a random safetensors file through the "
                        "host's loader, as a user loads one (dynamic VRAM where the host has it)")
    p.add_argument("--weights-dir", default=str(REPO / ".bench-weights"),
                   help="--load file: folder of the random model files (written once, reused)")


def dit_size(args: argparse.Namespace) -> DiTSize:
    """The DiT's size; ``--tiny`` also shrinks the video and the text to match it."""
    if not args.tiny:
        return FULL
    args.frames, args.width, args.height, args.text_tokens = 9, 32, 32, 16
    return TINY


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


def host_version(root: Path) -> str:
    from harness.bootstrap import host_version as version

    return version(root)


def load_pack() -> types.SimpleNamespace:
    """The pack's glue and library under a private package name, without its node registry."""
    root = types.ModuleType("ex4d_pack")
    root.__path__ = [str(REPO)]
    sys.modules["ex4d_pack"] = root
    nodes_pkg = types.ModuleType("ex4d_pack.nodes")
    nodes_pkg.__path__ = [str(REPO / "nodes")]
    sys.modules["ex4d_pack.nodes"] = nodes_pkg
    return types.SimpleNamespace(
        lora=importlib.import_module("ex4d_pack.nodes.ex4d_lora"),
        camera=importlib.import_module("ex4d_pack.nodes.camera_embedding"),
        speed=importlib.import_module("ex4d_pack.nodes.speed"),
        adapter=importlib.import_module("ex4d_pack.ex4d.adapter"),
        sampling=importlib.import_module("ex4d_pack.ex4d.sampling"),
    )


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


@dataclass
class SamplingInputs:
    """What the sampler takes besides the model, for one video shape; the same on every run of a process."""

    shape: tuple[int, ...]  # the latent's (batch, channels, frames, height, width)
    noise: Any
    positive: list
    negative: list
    latent: Any
    sigmas: Any
    sampler: Any
    camera_latents: Any

    @property
    def tokens(self) -> int:
        """The DiT's sequence length (2 x 2 latent patches)."""
        _, _, frames, height, width = self.shape
        return frames * (height // 2) * (width // 2)


def sampling_inputs(pack, args: argparse.Namespace) -> SamplingInputs:
    """Random conditioning (umT5 text, CLIP vision, the I2V image latent and mask) and camera latents of the
    published shapes for ``args``' video, the host's Euler sampler and the published sigmas."""
    import comfy.clip_vision
    import comfy.samplers
    import torch

    from harness.reference_sampling import latent_shape, noise_for_shape

    shape = latent_shape(args.frames, args.height, args.width)
    _, _, t_lat, h_lat, w_lat = shape
    gen = torch.Generator().manual_seed(1)
    camera_latents = torch.randn(1, 32, t_lat, h_lat, w_lat, generator=gen)
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
    return SamplingInputs(shape=tuple(shape), noise=noise_for_shape(0, shape), positive=positive,
                          negative=negative, latent=torch.zeros(shape),
                          sigmas=pack.sampling.flow_match_sigmas(args.steps),
                          sampler=comfy.samplers.sampler_object("euler"), camera_latents=camera_latents)


def with_random_ex4d(pack, base, size: DiTSize, inputs: SamplingInputs):
    """``base`` with a random EX-4D adapter applied as EX-4D Apply applies it: its LoRA, then its camera patch."""
    adapter = random_adapter(pack.adapter, size)
    print(adapter.describe(), flush=True)
    return pack.camera.with_camera(pack.lora.with_ex4d_lora(base, adapter), adapter, inputs.camera_latents)
