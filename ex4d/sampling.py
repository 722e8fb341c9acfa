"""Flow-matching sampling as the published EX-4D generation step does it.

The published schedule: ``sigmas = linspace(1, 0, steps + 1)[:-1]``, shifted by
``s -> shift * s / (1 + (shift - 1) * s)`` (shift 5), timestep ``1000 * sigma``, Euler steps
``x <- x + v * (sigma_next - sigma)`` with ``sigma_next = 0`` after the last step. The noise is
float32 standard normal drawn on the CPU from a generator seeded with the seed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

PUBLISHED_SHIFT = 5.0
PUBLISHED_STEPS = 25
PUBLISHED_CFG = 5.0
TIMESTEP_SCALE = 1000.0
LATENT_CHANNELS = 16


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


def timesteps(sigmas: torch.Tensor) -> torch.Tensor:
    return sigmas * TIMESTEP_SCALE


def latent_shape(
    num_frames: int, height: int, width: int, channels: int = LATENT_CHANNELS
) -> tuple[int, int, int, int, int]:
    """Wan 2.1 latent shape: 4x temporal and 8x spatial compression, batch 1."""
    if num_frames < 1 or (num_frames - 1) % 4:
        raise ValueError(f"num_frames must be 4k + 1 (1, 5, 9, ..., 49, ...), got {num_frames}")
    if height % 8 or width % 8 or height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive multiples of 8, got {width}x{height}")
    return (1, channels, (num_frames - 1) // 4 + 1, height // 8, width // 8)


def noise_for_shape(seed: int, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """float32 standard normal noise of ``shape`` from a CPU generator seeded with ``seed``."""
    generator = torch.Generator("cpu").manual_seed(int(seed))
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32, device="cpu")


def published_noise(seed: int, num_frames: int, height: int, width: int) -> torch.Tensor:
    """The published initial noise: (1, 16, (N-1)//4 + 1, H//8, W//8), float32, CPU."""
    return noise_for_shape(seed, latent_shape(num_frames, height, width))


def euler_step(
    x: torch.Tensor, v: torch.Tensor, sigma: float | torch.Tensor, sigma_next: float | torch.Tensor
) -> torch.Tensor:
    """One flow-matching Euler step: ``x + v * (sigma_next - sigma)``."""
    return x + v * (sigma_next - sigma)


def cfg_combine(cond: torch.Tensor, uncond: torch.Tensor, cfg: float) -> torch.Tensor:
    return uncond + cfg * (cond - uncond)


# denoise_fn(x, timestep, conditional) -> velocity v (the DiT's flow prediction).
DenoiseFn = Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor]


def sample(
    denoise_fn: DenoiseFn,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    cfg: float = PUBLISHED_CFG,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], None] | None = None,
) -> torch.Tensor:
    """The published sampling loop, in plain PyTorch (reference and library use).

    ``sigmas`` is what :func:`flow_match_sigmas` returns (ends with 0). With ``cfg == 1`` the
    unconditional pass is skipped, as its weight is zero.
    """
    x = noise
    total = len(sigmas) - 1
    for i in range(total):
        if cancel is not None:
            cancel()
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        t = timesteps(sigma.reshape(1)).to(x.device)
        v = denoise_fn(x, t, True)
        if cfg != 1.0:
            v = cfg_combine(v, denoise_fn(x, t, False), cfg)
        x = euler_step(x, v, sigma.item(), sigma_next.item())
        if progress is not None:
            progress(i + 1, total)
    return x


# ---------------------------------------------------------------------------------------------
# Prompt embeddings: EX-4D uses one fixed prompt, so its umT5-XXL output (11 GB of encoder) can be
# computed once and stored. File format: safetensors with ``cond.<i>`` [1, L, C] tensors, optional
# ``extra.<i>.<name>`` tensors, and metadata {"format": PROMPT_FORMAT, "count", "prompt", "extras"}.

PROMPT_FORMAT = "ex4d-prompt-embeddings"
PUBLISHED_PROMPT = (
    "4K ultra HD, surround motion, realistic tone, panoramic shot, wide-angle view, cinematic quality"
)

# One entry of a conditioning list: (embedding [1, L, C], extra values such as pooled outputs).
PromptEntry = tuple[torch.Tensor, dict]


def save_prompt_embeddings(entries: list[PromptEntry], path: str | Path, prompt: str = "") -> Path:
    """Write prompt embeddings; extra tensor values are kept, ``None`` values are dropped."""
    import json

    from safetensors.torch import save_file

    if not entries:
        raise ValueError("no prompt embeddings to save (empty conditioning)")
    tensors: dict[str, torch.Tensor] = {}
    extras: list[list[str]] = []
    for i, (cond, extra) in enumerate(entries):
        if not isinstance(cond, torch.Tensor) or cond.ndim != 3:
            raise ValueError(f"conditioning entry {i} is not a [batch, tokens, channels] tensor")
        tensors[f"cond.{i}"] = cond.detach().cpu().contiguous()
        names = []
        for name, value in (extra or {}).items():
            if isinstance(value, torch.Tensor):
                tensors[f"extra.{i}.{name}"] = value.detach().cpu().contiguous()
                names.append(name)
        extras.append(names)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": PROMPT_FORMAT,
        "count": str(len(entries)),
        "prompt": prompt,
        "extras": json.dumps(extras),
    }
    save_file(tensors, str(path), metadata=meta)
    return path


def load_prompt_embeddings(path: str | Path) -> tuple[list[PromptEntry], str]:
    """Read a file written by :func:`save_prompt_embeddings`: (entries, prompt text)."""
    import json

    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise ValueError(f"{path.name}: cannot read as safetensors ({e})") from e
    if meta.get("format") != PROMPT_FORMAT:
        raise ValueError(
            f"{path.name}: not an EX-4D prompt-embedding file (metadata format is "
            f"{meta.get('format')!r}, expected {PROMPT_FORMAT!r})"
        )
    count = int(meta.get("count", 0))
    extras = json.loads(meta.get("extras", "[]"))
    entries: list[PromptEntry] = []
    for i in range(count):
        if f"cond.{i}" not in tensors:
            raise ValueError(f"{path.name}: entry cond.{i} is missing")
        names = extras[i] if i < len(extras) else []
        entries.append((tensors[f"cond.{i}"], {n: tensors[f"extra.{i}.{n}"] for n in names}))
    return entries, meta.get("prompt", "")
