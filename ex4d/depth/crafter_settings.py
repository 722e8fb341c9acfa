"""DepthCrafter's settings: the published ones (as EX-4D calls it), the encode's chunk, and the working size frames
are rounded to."""

from __future__ import annotations

STEPS = 5
GUIDANCE = 1.0
WINDOW = 110
OVERLAP = 25
SEED = 42
NOISE_AUG = 0.02
CHUNK = 8  # frames the VAE decodes at once: its decoder is temporal, and 8 is the published chunk
FPS_ID = 7
MOTION_BUCKET_ID = 127

# Frames the VAE encoder and CLIP see at once. Both work frame by frame, so this changes no result, only the
# encode's memory: an fp16 VAE encodes in fp32, where 8 frames would need more than the decode of 8.
ENCODE_CHUNK = 4


def round_to(x: int, multiple: int) -> int:
    """``x`` rounded to the nearest multiple of ``multiple``, at least one multiple."""
    return max(multiple, int(round(x / multiple)) * multiple)
