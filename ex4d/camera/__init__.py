"""Camera paths for EX-4D, one module per job:

- :mod:`.lens`: the lens a clip is seen through (image size, intrinsics, per-frame focal lengths);
- :mod:`.path`: :class:`CameraPath`, one world-to-camera pose per frame (and the conventions);
- :mod:`.clip`: :class:`Clip`, what a path is made for (frames, lens, orbit radius);
- :mod:`.speed`: :class:`Speed`, easing and holds;
- :mod:`.moves`: orbit, dolly and straight moves; :mod:`.presets`: the published presets as a table;
  :mod:`.keyframes`: custom paths from keyframes;
- :mod:`.files`: the published npz and this pack's JSON; :mod:`.preview`: the dot-splat top and side views.

The names below are the package's public face, each defined once in its module.
"""

from .clip import Clip, radius_from_depth
from .files import CameraFileError, read_ex4d_npz, read_json, to_json_dict, write_ex4d_npz, write_json
from .keyframes import Keyframe, keyframed
from .lens import PUBLISHED_FOCAL, Lens
from .moves import MOVES, dolly, move, orbit
from .path import CameraPath
from .presets import PRESETS, SWEEPS, preset
from .preview import path_preview
from .speed import EASINGS, Speed

__all__ = ["EASINGS", "MOVES", "PRESETS", "PUBLISHED_FOCAL", "SWEEPS", "CameraFileError", "CameraPath", "Clip",
           "Keyframe", "Lens", "Speed", "dolly", "keyframed", "move", "orbit", "path_preview", "preset",
           "radius_from_depth", "read_ex4d_npz", "read_json", "to_json_dict", "write_ex4d_npz", "write_json"]
