"""The bad-input work folder: input files broken in every way (beside good ones), booby-trapped pickles, and
tiny models."""

from __future__ import annotations

import builtins
import io
import json
import math
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch

from ex4d import camera as ex4d_camera
from harness import tiny_models
from harness.media import save_video
from harness.tiny_depth import write_tiny_depth_anything, write_tiny_depthcrafter

from .clip import CLIP, MARKER, H, T, W


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
