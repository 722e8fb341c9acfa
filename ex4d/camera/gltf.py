"""Camera paths as glTF 2.0 camera animations, the format Blender imports and exports.

Writing (:func:`write_glb`): one camera node, ``ex4d_camera``, keyed at every frame (translation and rotation,
LINEAR, frame i at i / fps seconds), its ``yfov`` the path's field of view (a zooming path animates it through
KHR_animation_pointer) and its aspect the clip's; by default beside the scene, the frame-0 DW-mesh as Save
DW-Mesh writes it for Preview 3D (:func:`~ex4d.mesh.preview_gltf`), in the same world. Blender keeps names but
not extras, so the image size, the source focal length and the frame rate ride in the camera's name.

Reading (:func:`read_gltf_path`): the first animated camera (or the one named), its node's transform through
its parents at each clip frame, with LINEAR, STEP or CUBICSPLINE samplers; see :mod:`.imports` for the
conversion. A file holding a node of this pack's DW-mesh (``dw_mesh_frame_<n>``) is read in that mesh's world,
so a path made on an exported scene keeps its place and scale; a camera this pack exported alone (its name
tells) is read in the world it was written in.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ..gltf import GltfError, GltfFile, GltfWriter, read_gltf
from .files import CameraFileError
from .imports import (
    DEFAULT_SETTINGS,
    GL_AXES,
    ImportSettings,
    anchored_extrinsics,
    camera_path,
    extrinsics_in_scene,
    image_size,
    lens_of_fov,
    rigid,
)
from .path import CameraPath

CAMERA_NODE = "ex4d_camera"
SCENE_NODE_PREFIX = "dw_mesh_frame_"
POINTER = "KHR_animation_pointer"
_NAME = re.compile(r"ex4d (\d+)x(\d+) f([0-9.eE+-]+) ([0-9.eE+-]+)fps")
MAX_SAMPLES = 100_000
_WIDTHS = {"translation": 3, "rotation": 4, "scale": 3, "yfov": 1}


# ----------------------------------------------------------------------------- rotations


def matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    """Rotation matrices [N, 3, 3] -> unit quaternions [N, 4] (x, y, z, w), each on the side of the previous
    one so that interpolating between keys takes the short way."""
    r = np.asarray(r, dtype=np.float64)
    q = np.empty((len(r), 4))
    for i, m in enumerate(r):  # Shepperd: divide by the largest of 4w^2, 4x^2, 4y^2, 4z^2, never by a small one
        trace = m[0, 0] + m[1, 1] + m[2, 2]
        big = int(np.argmax([m[0, 0], m[1, 1], m[2, 2], trace]))
        if big == 3:
            s = 2.0 * math.sqrt(1.0 + trace)
            q[i] = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4)
        else:
            j, k = (big + 1) % 3, (big + 2) % 3
            s = 2.0 * math.sqrt(1.0 + m[big, big] - m[j, j] - m[k, k])
            q[i, big], q[i, j], q[i, k] = s / 4, (m[j, big] + m[big, j]) / s, (m[k, big] + m[big, k]) / s
            q[i, 3] = (m[k, j] - m[j, k]) / s
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    for i in range(1, len(q)):
        if np.dot(q[i], q[i - 1]) < 0:
            q[i] = -q[i]
    return q


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Quaternions [N, 4] (x, y, z, w; normalised here) -> rotation matrices [N, 3, 3]."""
    q = np.asarray(q, dtype=np.float64)
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    x, y, z, w = (q / np.where(norm > 0, norm, 1.0)).T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], 1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], 1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], 1),
    ], 1)


def _slerp(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    dot = (a * b).sum(1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.abs(dot).clip(max=1.0)
    angle = np.arccos(dot)
    small = angle < 1e-6
    sin = np.where(small, 1.0, np.sin(angle))
    wa = np.where(small, 1 - s, np.sin((1 - s) * angle) / sin)
    wb = np.where(small, s, np.sin(s * angle) / sin)
    return wa * a + wb * b


# ----------------------------------------------------------------------------- writing


def camera_name(camera: CameraPath, fps: float) -> str:
    return f"ex4d {camera.width}x{camera.height} f{camera.focal:.9g} {fps:.9g}fps"


def write_glb(camera: CameraPath, path: str | Path, fps: float, scene: GltfWriter | None = None) -> Path:
    """The path as a glTF binary: its camera keyed at every frame, at ``fps`` frames a second, beside
    ``scene`` (its node 0 is the scene's mesh, placed as a viewer shows it; None: the camera alone)."""
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    doc = scene or GltfWriter()
    offset = np.eye(4)
    if scene is not None:
        offset[:3, 3] = scene.gltf["nodes"][0].get("translation", (0.0, 0.0, 0.0))
    world = offset @ GL_AXES @ np.linalg.inv(camera.extrinsics.astype(np.float64))
    translation, rotation = world[:, :3, 3], matrix_to_quaternion(world[:, :3, :3])
    yfov = 2.0 * np.arctan((camera.height / 2.0) / camera.frame_focals())
    lens = {"aspectRatio": camera.width / camera.height, "yfov": float(yfov[0]), "znear": 0.01, "zfar": 1000.0}
    index = doc.add("cameras", {"name": camera_name(camera, fps), "type": "perspective", "perspective": lens})
    node = doc.add_node({"name": CAMERA_NODE, "camera": index, "translation": translation[0].tolist(),
                         "rotation": rotation[0].tolist()})
    times = doc.add_accessor((np.arange(camera.num_frames) / fps).astype(np.float32), bounds=True)
    tracks = [({"node": node, "path": "translation"}, translation), ({"node": node, "path": "rotation"}, rotation)]
    if camera.lens.zooms:
        doc.use_extension(POINTER)
        pointer = {"extensions": {POINTER: {"pointer": f"/cameras/{index}/perspective/yfov"}}}
        tracks.append(({"path": "pointer", **pointer}, yfov[:, None]))
    samplers, channels = [], []
    for i, (target, values) in enumerate(tracks):
        samplers.append({"input": times, "output": doc.add_accessor(values.astype(np.float32)),
                         "interpolation": "LINEAR"})
        channels.append({"sampler": i, "target": target})
    doc.add("animations", {"name": "ex4d_camera_path", "samplers": samplers, "channels": channels})
    return doc.write(path)


# ----------------------------------------------------------------------------- reading


class _Animated:
    """The animation channels of a document, by (node, path) and by camera (yfov), each with its sampler's
    times and values."""

    def __init__(self, doc: GltfFile):
        self.doc = doc
        self.tracks: dict[tuple[int, str], tuple[np.ndarray, np.ndarray, str]] = {}
        self.yfov: dict[int, tuple[np.ndarray, np.ndarray, str]] = {}
        for a, animation in enumerate(doc.items("animations")):
            if not isinstance(animation, dict):
                raise GltfError(f"its animation {a} is not an object")
            samplers = animation.get("samplers", [])
            for channel in animation.get("channels", []):
                self._add(channel, samplers, a)

    def _add(self, channel: object, samplers: object, a: int) -> None:
        target = channel.get("target") if isinstance(channel, dict) else None
        if not isinstance(target, dict) or not isinstance(samplers, list):
            raise GltfError(f"animation {a} has a channel without a target")
        key = self._key(target)
        if key is None or key in self.tracks or key in self.yfov:
            return
        index = channel.get("sampler")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(samplers) \
                or not isinstance(samplers[index], dict):
            raise GltfError(f"animation {a} has a channel whose sampler {index!r} it does not hold")
        track = self._track(samplers[index], a)
        path = "yfov" if isinstance(key, int) else key[1]
        if track[1].shape[1] != _WIDTHS[path]:
            raise GltfError(f"animation {a} animates a {path} with {track[1].shape[1]} numbers a key, not "
                            f"{_WIDTHS[path]}")
        keys = track[1][1::3] if track[2] == "CUBICSPLINE" else track[1]  # tangents may be zero
        if path == "rotation" and (np.linalg.norm(keys, axis=1) < 1e-12).any():
            raise GltfError(f"animation {a} holds a rotation of length 0 (not a quaternion)")
        (self.yfov if isinstance(key, int) else self.tracks)[key] = track

    def _key(self, target: dict) -> tuple[int, str] | int | None:
        path = target.get("path")
        if path in ("translation", "rotation", "scale"):
            self.doc.item("nodes", target.get("node"))
            return target["node"], path
        pointer = (target.get("extensions") or {}).get(POINTER, {}) if path == "pointer" else {}
        match = re.fullmatch(r"/cameras/(\d+)/perspective/yfov", str(pointer.get("pointer", "")))
        return int(match.group(1)) if match else None  # weights and other properties do not move a camera

    def _track(self, sampler: dict, a: int) -> tuple[np.ndarray, np.ndarray, str]:
        kind = sampler.get("interpolation", "LINEAR")
        if kind not in ("LINEAR", "STEP", "CUBICSPLINE"):
            raise GltfError(f"animation {a} uses interpolation {kind!r}; glTF has LINEAR, STEP and CUBICSPLINE")
        times = self.doc.accessor(sampler.get("input"))
        values = self.doc.accessor(sampler.get("output"))
        if times.shape[1] != 1 or not np.isfinite(times).all() or (np.diff(times[:, 0]) <= 0).any():
            raise GltfError(f"animation {a} has key times that are not increasing numbers")
        keys = len(times) * (3 if kind == "CUBICSPLINE" else 1)
        if len(values) != keys or (kind == "CUBICSPLINE" and len(times) < 2):
            raise GltfError(f"animation {a} has {len(values)} values for {len(times)} {kind} keys")
        if not np.isfinite(values).all():
            raise GltfError(f"animation {a} holds NaN or infinite values")
        return times[:, 0], values, kind


def sample(track: tuple[np.ndarray, np.ndarray, str], t: np.ndarray, rotation: bool = False) -> np.ndarray:
    """A sampler's value at times ``t`` (held before its first key and after its last), per the spec's
    interpolations; rotations slerped (LINEAR) or normalised (CUBICSPLINE)."""
    times, values, kind = track
    t = np.clip(t, times[0], times[-1])
    if kind == "CUBICSPLINE":
        tangent_in, values, tangent_out = values[0::3], values[1::3], values[2::3]
    if len(times) == 1:
        return np.repeat(values[:1], len(t), 0)
    if kind == "STEP":
        return values[np.searchsorted(times, t, side="right") - 1]
    k = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    span = (times[k + 1] - times[k])[:, None]
    s = (t[:, None] - times[k][:, None]) / span
    if kind == "LINEAR":
        if rotation:
            return _slerp(values[k], values[k + 1], s)
        return values[k] * (1 - s) + values[k + 1] * s
    s2, s3 = s * s, s * s * s
    out = ((2 * s3 - 3 * s2 + 1) * values[k] + span * (s3 - 2 * s2 + s) * tangent_out[k]
           + (-2 * s3 + 3 * s2) * values[k + 1] + span * (s3 - s2) * tangent_in[k + 1])
    return out / np.linalg.norm(out, axis=1, keepdims=True) if rotation else out


class _Scene:
    """The node tree: each node's parent and its matrix at given times."""

    def __init__(self, doc: GltfFile, animated: _Animated):
        self.doc, self.animated = doc, animated
        self.nodes = doc.items("nodes")
        self.parent: dict[int, int] = {}
        for i in range(len(self.nodes)):
            for child in doc.item("nodes", i).get("children", []):
                doc.item("nodes", child)
                if child in self.parent or child == i:
                    raise GltfError(f"its node {child} has more than one parent")
                self.parent[child] = i

    def chain(self, node: int) -> list[int]:
        """``node`` and its ancestors, root first."""
        chain = [node]
        while chain[-1] in self.parent:
            chain.append(self.parent[chain[-1]])
            if len(chain) > len(self.nodes):
                raise GltfError("its node tree has a cycle")
        return chain[::-1]

    def local(self, node: int, t: np.ndarray) -> np.ndarray:
        spec = self.doc.item("nodes", node)
        if "matrix" in spec:
            matrix = np.asarray(_numbers(spec["matrix"], 16, f"node {node}'s matrix"))
            return np.repeat(matrix.reshape(4, 4).T[None], len(t), 0)  # column-major
        trs = {}
        for path, default in (("translation", [0, 0, 0]), ("rotation", [0, 0, 0, 1]), ("scale", [1, 1, 1])):
            track = self.animated.tracks.get((node, path))
            if track is not None:
                trs[path] = sample(track, t, rotation=path == "rotation")[:, :len(default)]
            else:
                value = _numbers(spec.get(path, default), len(default), f"node {node}'s {path}")
                trs[path] = np.repeat(np.asarray(value, dtype=np.float64)[None], len(t), 0)
        m = np.zeros((len(t), 4, 4))
        m[:, :3, :3] = quaternion_to_matrix(trs["rotation"]) * trs["scale"][:, None, :]
        m[:, :3, 3], m[:, 3, 3] = trs["translation"], 1.0
        return m

    def world(self, node: int, t: np.ndarray) -> np.ndarray:
        m = np.repeat(np.eye(4)[None], len(t), 0)
        for n in self.chain(node):
            m = m @ self.local(n, t)
        return m

    def times(self, node: int) -> np.ndarray:
        """The key times of every track that moves ``node``."""
        chain = set(self.chain(node))
        keys = [track[0] for (n, _), track in self.animated.tracks.items() if n in chain]
        camera = self.doc.item("nodes", node).get("camera")
        if camera in self.animated.yfov:
            keys.append(self.animated.yfov[camera][0])
        return np.concatenate(keys) if keys else np.zeros(0)


def _numbers(value: object, count: int, what: str) -> list[float]:
    if not isinstance(value, list) or len(value) != count or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise GltfError(f"its {what} is not {count} finite numbers")
    return [float(v) for v in value]


def _camera_node(scene: _Scene, wanted: str) -> int:
    cameras = [i for i, n in enumerate(scene.nodes) if isinstance(n, dict) and "camera" in n]
    if not cameras:
        raise GltfError("holds no camera")
    if wanted:
        for i in cameras:
            camera = scene.doc.item("cameras", scene.nodes[i]["camera"])
            if wanted in (scene.nodes[i].get("name"), camera.get("name")):
                return i
        names = [scene.nodes[i].get("name", f"node {i}") for i in cameras]
        raise GltfError(f"holds no camera named '{wanted}' (its cameras: {', '.join(map(str, names))})")
    animated = [i for i in cameras if len(scene.times(i))]
    return (animated or cameras)[0]


def _scene_node(scene: _Scene) -> int | None:
    for i, node in enumerate(scene.nodes):
        if isinstance(node, dict) and str(node.get("name", "")).startswith(SCENE_NODE_PREFIX) and "mesh" in node:
            return i
    return None


def _clip_times(keys: np.ndarray, fps: float, frames: int) -> np.ndarray:
    if not len(keys):
        return np.zeros(max(frames, 1))
    start, end = float(keys.min()), float(keys.max())
    if fps <= 0:  # one clip frame per key of the camera's own track
        steps = np.diff(np.unique(keys))
        fps = 1.0 / float(np.median(steps)) if len(steps) else 1.0
    count = frames or int(round((end - start) * fps)) + 1
    if count > MAX_SAMPLES:
        raise GltfError(f"would give {count} frames at {fps:g} fps; set frames to the clip's")
    return start + np.arange(count) / fps


def read_gltf_path(path: str | Path, settings: ImportSettings = DEFAULT_SETTINGS) -> CameraPath:
    """The camera path of a ``.glb`` / ``.gltf`` file's camera animation, one pose per clip frame."""
    name = f"'{Path(path).name}'"
    try:
        doc = read_gltf(path)
        scene = _Scene(doc, _Animated(doc))
        node = _camera_node(scene, settings.camera)
        camera = doc.item("cameras", scene.nodes[node]["camera"])
        if camera.get("type") != "perspective" or not isinstance(camera.get("perspective"), dict):
            raise GltfError(f"its camera '{camera.get('name', '')}' is not a perspective camera")
        tag = _NAME.search(str(camera.get("name", "")))
        fps = settings.fps or (float(tag.group(4)) if tag else 0.0)
        t = _clip_times(scene.times(node), fps, settings.frames)
        cam_to_world = scene.world(node, t)
        lens = camera["perspective"]
        yfov = np.full(len(t), _numbers([lens.get("yfov")], 1, "camera's yfov")[0])
        if scene.nodes[node]["camera"] in scene.animated.yfov:
            yfov = sample(scene.animated.yfov[scene.nodes[node]["camera"]], t)[:, 0]
        mesh = _scene_node(scene)
        if mesh is not None:
            cam_to_world = np.linalg.inv(scene.world(mesh, t)) @ cam_to_world
    except GltfError as e:
        raise CameraFileError(f"{name} {e}") from e
    except (TypeError, KeyError, AttributeError, IndexError) as e:  # a value of another JSON type than the spec's
        raise CameraFileError(f"{name} holds a glTF document whose structure is not glTF 2.0's") from e
    cam_to_world = rigid(cam_to_world, name)
    if mesh is not None or tag is not None:  # this pack's scene, or its camera exported alone: its world
        extrinsics = extrinsics_in_scene(cam_to_world)
    else:
        extrinsics = anchored_extrinsics(cam_to_world, settings.scale)
    file_size = (int(tag.group(1)), int(tag.group(2))) if tag else None
    aspect = lens.get("aspectRatio") if isinstance(lens.get("aspectRatio"), (int, float)) else None
    width, height = image_size(settings, name, file_size, aspect)
    focal = settings.focal or (float(tag.group(3)) * height / int(tag.group(2)) if tag else 0.0)
    return camera_path(extrinsics, lens_of_fov(yfov, width, height, focal, name), name)
