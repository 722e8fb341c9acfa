"""Video depth for EX-4D: DepthCrafter (published), Depth Anything V2 (fast), conversions, previews.

    dc = DepthCrafter.from_pretrained("models/depthcrafter", dtype=torch.float16, device="cuda")
    depth = dc.estimate(frames)          # frames [T, H, W, 3] in [0, 1] -> DepthVideo
    depth.depth                          # [T, H, W] z-depth, nearest surface at 10000 / 3900 ~ 2.564

Importing this package only imports torch and numpy: diffusers and transformers are imported when a model
is loaded.
"""

from ..runtime import Cancelled
from .anything import DepthAnything, check_depth_anything_folder
from .anything import inference_memory as depth_anything_inference_memory
from .convert import (
    DEPTH_MAX,
    DEPTH_MIN,
    NEAREST_DEPTH,
    DepthVideo,
    colormap_lut,
    depth_from_map,
    depth_preview,
    depth_video_from_disparity,
    disparity_to_depth,
    normalise_clip,
    temporal_ema,
)
from .crafter import DepthCrafter
from .crafter_files import DEPTHCRAFTER_LAYOUT, check_depthcrafter_folder
from .crafter_memory import inference_memory as depthcrafter_inference_memory
from .files import (
    DEPTH_CONTENTS,
    DEPTH_FILE_EXTENSIONS,
    DepthFileError,
    depth_from_values,
    read_depth_array,
    read_depth_lens,
    write_depth_file,
)
from .folders import FolderCheck
from .windows import blend_windows, window_starts

__all__ = [
    "DEPTHCRAFTER_LAYOUT",
    "DEPTH_CONTENTS",
    "DEPTH_FILE_EXTENSIONS",
    "DEPTH_MAX",
    "DEPTH_MIN",
    "NEAREST_DEPTH",
    "Cancelled",
    "DepthAnything",
    "DepthCrafter",
    "DepthFileError",
    "DepthVideo",
    "FolderCheck",
    "blend_windows",
    "check_depth_anything_folder",
    "check_depthcrafter_folder",
    "colormap_lut",
    "depth_anything_inference_memory",
    "depth_from_map",
    "depth_from_values",
    "depth_preview",
    "depth_video_from_disparity",
    "depthcrafter_inference_memory",
    "disparity_to_depth",
    "normalise_clip",
    "read_depth_array",
    "read_depth_lens",
    "temporal_ema",
    "window_starts",
    "write_depth_file",
]
