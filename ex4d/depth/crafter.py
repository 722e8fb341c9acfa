"""DepthCrafter, the published video depth pipeline: SVD's VAE and CLIP image encoder around DepthCrafter's UNet,
denoised in windows over the clip.

Published inference (DepthCrafter's pipeline, as EX-4D runs it): frames in [0, 1] -> [-1, 1]; one CLIP
image embedding per frame (antialiased resize to 224, CLIP normalisation) used as that frame's single
cross-attention token; VAE latents (distribution mode, unscaled) of the frames plus 0.02 Gaussian noise
as the conditioning channels; added time ids (fps 7, motion bucket 127, noise strength 0.02); Euler on
the SVD schedule (v-prediction, Karras sigmas); windows of 110 frames overlapping by 25. The noise of
later windows reuses the first window's noise (rotated), their overlap frames start from the previous
result plus noise at the first sigma, and overlapping latents are blended with weights
linspace(0, 1, overlap) towards the new window. Decoding by chunks of 8 frames (the VAE's decoder is
temporal); the 3 decoded channels mapped to [0, 1] and averaged give the relative disparity. The encode runs
by chunks of 4 frames here, not the published 8: the VAE's encoder and CLIP work frame by frame, so this
changes no result, and it keeps the encode (in fp32 for an fp16 VAE) below the decode's memory.

The folder it loads from: :mod:`crafter_files`; the UNet: :mod:`crafter_unet`; windows: :mod:`windows`; the
memory it needs: :mod:`crafter_memory`; the GroupNorm the UNet and the VAE run (``F.group_norm``'s result, faster on
a GPU): :mod:`group_norm`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..runtime import CancelFn, ProgressFn, check_cancel
from .convert import DepthVideo, depth_video_from_disparity
from .crafter_files import (
    DEPTHCRAFTER_LAYOUT,
    SVD_DIR,
    UNET_DIR,
    check_depthcrafter_folder,
    read_depthcrafter_folder,
)
from .crafter_memory import inference_memory, vae_upcasts
from .crafter_settings import (
    CHUNK,
    ENCODE_CHUNK,
    FPS_ID,
    GUIDANCE,
    MOTION_BUCKET_ID,
    NOISE_AUG,
    OVERLAP,
    SEED,
    STEPS,
    WINDOW,
    round_to,
)
from .crafter_unet import depthcrafter_unet_class, set_attention
from .folders import FolderCheck
from .group_norm import use_split_group_norm
from .windows import blend_windows, window_starts

# The names this module held before it was split by job, for code that imports them from here.
__all__ = [
    "CHUNK",
    "DEPTHCRAFTER_LAYOUT",
    "ENCODE_CHUNK",
    "GUIDANCE",
    "OVERLAP",
    "SEED",
    "STEPS",
    "SVD_DIR",
    "UNET_DIR",
    "WINDOW",
    "DepthCrafter",
    "FolderCheck",
    "blend_windows",
    "check_depthcrafter_folder",
    "depthcrafter_unet_class",
    "inference_memory",
    "set_attention",
    "window_starts",
]


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
        use_split_group_norm(unet)
        use_split_group_norm(vae)
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
        """Load from a folder laid out as :mod:`crafter_files` documents; never touches the network."""
        parts = read_depthcrafter_folder(folder, dtype)
        model = cls(
            parts.unet.to(device),
            parts.vae.to(device),
            parts.image_encoder.to(device),
            parts.scheduler,
            parts.image_mean,
            parts.image_std,
            device,
        )
        model.set_attention(attention)
        return model

    def set_attention(self, kind: str) -> None:
        set_attention([self.unet, self.vae], kind)
        self.attention = kind

    def inference_memory(self, frames: int, height: int, width: int, window: int = WINDOW,
                         chunk: int = CHUNK, encode_chunk: int = ENCODE_CHUNK) -> int:
        """Bytes of GPU memory :meth:`estimate` needs beyond the weights (see :func:`inference_memory`)."""
        return inference_memory(frames, height, width, window, self.dtype, self.attention,
                                vae_upcasts(self.vae), chunk, encode_chunk=encode_chunk)

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
    def encode_frames(self, video: torch.Tensor, chunk: int = ENCODE_CHUNK) -> torch.Tensor:
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
    def encode_latents(self, video: torch.Tensor, chunk: int = ENCODE_CHUNK) -> torch.Tensor:
        """VAE latents (distribution mode, unscaled, as SVD conditions on them). [T,3,H,W] -> [T,4,h,w]."""
        vae = self.vae
        upcast = vae_upcasts(vae)
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
        encode_chunk: int = ENCODE_CHUNK,
        size_multiple: int = 64,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        window_hook: Callable[[int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """Relative disparity [T, H, W] float32 in [0, 1] (not yet normalised over the clip).

        ``frames`` [T, H, W, 3] in [0, 1]. The VAE decodes ``chunk`` frames at once (its decoder is temporal:
        the published 8); the VAE encoder and CLIP see ``encode_chunk`` frames at once (frame by frame networks:
        the chunk sets their memory only). Frames whose size is not a multiple of ``size_multiple`` are
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
        cond = self._conditioning(video, gen, noise_aug_strength, encode_chunk)
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
        ph, pw = round_to(height, size_multiple), round_to(width, size_multiple)
        if (ph, pw) != (height, width):
            video = F.interpolate(video, size=(ph, pw), mode="bilinear", align_corners=False, antialias=True)
        return video.clamp(0, 1).to(self.dtype) * 2.0 - 1.0  # published: cast first, then map to [-1, 1]

    def _conditioning(
        self, video: torch.Tensor, gen: torch.Generator, noise_aug_strength: float, encode_chunk: int
    ) -> _Conditioning:
        """The UNet's conditioning on the whole clip: CLIP embeddings, latents of noise-augmented frames."""
        dev, dtype = self.device, self.dtype
        embeddings = self.encode_frames(video, encode_chunk).unsqueeze(0)  # [1, T, D]
        aug = torch.randn(video.shape, generator=gen, device=dev, dtype=dtype)
        latents = self.encode_latents(video + noise_aug_strength * aug, encode_chunk).unsqueeze(0)
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
        encode_chunk: int = ENCODE_CHUNK,
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
            encode_chunk,
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
