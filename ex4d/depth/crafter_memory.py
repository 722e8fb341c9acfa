"""How much GPU memory DepthCrafter's inference needs beyond its weights, from the clip's size and the
settings (calibrated on an H100)."""

from __future__ import annotations

import torch

from .crafter_settings import CHUNK, ENCODE_CHUNK, WINDOW, round_to


def vae_upcasts(vae: torch.nn.Module) -> bool:
    """Published: an fp16 VAE with force_upcast encodes in fp32 (and goes back to fp16 to decode)."""
    return vae.dtype == torch.float16 and bool(getattr(vae.config, "force_upcast", False))


def inference_memory(
    frames: int,
    height: int,
    width: int,
    window: int = WINDOW,
    dtype: torch.dtype = torch.float16,
    attention: str = "sdpa",
    vae_upcast: bool = True,
    chunk: int = CHUNK,
    size_multiple: int = 64,
    encode_chunk: int = ENCODE_CHUNK,
) -> int:
    """Bytes of GPU memory :meth:`DepthCrafter.estimate` needs beyond its weights (about 4.2 GiB in fp16 /
    bf16) for ``frames`` frames of ``width`` x ``height``; ``vae_upcast``: the fp16 VAE encodes in fp32.

    Peak = clip + max(encode, UNet, decode): what lives through the whole run, plus the largest of the
    three stages that run one after another (VAE encode, denoising, VAE decode), with
    P the pixels per frame at the working size (rounded to ``size_multiple``), T the frames, Tw the frames
    of one window (the UNet sees a window at once), ce = min(encode_chunk, T) the frames the VAE encoder sees
    at once, c = min(chunk, T) those its decoder sees at once, b the bytes of ``dtype`` and e those the VAE
    encodes in (4 when upcast, else b):

        clip   = (9 b + 4) T P        the frames, their noise and their sum; the float32 disparity
        encode = 820 e ce P
        UNet   = 135 b Tw P  (+ 9 b Tw (P / 64)^2 with "classic" attention: the explicit attention matrix)
        decode = 1250 b c P

    Calibrated on peak allocated memory on an H100 (random full-size weights, torch 2.11, diffusers 0.35,
    SDPA unless stated) with the encode and the decode both in chunks of 8: per stage at 512 x 512, 1024 x 576
    and 512 x 320 for 25, 49 and 110 frames, 200 frames in windows of 110, fp16 / bf16 / fp32 and classic
    attention at 512 x 512 and 512 x 320 (0-10 % above every one; tests/test_depth_memory.py keeps the figures), and
    bench/results/depth_h100.txt (49 frames: 512 x 512 10.7 GiB fp16 / 8.5 GiB bf16, 1024 x 576 18.5 / 13.8 GiB,
    weights included). Its bf16 figures predate the depth review fixes and lie 0.7 / 1.6 GiB below what this
    code needs now: there the VAE decode (the same in fp16 and bf16) is the peak, in those fp16 runs the fp32
    encode of 8 frames.

    The encoder works frame by frame, so its term is per frame of the chunk and scales with it. The figure for
    the encode's own chunk of 4 (``ENCODE_CHUNK``) is derived from the measured chunk of 8 by that scaling, not
    measured on a GPU; the VAE's upcast to fp32 adds a fixed 0.2 GB or so that the measured term holds, so the
    derived one may lie about 0.1 GB low. With it the decode is the peak in fp16 too: at 49 frames of 512 x 512
    in fp16 the encode needs 3.4 GB (6.9 GB in chunks of 8), the decode 5.2 GB, the UNet 3.5 GB.
    """
    if attention not in ("sdpa", "classic"):
        raise ValueError(f"attention must be 'sdpa' or 'classic', got {attention!r}")
    if frames < 1 or window < 1:
        raise ValueError(f"frames ({frames}) and window ({window}) must be at least 1")
    p = round_to(height, size_multiple) * round_to(width, size_multiple)
    b = dtype.itemsize
    e = 4 if vae_upcast and dtype == torch.float16 else b
    ce, c, tw = min(encode_chunk, frames), min(chunk, frames), min(window, frames)
    unet = 135 * b * tw * p
    if attention == "classic":
        unet += 9 * b * tw * (p // 64) ** 2
    stages = max(820 * e * ce * p, unet, 1250 * b * c * p)
    return int((9 * b + 4) * frames * p + stages)
