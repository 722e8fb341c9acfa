"""GroupNorm from PyTorch's general reductions, for DepthCrafter's UNet and VAE.

PyTorch's own GroupNorm kernel on CUDA reduces each (sample, group) row in one thread block; in SVD's VAE decoder
and UNet at video sizes the rows are long (a million values at 512 x 512) and few, so that kernel leaves most of
the GPU idle. The general reductions (``mean``, ``vector_norm``) split a long row over many blocks. Measured on an
H100, fp16, 49 frames at 512 x 512: DepthCrafter 4.29 s with PyTorch's GroupNorm, 3.85 s with this one
(``bench/results/fast_and_speed_h100.txt``). The result is ``F.group_norm``'s to round-off: float32 statistics,
as PyTorch's kernel keeps them.
"""

from __future__ import annotations

import torch


def split_group_norm(x: torch.Tensor, groups: int, weight: torch.Tensor | None, bias: torch.Tensor | None,
                     eps: float) -> torch.Tensor:
    """``F.group_norm(x, groups, weight, bias, eps)`` for x of shape [N, C, ...].

    The mean in float32; the input centred on it in the input's dtype (exact where the two are close); the
    variance from the centred values (no cancellation), corrected for what centring on the rounded mean left
    in; then one multiply-add, in place into the centred values where no gradient is recorded (no third buffer of
    the input's size). On a CUDA device the float32 statistics of a half input are read in one pass; on the CPU
    they take a float32 copy of it (:class:`SplitGroupNorm` runs PyTorch's own kernel there)."""
    n, c = x.shape[:2]
    if c % groups:
        raise ValueError(f"group norm: {c} channels do not divide into {groups} groups")
    rows = x.reshape(n, groups, -1)
    if n * rows.shape[-1] == 1:  # as F.group_norm refuses it
        raise ValueError(f"group norm: an input of shape {list(x.shape)} in {groups} groups gives each group's "
                         "statistics a single value")
    statistics = torch.promote_types(x.dtype, torch.float32)
    mean = rows.mean(-1, dtype=statistics)
    mean_x = mean.to(x.dtype)
    centred = rows - mean_x[..., None]
    offset = mean - mean_x.to(statistics)
    var = (torch.linalg.vector_norm(centred, dim=-1, dtype=statistics).square() / rows.shape[-1]
           - offset.square()).clamp_min(0)
    per_channel = c // groups
    rstd = torch.rsqrt(var + eps).repeat_interleave(per_channel, dim=1)
    scale = rstd if weight is None else rstd * weight.to(statistics)
    shift = -offset.repeat_interleave(per_channel, dim=1) * scale
    if bias is not None:
        shift = shift + bias.to(statistics)
    view = (n, c) + (1,) * (x.ndim - 2)
    centred = centred.reshape(x.shape)
    recorded = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias))
    return torch.addcmul(shift.to(x.dtype).view(view), centred, scale.to(x.dtype).view(view),
                         out=None if recorded else centred)


class SplitGroupNorm(torch.nn.GroupNorm):
    """``torch.nn.GroupNorm`` computed by :func:`split_group_norm` on a CUDA device, by PyTorch's kernel elsewhere
    (where the split gains nothing and a half input's statistics would take a float32 copy of it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_cuda:
            return super().forward(x)
        return split_group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


def use_split_group_norm(root: torch.nn.Module) -> int:
    """Make every ``torch.nn.GroupNorm`` under ``root`` a :class:`SplitGroupNorm`, in place (the same module: its
    parameters, hooks and device stay); returns how many."""
    norms = [m for m in root.modules() if type(m) is torch.nn.GroupNorm]
    for norm in norms:
        norm.__class__ = SplitGroupNorm
    return len(norms)
