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
    in; then one multiply-add, in place into the centred values (no third buffer of the input's size)."""
    n, c = x.shape[:2]
    rows = x.reshape(n, groups, -1)
    mean = rows.mean(-1, dtype=torch.float32)
    mean_x = mean.to(x.dtype)
    centred = rows - mean_x[..., None]
    offset = mean - mean_x.float()
    var = (torch.linalg.vector_norm(centred, dim=-1, dtype=torch.float32).square() / rows.shape[-1]
           - offset.square()).clamp_min(0)
    per_channel = c // groups
    rstd = torch.rsqrt(var + eps).repeat_interleave(per_channel, dim=1)
    scale = rstd if weight is None else rstd * weight.float()
    shift = -offset.repeat_interleave(per_channel, dim=1) * scale
    if bias is not None:
        shift = shift + bias.float()
    view = (n, c) + (1,) * (x.ndim - 2)
    centred = centred.reshape(x.shape)
    return torch.addcmul(shift.to(x.dtype).view(view), centred, scale.to(x.dtype).view(view), out=centred)


class SplitGroupNorm(torch.nn.GroupNorm):
    """``torch.nn.GroupNorm`` (same parameters and state dict) computed by :func:`split_group_norm`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return split_group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


def use_split_group_norm(root: torch.nn.Module) -> int:
    """Replace every ``torch.nn.GroupNorm`` under ``root``, in place, by a :class:`SplitGroupNorm` holding the same
    parameter objects; returns how many were replaced."""
    replaced = 0
    for parent in list(root.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not torch.nn.GroupNorm:
                continue
            norm = SplitGroupNorm(child.num_groups, child.num_channels, child.eps, affine=False)
            norm.affine = child.affine
            norm.weight, norm.bias = child.weight, child.bias
            norm.train(child.training)
            setattr(parent, name, norm)
            replaced += 1
    return replaced
