"""A models folder's planned files (where each goes, its size, how it is written) and their writer, which keeps
every file already there, whatever it holds (a real download stays untouched)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import gguf_weights
from safetensors_stream import (
    Layout,
    TensorSpec,
    generation_device,
    raw_bytes,
    safetensors_size,
    value_chunks,
    write_complete,
    write_safetensors,
)
from timing import GiB

if TYPE_CHECKING:
    import torch

MiB = 1024**2
SAFETENSORS_METADATA = {"format": "pt", "ex4d_bench": "random weights written by bench/full_weights.py"}


@dataclass
class PlannedFile:
    rel: str  # path under the models folder
    nbytes: int
    write: Callable[[Path], None]  # writes the complete file at the path given

    @property
    def is_weights(self) -> bool:
        return not self.rel.endswith(".json")


def safetensors_file(rel: str, layout: Layout, seed: int) -> PlannedFile:
    return PlannedFile(rel, safetensors_size(layout, SAFETENSORS_METADATA),
                       lambda path: write_safetensors(path, layout, SAFETENSORS_METADATA, seed))


def plain_gguf_chunks(t: gguf_weights.GGUFTensor, gen: torch.Generator, device: str) -> Iterator:
    import torch

    dtype = torch.float32 if t.qtype == gguf_weights.F32 else torch.float16
    for chunk in value_chunks(TensorSpec(t.shape, dtype, std=t.std, fill=t.fill), gen, device):
        yield raw_bytes(chunk)


def gguf_file(rel: str, layout: Layout, quant: str, seed: int) -> PlannedFile:
    tensors = gguf_weights.gguf_tensors(layout, quant)
    return PlannedFile(rel, gguf_weights.gguf_size(tensors, quant), lambda path: gguf_weights.write_gguf(
        path, tensors, quant, plain_gguf_chunks, generation_device(), seed))


def json_file(rel: str, data: dict) -> PlannedFile:
    text = json.dumps(data, indent=2) + "\n"
    return PlannedFile(rel, len(text.encode()), lambda path: path.write_text(text))


def size_text(nbytes: int) -> str:
    if nbytes >= GiB / 10:
        return f"{nbytes / GiB:.2f} GiB"
    return f"{nbytes / MiB:.1f} MiB" if nbytes >= MiB / 10 else f"{nbytes / 1024:.1f} KiB"


def check_disk(models: Path, files: list[PlannedFile]) -> None:
    need = sum(f.nbytes for f in files if not (models / f.rel).exists())
    probe = models
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need > free:
        raise SystemExit(f"the files to write need {size_text(need)}, {probe} has {size_text(free)} free "
                         "(--wan fp8 or --wan none, or --only, write less)")


def write_files(models: Path, files: list[PlannedFile], log: Callable[[str], None] = print) -> list[Path]:
    """Write each planned file that is not there yet; returns the paths of all of them."""
    check_disk(models, files)
    started, written = time.perf_counter(), 0
    for f in files:
        path = models / f.rel
        if path.exists():
            if f.is_weights:
                log(f"kept    {f.rel} ({size_text(path.stat().st_size)}, already there)")
            continue
        t = time.perf_counter()
        write_complete(path, f.write)
        written += path.stat().st_size
        if f.is_weights:
            log(f"wrote   {f.rel} ({size_text(path.stat().st_size)}) in {time.perf_counter() - t:.1f} s")
    total = sum((models / f.rel).stat().st_size for f in files)
    log(f"total   {len(files)} files, {size_text(total)} in {models} ({size_text(written)} written in "
        f"{time.perf_counter() - started:.1f} s on {generation_device()})")
    return [models / f.rel for f in files]


def print_plan(models: Path, files: list[PlannedFile]) -> None:
    for f in files:
        there = " (there)" if (models / f.rel).exists() else ""
        print(f"{size_text(f.nbytes):>11}  {f.rel}{there}")
    print(f"{size_text(sum(f.nbytes for f in files)):>11}  total")
