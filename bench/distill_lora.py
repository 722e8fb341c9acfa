"""A random step-distillation LoRA for Wan 2.1 I2V 14B in the layout users download (lightx2v's rank-64 file).

    python bench/distill_lora.py --models MODELS_DIR [--scale full|tiny]

The fast workflow (``workflows/api/ex4d_fast_api.json``) loads it with the host's LoraLoaderModelOnly under the
name it gives (``loras/<lora_name>``). The layout: ``diffusion_model.blocks.N.<layer>.lora_down.weight`` (rank x
in), ``.lora_up.weight`` (out x rank) and ``.alpha`` for every Linear of the 40 blocks (self and cross
attention q / k / v / o, the image keys and values, both FFN matrices), bf16 (738 MB at rank 64). The values are
small (the deltas stay about 1 % of the base weights), so the patched DiT's activations stay the base's. The
file is written under a ``.partial`` name and renamed when complete; a file that exists is kept.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))  # as when run as a script: the bench's modules import each other by name
import arguments  # noqa: E402
from full_weights import FULL, TINY, DiTSize  # noqa: E402
from safetensors_stream import Layout, TensorSpec, write_complete, write_safetensors  # noqa: E402

FAST_WORKFLOW = REPO / "workflows" / "api" / "ex4d_fast_api.json"
RANK = 64
LORA_STD = 0.01  # of up @ down's entries relative to the base weight's 0.02


def lora_file_name() -> str:
    """The file the fast workflow's LoraLoaderModelOnly loads."""
    prompt = json.loads(FAST_WORKFLOW.read_text())
    return next(n["inputs"]["lora_name"] for n in prompt.values() if n["class_type"] == "LoraLoaderModelOnly")


def block_linears(size: DiTSize) -> dict[str, tuple[int, int]]:
    """(out, in) of every Linear of one Wan 2.1 I2V block, by its name in the block."""
    square = {f"{attn}.{proj}": (size.dim, size.dim)
              for attn in ("self_attn", "cross_attn") for proj in ("q", "k", "v", "o")}
    return {**square, "cross_attn.k_img": (size.dim, size.dim), "cross_attn.v_img": (size.dim, size.dim),
            "ffn.0": (size.ffn, size.dim), "ffn.2": (size.dim, size.ffn)}


def lora_layout(size: DiTSize, rank: int = RANK) -> Layout:
    import torch

    layout: Layout = {}
    for block in range(size.layers):
        for name, (out_dim, in_dim) in block_linears(size).items():
            key = f"diffusion_model.blocks.{block}.{name}"
            # up @ down has entries of std LORA_STD: each factor sqrt(LORA_STD / sqrt(rank))
            factor = math.sqrt(LORA_STD / math.sqrt(rank))
            layout[f"{key}.lora_down.weight"] = TensorSpec((rank, in_dim), torch.bfloat16, std=factor)
            layout[f"{key}.lora_up.weight"] = TensorSpec((out_dim, rank), torch.bfloat16, std=factor)
            layout[f"{key}.alpha"] = TensorSpec((), torch.bfloat16, fill=float(rank))
    return layout


def write_lora(models: Path, size: DiTSize = FULL) -> Path:
    path = models / "loras" / lora_file_name()
    if not path.exists():
        write_complete(path, lambda partial: write_safetensors(partial, lora_layout(size),
                                                               {"format": "pt", "ex4d_bench": "random weights"}))
    return path


def main() -> None:
    p = arguments.parser(__doc__)
    arguments.add_models(p)
    arguments.add_scale(p)
    args = p.parse_args()
    path = write_lora(Path(args.models), FULL if args.scale == "full" else TINY)
    print(f"{path} ({path.stat().st_size / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
