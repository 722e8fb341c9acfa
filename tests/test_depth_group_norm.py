"""ex4d.depth.group_norm: DepthCrafter's GroupNorm from PyTorch's general reductions, F.group_norm's result."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ex4d import depth as D
from ex4d.depth.crafter_files import read_depthcrafter_folder
from ex4d.depth.group_norm import SplitGroupNorm, split_group_norm, use_split_group_norm
from tests.test_depth_models import _clip

SHAPES = [((2, 32, 8, 8), 8), ((1, 64, 3, 16, 16), 32), ((3, 6, 10), 3)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape,groups", SHAPES)
@pytest.mark.parametrize("mean", [0.0, 50.0])
@pytest.mark.parametrize("affine", [True, False])
def test_split_group_norm_is_torch_group_norm_to_round_off(dtype, shape, groups, mean, affine):
    """Against F.group_norm in float64 on the same rounded inputs: no further off than twice PyTorch's own kernel
    in that dtype, or one unit of that dtype's precision at the output's scale. A mean far from zero checks that
    the variance does not cancel."""
    g = torch.Generator().manual_seed(groups)
    x = (torch.randn(shape, generator=g) * 1.5 + mean).to(dtype)
    weight = torch.randn(shape[1], generator=g).to(dtype) if affine else None
    bias = torch.randn(shape[1], generator=g).to(dtype) if affine else None

    def as_double(t):
        return None if t is None else t.double()

    exact = F.group_norm(x.double(), groups, as_double(weight), as_double(bias), 1e-5)
    torch_error = (F.group_norm(x, groups, weight, bias, 1e-5).double() - exact).abs().max().item()
    got = split_group_norm(x, groups, weight, bias, 1e-5)
    assert got.dtype == dtype and got.shape == x.shape
    error = (got.double() - exact).abs().max().item()
    assert error <= max(2 * torch_error, torch.finfo(dtype).eps * exact.abs().max().item()), (error, torch_error)


def test_every_groupnorm_of_depthcrafter_is_split_with_the_same_parameters(tmp_path):
    from harness.tiny_depth import write_tiny_depthcrafter

    folder = write_tiny_depthcrafter(tmp_path)
    parts = read_depthcrafter_folder(folder, torch.float32)
    before = {name: dict(m.named_parameters()) for name, m in (("unet", parts.unet), ("vae", parts.vae))}
    norms = sum(type(m) is torch.nn.GroupNorm for m in (*parts.unet.modules(), *parts.vae.modules()))
    assert norms > 0
    model = D.DepthCrafter(parts.unet, parts.vae, parts.image_encoder, parts.scheduler, parts.image_mean,
                           parts.image_std)
    modules = [*model.unet.modules(), *model.vae.modules()]
    assert sum(type(m) is SplitGroupNorm for m in modules) == norms
    assert not any(type(m) is torch.nn.GroupNorm for m in modules)
    for name, module in (("unet", model.unet), ("vae", model.vae)):
        after = dict(module.named_parameters())
        assert after.keys() == before[name].keys()
        assert all(after[k] is before[name][k] for k in after)  # the same tensors, nothing copied
    assert use_split_group_norm(model.unet) == 0  # already split


def test_depthcrafter_depth_is_the_same_with_torch_group_norm(monkeypatch, tmp_path):
    """The whole estimate (UNet steps, VAE encode and decode) against the same model on F.group_norm, in float32:
    round-off apart (the random tiny model and the clip's min-max normalisation amplify it to about 3e-5)."""
    from harness.tiny_depth import write_tiny_depthcrafter

    model = D.DepthCrafter.from_pretrained(write_tiny_depthcrafter(tmp_path), dtype=torch.float32, device="cpu")
    frames = _clip(6)
    split = model.estimate(frames, steps=2).disparity
    monkeypatch.setattr(SplitGroupNorm, "forward", torch.nn.GroupNorm.forward)
    plain = model.estimate(frames, steps=2).disparity
    assert split.std() > 1e-3
    assert torch.allclose(split, plain, atol=1e-4), (split - plain).abs().max()


@pytest.mark.gpu
def test_gpu_split_group_norm_at_the_vae_decoders_size():
    """One of the VAE decoder's GroupNorms at 512 x 512 (8 frames, 128 channels, 32 groups), fp16 on the GPU."""
    g = torch.Generator("cuda").manual_seed(0)
    x = torch.randn(8, 128, 512, 512, generator=g, device="cuda", dtype=torch.float16) * 3 + 5
    weight = torch.randn(128, generator=g, device="cuda", dtype=torch.float16)
    bias = torch.randn(128, generator=g, device="cuda", dtype=torch.float16)
    exact = F.group_norm(x.float(), 32, weight.float(), bias.float(), 1e-6)
    torch_error = (F.group_norm(x, 32, weight, bias, 1e-6).float() - exact).abs().max().item()
    error = (split_group_norm(x, 32, weight, bias, 1e-6).float() - exact).abs().max().item()
    assert error <= max(2 * torch_error, torch.finfo(torch.float16).eps * exact.abs().max().item())
