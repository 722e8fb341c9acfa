"""The reference's latent shape and initial noise, for tests and benchmarks that sample as the published code
does (the nodes take both from the host: WanImageToVideo's latent, SamplerCustom's noise).

The published noise is float32 standard normal drawn on the CPU from a generator seeded with the seed.
"""

from __future__ import annotations

import torch

from ex4d.sampling import LATENT_CHANNELS, SPATIAL_COMPRESSION, TEMPORAL_COMPRESSION


def latent_shape(
    num_frames: int, height: int, width: int, channels: int = LATENT_CHANNELS
) -> tuple[int, int, int, int, int]:
    """Wan 2.1 latent shape: 4x temporal and 8x spatial compression, batch 1."""
    if num_frames < 1 or (num_frames - 1) % TEMPORAL_COMPRESSION:
        raise ValueError(f"num_frames must be 4k + 1 (1, 5, 9, ..., 49, ...), got {num_frames}")
    s = SPATIAL_COMPRESSION
    if height % s or width % s or height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive multiples of {s}, got {width}x{height}")
    return (1, channels, (num_frames - 1) // TEMPORAL_COMPRESSION + 1, height // s, width // s)


def noise_for_shape(seed: int, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """float32 standard normal noise of ``shape`` from a CPU generator seeded with ``seed``."""
    generator = torch.Generator("cpu").manual_seed(int(seed))
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32, device="cpu")
