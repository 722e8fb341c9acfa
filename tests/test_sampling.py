"""ex4d.sampling: the published schedule, noise, Euler loop and prompt-embedding files."""

from __future__ import annotations

import pytest
import torch

from ex4d import sampling


def reference_sigmas(steps: int, shift: float) -> list[float]:
    # Written from the formula, element by element, independent of the library's tensor code.
    out = []
    for i in range(steps):
        s = 1.0 - i / steps
        out.append(shift * s / (1.0 + (shift - 1.0) * s))
    return out + [0.0]


@pytest.mark.parametrize("steps,shift", [(25, 5.0), (1, 5.0), (4, 3.0), (50, 1.0)])
def test_schedule_equals_reference(steps, shift):
    sigmas = sampling.flow_match_sigmas(steps, shift)
    assert sigmas.dtype == torch.float32 and sigmas.shape == (steps + 1,)
    expected = torch.tensor(reference_sigmas(steps, shift), dtype=torch.float32)
    assert torch.equal(sigmas, expected)
    assert sigmas[0] == 1.0 and sigmas[-1] == 0.0
    assert torch.all(sigmas[1:] < sigmas[:-1])


def test_published_schedule_values():
    sigmas = sampling.flow_match_sigmas(25)
    # second sigma: s = 0.96 -> 5 * 0.96 / (1 + 4 * 0.96)
    assert sigmas[1].item() == pytest.approx(4.8 / 4.84, abs=1e-7)
    assert sampling.timesteps(sigmas)[1].item() == pytest.approx(1000 * 4.8 / 4.84, rel=1e-6)


def test_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="steps"):
        sampling.flow_match_sigmas(0)
    with pytest.raises(ValueError, match="shift"):
        sampling.flow_match_sigmas(5, shift=0)


def test_noise_equals_reference_generator():
    noise = sampling.published_noise(42, 49, 512, 512)
    assert noise.shape == (1, 16, 13, 64, 64) and noise.dtype == torch.float32 and noise.device.type == "cpu"
    gen = torch.Generator("cpu")
    gen.manual_seed(42)
    expected = torch.randn((1, 16, 13, 64, 64), generator=gen, dtype=torch.float32)
    assert torch.equal(noise, expected)
    assert not torch.equal(noise, sampling.published_noise(43, 49, 512, 512))


def test_latent_shape_checks():
    assert sampling.latent_shape(9, 32, 64) == (1, 16, 3, 4, 8)
    with pytest.raises(ValueError, match="4k"):
        sampling.latent_shape(10, 32, 32)
    with pytest.raises(ValueError, match="multiples of 8"):
        sampling.latent_shape(9, 30, 32)


def test_euler_loop_against_closed_form():
    # Constant velocities: check the loop against an explicit one with the published formulas.
    sigmas = sampling.flow_match_sigmas(6)
    noise = torch.randn(1, 16, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    target = torch.randn_like(noise)
    calls = []

    def denoise(x, t, cond):
        calls.append((t.item(), cond))
        # the exact flow velocity of straight paths between target and noise
        return (noise - target) * (1.0 if cond else 0.5)

    out = sampling.sample(denoise, noise, sigmas, cfg=3.0)
    v = 0.5 * (noise - target) + 3.0 * ((noise - target) - 0.5 * (noise - target))
    expected = noise.clone()
    for i in range(6):
        expected = expected + v * (sigmas[i + 1].item() - sigmas[i].item())
    assert torch.allclose(out, expected, atol=1e-6)
    assert [c[1] for c in calls[:2]] == [True, False] and len(calls) == 12
    assert calls[0][0] == pytest.approx(1000.0)


def test_sample_progress_and_cancel():
    seen = []

    class Stop(Exception):
        pass

    def cancel():
        if len(seen) == 2:
            raise Stop

    with pytest.raises(Stop):
        sampling.sample(
            lambda x, t, c: x,
            torch.zeros(1, 16, 1, 2, 2),
            sampling.flow_match_sigmas(5),
            cfg=1.0,
            progress=lambda d, n: seen.append((d, n)),
            cancel=cancel,
        )
    assert seen == [(1, 5), (2, 5)]


def test_prompt_embeddings_roundtrip(tmp_path):
    cond = torch.randn(1, 7, 4096)
    pooled = torch.randn(1, 16)
    path = sampling.save_prompt_embeddings(
        [(cond, {"pooled_output": pooled, "other": None})],
        tmp_path / "p.safetensors",
        prompt=sampling.PUBLISHED_PROMPT,
    )
    entries, prompt = sampling.load_prompt_embeddings(path)
    assert prompt == sampling.PUBLISHED_PROMPT
    assert len(entries) == 1 and torch.equal(entries[0][0], cond)
    assert set(entries[0][1]) == {"pooled_output"} and torch.equal(entries[0][1]["pooled_output"], pooled)


def test_prompt_embeddings_refuse_other_files(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not an EX-4D prompt-embedding file"):
        sampling.load_prompt_embeddings(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot read"):
        sampling.load_prompt_embeddings(tmp_path / "junk.safetensors")
    with pytest.raises(ValueError, match="empty"):
        sampling.save_prompt_embeddings([], tmp_path / "e.safetensors")
