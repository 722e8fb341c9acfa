"""DepthCrafter's published settings (as EX-4D calls it) and the working size frames are rounded to."""

from __future__ import annotations

STEPS = 5
GUIDANCE = 1.0
WINDOW = 110
OVERLAP = 25
SEED = 42
NOISE_AUG = 0.02
CHUNK = 8
FPS_ID = 7
MOTION_BUCKET_ID = 127


def round_to(x: int, multiple: int) -> int:
    """``x`` rounded to the nearest multiple of ``multiple``, at least one multiple."""
    return max(multiple, int(round(x / multiple)) * multiple)
