"""Queue-time errors: each names the one input it is about, and the host's own checks stay on for the rest.

The host attaches a ``validate_inputs`` message to every input the validator takes and skips its own type,
range and option checks for those inputs, so a validator takes only the inputs it checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.host import NodeExecutionError, PromptValidationError
from harness.media import save_video
from tests.bad_inputs import host_checks_v3_combos

CLIP = "validation_clip.mp4"
DEPTH_FILE = "validation_depth.npz"


@pytest.fixture(scope="module")
def clip(host):
    torch.manual_seed(0)
    save_video(torch.rand(3, 64, 64, 3), host.input_dir / CLIP, fps=10)
    np.savez(host.input_dir / DEPTH_FILE, depth=np.full((3, 64, 64), 2.0, dtype=np.float32))
    return CLIP


def load_video(**overrides) -> dict:
    inputs = {"video": CLIP, "frame_load_cap": 0, "skip_first_frames": 0, "select_every_nth": 1,
              "target_fps": 0.0, "resize": "native", "max_resolution": 1024, "multiple": 64}
    return {"class_type": "EX4DLoadVideo", "inputs": {**inputs, **overrides}}


def previewed_images(node: dict) -> dict:
    return {"1": node, "9": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}


def previewed_depth(node: dict, frames: bool = False) -> dict:
    prompt = {"1": node, "8": {"class_type": "EX4DDepthPreview", "inputs": {"depth": ["1", 0], "colormap": "gray"}},
              "9": {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}}
    if frames:
        prompt["2"] = load_video()
    return prompt


def load_depth(**overrides) -> dict:
    inputs = {"path": "missing.npz", "content": "depth", "frame_load_cap": 0, "skip_first_frames": 0,
              "select_every_nth": 1}
    return {"class_type": "EX4DLoadDepth", "inputs": {**inputs, **overrides}}


def depth_from_image(**overrides) -> dict:
    inputs = {"image": ["2", 0], "map": "disparity (bright = near)", "range": "published", "near": 1.0, "far": 100.0}
    return {"class_type": "EX4DDepthFromImage", "inputs": {**inputs, **overrides}}


def load_camera(**overrides) -> dict:
    return {"1": {"class_type": "EX4DLoadCameraPath", "inputs": {"path": "missing.npz", "width": 0, "height": 0,
                                                                 **overrides}},
            "8": {"class_type": "EX4DSaveCameraPath", "inputs": {"camera": ["1", 0], "filename_prefix": "ex4d/v",
                                                                 "format": "json"}}}


def depth_model(**overrides) -> dict:
    inputs = {"model": "not installed", "precision": "auto", "attention": "sdpa"}
    return {"1": load_video(),
            "2": {"class_type": "EX4DDepthModelLoader", "inputs": {**inputs, **overrides}},
            "3": {"class_type": "EX4DEstimateDepth",
                  "inputs": {"depth_model": ["2", 0], "frames": ["1", 0], "steps": 1, "guidance": 1.0, "window": 5,
                             "overlap": 2, "seed": 0, "batch_size": 2, "smoothing": 1.0}},
            "8": {"class_type": "EX4DDepthPreview", "inputs": {"depth": ["3", 0], "colormap": "gray"}},
            "9": {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}}


CASES = [
    # (id, prompt, the one input the error is attached to, text the message must hold)
    ("video missing", previewed_images(load_video(video="nope.mp4")), "video", "nope.mp4"),
    ("video outside input", previewed_images(load_video(video="../../etc/passwd")), "video",
     "outside ComfyUI's input folder"),
    ("video every nth 0", previewed_images(load_video(select_every_nth=0)), "select_every_nth", ""),
    ("depth file outside input", previewed_depth(load_depth(path="../../etc/passwd")), "path",
     "outside ComfyUI's input folder"),
    ("depth file every nth 0", previewed_depth(load_depth(path="../x.npz", select_every_nth=0)), "select_every_nth", ""),
    ("camera file missing", load_camera(), "path", "missing.npz"),
    ("camera width negative", load_camera(width=-1), "width", ""),
    ("depth model not installed", depth_model(), "model", ""),
]


# Unknown combo values: 0.33 refuses them at queue time (attached to the input); 0.3.75 does not check V3
# combos, so they reach the node, whose error must name the input and the choices.
UNKNOWN_CHOICES = [
    ("video unknown resize", previewed_images(load_video(resize="bogus")), "resize"),
    ("depth unknown content", previewed_depth(load_depth(path=DEPTH_FILE, content="bogus")), "content"),
    ("from image unknown map", previewed_depth(depth_from_image(map="bogus"), frames=True), "map"),
    ("from image unknown range", previewed_depth(depth_from_image(range="bogus"), frames=True), "range"),
]


@pytest.mark.parametrize(("prompt", "input_name"), [c[1:] for c in UNKNOWN_CHOICES], ids=[c[0] for c in UNKNOWN_CHOICES])
def test_unknown_choice_names_its_input(host, clip, prompt, input_name):
    if host_checks_v3_combos():
        with pytest.raises(PromptValidationError) as failed:
            host.validate(prompt)
        names = [e.get("extra_info", {}).get("input_name") for v in failed.value.node_errors.values()
                 for e in v["errors"]]
        assert names == [input_name]
        return
    with pytest.raises(NodeExecutionError, match=f"{input_name}: unknown value 'bogus'; choose one of"):
        host.run(prompt)


@pytest.mark.parametrize(("prompt", "input_name", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_is_attached_to_the_one_input_it_is_about(host, clip, prompt, input_name, text):
    with pytest.raises(PromptValidationError) as failed:
        host.validate(prompt)
    node = failed.value.node_errors["1"] if "1" in failed.value.node_errors else next(
        v for v in failed.value.node_errors.values() if v["class_type"] != "PreviewImage")
    names = [e.get("extra_info", {}).get("input_name") for e in node["errors"]]
    assert input_name in names, node["errors"]
    assert len(names) == len(set(names)), f"one message per input: {node['errors']}"
    # the error about this input stands alone: no other input of the node carries its message
    mine = [e for e in node["errors"] if e.get("extra_info", {}).get("input_name") == input_name]
    texts = {str(e.get("details", "")).split(" - ", 1)[-1] for e in mine}
    others = [e for e in node["errors"] if e.get("extra_info", {}).get("input_name") != input_name]
    assert not [e for e in others if str(e.get("details", "")).split(" - ", 1)[-1] in texts], node["errors"]
    assert text in " ".join(f"{e['message']} {e.get('details', '')}" for e in mine), mine


def save_mesh(**overrides) -> dict:
    inputs = {"frames": ["2", 0], "depth": ["3", 0], "filter": "angle", "angle_threshold": 2.5, "boundary_ratio": 2.0,
              "watertight": True, "focal": 500.0}
    save = {"mesh": ["4", 0], "frame": 0, "format": "glb", "filename_prefix": "ex4d/v", **overrides}
    return {"2": load_video(), "3": depth_from_image(image=["2", 0]),
            "4": {"class_type": "EX4DBuildDWMesh", "inputs": inputs},
            "1": {"class_type": "EX4DSaveDWMesh", "inputs": save}}


def test_unknown_save_format_writes_nothing(host, clip):
    before = set(host.output_dir.rglob("*"))
    prompt = save_mesh(format="bogus")
    if host_checks_v3_combos():
        with pytest.raises(PromptValidationError, match="format"):
            host.run(prompt)
    else:
        with pytest.raises(NodeExecutionError, match="format: unknown value 'bogus'; choose one of"):
            host.run(prompt)
    assert set(host.output_dir.rglob("*")) == before


def save_camera(**overrides) -> dict:
    prompt = load_camera()
    prompt["8"]["inputs"].update(overrides)
    return prompt


@pytest.mark.parametrize("prompt", [save_mesh(filename_prefix="ex4d/a\x00b"), save_camera(filename_prefix="ex4d/a\x00b")],
                         ids=["mesh", "camera"])
def test_null_byte_in_a_save_prefix_is_refused_at_queue_time(host, clip, prompt):
    with pytest.raises(PromptValidationError) as failed:
        host.validate(prompt)
    save = next(v for v in failed.value.node_errors.values() if v["class_type"].startswith("EX4DSave"))
    assert [e["extra_info"]["input_name"] for e in save["errors"]] == ["filename_prefix"]
    assert "filename_prefix: contains a null character" in save["errors"][0]["details"]


def test_complex_depth_file_is_refused(host, clip):
    np.savez(host.input_dir / "complex_depth.npz", depth=np.ones((2, 8, 8), dtype=np.complex64))
    with pytest.raises(NodeExecutionError, match="path: 'complex_depth.npz' holds complex64 values; depth must be real"):
        host.run(previewed_depth(load_depth(path="complex_depth.npz")))


def test_number_limits_are_read_once_per_node_class(host):
    """The run-time number checks read a node's schema once: the host runs each prompt's node on a fresh clone of
    its class, and some schemas list a folder (Load Camera Path's lists the input folder)."""
    import importlib

    from comfy_api.internal import shallow_clone_class
    from comfy_api.latest import io

    package = host.node_classes["EX4DLoadCameraPath"].__module__.rsplit(".", 1)[0]
    check_inputs = importlib.import_module(f"{package}._validation").check_inputs
    schemas = []

    class Counted(io.ComfyNode):
        @classmethod
        def define_schema(cls) -> io.Schema:
            schemas.append(cls)
            return io.Schema(node_id="EX4DTestCounted", inputs=[io.Int.Input("size", min=1, max=4),
                                                                io.Combo.Input("kind", options=["a"])], outputs=[])

    for node in (Counted, shallow_clone_class(Counted), shallow_clone_class(Counted)):
        check_inputs(node, {"size": 2, "kind": "a"})
    with pytest.raises(ValueError, match="size: 9 is out of range; give a value from 1 to 4"):
        check_inputs(shallow_clone_class(Counted), {"size": 9})
    assert schemas == [Counted]
