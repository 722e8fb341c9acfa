"""Prompts from the host's node list: one node with valid values for every input a case leaves alone, and
the valid base nodes its links reach."""

from __future__ import annotations

import math
from typing import Any

from .clip import ANYTHING, CLIP, H, T, W


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
