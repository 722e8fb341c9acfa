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


def test_a_channels_last_input_and_a_recorded_gradient():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 16, 6, 5, generator=g).to(memory_format=torch.channels_last).requires_grad_()
    weight = torch.randn(16, generator=g, requires_grad=True)
    bias = torch.randn(16, generator=g, requires_grad=True)
    got = split_group_norm(x, 4, weight, bias, 1e-5)
    want = F.group_norm(x, 4, weight, bias, 1e-5)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(got.square().sum(), (x, weight, bias))
    for a, b in zip(grads, torch.autograd.grad(want.square().sum(), (x, weight, bias)), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_inputs_torch_refuses_are_refused():
    with pytest.raises(ValueError, match="6 channels do not divide into 4 groups"):
        split_group_norm(torch.zeros(1, 6, 3), 4, None, None, 1e-5)
    with pytest.raises(ValueError, match="a single value"):
        split_group_norm(torch.zeros(1, 4, 1, 1), 4, None, None, 1e-5)
    with pytest.raises(ValueError, match="Expected more than 1 value"):  # the same input, PyTorch's words
        F.group_norm(torch.zeros(1, 4, 1, 1), 4)
    x = torch.randn(3, 4, 1, 1)  # one value per (sample, group), which PyTorch takes: the bias comes out
    bias = torch.randn(4)
    got = split_group_norm(x, 4, None, bias, 1e-5)
    assert torch.equal(got, bias.view(1, 4, 1, 1).expand_as(x))
    torch.testing.assert_close(got, F.group_norm(x, 4, None, bias, 1e-5), rtol=0, atol=1e-4)  # its E[x^2] - E[x]^2


def test_off_cuda_the_module_runs_torchs_own_kernel():
    """The split gains only on a GPU; on the CPU a half input's float32 statistics would copy it whole."""
    norm = torch.nn.GroupNorm(4, 8)
    x = torch.randn(2, 8, 5, 5).half()
    norm.half()
    want = norm(x)
    assert use_split_group_norm(norm) == 1 and type(norm) is SplitGroupNorm
    assert torch.equal(norm(x), want)


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
    plain = model.estimate(frames, steps=2).disparity  # on the CPU, PyTorch's kernel
    monkeypatch.setattr(SplitGroupNorm, "forward",
                        lambda self, x: split_group_norm(x, self.num_groups, self.weight, self.bias, self.eps))
    split = model.estimate(frames, steps=2).disparity
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
