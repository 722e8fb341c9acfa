"""Random tensors streamed into a safetensors file tensor by tensor (safetensors' own writer needs every tensor in
memory): a file's layout (names, shapes, dtypes, how values are made), its header and size, and the writer. The
values are drawn on the GPU when there is one, in chunks, so host memory holds one chunk at a time."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

CHUNK_ELEMENTS = 1 << 26  # values drawn per step: 256 MiB of float32


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a file: its shape and stored dtype, and how its values are made."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    std: float = 0.0  # normal(0, std) values when positive, else every value is `fill`
    fill: float = 0.0
    data: torch.Tensor | None = None  # fixed contents instead (a scale, the tokenizer model)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


Layout = dict[str, TensorSpec]

_SAFETENSORS_DTYPES = {
    "torch.float32": "F32",
    "torch.float16": "F16",
    "torch.bfloat16": "BF16",
    "torch.float8_e4m3fn": "F8_E4M3",
    "torch.uint8": "U8",
}


def unit_spec(name: str, shape: tuple[int, ...], dtype: torch.dtype) -> TensorSpec:
    """Values that keep activations near unit size: norms 1, biases 0, matrices and convolutions
    normal(0, 1 / sqrt(fan_in)), other vectors (embeddings, mix factors) normal(0, 0.02)."""
    if name.endswith("gamma") or (len(shape) == 1 and name.endswith("weight")):
        return TensorSpec(shape, dtype, fill=1.0)
    if len(shape) == 1 and name.endswith("bias"):
        return TensorSpec(shape, dtype, fill=0.0)
    if len(shape) >= 2:
        return TensorSpec(shape, dtype, std=1.0 / math.sqrt(math.prod(shape[1:])))
    return TensorSpec(shape, dtype, std=0.02)


def _storage_order(layout: Layout) -> list[str]:
    # as safetensors' own writer: wider dtypes first, so every tensor starts aligned to its item size
    return sorted(layout, key=lambda name: (-layout[name].dtype.itemsize, name))


def safetensors_header(layout: Layout, metadata: dict[str, str] | None = None) -> bytes:
    entries: dict[str, object] = {}
    start = 0
    for name in _storage_order(layout):
        spec = layout[name]
        entries[name] = {
            "dtype": _SAFETENSORS_DTYPES[str(spec.dtype)],
            "shape": list(spec.shape),
            "data_offsets": [start, start + spec.nbytes],
        }
        start += spec.nbytes
    if metadata:
        entries["__metadata__"] = metadata
    raw = json.dumps(entries, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def safetensors_size(layout: Layout, metadata: dict[str, str] | None = None) -> int:
    return len(safetensors_header(layout, metadata)) + sum(spec.nbytes for spec in layout.values())


def generation_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _values(spec: TensorSpec, shape: tuple[int, ...], gen: torch.Generator, device: str) -> torch.Tensor:
    import torch

    if spec.std > 0:
        # drawn in float32 and converted: randn has no float8 kernel
        return (torch.randn(shape, generator=gen, device=device) * spec.std).to(spec.dtype)
    return torch.full(shape, spec.fill, device=device).to(spec.dtype)


def value_chunks(spec: TensorSpec, gen: torch.Generator, device: str) -> Iterator[torch.Tensor]:
    """The tensor's values in row blocks of at most CHUNK_ELEMENTS (one block for small tensors)."""
    if spec.data is not None:
        yield spec.data.to(spec.dtype)
        return
    numel = math.prod(spec.shape)
    if numel <= CHUNK_ELEMENTS:
        yield _values(spec, spec.shape, gen, device)
        return
    rows, row_numel = spec.shape[0], numel // spec.shape[0]
    step = max(1, CHUNK_ELEMENTS // row_numel)
    for start in range(0, rows, step):
        yield _values(spec, (min(step, rows - start), *spec.shape[1:]), gen, device)


def raw_bytes(tensor: torch.Tensor):
    import torch

    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()


def write_safetensors(path: Path, layout: Layout, metadata: dict[str, str] | None = None, seed: int = 0) -> None:
    """A safetensors file streamed tensor by tensor (safetensors' own writer needs every tensor in memory)."""
    import torch

    device = generation_device()
    gen = torch.Generator(device).manual_seed(seed)
    with open(path, "wb") as f:
        f.write(safetensors_header(layout, metadata))
        for name in _storage_order(layout):
            for chunk in value_chunks(layout[name], gen, device):
                f.write(raw_bytes(chunk))


def partial_path(path: Path) -> Path:
    """Where a file is written until it is complete."""
    return path.with_name(path.name + ".partial")


def write_complete(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` the file under its partial name, then rename it: a file at ``path`` is always complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write(partial_path(path))
    partial_path(path).rename(path)
