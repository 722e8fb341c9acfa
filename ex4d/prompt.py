"""Stored prompt embeddings: EX-4D uses one fixed prompt, so its umT5-XXL output (11 GB of encoder) can be
computed once and kept on disk.

File format: safetensors with ``cond.<i>`` [1, L, C] tensors, optional ``extra.<i>.<name>`` tensors, and
metadata {"format": PROMPT_FORMAT, "count", "prompt", "extras"}.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

PROMPT_FORMAT = "ex4d-prompt-embeddings"
PROMPT_FILE_FIX = "choose a file written by EX-4D Save Prompt Embeddings"
PUBLISHED_PROMPT = (
    "4K ultra HD, surround motion, realistic tone, panoramic shot, wide-angle view, cinematic quality"
)
# umT5-XXL's output length; the published DiT pads every text context to it with zeros.
TEXT_TOKENS = 512

# One entry of a conditioning list: (embedding [1, L, C], extra values such as pooled outputs).
PromptEntry = tuple[torch.Tensor, dict]


def pad_tokens(cond: torch.Tensor, tokens: int = TEXT_TOKENS) -> torch.Tensor:
    """[B, L, C] zero-padded to ``tokens`` tokens, as the text encoder's own output is; longer is kept."""
    missing = tokens - cond.shape[1]
    if missing <= 0:
        return cond
    return torch.cat([cond, cond.new_zeros(cond.shape[0], missing, cond.shape[2])], dim=1)


def save_prompt_embeddings(entries: list[PromptEntry], path: str | Path, prompt: str = "") -> Path:
    """Write prompt embeddings; extra tensor values are kept, ``None`` values are dropped."""
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
    """Read a file written by :func:`save_prompt_embeddings`: (entries, prompt text).

    Embeddings of fewer than :data:`TEXT_TOKENS` tokens come back zero-padded to that length: the
    DiT's prediction depends on the padding (its text embedding of a zero token is not zero).
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise ValueError(
            f"{path.name} cannot be read as safetensors (damaged, or another kind of file); {PROMPT_FILE_FIX}"
        ) from e
    if meta.get("format") != PROMPT_FORMAT:
        raise ValueError(
            f"{path.name}: not an EX-4D prompt-embedding file (metadata format is "
            f"{meta.get('format')!r}, expected {PROMPT_FORMAT!r}); {PROMPT_FILE_FIX}"
        )
    count = int(meta.get("count", 0))
    extras = json.loads(meta.get("extras", "[]"))
    entries: list[PromptEntry] = []
    for i in range(count):
        if f"cond.{i}" not in tensors:
            raise ValueError(f"{path.name}: entry cond.{i} is missing")
        names = extras[i] if i < len(extras) else []
        entries.append((pad_tokens(tensors[f"cond.{i}"]), {n: tensors[f"extra.{i}.{n}"] for n in names}))
    return entries, meta.get("prompt", "")
