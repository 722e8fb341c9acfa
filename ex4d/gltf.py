"""glTF 2.0 files as far as this pack writes and reads them (spec: registry.khronos.org/glTF/specs/2.0).

:class:`GltfWriter` builds a document whose binary data lives in one buffer and writes it as ``.glb``.
:func:`read_gltf` reads a ``.glb`` or a ``.gltf`` (its buffers embedded as base64 data URIs, or ``.bin`` files
beside it) and :meth:`GltfFile.accessor` gives an accessor's elements as a numpy array. Reading checks every
size and offset against the data it points into, and raises :class:`GltfError` saying what is wrong.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GLB_MAGIC = 0x46546C67  # "glTF"
JSON_CHUNK = 0x4E4F534A
BIN_CHUNK = 0x004E4942
FLOAT, UNSIGNED_BYTE, UNSIGNED_INT = 5126, 5121, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963

COMPONENT_DTYPES = {5120: "i1", 5121: "u1", 5122: "<i2", 5123: "<u2", 5125: "<u4", 5126: "<f4"}
# normalised integers map to [-1, 1] or [0, 1] by dividing by their largest value (spec 3.11)
_NORMALISERS = {5120: 127.0, 5121: 255.0, 5122: 32767.0, 5123: 65535.0}
TYPE_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_WRITE_COMPONENTS = {np.dtype(np.float32): FLOAT, np.dtype(np.uint8): UNSIGNED_BYTE, np.dtype(np.uint32): UNSIGNED_INT}
_TYPES_BY_WIDTH = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}
MAX_FILE_BYTES = 1 << 30


class GltfError(ValueError):
    """A file that is not a readable glTF 2.0 document; the message says what is wrong."""


def _padded(data: bytes, pad: bytes = b"\0") -> bytes:
    return data + pad * ((-len(data)) % 4)


class GltfWriter:
    """A glTF 2.0 document under construction: nodes of its one scene, accessors over one binary buffer."""

    def __init__(self, generator: str = "ComfyUI-EX4D"):
        self.gltf: dict = {"asset": {"version": "2.0", "generator": generator}, "scene": 0,
                           "scenes": [{"nodes": []}], "nodes": []}
        self._binary = bytearray()

    def add(self, key: str, item: dict) -> int:
        """Append ``item`` to the top-level array ``key``; its index."""
        items = self.gltf.setdefault(key, [])
        items.append(item)
        return len(items) - 1

    def add_node(self, node: dict, root: bool = True) -> int:
        """A node, listed in the scene unless it is some node's child (``root=False``)."""
        index = self.add("nodes", node)
        if root:
            self.gltf["scenes"][0]["nodes"].append(index)
        return index

    def use_extension(self, name: str) -> None:
        used = self.gltf.setdefault("extensionsUsed", [])
        if name not in used:
            used.append(name)

    def add_accessor(self, data: np.ndarray, target: int | None = None, normalized: bool = False,
                     bounds: bool = False) -> int:
        """An accessor over ``data`` [count, width] (or [count]) of float32, uint8 or uint32, in its own buffer
        view; ``bounds`` writes its min and max (required for positions and animation times)."""
        data = np.asarray(data)
        rows = data.reshape(len(data), -1)
        blob = rows.astype(rows.dtype.newbyteorder("<")).tobytes()
        view = {"buffer": 0, "byteOffset": len(self._binary), "byteLength": len(blob)}
        if target is not None:
            view["target"] = target
        self._binary += _padded(blob)
        accessor = {"bufferView": self.add("bufferViews", view), "componentType": _WRITE_COMPONENTS[data.dtype],
                    "count": len(rows), "type": _TYPES_BY_WIDTH[rows.shape[1]]}
        if normalized:
            accessor["normalized"] = True
        if bounds:
            empty = [0] * rows.shape[1]
            accessor["min"] = rows.min(0).tolist() if len(rows) else empty
            accessor["max"] = rows.max(0).tolist() if len(rows) else empty
        return self.add("accessors", accessor)

    def to_glb(self) -> bytes:
        gltf = dict(self.gltf)
        gltf["buffers"] = [{"byteLength": len(self._binary)}]
        text = _padded(json.dumps(gltf, separators=(",", ":")).encode("utf-8"), b" ")
        binary = bytes(self._binary)
        header = struct.pack("<III", GLB_MAGIC, 2, 12 + 8 + len(text) + 8 + len(binary))
        return (header + struct.pack("<II", len(text), JSON_CHUNK) + text
                + struct.pack("<II", len(binary), BIN_CHUNK) + binary)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.to_glb())
        return path


# ----------------------------------------------------------------------------- reading


@dataclass
class GltfFile:
    """A read document: its JSON and its buffers' bytes."""

    gltf: dict
    buffers: list[bytes]

    def items(self, key: str) -> list:
        items = self.gltf.get(key, [])
        if not isinstance(items, list):
            raise GltfError(f"its '{key}' is not a list")
        return items

    def item(self, key: str, index: object) -> dict:
        items = self.items(key)
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(items):
            raise GltfError(f"refers to {key} {index!r}, which it does not hold ({len(items)} there)")
        if not isinstance(items[index], dict):
            raise GltfError(f"its {key} {index} is not an object")
        return items[index]

    def accessor(self, index: object) -> np.ndarray:
        """The accessor's elements as float64 [count, width] (normalised integers mapped to [-1, 1] / [0, 1])."""
        acc = self.item("accessors", index)
        component, kind, count = acc.get("componentType"), acc.get("type"), acc.get("count")
        if component not in COMPONENT_DTYPES or kind not in TYPE_WIDTHS:
            raise GltfError(f"accessor {index} has componentType {component!r} and type {kind!r}, which glTF "
                            "does not define")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise GltfError(f"accessor {index} has count {count!r}; it must be a positive whole number")
        if "sparse" in acc:
            raise GltfError(f"accessor {index} is sparse, which this reader does not take; export without "
                            "sparse accessors")
        width, dtype = TYPE_WIDTHS[kind], np.dtype(COMPONENT_DTYPES[component])
        if "bufferView" not in acc:  # no data: all zeros (spec 3.6.2.4)
            return np.zeros((count, width))
        values = self._strided(acc, index, count, width, dtype).astype(np.float64)
        if acc.get("normalized") and component in _NORMALISERS:
            values = np.maximum(values / _NORMALISERS[component], -1.0)
        return values

    def _strided(self, acc: dict, index: object, count: int, width: int, dtype: np.dtype) -> np.ndarray:
        view = self.item("bufferViews", acc["bufferView"])
        data = self._view_bytes(view, acc["bufferView"])
        element = width * dtype.itemsize  # matrix column padding (MAT2/MAT3 of 1- or 2-byte types) is not read
        stride = view.get("byteStride", element)
        offset = acc.get("byteOffset", 0)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (stride, offset)) or stride < element \
                or offset < 0 or offset % dtype.itemsize:
            raise GltfError(f"accessor {index} has byteOffset {offset!r} and byteStride {stride!r} that do not "
                            "fit its elements")
        if offset + stride * (count - 1) + element > len(data):
            raise GltfError(f"accessor {index} needs {count} elements but its buffer view holds fewer")
        rows = np.lib.stride_tricks.as_strided(np.frombuffer(data, np.uint8, offset=offset), (count, element),
                                               (stride, 1), writeable=False)
        return np.ascontiguousarray(rows).view(dtype).reshape(count, width)

    def _view_bytes(self, view: dict, index: object) -> bytes:
        buffer = view.get("buffer")
        if not isinstance(buffer, int) or isinstance(buffer, bool) or not 0 <= buffer < len(self.buffers):
            raise GltfError(f"buffer view {index} refers to buffer {buffer!r}, which it does not hold")
        start, length = view.get("byteOffset", 0), view.get("byteLength")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (start, length)) \
                or start + length > len(self.buffers[buffer]):
            raise GltfError(f"buffer view {index} reaches past the end of its buffer (the file is cut short, or "
                            "the view is wrong)")
        return self.buffers[buffer][start:start + length]


def _glb_chunks(data: bytes) -> tuple[dict, bytes | None]:
    if len(data) < 20:
        raise GltfError("is too short to be a .glb (cut short?)")
    magic, version, total = struct.unpack_from("<III", data, 0)
    if magic != GLB_MAGIC:
        raise GltfError("does not start with the .glb magic 'glTF'")
    if version != 2:
        raise GltfError(f"is glTF version {version}; only glTF 2.0 is read")
    if total > len(data):
        raise GltfError(f"says it is {total} bytes long but holds {len(data)} (cut short?)")
    text, binary, at = None, None, 12
    while at + 8 <= total:
        length, kind = struct.unpack_from("<II", data, at)
        if at + 8 + length > total:
            raise GltfError("has a chunk that reaches past its end (cut short?)")
        chunk = data[at + 8:at + 8 + length]
        if text is None and kind != JSON_CHUNK:
            raise GltfError("does not begin with its JSON chunk")
        if text is None:
            text = chunk
        elif kind == BIN_CHUNK and binary is None:
            binary = chunk
        at += 8 + length + (-length) % 4
    if text is None:
        raise GltfError("holds no JSON chunk")
    return _json(text), binary


def _json(text: bytes) -> dict:
    try:
        gltf = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise GltfError("holds JSON that does not parse") from e
    if not isinstance(gltf, dict) or not isinstance(gltf.get("asset"), dict):
        raise GltfError("is JSON but not a glTF document (no 'asset')")
    version = str(gltf["asset"].get("version", ""))
    if not version.startswith("2."):
        raise GltfError(f"is glTF version {version or '(none)'}; only glTF 2.0 is read")
    return gltf


def _buffer(entry: object, index: int, folder: Path, glb_binary: bytes | None) -> bytes:
    if not isinstance(entry, dict) or not isinstance(entry.get("byteLength"), int):
        raise GltfError(f"its buffer {index} has no byteLength")
    uri = entry.get("uri")
    if uri is None:
        if glb_binary is None or index != 0:
            raise GltfError(f"its buffer {index} has no data (no uri, and no binary chunk)")
        data = glb_binary
    elif isinstance(uri, str) and uri.startswith("data:"):
        try:
            data = base64.b64decode(uri.split(",", 1)[1], validate=True)
        except (IndexError, ValueError) as e:
            raise GltfError(f"its buffer {index} is a data URI that is not base64") from e
    elif isinstance(uri, str) and uri and "/" not in uri and "\\" not in uri and uri not in (".", ".."):
        file = folder / uri
        if not file.is_file():
            raise GltfError(f"its buffer {index} is the file '{uri}', which is not beside it; put it there")
        data = file.read_bytes()[:MAX_FILE_BYTES]
    else:
        raise GltfError(f"its buffer {index} is '{str(uri)[:60]}'; only embedded data or a file beside it is read")
    if len(data) < entry["byteLength"]:
        raise GltfError(f"its buffer {index} holds {len(data)} bytes, fewer than its byteLength "
                        f"{entry['byteLength']} (cut short?)")
    return data


def read_gltf(path: str | Path) -> GltfFile:
    """A ``.glb`` or ``.gltf`` file's document and buffers; :class:`GltfError` when it is not readable."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise GltfError(f"is larger than {MAX_FILE_BYTES >> 20} MiB")
        data = path.read_bytes()
    except OSError as e:
        raise GltfError("cannot be read") from e
    gltf, binary = _glb_chunks(data) if data[:4] == b"glTF" or path.suffix.lower() == ".glb" else (_json(data), None)
    entries = gltf.get("buffers", [])
    if not isinstance(entries, list):
        raise GltfError("its 'buffers' is not a list")
    return GltfFile(gltf, [_buffer(e, i, path.parent, binary) for i, e in enumerate(entries)])
