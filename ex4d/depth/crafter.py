"""DepthCrafter on diffusers' spatio-temporal UNet, with the published windowed inference.

Expected folder (what ``DepthCrafter.from_pretrained(folder)`` reads; the pack registers
``models/depthcrafter/``)::

    <folder>/
      DepthCrafter/                              # from Hugging Face tencent/DepthCrafter
        unet/config.json
        unet/diffusion_pytorch_model.safetensors
      stable-video-diffusion-img2vid-xt/         # from stabilityai/stable-video-diffusion-img2vid-xt
        vae/config.json
        vae/diffusion_pytorch_model.safetensors          (or diffusion_pytorch_model.fp16.safetensors)
        image_encoder/config.json
        image_encoder/model.safetensors                  (or model.fp16.safetensors)
        feature_extractor/preprocessor_config.json
        scheduler/scheduler_config.json

The SVD UNet is not needed. ``.bin`` weights are accepted where ``.safetensors`` are missing.

Published inference (DepthCrafter's pipeline, as EX-4D runs it): frames in [0, 1] -> [-1, 1]; one CLIP
image embedding per frame (antialiased resize to 224, CLIP normalisation) used as that frame's single
cross-attention token; VAE latents (distribution mode, unscaled) of the frames plus 0.02 Gaussian noise
as the conditioning channels; added time ids (fps 7, motion bucket 127, noise strength 0.02); Euler on
the SVD schedule (v-prediction, Karras sigmas); windows of 110 frames overlapping by 25. The noise of
later windows reuses the first window's noise (rotated), their overlap frames start from the previous
result plus noise at the first sigma, and overlapping latents are blended with weights
linspace(0, 1, overlap) towards the new window. Decoding by chunks of 8 frames; the 3 decoded channels
mapped to [0, 1] and averaged give the relative disparity.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..runtime import CancelFn, ProgressFn, check_cancel
from .convert import DepthVideo, depth_video_from_disparity

UNET_DIR = "DepthCrafter"
SVD_DIR = "stable-video-diffusion-img2vid-xt"

_DIFFUSERS_WEIGHTS = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.bin",
    "diffusion_pytorch_model.fp16.bin",
)
_TRANSFORMERS_WEIGHTS = (
    "model.safetensors",
    "model.fp16.safetensors",
    "pytorch_model.bin",
    "pytorch_model.fp16.bin",
)

# Each entry: a path relative to the folder, and the alternatives any one of which satisfies it.
DEPTHCRAFTER_LAYOUT: tuple[tuple[str, tuple[str, ...]], ...] = (
    (f"{UNET_DIR}/unet/config.json", ()),
    (f"{UNET_DIR}/unet/diffusion_pytorch_model.safetensors", _DIFFUSERS_WEIGHTS),
    (f"{SVD_DIR}/vae/config.json", ()),
    (f"{SVD_DIR}/vae/diffusion_pytorch_model.safetensors", _DIFFUSERS_WEIGHTS),
    (f"{SVD_DIR}/image_encoder/config.json", ()),
    (f"{SVD_DIR}/image_encoder/model.safetensors", _TRANSFORMERS_WEIGHTS),
    (f"{SVD_DIR}/feature_extractor/preprocessor_config.json", ()),
    (f"{SVD_DIR}/scheduler/scheduler_config.json", ()),
)

# Published settings (DepthCrafter as EX-4D calls it).
STEPS = 5
GUIDANCE = 1.0
WINDOW = 110
OVERLAP = 25
SEED = 42
NOISE_AUG = 0.02
CHUNK = 8
FPS_ID = 7
MOTION_BUCKET_ID = 127



@dataclass
class FolderCheck:
    """Result of checking a model folder: ``ok`` and, when not, a message naming every missing file."""

    folder: Path
    missing: list[str] = field(default_factory=list)
    what: str = "model"
    layout_doc: str = ""

    @property
    def ok(self) -> bool:
        return not self.missing

    def __bool__(self) -> bool:
        return self.ok

    @property
    def message(self) -> str:
        if self.ok:
            return f"{self.what} folder {self.folder} is complete"
        lines = [f"{self.what} folder {self.folder} is missing {len(self.missing)} file(s):"]
        lines += [f"  - {m}" for m in self.missing]
        if self.layout_doc:
            lines.append(self.layout_doc)
        return "\n".join(lines)


def _first_existing(folder: Path, rel: str, alternatives: tuple[str, ...]) -> Path | None:
    path = folder / rel
    if path.is_file():
        return path
    for alt in alternatives:
        cand = path.parent / alt
        if cand.is_file():
            return cand
    return None


def check_layout(
    folder: str | Path, layout: tuple[tuple[str, tuple[str, ...]], ...], what: str, layout_doc: str = ""
) -> FolderCheck:
    folder = Path(folder)
    missing = []
    for rel, alts in layout:
        if _first_existing(folder, rel, alts) is None:
            extra = f" (or {', '.join(a for a in alts if a != Path(rel).name)})" if alts else ""
            missing.append(rel + extra)
    return FolderCheck(folder, missing, what, layout_doc)


def check_depthcrafter_folder(folder: str | Path) -> FolderCheck:
    """Which of the files DepthCrafter needs are missing under ``folder`` (see the module docstring)."""
    doc = (
        f"Put the UNet of tencent/DepthCrafter under {UNET_DIR}/unet/ and the vae, image_encoder, "
        f"feature_extractor and scheduler folders of stabilityai/stable-video-diffusion-img2vid-xt under {SVD_DIR}/."
    )
    return check_layout(folder, DEPTHCRAFTER_LAYOUT, "DepthCrafter", doc)


def _variant(component_dir: Path, names: tuple[str, ...]) -> str | None:
    """'fp16' when only the fp16 variant of the weights is there (what the published code loads)."""
    plain = [n for n in names if ".fp16." not in n]
    if any((component_dir / n).is_file() for n in plain):
        return None
    if any((component_dir / n).is_file() for n in names if ".fp16." in n):
        return "fp16"
    return None


def window_starts(num_frames: int, window: int, overlap: int) -> tuple[list[int], int, int]:
    """Start frames of the published sliding windows, and the effective (window, overlap).

    A clip no longer than the window is one window without overlap.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if num_frames <= window:
        return [0], num_frames, 0
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, window), got overlap={overlap}, window={window}")
    stride = window - overlap
    starts = []
    start = 0
    while start < num_frames - overlap:
        starts.append(start)
        start += stride
    return starts, window, overlap


def blend_windows(done: torch.Tensor | None, new: torch.Tensor, overlap: int) -> torch.Tensor:
    """Append a window's result along dim 1, blending the overlap as published.

    The ``overlap`` frames shared with ``done`` become ``new * w + done * (1 - w)`` with
    w = linspace(0, 1, overlap): the first shared frame is the previous window's, the last the new one's.
    """
    if done is None:
        return new.clone()
    if overlap == 0:
        return torch.cat([done, new], dim=1)
    # published: float32 weights, so the mix is computed in float32 and rounded to the latents' dtype once
    w = torch.linspace(0, 1, overlap, device=new.device)
    w = w.view(1, overlap, *([1] * (new.ndim - 2)))
    mixed = (new[:, :overlap] * w + done[:, -overlap:] * (1 - w)).to(new.dtype)
    return torch.cat([done[:, :-overlap], mixed, new[:, overlap:]], dim=1)


_UNET_CLASS = None


def depthcrafter_unet_class() -> type:
    """UNetSpatioTemporalConditionModel with DepthCrafter's forward: one CLIP token per frame.

    diffusers' own forward repeats one image embedding for every frame; DepthCrafter feeds the
    embedding of each frame as that frame's only cross-attention token. Everything else is SVD's UNet.
    """
    global _UNET_CLASS
    if _UNET_CLASS is not None:
        return _UNET_CLASS
    from diffusers import UNetSpatioTemporalConditionModel

    class DepthCrafterUNet(UNetSpatioTemporalConditionModel):
        def forward(  # type: ignore[override]
            self,
            sample: torch.Tensor,  # [B, T, C, h, w]
            timestep: torch.Tensor | float,
            encoder_hidden_states: torch.Tensor,  # [B, T, D]: one embedding per frame
            added_time_ids: torch.Tensor,  # [B, 3]
            return_dict: bool = False,
        ) -> torch.Tensor:
            b, t = sample.shape[:2]
            dtype = self.conv_in.weight.dtype
            ts = torch.as_tensor(timestep, device=sample.device)
            ts = ts.reshape(-1).expand(b) if ts.numel() == 1 else ts
            emb = self.time_embedding(self.time_proj(ts).to(dtype))
            extra = self.add_time_proj(added_time_ids.flatten()).reshape(b, -1).to(emb.dtype)
            emb = (emb + self.add_embedding(extra)).repeat_interleave(t, dim=0)
            context = encoder_hidden_states.flatten(0, 1).unsqueeze(1).to(dtype)
            x = self.conv_in(sample.flatten(0, 1).to(dtype))
            indicator = torch.zeros(b, t, dtype=x.dtype, device=x.device)

            skips: list[torch.Tensor] = [x]
            for block in self.down_blocks:
                kw = (
                    {"encoder_hidden_states": context} if getattr(block, "has_cross_attention", False) else {}
                )
                x, res = block(hidden_states=x, temb=emb, image_only_indicator=indicator, **kw)
                skips.extend(res)
            x = self.mid_block(
                hidden_states=x, temb=emb, encoder_hidden_states=context, image_only_indicator=indicator
            )
            for block in self.up_blocks:
                n = len(block.resnets)
                res, skips = tuple(skips[-n:]), skips[:-n]
                kw = (
                    {"encoder_hidden_states": context} if getattr(block, "has_cross_attention", False) else {}
                )
                x = block(
                    hidden_states=x,
                    res_hidden_states_tuple=res,
                    temb=emb,
                    image_only_indicator=indicator,
                    **kw,
                )
            x = self.conv_out(self.conv_act(self.conv_norm_out(x)))
            return x.reshape(b, t, *x.shape[1:])

    _UNET_CLASS = DepthCrafterUNet
    return _UNET_CLASS


def set_attention(modules: list[torch.nn.Module], kind: str) -> None:
    """'sdpa' (PyTorch scaled_dot_product_attention, diffusers AttnProcessor2_0) or 'classic'."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    if kind not in ("sdpa", "classic"):
        raise ValueError(f"attention must be 'sdpa' or 'classic', got {kind!r}")
    for m in modules:
        if hasattr(m, "set_attn_processor"):
            m.set_attn_processor(AttnProcessor2_0() if kind == "sdpa" else AttnProcessor())


def _round_to(x: int, multiple: int) -> int:
    return max(multiple, int(round(x / multiple)) * multiple)


def _vae_upcasts(vae: torch.nn.Module) -> bool:
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
) -> int:
    """Bytes of GPU memory :meth:`DepthCrafter.estimate` needs beyond its weights (about 4.2 GiB in fp16 /
    bf16) for ``frames`` frames of ``width`` x ``height``; ``vae_upcast``: the fp16 VAE encodes in fp32.

    Peak = clip + max(encode, UNet, decode): what lives through the whole run, plus the largest of the
    three stages that run one after another (VAE encode, denoising, VAE decode), with
    P the pixels per frame at the working size (rounded to ``size_multiple``), T the frames, Tw the frames
    of one window (the UNet sees a window at once), c = min(chunk, T) (the VAE sees ``chunk`` frames at
    once), b the bytes of ``dtype`` and e those the VAE encodes in (4 when upcast, else b):

        clip   = (9 b + 4) T P        the frames, their noise and their sum; the float32 disparity
        encode = 820 e c P
        UNet   = 135 b Tw P  (+ 9 b Tw (P / 64)^2 with "classic" attention: the explicit attention matrix)
        decode = 1250 b c P

    Calibrated on peak allocated memory on an H100 (random full-size weights, torch 2.11, diffusers 0.35,
    SDPA unless stated): per stage at 512 x 512, 1024 x 576 and 512 x 320 for 25, 49 and 110 frames, 200
    frames in windows of 110, fp16 / bf16 / fp32 and classic attention at 512 x 512 and 512 x 320 (0-10 %
    above every one; tests/test_depth.py keeps the figures), and bench/results/depth_h100.txt (49 frames:
    512 x 512 10.7 GiB fp16 / 8.5 GiB bf16, 1024 x 576 18.5 / 13.8 GiB, weights included). Its bf16
    figures predate the depth review fixes and lie 0.7 / 1.6 GiB below what this code needs now: there the
    VAE decode (the same in fp16 and bf16) is the peak, in fp16 the fp32 encode.
    """
    if attention not in ("sdpa", "classic"):
        raise ValueError(f"attention must be 'sdpa' or 'classic', got {attention!r}")
    if frames < 1 or window < 1:
        raise ValueError(f"frames ({frames}) and window ({window}) must be at least 1")
    p = _round_to(height, size_multiple) * _round_to(width, size_multiple)
    b = dtype.itemsize
    e = 4 if vae_upcast and dtype == torch.float16 else b
    c, tw = min(chunk, frames), min(window, frames)
    unet = 135 * b * tw * p
    if attention == "classic":
        unet += 9 * b * tw * (p // 64) ** 2
    stages = max(820 * e * c * p, unet, 1250 * b * c * p)
    return int((9 * b + 4) * frames * p + stages)


@dataclass
class _Conditioning:
    """What the UNet is conditioned on, frame by frame, and the clip's added time ids."""

    latents: torch.Tensor  # [1, T, 4, h, w]: VAE latents of the noise-augmented frames
    embeddings: torch.Tensor  # [1, T, D]: one CLIP image embedding per frame
    time_ids: torch.Tensor  # [1, 3]: fps id, motion bucket, noise augmentation

    def frames(self, start: int, end: int) -> _Conditioning:
        return _Conditioning(self.latents[:, start:end], self.embeddings[:, start:end], self.time_ids)


def _step_counter(total: int, progress: ProgressFn | None) -> Callable[[], None]:
    """A callable to call after every denoising step; it reports (steps so far, ``total``) to ``progress``."""
    done = 0

    def step_done() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    return step_done


class DepthCrafter:
    """DepthCrafter video depth: UNet (DepthCrafter) + SVD VAE, CLIP image encoder and scheduler."""

    def __init__(
        self,
        unet: torch.nn.Module,
        vae: torch.nn.Module,
        image_encoder: torch.nn.Module,
        scheduler,
        image_mean: tuple[float, float, float],
        image_std: tuple[float, float, float],
        device: torch.device | str = "cpu",
    ) -> None:
        self.unet = unet
        self.vae = vae
        self.image_encoder = image_encoder
        self.scheduler = scheduler
        self.image_mean = tuple(float(v) for v in image_mean)
        self.image_std = tuple(float(v) for v in image_std)
        self.device = torch.device(device)
        self.attention = "sdpa"  # diffusers' default processor; set_attention changes it

    # ---- loading -------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        folder: str | Path,
        dtype: torch.dtype = torch.float16,
        device: torch.device | str = "cuda",
        attention: str = "sdpa",
    ) -> DepthCrafter:
        """Load from a folder laid out as in the module docstring; never touches the network."""
        from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler
        from transformers import CLIPVisionModelWithProjection

        folder = Path(folder)
        check = check_depthcrafter_folder(folder)
        if not check.ok:
            raise FileNotFoundError(check.message)
        unet_dir = folder / UNET_DIR / "unet"
        svd = folder / SVD_DIR
        unet = depthcrafter_unet_class().from_pretrained(
            unet_dir, torch_dtype=dtype, local_files_only=True, variant=_variant(unet_dir, _DIFFUSERS_WEIGHTS)
        )
        vae = AutoencoderKLTemporalDecoder.from_pretrained(
            svd / "vae",
            torch_dtype=dtype,
            local_files_only=True,
            variant=_variant(svd / "vae", _DIFFUSERS_WEIGHTS),
        )
        image_encoder = CLIPVisionModelWithProjection.from_pretrained(
            svd / "image_encoder",
            dtype=dtype,
            local_files_only=True,
            variant=_variant(svd / "image_encoder", _TRANSFORMERS_WEIGHTS),
        )
        scheduler = EulerDiscreteScheduler.from_pretrained(svd / "scheduler", local_files_only=True)
        fe = json.loads((svd / "feature_extractor" / "preprocessor_config.json").read_text())
        model = cls(
            unet.eval().to(device),
            vae.eval().to(device),
            image_encoder.eval().to(device),
            scheduler,
            tuple(fe.get("image_mean", (0.48145466, 0.4578275, 0.40821073))),
            tuple(fe.get("image_std", (0.26862954, 0.26130258, 0.27577711))),
            device,
        )
        model.set_attention(attention)
        return model

    def set_attention(self, kind: str) -> None:
        set_attention([self.unet, self.vae], kind)
        self.attention = kind

    def inference_memory(self, frames: int, height: int, width: int, window: int = WINDOW,
                         chunk: int = CHUNK) -> int:
        """Bytes of GPU memory :meth:`estimate` needs beyond the weights (see :func:`inference_memory`)."""
        return inference_memory(frames, height, width, window, self.dtype, self.attention,
                                _vae_upcasts(self.vae), chunk)

    # ---- device management for hosts -----------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        return {"unet": self.unet, "vae": self.vae, "image_encoder": self.image_encoder}

    def to(self, device: torch.device | str) -> DepthCrafter:
        """Move every module to ``device`` and run there."""
        self.device = torch.device(device)
        for m in self.modules().values():
            m.to(self.device)
        return self

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    # ---- stages ------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_frames(self, video: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
        """One CLIP image embedding per frame. ``video`` [T, 3, H, W] in [-1, 1] -> [T, D]."""
        from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import (
            _resize_with_antialiasing,
        )

        enc = self.image_encoder
        mean = torch.tensor(self.image_mean, device=video.device).view(1, 3, 1, 1)
        std = torch.tensor(self.image_std, device=video.device).view(1, 3, 1, 1)
        out = []
        for i in range(0, video.shape[0], chunk):
            x = _resize_with_antialiasing(video[i : i + chunk].float(), (224, 224))
            x = ((x + 1.0) / 2.0 - mean) / std
            out.append(enc(pixel_values=x.to(enc.dtype)).image_embeds)
        return torch.cat(out, dim=0)

    @torch.no_grad()
    def encode_latents(self, video: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
        """VAE latents (distribution mode, unscaled, as SVD conditions on them). [T,3,H,W] -> [T,4,h,w]."""
        vae = self.vae
        upcast = _vae_upcasts(vae)
        if upcast:
            vae.to(torch.float32)
        try:
            out = [
                vae.encode(video[i : i + chunk].to(vae.dtype)).latent_dist.mode()
                for i in range(0, video.shape[0], chunk)
            ]
        finally:
            if upcast:
                vae.to(torch.float16)
        return torch.cat(out, dim=0)

    @torch.no_grad()
    def decode_disparity(self, latents: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
        """Latents [1, T, 4, h, w] -> relative disparity [T, H, W] float32 (3 channels, in [0, 1], averaged)."""
        vae = self.vae
        lat = latents.flatten(0, 1) / vae.config.scaling_factor
        out = []
        for i in range(0, lat.shape[0], chunk):
            part = lat[i : i + chunk].to(vae.dtype)
            img = vae.decode(part, num_frames=part.shape[0]).sample.float()
            out.append((img / 2.0 + 0.5).clamp(0.0, 1.0).mean(dim=1))
        return torch.cat(out, dim=0)

    # ---- inference ---------------------------------------------------------------------------------
    @torch.no_grad()
    def estimate_disparity(
        self,
        frames: torch.Tensor,
        steps: int = STEPS,
        guidance: float = GUIDANCE,
        window: int = WINDOW,
        overlap: int = OVERLAP,
        seed: int = SEED,
        noise_aug_strength: float = NOISE_AUG,
        chunk: int = CHUNK,
        size_multiple: int = 64,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        window_hook: Callable[[int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """Relative disparity [T, H, W] float32 in [0, 1] (not yet normalised over the clip).

        ``frames`` [T, H, W, 3] in [0, 1]. Frames whose size is not a multiple of ``size_multiple`` are
        resized to the nearest one and the result resized back. Noise is drawn from a generator of the
        run device seeded with ``seed``: on CUDA this is the stream the published ``set_seed(42)`` gives.
        ``progress(step, total)`` after every denoising step (total = windows x steps); ``cancel()`` is
        checked before every step and raises :class:`Cancelled`. ``window_hook(start, latents)`` sees each
        window's final latents (for tests and debugging).
        """
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be [T, H, W, 3], got {tuple(frames.shape)}")
        num_frames, height, width = frames.shape[:3]
        video = self._model_input(frames, size_multiple)
        starts, window, overlap = window_starts(num_frames, window, overlap)
        gen = torch.Generator(device=self.device).manual_seed(seed)
        check_cancel(cancel, "depth estimation")
        # Published order of random draws: the conditioning noise first, then the window noise.
        cond = self._conditioning(video, gen, noise_aug_strength, chunk)
        self.scheduler.set_timesteps(steps, device=self.device)
        noise_shape = (1, window, *cond.latents.shape[2:])
        noise = torch.randn(noise_shape, generator=gen, device=self.device, dtype=self.dtype)
        noise = noise * self.scheduler.init_noise_sigma
        step_done = _step_counter(len(starts) * steps, progress)
        done: torch.Tensor | None = None
        for start in starts:
            end = min(start + window, num_frames)
            latents = noise[:, : end - start].clone()
            # Published: the next window's noise is this one's, rotated (last `overlap` frames first).
            if overlap:
                noise = torch.cat([noise[:, -overlap:], noise[:, : window - overlap]], dim=1)
            latents = self._denoise_window(latents, cond.frames(start, end), done, overlap, steps, guidance,
                                           step_done, cancel)
            if window_hook is not None:
                window_hook(start, latents.clone())
            done = blend_windows(done, latents, overlap)
        assert done is not None and done.shape[1] == num_frames
        check_cancel(cancel, "depth estimation")
        disp = self.decode_disparity(done, chunk)
        if disp.shape[-2:] != (height, width):
            disp = F.interpolate(disp[:, None], (height, width), mode="bilinear", align_corners=False)[:, 0]
        return disp

    def _model_input(self, frames: torch.Tensor, size_multiple: int) -> torch.Tensor:
        """[T, H, W, 3] in [0, 1] -> [T, 3, H', W'] in [-1, 1] in the model's dtype, each side rounded to a
        multiple of ``size_multiple``."""
        video = frames.to(self.device, torch.float32).permute(0, 3, 1, 2)
        height, width = video.shape[-2:]
        ph, pw = _round_to(height, size_multiple), _round_to(width, size_multiple)
        if (ph, pw) != (height, width):
            video = F.interpolate(video, size=(ph, pw), mode="bilinear", align_corners=False, antialias=True)
        return video.clamp(0, 1).to(self.dtype) * 2.0 - 1.0  # published: cast first, then map to [-1, 1]

    def _conditioning(
        self, video: torch.Tensor, gen: torch.Generator, noise_aug_strength: float, chunk: int
    ) -> _Conditioning:
        """The UNet's conditioning on the whole clip: CLIP embeddings, latents of noise-augmented frames."""
        dev, dtype = self.device, self.dtype
        embeddings = self.encode_frames(video, chunk).unsqueeze(0)  # [1, T, D]
        aug = torch.randn(video.shape, generator=gen, device=dev, dtype=dtype)
        latents = self.encode_latents(video + noise_aug_strength * aug, chunk).unsqueeze(0)  # [1, T, 4, h, w]
        time_ids = torch.tensor([[FPS_ID, MOTION_BUCKET_ID, noise_aug_strength]], dtype=dtype, device=dev)
        return _Conditioning(latents.to(dtype), embeddings.to(dtype), time_ids)

    def _denoise_window(
        self,
        latents: torch.Tensor,
        cond: _Conditioning,
        previous: torch.Tensor | None,
        overlap: int,
        steps: int,
        guidance: float,
        step_done: Callable[[], None],
        cancel: CancelFn | None,
    ) -> torch.Tensor:
        """One window's noise [1, t, 4, h, w] denoised; its first ``overlap`` frames start from the frames
        ``previous`` windows ended on, re-noised to the first sigma."""
        sched = self.scheduler
        sched.set_timesteps(steps, device=self.device)
        if previous is not None and overlap:
            renoised = latents[:, :overlap] / sched.init_noise_sigma * sched.sigmas[0]
            latents[:, :overlap] = previous[:, -overlap:] + renoised
        for t in sched.timesteps:
            check_cancel(cancel, "depth estimation")
            latents = sched.step(self._predict_noise(latents, t, cond, guidance), t, latents).prev_sample
            step_done()
        return latents

    def _predict_noise(
        self, latents: torch.Tensor, t: torch.Tensor, cond: _Conditioning, guidance: float
    ) -> torch.Tensor:
        scaled = self.scheduler.scale_model_input(latents, t)
        pred = self.unet(torch.cat([scaled, cond.latents], dim=2), t, encoder_hidden_states=cond.embeddings,
                         added_time_ids=cond.time_ids)
        if guidance > 1.0:  # as SVD's do_classifier_free_guidance
            unconditioned = torch.cat([scaled, torch.zeros_like(cond.latents)], dim=2)
            pred_u = self.unet(unconditioned, t, encoder_hidden_states=torch.zeros_like(cond.embeddings),
                               added_time_ids=cond.time_ids)
            pred = pred_u + guidance * (pred - pred_u)
        return pred

    def estimate(
        self,
        frames: torch.Tensor,
        steps: int = STEPS,
        guidance: float = GUIDANCE,
        window: int = WINDOW,
        overlap: int = OVERLAP,
        seed: int = SEED,
        noise_aug_strength: float = NOISE_AUG,
        chunk: int = CHUNK,
        size_multiple: int = 64,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> DepthVideo:
        """Published DepthCrafter depth of ``frames`` [T, H, W, 3] in [0, 1] as a DepthVideo (on the CPU).

        The disparity is normalised over the whole clip and converted with the published formula.
        """
        disp = self.estimate_disparity(
            frames,
            steps,
            guidance,
            window,
            overlap,
            seed,
            noise_aug_strength,
            chunk,
            size_multiple,
            progress,
            cancel,
        )
        meta = {
            "steps": steps,
            "guidance": guidance,
            "window": window,
            "overlap": overlap,
            "seed": seed,
            "dtype": str(self.dtype).replace("torch.", ""),
            "raw_min": float(disp.min()),
            "raw_max": float(disp.max()),
        }
        return depth_video_from_disparity(disp.cpu(), "depthcrafter", meta)
