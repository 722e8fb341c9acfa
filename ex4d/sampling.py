"""The published EX-4D sampling recipe: flow-matching schedule, settings and the Wan 2.1 latent layout.

The published schedule: ``sigmas = linspace(1, 0, steps + 1)[:-1]``, shifted by
``s -> shift * s / (1 + (shift - 1) * s)`` (shift 5), timestep ``1000 * sigma``, Euler steps
``x <- x + v * (sigma_next - sigma)`` with ``sigma_next = 0`` after the last step.
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

