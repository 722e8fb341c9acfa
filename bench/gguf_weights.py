"""The Wan 2.1 I2V 14B DiT as GGUF files, in the layout of city96's Wan files that ComfyUI-GGUF loads.

``bench/full_weights.py --wan q8_0|q4_k_m`` writes them into ``diffusion_models/`` (ComfyUI-GGUF's
``UnetLoaderGGUF`` lists ``diffusion_models`` and ``unet``):

  wan2.1-i2v-14b-480p-Q8_0.gguf     Q8_0 for the block matrices
  wan2.1-i2v-14b-480p-Q4_K_M.gguf   Q4_K for the block matrices, Q6_K for every attention ``v`` and
                                    every ``ffn.2`` (the FFN down projection)

The file: GGUF version 3, metadata ``general.architecture`` = ``wan``, ``general.quantization_version`` 2,
``general.file_type`` (7 = mostly Q8_0, 15 = mostly Q4_K_M), tensors under the names of the safetensors
file (no prefix), dims in GGML order (the torch shape reversed), every tensor's data aligned to 32 bytes.

Tensor types follow the rules that made city96's files (ComfyUI-GGUF's ``tools/convert.py`` and its
llama.cpp patch), not the LLM rule of llama.cpp's Q4_K_M (more bits for every other block's FFN down):
only 2-D block matrices are quantised; ``patch_embedding``, ``text_embedding``, ``time_embedding``,
``time_projection``, ``img_emb`` and ``head`` are not, nor is any tensor of 1024 values or fewer. Of those
left unquantised, 1-D tensors (norms, biases), the ``modulation`` parameters and tiny tensors are F32,
the other 2-D matrices F16 (city96 converted from 16-bit weights; F16 is what that converter writes for
them). A K-quant needs rows of a multiple of 256 values: a matrix whose rows are not (the tiny DiT's
128-wide ones) falls back to F16, as the patch makes it. The 5-D ``patch_embedding.weight`` is stored as
F32 rows of (out channels, the rest) with its shape in ``comfy.gguf.orig_shape.patch_embedding.weight``
(an INT32 array, torch order), which the loader restores (city96's files carry it 5-D instead, added by a
separate script; the loader reads both the same).

Values are random. Quantised blocks are drawn directly: random codes (all code bits random: Q8_0 odd
codes -127..127, Q4_K 0..15, Q6_K 0..63) and constant scales per tensor, Q6_K's sub-block scales with
random signs and Q4_K's minimum half the code range, so the dequantised values have mean 0; their std is
that of the bf16 file's tensor, the scale calibrated by dequantising sample blocks with the ``gguf``
package. Unquantised tensors get the bf16 file's values (normal, norms 1). Streamed tensor by tensor in
chunks of at most 256 MiB.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from safetensors_stream import Layout

# GGML tensor types: id -> (values per block, bytes per block)
F32, F16, Q8_0, Q4_K, Q6_K = 0, 1, 8, 12, 14
BLOCKS = {F32: (1, 4), F16: (1, 2), Q8_0: (32, 34), Q4_K: (256, 144), Q6_K: (256, 210)}
TYPE_NAMES = {F32: "F32", F16: "F16", Q8_0: "Q8_0", Q4_K: "Q4_K", Q6_K: "Q6_K"}

QUANTS = ("q8_0", "q4_k_m")
FILE_NAMES = {"q8_0": "wan2.1-i2v-14b-480p-Q8_0.gguf", "q4_k_m": "wan2.1-i2v-14b-480p-Q4_K_M.gguf"}
FILE_TYPES = {"q8_0": 7, "q4_k_m": 15}  # llama.cpp's LlamaFileType MOSTLY_Q8_0, MOSTLY_Q4_K_M

GGUF_VERSION, ALIGNMENT, QUANTIZATION_VERSION = 3, 32, 2
ORIG_SHAPE_KEY = "comfy.gguf.orig_shape."
UNQUANTISED_PREFIXES = ("patch_embedding.", "text_embedding.", "time_embedding.", "time_projection.",
                        "img_emb.", "head.")
SMALL_TENSOR = 1024  # values; tensors this small stay F32
MORE_BITS_IN_Q4_K_M = (".v.weight", ".ffn.2.weight")  # attention v and FFN down projections: Q6_K
CHUNK_BYTES = 256 << 20

# constant block scales: Q4_K's 6-bit sub-block scale and minimum, Q6_K's int8 sub-block scale
Q4_K_SCALE = Q4_K_MIN = 47
Q6_K_SCALE = 16

_VALUE_TYPES = {"uint32": 4, "int32": 5, "string": 8, "array": 9}


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor of a GGUF file: its stored torch-order shape and type, and its values' statistics."""

    name: str
    shape: tuple[int, ...]
    qtype: int
    std: float = 0.0  # values with mean 0 and this std when positive, else every value is `fill`
    fill: float = 0.0
    orig_shape: tuple[int, ...] | None = None  # the model's shape where it differs from the stored one

    @property
    def quantised(self) -> bool:
        return self.qtype not in (F32, F16)

    @property
    def nbytes(self) -> int:
        block_values, block_bytes = BLOCKS[self.qtype]
        return math.prod(self.shape) // block_values * block_bytes


# ---------------------------------------------------------------------------------------------
# Which tensor gets which type


def tensor_type(name: str, shape: tuple[int, ...], quant: str) -> int:
    """City96's rule for a Wan tensor of the safetensors file (see the module docstring)."""
    if len(shape) == 1 or len(shape) > 4 or math.prod(shape) <= SMALL_TENSOR or "modulation" in name:
        return F32
    if len(shape) != 2 or name.startswith(UNQUANTISED_PREFIXES):
        return F16
    if quant == "q8_0":
        qtype = Q8_0
    elif quant == "q4_k_m":
        qtype = Q6_K if name.endswith(MORE_BITS_IN_Q4_K_M) else Q4_K
    else:
        raise ValueError(f"GGUF quantisation {quant!r}: choose one of {', '.join(QUANTS)}")
    return qtype if shape[-1] % BLOCKS[qtype][0] == 0 else F16


def gguf_tensors(layout: Layout, quant: str) -> list[GGUFTensor]:
    """The GGUF file's tensors for a safetensors layout (names, shapes, value statistics), in its order."""
    tensors = []
    for name, spec in layout.items():
        shape, orig = spec.shape, None
        if len(shape) > 4:  # GGML tensors have at most 4 dims
            shape, orig = (shape[0], math.prod(shape[1:])), shape
        tensors.append(GGUFTensor(name, shape, tensor_type(name, spec.shape, quant), spec.std, spec.fill, orig))
    return tensors


# ---------------------------------------------------------------------------------------------
# The file format


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _kv(key: str, kind: str, value: object) -> bytes:
    head = _string(key) + struct.pack("<I", _VALUE_TYPES[kind])
    if kind == "string":
        return head + _string(str(value))
    if kind == "uint32":
        return head + struct.pack("<I", value)
    values = list(value)  # an array of int32
    return head + struct.pack("<IQ", _VALUE_TYPES["int32"], len(values)) + struct.pack(f"<{len(values)}i", *values)


def metadata(quant: str, tensors: list[GGUFTensor]) -> list[bytes]:
    entries = [_kv("general.architecture", "string", "wan"),
               _kv("general.quantization_version", "uint32", QUANTIZATION_VERSION),
               _kv("general.file_type", "uint32", FILE_TYPES[quant])]
    entries += [_kv(ORIG_SHAPE_KEY + t.name, "array", t.orig_shape) for t in tensors if t.orig_shape]
    return entries


def padding(nbytes: int) -> int:
    return -nbytes % ALIGNMENT


def gguf_header(tensors: list[GGUFTensor], kv: list[bytes]) -> bytes:
    """Everything before the first tensor's data: magic, counts, metadata, tensor infos, padding."""
    out = [b"GGUF", struct.pack("<IQQ", GGUF_VERSION, len(tensors), len(kv)), *kv]
    offset = 0
    for t in tensors:
        dims = tuple(reversed(t.shape))
        out.append(_string(t.name) + struct.pack(f"<I{len(dims)}QIQ", len(dims), *dims, t.qtype, offset))
        offset += t.nbytes + padding(t.nbytes)
    raw = b"".join(out)
    return raw + b"\0" * padding(len(raw))


def gguf_size(tensors: list[GGUFTensor], quant: str) -> int:
    data = sum(t.nbytes + padding(t.nbytes) for t in tensors)
    return len(gguf_header(tensors, metadata(quant, tensors))) + data


# ---------------------------------------------------------------------------------------------
# Random quantised blocks


def _fp16_bytes(value: float) -> np.ndarray:
    return np.array([value], dtype=np.float16).view(np.uint8)


def _q4_k_scales() -> np.ndarray:
    """The 12 bytes that pack Q4_K's eight 6-bit sub-block scales and minimums, all the constants."""
    s, m = Q4_K_SCALE, Q4_K_MIN
    low = [(s & 0x3F) | ((s >> 4) << 6)] * 4 + [(m & 0x3F) | ((m >> 4) << 6)] * 4
    return np.array(low + [(s & 0x0F) | ((m & 0x0F) << 4)] * 4, dtype=np.uint8)


def _fixed_fields(qtype: int, d: float) -> list[tuple[int, np.ndarray]]:
    """(byte offset, bytes) of each block's scale fields for the block scale ``d``."""
    if qtype == Q8_0:
        return [(0, _fp16_bytes(d))]
    if qtype == Q4_K:
        # the minimum at half the code range: d * scale * (q - 7.5)
        dmin = d * Q4_K_SCALE * 7.5 / Q4_K_MIN
        return [(0, _fp16_bytes(d)), (2, _fp16_bytes(dmin)), (4, _q4_k_scales())]
    return [(208, _fp16_bytes(d))]  # Q6_K: ql[128] qh[64] scales[16] d


def _random_blocks(qtype: int, n_blocks: int, d: float, gen: torch.Generator, device: str) -> torch.Tensor:
    import torch

    block_bytes = BLOCKS[qtype][1]
    n = n_blocks * block_bytes
    words = torch.empty((n + 7) // 8, dtype=torch.int64, device=device).random_(-(2**63), 2**63 - 1, generator=gen)
    if qtype == Q8_0:
        words |= 0x0101010101010101  # odd codes -127..127: symmetric about 0 (the scale is written over)
    blocks = words.view(torch.uint8)[:n].view(n_blocks, block_bytes)
    if qtype == Q6_K:  # int8 sub-block scales of random sign: S or 256 - S
        scales = blocks[:, 192:208]
        scales &= 1
        scales *= 256 - 2 * Q6_K_SCALE
        scales += Q6_K_SCALE
    for start, raw in _fixed_fields(qtype, d):
        blocks[:, start:start + len(raw)] = torch.from_numpy(raw).to(device)
    return blocks


@cache
def unit_std(qtype: int) -> float:
    """The std of dequantised values for the block scale 1, from 4096 sample blocks dequantised by ``gguf``."""
    import gguf.quants
    import torch

    sample = _random_blocks(qtype, 4096, 1.0, torch.Generator().manual_seed(0), "cpu").numpy()
    return float(gguf.quants.dequantize(sample, gguf.GGMLQuantizationType(qtype)).std())


def block_scale(qtype: int, std: float) -> float:
    d = std / unit_std(qtype)
    stored = float(np.float16(d))  # subnormal scales are fine while float16 still holds them to 1 %
    if not math.isfinite(stored) or abs(stored / d - 1) > 0.01:
        raise ValueError(f"a std of {std} needs a block scale {d:.3g} that float16 cannot hold")
    return d


def quantised_chunks(t: GGUFTensor, gen: torch.Generator, device: str) -> Iterator[np.ndarray]:
    """The tensor's blocks as bytes, at most CHUNK_BYTES at a time."""
    block_values, block_bytes = BLOCKS[t.qtype]
    n_blocks = math.prod(t.shape) // block_values
    d = block_scale(t.qtype, t.std)
    step = max(1, CHUNK_BYTES // block_bytes)
    for start in range(0, n_blocks, step):
        yield _random_blocks(t.qtype, min(step, n_blocks - start), d, gen, device).cpu().numpy()


# ---------------------------------------------------------------------------------------------
# The writer

PlainChunks = Callable[[GGUFTensor, "torch.Generator", str], Iterator[np.ndarray]]


def write_gguf(path: Path, tensors: list[GGUFTensor], quant: str, plain_chunks: PlainChunks, device: str,
               seed: int = 0) -> None:
    """Stream the file tensor by tensor; ``plain_chunks`` gives the bytes of the F32 / F16 ones."""
    import torch

    gen = torch.Generator(device).manual_seed(seed)
    with open(path, "wb") as f:
        f.write(gguf_header(tensors, metadata(quant, tensors)))
        for t in tensors:
            chunks = quantised_chunks(t, gen, device) if t.quantised else plain_chunks(t, gen, device)
            for chunk in chunks:
                f.write(chunk)
            f.write(b"\0" * padding(t.nbytes))
