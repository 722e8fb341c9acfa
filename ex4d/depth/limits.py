"""The smallest input a depth model takes, checked before it loads (its own failure names no input).

DepthCrafter works on frames rounded to multiples of 64 (at least 64): its latent is 1/8 of that and its UNet
halves it three more times, so a 64-pixel side is one pixel at the UNet's deepest layers. There each group norm
normalises (frames in the window) x (channels per group) x (deepest pixels) values, and a group of one value is
refused (PyTorch's: "Expected more than 1 value per channel when training"; :mod:`group_norm` likewise). A model
whose groups hold several channels (the published DepthCrafter: 10 or more) never meets this; a narrow one on one
frame of 64 x 64 does.
"""

from __future__ import annotations

import torch

from .crafter_settings import round_to

WORKING_MULTIPLE = 64  # DepthCrafter's working size: frames rounded to multiples of this
DEEPEST_FACTOR = 64  # the latent (1/8) halved three times by the UNet's down blocks


def depthcrafter_too_small(unet: torch.nn.Module, window_frames: int, height: int, width: int) -> str | None:
    """Why ``window_frames`` frames of ``width`` x ``height`` are too small for DepthCrafter's ``unet`` (a message
    naming the smallest size), or None when they fit."""
    groups = [m.num_channels // m.num_groups for m in unet.modules() if isinstance(m, torch.nn.GroupNorm)]
    if not groups:
        return None
    ph, pw = round_to(height, WORKING_MULTIPLE), round_to(width, WORKING_MULTIPLE)
    deepest = max(1, ph // DEEPEST_FACTOR) * max(1, pw // DEEPEST_FACTOR)
    if window_frames * min(groups) * deepest > 1:
        return None
    smallest = WORKING_MULTIPLE + WORKING_MULTIPLE // 2  # rounds to 128: two pixels deep down
    return (f"{window_frames} frame(s) of {width}x{height} are smaller than DepthCrafter takes: it works on "
            f"{pw}x{ph}, one pixel deep in its UNet, where a norm group of this model holds a single value; give "
            f"frames of at least {smallest} pixels on a side (or more frames per window)")
