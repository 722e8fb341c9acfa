"""The published EX-4D sampling recipe: flow-matching schedule, latent shape and initial noise.

The published schedule: ``sigmas = linspace(1, 0, steps + 1)[:-1]``, shifted by
``s -> shift * s / (1 + (shift - 1) * s)`` (shift 5), timestep ``1000 * sigma``, Euler steps
``x <- x + v * (sigma_next - sigma)`` with ``sigma_next = 0`` after the last step. The noise is
float32 standard normal drawn on the CPU from a generator seeded with the seed.
"""

from __future__ import annotations

import torch

PUBLISHED_SHIFT = 5.0
PUBLISHED_STEPS = 25
PUBLISHED_CFG = 5.0
PUBLISHED_SEED = 0
PUBLISHED_SIZE = 512  # width and height
PUBLISHED_FRAMES = 49
LATENT_CHANNELS = 16
TEMPORAL_COMPRESSION = 4  # Wan 2.1 VAE: T frames -> (T - 1) / 4 + 1 latent frames
SPATIAL_COMPRESSION = 8


def shift_sigmas(sigmas: torch.Tensor, shift: float = PUBLISHED_SHIFT) -> torch.Tensor:
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def flow_match_sigmas(steps: int, shift: float = PUBLISHED_SHIFT) -> torch.Tensor:
    """The published sigma sequence for ``steps`` steps, INCLUDING the final 0 (``steps + 1`` values).

    Computed in float64 and returned as float32, the dtype the host's samplers use.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if shift <= 0:
        raise ValueError(f"shift must be positive, got {shift}")
    sigmas = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)[:-1]
    sigmas = shift_sigmas(sigmas, shift)
    return torch.cat([sigmas, sigmas.new_zeros(1)]).to(torch.float32)


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
