"""bench/full_weights.py --wan q8_0|q4_k_m: the GGUF files read back by the ``gguf`` package's own reader.

The files are written at ``--scale tiny`` beside the tiny bf16 safetensors file they stand for; the
full-size plan is checked from shapes alone (meta tensors, nothing written).
"""

from __future__ import annotations

import math
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import full_weights as fw  # noqa: E402
import gguf  # noqa: E402  (the test extra's independent reader)
import gguf_weights as gw  # noqa: E402

WAN_BF16 = "diffusion_models/wan2.1_i2v_480p_14B_bf16.safetensors"
GGUF_FILES = {q: f"diffusion_models/{name}" for q, name in gw.FILE_NAMES.items()}
PATCH = "patch_embedding.weight"


@pytest.fixture(scope="module")
def models(host, tmp_path_factory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("gguf_weights") / "models"
    for wan in ("bf16", *gw.QUANTS):
        fw.write_all(root, parts=("wan",), scale="tiny", wan=wan, log=lambda _line: None)
    yield root
    shutil.rmtree(root)


def _safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _orig_shape(reader, name: str) -> tuple[int, ...] | None:
    field = reader.get_field(gw.ORIG_SHAPE_KEY + name)
    if field is None:
        return None
    assert field.types == [gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT32]
    return tuple(int(field.parts[i][0]) for i in field.data)


def _string_field(reader, key: str) -> str:
    field = reader.get_field(key)
    return str(field.parts[field.data[-1]], encoding="utf-8")


def _values(tensor) -> np.ndarray:
    return gguf.quants.dequantize(tensor.data, tensor.tensor_type)


def _check_statistics(values: np.ndarray, std: float, name: str) -> None:
    assert abs(values.mean()) < 0.1 * std, (name, values.mean())
    assert abs(values.std() / std - 1) < 0.1, (name, values.std(), std)


@pytest.mark.parametrize("quant", gw.QUANTS)
def test_gguf_file_has_every_tensor_of_the_safetensors_file(models, quant):
    reference = _safetensors(models / WAN_BF16)
    reader = gguf.GGUFReader(models / GGUF_FILES[quant])
    assert _string_field(reader, "general.architecture") == "wan"
    tensors = {t.name: t for t in reader.tensors}
    assert set(tensors) == set(reference)
    for name, ref in reference.items():
        stored = tuple(int(d) for d in reversed(tensors[name].shape))  # GGML order -> torch order
        assert (_orig_shape(reader, name) or stored) == tuple(ref.shape), name
    assert _orig_shape(reader, PATCH) == (fw.TINY.dim, fw.IN_DIM, 1, 2, 2)
    assert len(tensors[PATCH].shape) == 2


@pytest.mark.parametrize("quant", gw.QUANTS)
def test_gguf_types_as_planned(models, quant):
    reader = gguf.GGUFReader(models / GGUF_FILES[quant])
    planned = {t.name: t.qtype for t in gw.gguf_tensors(fw.wan_layout(fw.TINY, torch.bfloat16), quant)}
    assert {t.name: int(t.tensor_type) for t in reader.tensors} == planned
    types = Counter(gw.TYPE_NAMES[planned[n]] for n in planned if n.startswith("blocks.0."))
    if quant == "q8_0":
        assert types["Q8_0"] == 12  # q, k, v, o of both attentions, k_img, v_img, ffn.0, ffn.2
    else:  # the tiny DiT's 128-wide rows are no K-quant's: F16, as city96's rule falls back; ffn.2 is 256 wide
        assert types["Q6_K"] == 1 and types["F16"] == 11
    assert planned["head.head.weight"] == gw.F16 and planned["blocks.0.modulation"] == gw.F32
    assert planned[PATCH] == gw.F32


@pytest.mark.parametrize("quant", gw.QUANTS)
def test_gguf_values_match_the_bf16_file(models, quant):
    """Mean about 0 and the bf16 file's std, per tensor of 4096 values or more; norms exactly 1."""
    reference = _safetensors(models / WAN_BF16)
    reader = gguf.GGUFReader(models / GGUF_FILES[quant])
    for t in reader.tensors:
        values, ref = _values(t), reference[t.name].float()
        if ref.numel() >= 4096:
            _check_statistics(values, float(ref.std()), t.name)
        elif t.name.endswith(("norm_q.weight", "norm_k.weight", "norm3.weight")):
            assert np.all(values == 1.0), t.name


def test_every_quantised_type_at_k_quant_widths(tmp_path):
    """Q8_0, Q4_K and Q6_K blocks (the full-size file's types) through the writer, dequantised by ``gguf``;
    45 rows: no tensor's data ends on the 32-byte alignment."""
    tensors = [gw.GGUFTensor(f"m.{name}.{std}", (45, 768), qtype, std=std)
               for name, qtype in (("q8_0", gw.Q8_0), ("q4_k", gw.Q4_K), ("q6_k", gw.Q6_K))
               for std in (0.02, 0.005)]
    path = tmp_path / "k.gguf"
    gw.write_gguf(path, tensors, "q4_k_m", plain_chunks=None, device="cpu")
    assert path.stat().st_size == gw.gguf_size(tensors, "q4_k_m")
    reader = gguf.GGUFReader(path)
    assert [int(t.tensor_type) for t in reader.tensors] == [t.qtype for t in tensors]
    for t, planned in zip(reader.tensors, tensors, strict=True):
        assert [int(d) for d in t.shape] == [768, 45]
        _check_statistics(_values(t), planned.std, t.name)


@pytest.mark.parametrize("damage", ["truncated", "bad magic"])
def test_a_damaged_file_is_detected(models, tmp_path, damage):
    raw = (models / GGUF_FILES["q8_0"]).read_bytes()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(raw[: len(raw) - 1000] if damage == "truncated" else b"GGUG" + raw[4:])
    with pytest.raises(ValueError):
        gguf.GGUFReader(bad)


BITS_PER_VALUE = {gw.F32: 32, gw.F16: 16, gw.Q8_0: 8.5, gw.Q4_K: 4.5, gw.Q6_K: 6.5625}


def test_full_size_gguf_plan(host):
    """The real shapes on the meta device: city96's types, and the files' sizes from bits per value."""
    layout = fw.wan_layout(fw.FULL, torch.bfloat16)
    files = {f.rel: f for q in gw.QUANTS for f in fw.plan(("wan",), "full", q)}
    for quant, main in (("q8_0", {"Q8_0": 40 * 12}),  # q, k, v, o of both attentions, k_img, v_img, ffn.0/2
                        ("q4_k_m", {"Q6_K": 40 * 3, "Q4_K": 40 * 9})):  # Q6_K: self/cross v, ffn.2
        tensors = gw.gguf_tensors(layout, quant)
        types = Counter(gw.TYPE_NAMES[t.qtype] for t in tensors)
        assert {k: types[k] for k in main} == main and sum(types.values()) == len(layout)
        values = sum(math.prod(t.shape) * BITS_PER_VALUE[t.qtype] / 8 for t in tensors)
        assert 0 < files[GGUF_FILES[quant]].nbytes - values < 100_000  # header and alignment
    assert files[GGUF_FILES["q4_k_m"]].nbytes < 0.34 * sum(s.nbytes for s in layout.values())
