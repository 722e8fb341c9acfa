"""The nodes' base checks their inputs against their own schema before ``execute`` runs, in-process too: links
of the right kind and shape, numbers within min and max, combo values among the options."""

from __future__ import annotations

import importlib
import math

import pytest
import torch


def _validation(host):
    package = host.node_classes["EX4DLoadVideo"].__module__.rsplit(".", 1)[0]
    return importlib.import_module(f"{package}._validation")


def test_load_video_refuses_numbers_and_choices_before_touching_the_file(host):
    node = host.node_classes["EX4DLoadVideo"]
    inputs = {"video": "never_read.mp4", "frame_load_cap": 0, "skip_first_frames": 0, "select_every_nth": 1,
              "target_fps": 0.0, "resize": "native", "max_resolution": 1024, "multiple": 64}
    with pytest.raises(ValueError, match=r"^multiple: 7 is out of range; give a value from 8 to 256$"):
        node.execute(**{**inputs, "multiple": 7})
    with pytest.raises(ValueError, match=r"^target_fps: nan is not a finite number; give a value from 0.0 to 240.0$"):
        node.execute(**{**inputs, "target_fps": math.nan})
    with pytest.raises(ValueError, match=r"^frame_load_cap: got 'five', not a number; give a value from 0 to 10000$"):
        node.execute(**{**inputs, "frame_load_cap": "five"})
    with pytest.raises(ValueError, match=r"^resize: unknown value 'bogus'; choose one of \['published"):
        node.execute(**{**inputs, "resize": "bogus"})
    with pytest.raises(ValueError, match=r"^video: 'never_read.mp4' was not found"):  # the node's own check
        node.execute(**inputs)


def test_generation_nodes_refuse_a_value_where_a_link_belongs(host):
    sampler = host.node_classes["EX4DWanSampler"]
    with pytest.raises(ValueError, match=r"^model: got 'wan.safetensors', not a link; connect a MODEL"):
        sampler.execute(model="wan.safetensors", positive=[], negative=[], latent={}, seed=0, steps=1, cfg=1.0,
                        shift=5.0)
    save = host.node_classes["EX4DSaveCameraPath"]
    with pytest.raises(ValueError, match=r"^camera: got 5, not a link; connect a camera path"):
        save.execute(camera=5, filename_prefix="ex4d/never", format="json")


def test_build_dw_mesh_refuses_frames_that_are_not_an_image_batch(host):
    node = host.node_classes["EX4DBuildDWMesh"]
    with pytest.raises(ValueError, match=r"^frames: got an IMAGE of shape \[2, 8, 8\], not \[frames, height, width, "
                                         r"3\]; connect video frames"):
        node.execute(frames=torch.zeros(2, 8, 8), depth=None, filter="angle", angle_threshold=2.5, boundary_ratio=2.0,
                     watertight=True, focal=500.0)


def test_depth_render_and_speed_nodes_refuse_before_their_work(host):
    nodes = host.node_classes
    package = nodes["EX4DEstimateDepth"].__module__.rsplit(".", 1)[0]
    loaded = importlib.import_module(f"{package}.depth_models").LoadedDepthModel("tiny", "depthcrafter", None, None)
    estimate = {"depth_model": loaded, "frames": torch.zeros(2, 64, 64, 3), "steps": 5, "guidance": 1.0,
                "window": 110, "overlap": 25, "seed": 42, "batch_size": 8, "smoothing": 1.0}
    refusals = [
        ("EX4DEstimateDepth", {**estimate, "depth_model": "tiny"}, "depth_model: got 'tiny', not a link; connect a "
                                                                   "depth model"),
        ("EX4DEstimateDepth", {**estimate, "frames": torch.zeros(2, 8, 8)}, "frames: got an IMAGE of shape [2, 8, 8], "
                                                                           "not [frames, height, width, 3]; connect video frames"),
        ("EX4DEstimateDepth", {**estimate, "smoothing": 0.0}, "smoothing: 0.0 is out of range; give a value from 0.01"),
        ("EX4DDepthModelLoader", {"model": "Depth Pro", "precision": "auto", "attention": "sdpa"},
         "model: 'Depth Pro' is no longer installed"),
        ("EX4DDepthFromImage", {"map": "disparity (bright = near)", "range": "published", "near": math.nan,
                                "far": 100.0, "image": torch.ones(1, 4, 4, 3)}, "near: nan is not a finite number"),
        ("EX4DDepthPreview", {"depth": None, "colormap": "turbo"}, "depth: got None, not a link; connect a depth"),
        ("EX4DRenderViews", {"mesh": None, "camera": None, "backend": "auto", "chunk": 32, "antialias": True},
         "mesh: got None, not a link; connect a DW-mesh"),
        ("EX4DAttention", {"model": "wan.safetensors", "backend": "cudnn"}, "model: got 'wan.safetensors', not a "
                                                                            "link; connect a MODEL"),
        ("EX4DCompileBlocks", {"model": 5}, "model: got 5, not a link; connect a MODEL"),
    ]
    for node_id, inputs, message in refusals:
        with pytest.raises(ValueError) as refused:
            nodes[node_id].execute(**inputs)
        assert str(refused.value).startswith(message), node_id


def test_the_base_checks_every_kind_of_input_once_per_class(host):
    from comfy_api.internal import shallow_clone_class
    from comfy_api.latest import io

    validation = _validation(host)
    schemas, calls = [], []

    class Node(validation.CheckedNode):
        what_to_connect = {"frames": "video frames"}

        @classmethod
        def define_schema(cls) -> io.Schema:
            schemas.append(cls)
            return io.Schema(node_id="EX4DTestChecked", outputs=[], inputs=[
                io.Image.Input("frames"), io.Mask.Input("mask", optional=True), io.Int.Input("size", min=1, max=4),
                io.Combo.Input("kind", options=["a", "b"]), io.Float.Input("scale", optional=True, max=2.0)])

        @classmethod
        def execute(cls, frames, size, kind, mask=None, **rest) -> io.NodeOutput:
            calls.append(size)
            return io.NodeOutput(size)

    image = torch.zeros(1, 4, 4, 3)
    clone = shallow_clone_class(Node)  # the host runs each prompt's node on a clone of its class
    assert clone.execute(image, 2, "a").args == (2,) and calls == [2]
    assert len(schemas) == 1  # links, numbers and choices all from one reading
    assert Node.execute(frames=image, size=3, kind="b", mask=torch.zeros(1, 4, 4), scale=1.5).args == (3,)
    bad = [({"size": 5}, "size: 5 is out of range; give a value from 1 to 4"),
           ({"kind": "c"}, "kind: unknown value 'c'; choose one of ['a', 'b']"),
           ({"frames": "clip.mp4"}, "frames: got 'clip.mp4', not a link; connect video frames"),
           ({"frames": torch.zeros(4, 4, 3)}, "frames: got an IMAGE of shape [4, 4, 3], not [frames, height, width, "
                                              "3]; connect video frames"),
           ({"mask": image}, "mask: got a MASK of shape [1, 4, 4, 3], not [frames, height, width]; connect a MASK"),
           ({"scale": math.inf}, "scale: inf is not a finite number; give a value from None to 2.0")]
    for change, message in bad:
        with pytest.raises(ValueError) as refused:
            clone.execute(**{"frames": image, "size": 1, "kind": "a", **change})
        assert str(refused.value).startswith(message)
    assert calls == [2, 3]  # no refused call reached execute
    assert shallow_clone_class(Node).execute(image, 4, "b").args == (4,) and calls == [2, 3, 4]
    assert len(schemas) == 1  # the schema is read for the class, not per call or per clone
