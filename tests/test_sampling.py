"""ex4d.sampling (the published schedule), the reference noise and latent shape, and ex4d.prompt (stored prompt
embeddings)."""

from __future__ import annotations

import pytest
import torch

from ex4d import prompt, sampling
from harness.reference_sampling import latent_shape, noise_for_shape


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


def test_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="steps"):
        sampling.flow_match_sigmas(0)
    with pytest.raises(ValueError, match="shift"):
        sampling.flow_match_sigmas(5, shift=0)


def test_noise_equals_reference_generator():
    noise = noise_for_shape(42, latent_shape(49, 512, 512))
    assert noise.shape == (1, 16, 13, 64, 64) and noise.dtype == torch.float32 and noise.device.type == "cpu"
    gen = torch.Generator("cpu")
    gen.manual_seed(42)
    expected = torch.randn((1, 16, 13, 64, 64), generator=gen, dtype=torch.float32)
    assert torch.equal(noise, expected)
    assert not torch.equal(noise, noise_for_shape(43, noise.shape))


def test_latent_shape_checks():
    assert latent_shape(9, 32, 64) == (1, 16, 3, 4, 8)
    with pytest.raises(ValueError, match="4k"):
        latent_shape(10, 32, 32)
    with pytest.raises(ValueError, match="multiples of 8"):
        latent_shape(9, 30, 32)


def test_prompt_embeddings_roundtrip(tmp_path):
    cond = torch.randn(1, 7, 4096)
    pooled = torch.randn(1, 16)
    path = prompt.save_prompt_embeddings(
        [(cond, {"pooled_output": pooled, "other": None})],
        tmp_path / "p.safetensors",
        prompt=prompt.PUBLISHED_PROMPT,
    )
    entries, text = prompt.load_prompt_embeddings(path)
    assert text == prompt.PUBLISHED_PROMPT
    # fewer than 512 tokens come back zero-padded to 512, as umT5-XXL's own output is
    assert len(entries) == 1 and entries[0][0].shape == (1, prompt.TEXT_TOKENS, 4096)
    assert torch.equal(entries[0][0][:, :7], cond) and not entries[0][0][:, 7:].any()
    assert set(entries[0][1]) == {"pooled_output"} and torch.equal(entries[0][1]["pooled_output"], pooled)


def test_prompt_padding_keeps_full_length_embeddings():
    full = torch.randn(2, 512, 8)
    assert prompt.pad_tokens(full) is full
    longer = torch.randn(1, 600, 8)
    assert prompt.pad_tokens(longer) is longer


def test_prompt_embeddings_refuse_other_files(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not an EX-4D prompt-embedding file"):
        prompt.load_prompt_embeddings(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot be read as safetensors"):
        prompt.load_prompt_embeddings(tmp_path / "junk.safetensors")
    with pytest.raises(ValueError, match="empty"):
        prompt.save_prompt_embeddings([], tmp_path / "e.safetensors")
