"""Bad input against the real server (issue #12: every bad input gets one clear error).

    marker = prepare_work_dir(work)                        # a clip, input files broken in every way, tiny models
    with ServerHost(work) as server:
        graphs = Graphs(server.get_json("/object_info"), SOURCES, WIDGETS)
        node = graphs.node("EX4DLoadVideo", video="../x.mp4")  # valid inputs but one
        reply = submit(server, Graphs.prompt(node, base_nodes(graphs)))
    reply.stage, reply.errors                              # "queue" / "run" / "accepted" / "crash", what came back
    message_problems(reply.errors[0].text, "video")        # [] when the message is clear

A clear message names the one input it is about first ("video: ..."), says what to do, and holds no raw
Python exception text. The host's own queue-time checks (range, choices, link types) are clear by
construction: the host attaches them to the input and states the limit.
"""

from __future__ import annotations

import builtins
import io
import json
import math
import pickle
import re
import struct
import time
import urllib.error
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ex4d import camera as ex4d_camera
from harness import tiny_models
from harness.bootstrap import host_dir
from harness.host import ServerHost
from harness.media import save_video
from harness.tiny_depth import write_tiny_depth_anything, write_tiny_depthcrafter

T, H, W = 5, 32, 32  # the clip every prompt starts from: 5 frames of 32 x 32
CLIP = "clip.mp4"
ANYTHING = "Depth Anything V2: tiny-v2"
MARKER = "code_ran.txt"  # what the pickled files create when unpickled, in the work folder

# Text that only a Python exception carries, never a message written for a user.
RAW_EXCEPTION_TEXT = (
    "Traceback",
    "Error:",  # "KeyError: ...", "ValueError: ...": an exception printed with its type
    "KeyError",
    "IndexError",
    "AttributeError",
    "TypeError",
    "ZeroDivisionError",
    "could not convert",
    "BadZipFile",
    "File is not a zip file",
    "slice step cannot be zero",
    "embedded null byte",
    "[Errno",
    "invalid literal for",
    "object has no attribute",
    "NoneType",
    "not subscriptable",
    "unsupported operand",
    "unexpected keyword argument",
    "argument after",
    "positional argument",
    "allow_pickle",
    "while decompressing",
    "(char ",  # json.JSONDecodeError's position
    "cannot convert float NaN",
    "tuple index out of range",
    "list index out of range",
)
# A message says what to do: an instruction, or what the input must be.
ACTION = re.compile(
    r"\b(choose|use|set|lower|raise|connect|disconnect|upload|put|fix|make|load|re-?export|re-?encode|save|"
    r"pick|refresh|download|give|shorten|rebuild|estimate|resize|move|enter|install|plug|remove|must|needs?)\b"
)
# The host's own queue-time checks: it attaches them to the input and states the limit or the choices.
HOST_CHECKS = {
    "value_smaller_than_min",
    "value_bigger_than_max",
    "value_not_in_list",
    "return_type_mismatch",
    "required_input_missing",
    "invalid_input_type",
    "bad_linked_input",
}
# Queue-time error types that mean the pack's own validation broke.
VALIDATION_CRASHES = {"exception_during_validation", "exception_during_inner_validation"}
# Exception types a node may fail with on bad input: anything else escaped unhandled.
EXPECTED_EXCEPTIONS = {"ValueError"}


def host_checks_v3_combos() -> bool:
    """Whether the host refuses unknown V3 combo values at queue time (0.33 on); before, they reach the node.
    (False where the host is not set up yet: nothing runs on it then.)"""
    execution = host_dir() / "execution.py"
    return execution.is_file() and "io.Combo.io_type" in execution.read_text()


def message_problems(text: str, input_name: str) -> list[str]:
    """Why ``text`` is not a clear message about ``input_name`` ([] when it is)."""
    problems = []
    if not text.startswith(f"{input_name}:"):
        problems.append(f"does not start with '{input_name}:'")
    raw = [r for r in RAW_EXCEPTION_TEXT if r in text]
    if raw:
        problems.append(f"holds raw exception text {raw}")
    if not ACTION.search(text):
        problems.append("does not say what to do")
    return problems


@dataclass
class Error:
    """One error the host reported: at queue time attached to ``input`` (None: to no input), at run time
    raised by node ``node`` (``input`` None: the message names it)."""

    node: str
    input: str | None
    kind: str  # the host's error type at queue time, the exception type at run time
    text: str  # the pack's message, or the host's message and details

    @property
    def ours(self) -> bool:
        """Written by the pack (a validator's or a node's message), not one of the host's own checks."""
        return self.kind not in HOST_CHECKS


@dataclass
class Reply:
    stage: str  # "queue" (refused by /prompt), "run" (failed executing), "accepted" (ran) or "crash"
    errors: list[Error] = field(default_factory=list)
    crash: str = ""
    seconds: float = 0.0


def queue_errors(reply: dict[str, Any]) -> list[Error]:
    """The errors of a /prompt refusal, one per (node, input) the host attached one to."""
    errors = []
    for node, entry in (reply.get("node_errors") or {}).items():
        for e in entry.get("errors", []):
            input_name = (e.get("extra_info") or {}).get("input_name")
            details = str(e.get("details", ""))
            if (
                e.get("type") == "custom_validation_failed"
                and input_name
                and details.startswith(f"{input_name} - ")
            ):
                text = details[len(input_name) + 3 :]  # the host prefixes the validator's text with the input
            else:
                text = f"{e.get('message', '')}: {details}"
            errors.append(Error(str(node), input_name, str(e.get("type")), text))
    if not errors:  # refused as a whole (no outputs, a malformed prompt)
        error = reply.get("error") or {}
        errors.append(
            Error("", None, str(error.get("type")), f"{error.get('message')}: {error.get('details')}")
        )
    return errors


def submit(server: ServerHost, prompt: dict[str, Any], timeout: float = 120) -> Reply:
    """Queue ``prompt`` and, if accepted, wait for it: what the host answered and when."""
    t0 = time.perf_counter()
    try:
        reply = server.queue(prompt)
        if "http_status" in reply:
            if reply["http_status"] != 400:
                return Reply("crash", crash=f"/prompt answered HTTP {reply['http_status']}")
            errors = queue_errors(reply)
            crashed = [e.kind for e in errors if e.kind in VALIDATION_CRASHES]
            stage, crash = ("crash", f"validation raised: {errors}") if crashed else ("queue", "")
            return Reply(stage, errors, crash, time.perf_counter() - t0)
        entry = server.wait(reply["prompt_id"], timeout=timeout)
    except TimeoutError:
        return Reply("crash", crash=f"no answer within {timeout} s")
    except (urllib.error.URLError, ConnectionError, json.JSONDecodeError) as e:
        return Reply("crash", crash=f"the server did not answer ({e})")
    seconds = time.perf_counter() - t0
    if entry["status"]["status_str"] == "success":
        return Reply("accepted", seconds=seconds)
    failures = [data for event, data in entry["status"].get("messages", []) if event == "execution_error"]
    if not failures:
        return Reply("crash", crash=f"failed without an execution_error: {entry['status']}", seconds=seconds)
    data = failures[0]
    error = Error(
        str(data.get("node_id")),
        None,
        str(data.get("exception_type")),
        str(data.get("exception_message", "")).strip(),
    )
    if error.kind not in EXPECTED_EXCEPTIONS:
        return Reply(
            "crash", [error], f"{error.kind} escaped from {data.get('node_type')}: {error.text}", seconds
        )
    return Reply("run", [error], seconds=seconds)


def serving(server: ServerHost) -> str:
    """'' when the server is up and idle, else what is wrong."""
    if server.proc is None or server.proc.poll() is not None:
        return "the server process has exited"
    try:
        queue = server.get_json("/queue", timeout=10)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return f"the server does not answer ({e})"
    if queue.get("queue_running") or queue.get("queue_pending"):
        return f"the server is still busy: {queue}"
    return ""


# Folders of a server's work directory that hold what the tests put there, not what prompts write.
FIXTURE_FOLDERS = ("input", "models", "user")


def written_files(work_dir: Path) -> set[str]:
    """Every file under ``work_dir`` a prompt may have written (outside the input, model and user folders, the
    server's log and database)."""
    found = set()
    for path in work_dir.rglob("*"):
        relative = path.relative_to(work_dir)
        if relative.parts[0] in FIXTURE_FOLDERS or path.is_dir():
            continue
        if relative.name.startswith(("server-", "comfyui.db")):
            continue
        found.add(str(relative))
    return found


# ---------------------------------------------------------------------------------------------------------
# Prompts from the host's node list


class Graphs:
    """API-format nodes with valid values for every input the case leaves alone.

    ``sources``: a link (``[node id, output]``) to a base node for each socket type; ``widgets``: per node type,
    values that differ from the schema's defaults (a file that exists, small sizes)."""

    def __init__(self, object_info: dict[str, Any], sources: dict[str, list], widgets: dict[str, dict]):
        self.info = object_info
        self.sources = sources
        self.widgets = widgets

    def inputs(self, class_type: str, optional: bool = False) -> dict[str, Any]:
        """Input name -> spec ([type or options, {options}]) of ``class_type``'s required inputs (and optional
        ones with ``optional``)."""
        spec = self.info[class_type]["input"]
        return {**spec.get("required", {}), **(spec.get("optional", {}) if optional else {})}

    def node(self, class_type: str, **overrides: Any) -> dict[str, Any]:
        """A node of ``class_type`` with valid required inputs, then ``overrides`` (``DROP`` removes one)."""
        inputs = {
            name: self.valid_value(class_type, name, spec) for name, spec in self.inputs(class_type).items()
        }
        # optional inputs given a valid value (an optional map the node needs one of, say)
        optional = self.inputs(class_type, optional=True)
        inputs |= {
            name: value for name, value in self.widgets.get(class_type, {}).items() if name in optional
        }
        inputs.update(overrides)
        return {"class_type": class_type, "inputs": {k: v for k, v in inputs.items() if v is not DROP}}

    def valid_value(self, class_type: str, name: str, spec: list) -> Any:
        if name in self.widgets.get(class_type, {}):
            return self.widgets[class_type][name]
        kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
        if isinstance(kind, list) or kind == "COMBO":
            choices = kind if isinstance(kind, list) else options.get("options", [])
            return options.get("default", choices[0] if choices else "")
        if kind in ("INT", "FLOAT", "STRING", "BOOLEAN"):
            return options.get("default", {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}[kind])
        if kind not in self.sources:
            raise KeyError(f"{class_type}.{name}: no base node gives {kind}; add one to the sources")
        return self.sources[kind]

    @staticmethod
    def prompt(target: dict[str, Any], base: dict[str, dict], target_id: str = "1") -> dict[str, Any]:
        """``target`` as node ``target_id``, whatever base nodes its links reach, and an output that shows its
        first output without writing a file."""
        prompt = {
            target_id: target,
            "sink": {"class_type": "PreviewAny", "inputs": {"source": [target_id, 0]}},
        }
        todo = [target]
        while todo:
            for value in todo.pop()["inputs"].values():
                if _is_link(value) and value[0] not in prompt:
                    prompt[value[0]] = base[value[0]]
                    todo.append(base[value[0]])
        return prompt


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


DROP = _Drop()  # an override that leaves the input out


def _is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


# ---------------------------------------------------------------------------------------------------------
# Input files


class CodeRunner:
    """Unpickling this creates ``marker``: what a booby-trapped depth, camera or checkpoint file holds."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def check_code_runner(marker: Path) -> None:
    """Prove that the payload runs code when unpickled (so that a missing marker means it was never loaded)."""
    probe = marker.with_name(marker.name + ".probe")
    pickle.loads(pickle.dumps(CodeRunner(probe))).close()
    if not probe.exists():
        raise AssertionError("the pickled payload did not create its marker when unpickled")
    probe.unlink()


def _zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def write_bad_files(input_dir: Path, marker: Path) -> None:
    """Depth and camera files for every way such a file can be wrong, beside good ones, in ``input_dir``.

    Good: ``depth.npz`` / ``depth.npy`` (the clip's [T, H, W] depth), ``camera.json`` and ``camera.npz`` (a
    path for the clip), ``camera_long.npz`` (T + 3 frames), ``camera_big.json`` (twice the size)."""
    rng = np.random.default_rng(0)
    depth = (2.0 + rng.random((T, H, W))).astype(np.float32)
    code = CodeRunner(marker)
    np.savez(input_dir / "depth.npz", depth=depth)
    np.save(input_dir / "depth.npy", depth)
    good = depth[:1]
    np.savez(input_dir / "pickled.npz", depth=np.array([code], dtype=object))
    np.save(input_dir / "pickled.npy", np.array([code], dtype=object), allow_pickle=True)
    (input_dir / "raw_pickle.npz").write_bytes(pickle.dumps(code))
    (input_dir / "not_zip.npz").write_bytes(b"PK\x03\x04 but not a zip file at all" * 20)
    compressed = input_dir / "depth_compressed.npz"
    np.savez_compressed(compressed, depth=depth)
    data = compressed.read_bytes()
    (input_dir / "truncated.npz").write_bytes(data[: len(data) // 2])
    damaged = bytearray(data)
    for i in range(120, 260):  # inside the deflated member, after its header
        damaged[i] ^= 0x5A
    (input_dir / "damaged.npz").write_bytes(bytes(damaged))
    compressed.unlink()
    (input_dir / "empty.npy").write_bytes(b"")
    (input_dir / "truncated.npy").write_bytes(_npy_bytes(depth)[:200])
    _zip(input_dir / "no_arrays.npz", {})
    _zip(input_dir / "bytes_member.npz", {"depth": b"not an npy array"})
    np.savez(input_dir / "two_arrays.npz", a=good, b=good)
    np.savez(input_dir / "complex.npz", depth=good.astype(np.complex64))
    np.savez(input_dir / "strings.npz", depth=np.array([["a", "b"], ["c", "d"]]))
    np.save(input_dir / "structured.npy", np.zeros((2, 4, 4), dtype=[("a", "f4"), ("b", "i4")]))
    np.save(input_dir / "dates.npy", np.zeros((2, 4, 4), dtype="datetime64[s]"))
    np.savez(input_dir / "four_d.npz", depth=depth[None])
    np.save(input_dir / "one_d.npy", depth[0, 0])
    np.save(input_dir / "scalar.npy", np.float32(2.0))
    np.savez(input_dir / "no_frames.npz", depth=depth[:0])
    np.savez(input_dir / "no_width.npz", depth=depth[:, :, :0])
    nan = depth.copy()
    nan[1, 2, 3] = np.nan
    np.savez(input_dir / "nan.npz", depth=nan)
    np.savez(input_dir / "inf.npz", depth=np.where(depth > 2.5, np.inf, depth))
    np.savez(input_dir / "zeros.npz", depth=np.zeros_like(depth))
    np.save(input_dir / "negative.npy", -depth)
    (input_dir / "notes.txt").write_text("not depth")

    def orbit(frames: int, width: int, height: int) -> ex4d_camera.CameraPath:
        return ex4d_camera.orbit(ex4d_camera.Clip.centred(frames, width, height, radius=3.0))

    path = orbit(T, W, H)
    ex4d_camera.write_json(path, input_dir / "camera.json")
    ex4d_camera.write_ex4d_npz(path, input_dir / "camera.npz")
    ex4d_camera.write_ex4d_npz(orbit(T + 3, W, H), input_dir / "camera_long.npz")
    ex4d_camera.write_json(orbit(T, 2 * W, 2 * H), input_dir / "camera_big.json")
    intrinsics = path.lens.intrinsics
    np.savez(input_dir / "camera_zero.npz", extrinsics=np.zeros((T, 4, 4), np.float32), intrinsics=intrinsics)
    nan_extrinsics = path.extrinsics.copy()
    nan_extrinsics[2, 0, 3] = np.nan
    np.savez(input_dir / "camera_nan.npz", extrinsics=nan_extrinsics, intrinsics=intrinsics)
    np.savez(
        input_dir / "camera_pickled.npz", extrinsics=np.array([code], dtype=object), intrinsics=intrinsics
    )
    np.savez(input_dir / "camera_no_intrinsics.npz", extrinsics=path.extrinsics)
    (input_dir / "camera_truncated.npz").write_bytes((input_dir / "camera.npz").read_bytes()[:150])
    document = ex4d_camera.to_json_dict(path)
    (input_dir / "camera_malformed.json").write_text(json.dumps(document)[:-40])
    (input_dir / "camera_other.json").write_text(json.dumps({"format": "something else", "frames": []}))
    (input_dir / "camera_strings.json").write_text(json.dumps({**document, "width": "wide"}))
    (input_dir / "camera_nan.json").write_text(json.dumps({**document, "intrinsics": [[math.nan] * 3] * 3}))
    (input_dir / "camera_no_frames.json").write_text(json.dumps({**document, "extrinsics": []}))
    (input_dir / "camera_list.json").write_text("[1, 2, 3]")
    write_bad_camera_formats(input_dir, path)


def _glb_edited(glb: bytes, edit) -> bytes:
    """``glb`` with its JSON chunk changed by ``edit`` (a function of the parsed document)."""
    length = int.from_bytes(glb[12:16], "little")
    gltf = json.loads(glb[20:20 + length])
    edit(gltf)
    text = json.dumps(gltf).encode()
    text += b" " * (-len(text) % 4)
    rest = glb[20 + length:]
    return b"glTF" + struct.pack("<III", 2, 20 + len(text) + len(rest), len(text)) + b"JSON" + text + rest


def write_bad_camera_formats(input_dir: Path, path: ex4d_camera.CameraPath) -> None:
    """glTF, transforms.json and COLMAP camera files: ``camera.glb`` good, the others wrong in one way each."""
    from ex4d.camera.gltf import write_glb

    glb = write_glb(path, input_dir / "camera.glb", fps=10.0).read_bytes()
    (input_dir / "camera_truncated.glb").write_bytes(glb[: len(glb) - 40])
    (input_dir / "camera_magic.glb").write_bytes(b"GLTF" + glb[4:])
    (input_dir / "camera_no_accessor.glb").write_bytes(
        _glb_edited(glb, lambda g: g["animations"][0]["samplers"][0].update(output=99)))
    (input_dir / "camera_huge.glb").write_bytes(_glb_edited(glb, lambda g: g["accessors"][1].update(count=10**12)))
    nan_node = {"asset": {"version": "2.0"}, "nodes": [{"camera": 0, "matrix": [math.nan] * 16}],
                "cameras": [{"type": "perspective", "perspective": {"yfov": 0.8}}]}
    (input_dir / "camera_nan.gltf").write_text(json.dumps(nan_node))
    frame = {"file_path": "a.png", "transform_matrix": np.eye(4).tolist()}
    (input_dir / "transforms_no_focal.json").write_text(json.dumps({"w": W, "h": H, "frames": [frame]}))
    nan_frame = {**frame, "transform_matrix": [[math.nan] * 4] * 4}
    (input_dir / "transforms_nan.json").write_text(json.dumps({"fl_x": 50, "w": W, "h": H, "frames": [nan_frame]}))
    (input_dir / "radial_images.txt").write_text("1 1 0 0 0 0 0 0 1 a.png\n\n")
    (input_dir / "radial_cameras.txt").write_text(f"1 SIMPLE_RADIAL {W} {H} 50 {W / 2} {H / 2} 0.01\n")
    (input_dir / "lonely_images.txt").write_text("1 1 0 0 0 0 0 0 1 a.png\n\n")


def write_bad_prompt_files(input_dir: Path, marker: Path) -> None:
    """Prompt-embedding and checkpoint files wrong in the ways a download can be, beside the good
    ``prompt.safetensors``."""
    from safetensors.torch import save_file

    good = tiny_models.write_prompt_embeddings(input_dir / "prompt.safetensors", length=8)
    (input_dir / "prompt_truncated.safetensors").write_bytes(good.read_bytes()[:100])
    (input_dir / "prompt_pickled.safetensors").write_bytes(pickle.dumps(CodeRunner(marker)))
    save_file({"weight": torch.zeros(2, 2)}, str(input_dir / "prompt_other.safetensors"))


def write_bad_checkpoints(ex4d_dir: Path, marker: Path) -> None:
    """EX-4D checkpoints a user may put in models/ex4d by mistake: pickled code, a cut download, another model."""
    ex4d_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"weight": CodeRunner(marker)}, str(ex4d_dir / "pickled.ckpt"))
    good = ex4d_dir / "tiny_ex4d.ckpt"
    (ex4d_dir / "truncated.ckpt").write_bytes(good.read_bytes()[:1000])
    torch.save({"lora_unet_down.weight": torch.zeros(4, 4)}, str(ex4d_dir / "not_ex4d.ckpt"))


# ---------------------------------------------------------------------------------------------------------
# Valid base nodes a prompt's inputs link to


def base_nodes(graphs: Graphs) -> dict[str, dict]:
    """Valid nodes, by id, that give every socket type (the defaults of :data:`SOURCES`) and the wrong kinds of
    valid values a case links to: a shorter or larger clip, a NaN mask, a 1 x 1 image, values out of range."""
    node = graphs.node
    return {
        "video": node("EX4DLoadVideo"),
        "short_video": node("EX4DLoadVideo", frame_load_cap=3),
        "big_video": node("EX4DLoadVideo", resize="published (multiple of 64, long side capped)"),
        "depth": node("EX4DDepthFromImage"),
        "mesh": node("EX4DBuildDWMesh"),
        "camera": node("EX4DCameraOrbit"),
        "focal_camera": node("EX4DCameraOrbit", focal=400.0),
        "long_camera": node("EX4DLoadCameraPath", path="camera_long.npz"),
        "big_camera": node("EX4DLoadCameraPath", path="camera_big.json"),
        "mask": {"class_type": "ImageToMask", "inputs": {"image": ["video", 0], "channel": "red"}},
        "big_mask": {"class_type": "ImageToMask", "inputs": {"image": ["big_video", 0], "channel": "red"}},
        "nan_mask": {"class_type": "SolidMask", "inputs": {"value": math.nan, "width": W, "height": H}},
        "dot": {"class_type": "EmptyImage", "inputs": {"width": 1, "height": 1, "batch_size": T, "color": 0}},
        "dot_depth": node("EX4DDepthFromImage", image=["dot", 0]),
        "anything": node("EX4DDepthModelLoader"),
        "crafter": node("EX4DDepthModelLoader", model="DepthCrafter"),
        "int_0": {"class_type": "PrimitiveInt", "inputs": {"value": 0}},
        "int_negative": {"class_type": "PrimitiveInt", "inputs": {"value": -3}},
        "float_nan": {"class_type": "PrimitiveFloat", "inputs": {"value": math.nan}},
        "string_up": {"class_type": "PrimitiveString", "inputs": {"value": "../escape"}},
        "unet": {
            "class_type": "UNETLoader",
            "inputs": {"unet_name": "tiny_i2v.safetensors", "weight_dtype": "default"},
        },
        "t2v": {
            "class_type": "UNETLoader",
            "inputs": {"unet_name": "tiny_t2v.safetensors", "weight_dtype": "default"},
        },
        "vae": {"class_type": "VAELoader", "inputs": {"vae_name": "tiny_vae.safetensors"}},
        "prompt": node("EX4DLoadPromptEmbeddings"),
        "adapter": node("EX4DAdapterLoader"),
        "lora": node("EX4DLoRA", model=["unet", 0]),
        "apply": node("EX4DApply"),
    }


SOURCES = {
    "IMAGE": ["video", 0],
    "MASK": ["mask", 0],
    "EX4D_DEPTH": ["depth", 0],
    "EX4D_DWMESH": ["mesh", 0],
    "EX4D_CAMERA": ["camera", 0],
    "EX4D_DEPTH_MODEL": ["anything", 0],
    "EX4D_ADAPTER": ["adapter", 0],
    "MODEL": ["lora", 0],
    "VAE": ["vae", 0],
    "CONDITIONING": ["prompt", 0],
    "LATENT": ["apply", 3],
}
WIDGETS = {  # valid values that differ from the schema defaults: existing files, small sizes, few steps
    "EX4DLoadVideo": {"video": CLIP, "resize": "native", "frame_load_cap": 0},
    "EX4DLoadDepth": {"path": "depth.npz"},
    "EX4DDepthFromImage": {"image": ["video", 0]},
    "EX4DLoadCameraPath": {"path": "camera.json"},
    "EX4DDepthModelLoader": {"model": ANYTHING},
    "EX4DEstimateDepth": {"steps": 1, "window": 5, "overlap": 2, "batch_size": 2},
    "EX4DAdapterLoader": {"adapter_name": "tiny_ex4d.ckpt"},
    "EX4DLoadPromptEmbeddings": {"embeddings": "prompt.safetensors"},
    "EX4DApply": {"width": W, "height": H, "length": T},
    "EX4DWanSampler": {
        "steps": 1,
        "model": ["apply", 0],
        "positive": ["apply", 1],
        "negative": ["apply", 2],
        "latent": ["apply", 3],
    },
    "EX4DCameraPreview": {"size": 64},
}


def write_broken_videos(folder: Path) -> None:
    """Files that are no usable video: garbage, zero bytes, a stream without frames, audio only, cut short."""
    import av

    (folder / "fake.mp4").write_bytes(b"\x00garbage" * 100)
    (folder / "zero.mp4").write_bytes(b"")
    with av.open(str(folder / "empty.mkv"), mode="w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        container.start_encoding()
    with av.open(str(folder / "audio.m4a"), mode="w") as container:
        container.add_stream("aac", rate=8000)
        container.start_encoding()
    whole = (folder / CLIP).read_bytes()
    (folder / "cut.mp4").write_bytes(whole[: len(whole) // 3])


def prepare_work_dir(work: Path) -> Path:
    """A server's work folder for bad input: a 5-frame clip, broken and good videos, depth, camera and prompt
    files (:func:`write_bad_files`), tiny Depth Anything, DepthCrafter, Wan and EX-4D models. Returns the marker
    the pickled files would create. Needs the host's modules importable (the tiny Wan files are its modules)."""
    inputs, models = work / "input", work / "models"
    inputs.mkdir(parents=True, exist_ok=True)
    (inputs / "folder").mkdir(exist_ok=True)
    marker = work / MARKER
    check_code_runner(marker)
    torch.manual_seed(0)
    save_video(torch.rand(T, H, W, 3), inputs / CLIP, fps=10)
    write_broken_videos(inputs)
    write_bad_files(inputs, marker)
    write_bad_prompt_files(inputs, marker)
    write_tiny_depth_anything(models / "depth_anything" / "tiny-v2")
    write_tiny_depthcrafter(models / "depthcrafter")
    tiny_models.write_tiny_wan_i2v(models / "diffusion_models" / "tiny_i2v.safetensors")
    tiny_models.write_tiny_wan_t2v(models / "diffusion_models" / "tiny_t2v.safetensors")
    tiny_models.write_tiny_wan_vae(models / "vae" / "tiny_vae.safetensors")
    tiny_models.write_tiny_ex4d_checkpoint(models / "ex4d" / "tiny_ex4d.ckpt")
    write_bad_checkpoints(models / "ex4d", marker)
    return marker
