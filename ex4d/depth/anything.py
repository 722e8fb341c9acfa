"""Depth Anything V2 (transformers' DepthAnythingForDepthEstimation): the fast per-frame alternative.

Expected folder (a Hugging Face ``depth-anything/Depth-Anything-V2-{Small,Base,Large}-hf`` download;
the pack registers ``models/depth_anything/<name>/``)::

    <folder>/config.json
    <folder>/model.safetensors
    <folder>/preprocessor_config.json

Same output convention as DepthCrafter: the model's relative disparity, normalised over the whole clip,
then the published conversion to z-depth. Frames are independent, so an optional EMA over frames of the
normalised disparity (``smoothing``) tames flicker.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from ..runtime import CancelFn, ProgressFn, check_cancel
from .convert import DepthVideo, depth_video_from_disparity, normalise_clip, temporal_ema
from .folders import TRANSFORMERS_WEIGHTS, FolderCheck, Layout, check_layout, weights_variant

DEPTH_ANYTHING_LAYOUT: Layout = (
    ("config.json", ()),
    ("model.safetensors", TRANSFORMERS_WEIGHTS),
    ("preprocessor_config.json", ()),
)


def check_depth_anything_folder(folder: str | Path) -> FolderCheck:
    """Which of the files Depth Anything V2 needs are missing under ``folder``."""
    doc = (
        "Download a depth-anything/Depth-Anything-V2-*-hf repository (transformers layout) into this folder."
    )
    return check_layout(folder, DEPTH_ANYTHING_LAYOUT, "Depth Anything V2", doc)


def _multiple(x: float, m: int) -> int:
    return max(m, int(round(x / m)) * m)


def dpt_input_size(
    height: int, width: int, target: int, multiple: int, keep_aspect: bool = True
) -> tuple[int, int]:
    """DPT's resize rule: scale towards ``target`` keeping the aspect (the scale nearer 1 wins), snap to
    ``multiple``."""
    sh, sw = target / height, target / width
    if keep_aspect:
        s = sw if abs(1 - sw) < abs(1 - sh) else sh
        sh = sw = s
    return _multiple(sh * height, multiple), _multiple(sw * width, multiple)


def inference_memory(
    frames: int,
    height: int,
    width: int,
    batch_size: int = 8,
    dtype: torch.dtype = torch.float16,
    fusion_hidden_size: int = 256,
    input_size: int = 518,
    multiple: int = 14,
    keep_aspect: bool = True,
) -> int:
    """Bytes of GPU memory :meth:`DepthAnything.estimate` needs beyond its weights for ``frames`` frames of
    ``width`` x ``height`` in batches of ``batch_size``; ``fusion_hidden_size`` is the model's (V2 Small
    64, Base 128, Large 256).

        b (72 + 1.5625 fusion_hidden_size) B Pin  +  32 B H W  +  4 T H W

    with B = min(batch_size, T), Pin the pixels of the model's input (DPT resize, about 518 on the short
    side), b the bytes of ``dtype``: the network's activations, the batch of frames in float32, and the
    float32 disparity of all frames kept on the device. Calibrated on peak allocated memory on an H100
    (random weights, torch 2.11, transformers 5.17): Small / Base / Large in fp16, bf16 and fp32, batches
    of 1 to 32 of 64 frames at 512 x 512, 1024 x 576 and 512 x 320 (the activations are 165 b, 265 b and
    454 b bytes per input pixel and frame; the formula lies 0-16 % above every figure).
    """
    if frames < 1 or batch_size < 1:
        raise ValueError(f"frames ({frames}) and batch_size ({batch_size}) must be at least 1")
    ih, iw = dpt_input_size(height, width, input_size, multiple, keep_aspect)
    batch = min(batch_size, frames)
    activations = dtype.itemsize * (72 + 1.5625 * fusion_hidden_size) * batch * ih * iw
    return int(activations + 32 * batch * height * width + 4 * frames * height * width)


class DepthAnything:
    """Depth Anything V2 relative depth, batched over frames."""

    def __init__(
        self,
        model: torch.nn.Module,
        image_mean: tuple[float, float, float],
        image_std: tuple[float, float, float],
        input_size: int = 518,
        multiple: int = 14,
        keep_aspect: bool = True,
        device: torch.device | str = "cpu",
    ) -> None:
        self.model = model
        self.image_mean = tuple(float(v) for v in image_mean)
        self.image_std = tuple(float(v) for v in image_std)
        self.input_size = input_size
        self.multiple = multiple
        self.keep_aspect = keep_aspect
        self.device = torch.device(device)

    @classmethod
    def from_pretrained(
        cls,
        folder: str | Path,
        dtype: torch.dtype = torch.float16,
        device: torch.device | str = "cuda",
    ) -> DepthAnything:
        """Load from a transformers-layout folder; never touches the network."""
        from transformers import DepthAnythingForDepthEstimation

        folder = Path(folder)
        check = check_depth_anything_folder(folder)
        if not check.ok:
            raise FileNotFoundError(check.message)
        model = DepthAnythingForDepthEstimation.from_pretrained(
            folder, dtype=dtype, local_files_only=True, variant=weights_variant(folder, TRANSFORMERS_WEIGHTS)
        )
        pre = json.loads((folder / "preprocessor_config.json").read_text())
        size = pre.get("size", {})
        target = (
            int(size.get("height", size.get("shortest_edge", 518))) if isinstance(size, dict) else int(size)
        )
        return cls(
            model.eval().to(device),
            tuple(pre.get("image_mean", (0.485, 0.456, 0.406))),
            tuple(pre.get("image_std", (0.229, 0.224, 0.225))),
            target,
            int(pre.get("ensure_multiple_of", 14) or 14),
            bool(pre.get("keep_aspect_ratio", True)),
            device,
        )

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"model": self.model}

    def to(self, device: torch.device | str) -> DepthAnything:
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def inference_memory(self, frames: int, height: int, width: int, batch_size: int = 8,
                         input_size: int | None = None) -> int:
        """Bytes of GPU memory :meth:`estimate` needs beyond the weights (see :func:`inference_memory`)."""
        return inference_memory(frames, height, width, batch_size, self.dtype, self.model.config.fusion_hidden_size,
                                input_size or self.input_size, self.multiple, self.keep_aspect)

    @torch.no_grad()
    def estimate_disparity(
        self,
        frames: torch.Tensor,
        batch_size: int = 8,
        input_size: int | None = None,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> torch.Tensor:
        """Raw relative disparity [T, H, W] float32 (the model's output resized to the frames)."""
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be [T, H, W, 3], got {tuple(frames.shape)}")
        t, h, w = frames.shape[:3]
        ih, iw = dpt_input_size(h, w, input_size or self.input_size, self.multiple, self.keep_aspect)
        mean = torch.tensor(self.image_mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.image_std, device=self.device).view(1, 3, 1, 1)
        total = math.ceil(t / batch_size)
        out = []
        for k, i in enumerate(range(0, t, batch_size)):
            check_cancel(cancel, "depth estimation")
            x = frames[i : i + batch_size].to(self.device, torch.float32).permute(0, 3, 1, 2).clamp(0, 1)
            x = F.interpolate(
                x, size=(ih, iw), mode="bicubic", align_corners=False, antialias=(ih < h or iw < w)
            )
            x = ((x.clamp(0, 1) - mean) / std).to(self.dtype)
            pred = self.model(pixel_values=x).predicted_depth.float()  # [B, ih, iw]
            pred = F.interpolate(pred[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
            out.append(pred)
            if progress is not None:
                progress(k + 1, total)
        return torch.cat(out, dim=0)

    def estimate(
        self,
        frames: torch.Tensor,
        batch_size: int = 8,
        smoothing: float = 1.0,
        input_size: int | None = None,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> DepthVideo:
        """Depth of ``frames`` [T, H, W, 3] in [0, 1] as a DepthVideo (on the CPU).

        ``smoothing`` is the EMA weight of the current frame (1 = off); the smoothed disparity is
        renormalised over the clip before the published conversion, so the nearest surface stays at
        10000 / 3900.
        """
        raw = self.estimate_disparity(frames, batch_size, input_size, progress, cancel).cpu()
        r = normalise_clip(raw)
        if smoothing < 1.0:
            r = temporal_ema(r, smoothing)
        meta = {
            "smoothing": smoothing,
            "dtype": str(self.dtype).replace("torch.", ""),
            "raw_min": float(raw.min()),
            "raw_max": float(raw.max()),
        }
        return depth_video_from_disparity(r, "depth_anything", meta)
