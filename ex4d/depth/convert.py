"""Depth containers and conversions: published disparity -> depth, maps from other nodes, previews.

Only torch is imported here; the model code lives in ``crafter`` (and its ``crafter_*`` modules) and ``anything``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import torch

from ..camera.lens import Lens

# Published conversion (EX-4D, section 1 of the reference): d = 3900 r, d = max(d, 1e-5), z = 10000 / d.
DISPARITY_SCALE = 3900.0
DEPTH_NUMERATOR = 10000.0
DISPARITY_FLOOR = 1e-5
DEPTH_MIN = 1e-4
DEPTH_MAX = 1e4
NEAREST_DEPTH = DEPTH_NUMERATOR / DISPARITY_SCALE  # ~2.564: where r = 1 lands


@dataclass
class DepthVideo:
    """What moves between nodes: z-depth per frame, plus the normalised disparity it came from and, where the
    source knows it, the lens the clip was filmed through.

    ``lens`` None: the source gives no lens (DepthCrafter, Depth Anything V2, a depth file): the published
    500 px focal length about the image centre (:attr:`clip_lens`). ``metric``: the depth is in metres (MoGe,
    Depth Anything 3), not the published relative scale."""

    depth: torch.Tensor  # [T, H, W] float32 z-depth (not distance), in [DEPTH_MIN, DEPTH_MAX]
    disparity: torch.Tensor | None = None  # [T, H, W] float32 in [0, 1], clip-wide normalised
    source: str = ""  # "depthcrafter", "depth_anything", "image", ...
    meta: dict = field(default_factory=dict)
    lens: Lens | None = None
    metric: bool = False

    def __post_init__(self) -> None:
        if self.depth.ndim != 3:
            raise ValueError(f"DepthVideo.depth must be [T, H, W], got {tuple(self.depth.shape)}")
        if self.disparity is not None and self.disparity.shape != self.depth.shape:
            raise ValueError(
                f"disparity {tuple(self.disparity.shape)} and depth {tuple(self.depth.shape)} differ in shape"
            )
        if self.lens is not None:
            if (self.lens.width, self.lens.height) != (self.width, self.height):
                raise ValueError(f"lens: made for {self.lens.width}x{self.lens.height} images, but the depth is "
                                 f"{self.width}x{self.height}")
            if self.lens.focals is not None and len(self.lens.focals) != self.num_frames:
                raise ValueError(f"lens: {len(self.lens.focals)} per-frame focal lengths for {self.num_frames} "
                                 "depth frames")

    @property
    def clip_lens(self) -> Lens:
        """The lens the clip is seen through: its own, else the published 500 px about the image centre."""
        return self.lens if self.lens is not None else Lens.centred(self.width, self.height)

    def with_lens(self, lens: Lens | None, metric: bool | None = None) -> DepthVideo:
        """The same depth seen through ``lens`` (and ``metric`` when given)."""
        return replace(self, lens=lens, metric=self.metric if metric is None else metric)

    @property
    def num_frames(self) -> int:
        return int(self.depth.shape[0])

    @property
    def height(self) -> int:
        return int(self.depth.shape[1])

    @property
    def width(self) -> int:
        return int(self.depth.shape[2])

    def to(self, device: torch.device | str) -> DepthVideo:
        disp = None if self.disparity is None else self.disparity.to(device)
        return DepthVideo(self.depth.to(device), disp, self.source, dict(self.meta), self.lens, self.metric)

    def __repr__(self) -> str:
        lo, hi = float(self.depth.min()), float(self.depth.max())
        return f"DepthVideo({self.num_frames}x{self.height}x{self.width}, depth {lo:.4g}..{hi:.4g}, source={self.source!r})"


def normalise_clip(x: torch.Tensor) -> torch.Tensor:
    """(x - min) / (max - min) over the whole tensor (the whole clip), in float32.

    A constant input (max == min) gives zeros instead of the published code's NaNs.
    """
    x = x.float()
    lo, hi = x.min(), x.max()
    span = hi - lo
    if float(span) <= 0.0:
        return torch.zeros_like(x)
    return (x - lo) / span


def disparity_to_depth(disparity: torch.Tensor, normalise: bool = True) -> torch.Tensor:
    """The published conversion of relative disparity to the mesh's z-depth.

    r = (r - min) / (max - min) over the whole clip (skipped with ``normalise=False`` when r already
    is), d = max(3900 r, 1e-5), depth = 10000 / d, clipped to [1e-4, 1e4].
    """
    r = normalise_clip(disparity) if normalise else disparity.float()
    d = (DISPARITY_SCALE * r).clamp_min(DISPARITY_FLOOR)
    return (DEPTH_NUMERATOR / d).clamp(DEPTH_MIN, DEPTH_MAX)


def depth_video_from_disparity(
    disparity: torch.Tensor, source: str, meta: dict | None = None, normalise: bool = True
) -> DepthVideo:
    """Clip-wide normalised disparity and its published depth, as a DepthVideo."""
    r = normalise_clip(disparity) if normalise else disparity.float()
    return DepthVideo(disparity_to_depth(r, normalise=False), r, source, dict(meta or {}))


def temporal_ema(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Exponential moving average over dim 0: y_0 = x_0, y_t = alpha x_t + (1 - alpha) y_{t-1}.

    ``alpha = 1`` returns the input unchanged; smaller values smooth more (and lag more).
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if alpha == 1.0 or x.shape[0] < 2:
        return x.clone()
    out = torch.empty_like(x)
    out[0] = x[0]
    for t in range(1, x.shape[0]):
        out[t] = alpha * x[t] + (1.0 - alpha) * out[t - 1]
    return out


def _as_map(image_or_mask: torch.Tensor) -> torch.Tensor:
    """IMAGE [T,H,W,C] (channels averaged), MASK [T,H,W] or one map [H,W] -> [T,H,W] float32."""
    x = image_or_mask
    if x.ndim == 4:
        x = x[..., :3].float().mean(dim=-1)
    elif x.ndim == 2:
        x = x[None]
    elif x.ndim != 3:
        raise ValueError(f"expected an IMAGE [T,H,W,C], a MASK [T,H,W] or a map [H,W], got {tuple(x.shape)}")
    return x.float()


def depth_from_map(
    image_or_mask: torch.Tensor,
    invert: bool = False,
    mode: Literal["published", "near_far", "metric"] = "published",
    near: float = 1.0,
    far: float = 100.0,
    normalise: bool = True,
) -> DepthVideo:
    """The pack's depth from a depth or disparity map produced by any other node.

    ``invert=False``: the input is disparity-like (bright = near, as MiDaS / Depth Anything previews).
    ``invert=True``: the input is depth-like (bright = far).

    ``mode``:
    - ``"published"``: treat the map as relative disparity and apply the published conversion
      (clip-wide normalisation, 10000 / (3900 r)); a depth-like input is flipped (r = 1 - n) first.
    - ``"near_far"``: normalise over the clip to n in [0, 1] and map to metric depth between ``near``
      and ``far``: linearly in depth for depth-like inputs, linearly in 1/depth for disparity-like ones
      (n = 1 is nearest in both cases after the flip).
    - ``"metric"``: the values are in scene units already: a depth-like input (``invert=True``) is
      z-depth used as is, a disparity-like one becomes 1 / value. Clipped to [1e-4, 1e4].
    ``normalise=False`` skips the clip-wide normalisation (``published`` / ``near_far``): the input is
    taken to be in [0, 1] already.
    """
    x = _as_map(image_or_mask)
    meta = {"invert": invert, "mode": mode}
    if mode == "metric":
        depth = x if invert else 1.0 / x.clamp_min(1.0 / DEPTH_MAX)
        depth = depth.clamp(DEPTH_MIN, DEPTH_MAX)
        return DepthVideo(depth, None, "image", meta)
    n = normalise_clip(x) if normalise else x.clamp(0.0, 1.0)
    if mode == "published":
        r = 1.0 - n if invert else n
        return depth_video_from_disparity(r, "image", meta, normalise=normalise)
    if mode == "near_far":
        if not 0.0 < near < far:
            raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
        meta.update(near=near, far=far)
        if invert:
            depth = near + n * (far - near)
            r = 1.0 - n
        else:
            depth = 1.0 / (1.0 / far + n * (1.0 / near - 1.0 / far))
            r = n
        return DepthVideo(depth.clamp(DEPTH_MIN, DEPTH_MAX), r, "image", meta)
    raise ValueError(f"unknown mode {mode!r}: use 'published', 'near_far' or 'metric'")


# Colormaps. Turbo from its published polynomial fit (Mikhailov 2019); inferno as 11 control points
# read off matplotlib's table, interpolated linearly: plenty for a preview.
_TURBO_COEFFS = (
    (0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943),
    (0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604),
    (0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973),
)
_INFERNO = (
    (0.001462, 0.000466, 0.013866),
    (0.087411, 0.044556, 0.224813),
    (0.258234, 0.038571, 0.406485),
    (0.416331, 0.090203, 0.432943),
    (0.578304, 0.148039, 0.404411),
    (0.735683, 0.215906, 0.330245),
    (0.865006, 0.316822, 0.226055),
    (0.954506, 0.468744, 0.099874),
    (0.987622, 0.645320, 0.039886),
    (0.964394, 0.843848, 0.273391),
    (0.988362, 0.998364, 0.644924),
)


def colormap_lut(name: str, size: int = 256) -> torch.Tensor:
    """[size, 3] float32 RGB table in [0, 1] for ``turbo``, ``inferno`` or ``gray``."""
    t = torch.linspace(0.0, 1.0, size, dtype=torch.float64)
    if name == "turbo":
        powers = torch.stack([t**k for k in range(6)], dim=-1)  # [size, 6]
        lut = powers @ torch.tensor(_TURBO_COEFFS, dtype=torch.float64).T
    elif name == "inferno":
        pts = torch.tensor(_INFERNO, dtype=torch.float64)
        pos = t * (len(_INFERNO) - 1)
        i0 = pos.floor().long().clamp(max=len(_INFERNO) - 2)
        w = (pos - i0)[:, None]
        lut = pts[i0] * (1 - w) + pts[i0 + 1] * w
    elif name == "gray":
        lut = t[:, None].repeat(1, 3)
    else:
        raise ValueError(f"unknown colormap {name!r}: use 'turbo', 'inferno' or 'gray'")
    return lut.clamp(0.0, 1.0).float()


def depth_preview(
    depth: DepthVideo | torch.Tensor,
    colormap: str = "turbo",
    use_disparity: bool = True,
) -> torch.Tensor:
    """Colour-mapped preview, IMAGE [T, H, W, 3] in [0, 1]; near is the hot end of the map.

    Uses the clip-wide normalised disparity when there is one (``use_disparity``), else 1 / depth
    normalised over the clip, so frames share one scale and flicker shows.
    """
    if isinstance(depth, DepthVideo):
        if use_disparity and depth.disparity is not None:
            r = depth.disparity.float()
        else:
            r = normalise_clip(1.0 / depth.depth.float().clamp_min(DEPTH_MIN))
    else:
        r = normalise_clip(1.0 / depth.float().clamp_min(DEPTH_MIN))
    lut = colormap_lut(colormap).to(r.device)
    idx = (r.clamp(0.0, 1.0) * (lut.shape[0] - 1)).round().long()
    return lut[idx]
