"""EX-4D checkpoint and LoRA nodes: loading the checkpoint (LoRA + camera encoder), a safetensors copy of it, and
the LoRA on the host's Wan 2.1 model as host weight patches (``add_patches``: the host's LoRA math, merged into
the weights when the model loads, so it costs nothing per step) on a clone, the input MODEL untouched."""

from __future__ import annotations

import os
from pathlib import Path

import comfy.lora
import folder_paths
import torch
from comfy_api.latest import io

from ..ex4d import adapter as ex4d_adapter
from ..ex4d.adapter import EX4DAdapter
from ._comfy import (
    CATEGORY,
    check_file,
    check_file_name,
    check_output_prefix,
    file_fingerprint,
    model_files,
    output_path,
)
from ._types import Adapter
from ._validation import CheckedNode
from .wan_checks import check_adapter_fits, check_wan_i2v

LORA_MARK = "ex4d_lora_strength"
LORAS_PREFIX = "loras/"


def lora_patches(model, adapter: EX4DAdapter) -> dict:
    """The adapter's LoRA as host weight patches (comfy.lora's own LoRA format and math)."""
    sd: dict[str, torch.Tensor] = {}
    for name, (a, b) in adapter.lora.items():
        prefix = f"diffusion_model.{name}"
        sd[f"{prefix}.lora_A.weight"] = a
        sd[f"{prefix}.lora_B.weight"] = b
        sd[f"{prefix}.alpha"] = torch.tensor(float(adapter.alpha))
    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    patches = comfy.lora.load_lora(sd, key_map, log_missing=False)
    if len(patches) != len(adapter.lora):
        raise ValueError(
            f"adapter: only {len(patches)} of {len(adapter.lora)} LoRA layers map onto the model"
        )
    return patches


def with_ex4d_lora(model, adapter: EX4DAdapter, strength: float = 1.0):
    """A clone of ``model`` carrying the EX-4D LoRA as host weight patches; ``model`` itself is untouched.

    Kept apart from the camera embedding on purpose: the host merges weight patches into the DiT when it
    loads a clone whose patches differ from the ones merged (a new ``patches_uuid``), which for the 14B
    model costs seconds. A LoRA'd clone made once (a node whose inputs don't change between clips) lets
    every later clip's camera clone reuse the merged weights; only its object patch changes.
    """
    info = check_wan_i2v(model)
    check_adapter_fits(model, info, adapter)
    patched = model.clone()
    if strength != 0.0:
        patched.add_patches(lora_patches(model, adapter), strength)
    patched.model_options["transformer_options"][LORA_MARK] = float(strength)
    return patched


def ex4d_lora_strength(model) -> float | None:
    """The strength EX-4D LoRA was applied with to ``model`` (0.0 if left out on purpose), or None."""
    return model.model_options.get("transformer_options", {}).get(LORA_MARK)


def adapter_files() -> list[str]:
    """EX-4D checkpoints: ``models/ex4d`` first, then ``models/loras`` (shown with a ``loras/`` prefix)."""
    ex4d = model_files("ex4d")
    loras = [f"{LORAS_PREFIX}{n}" for n in model_files("loras")]
    return sorted(ex4d) + sorted(loras)


def resolve_adapter_file(name: str) -> Path:
    check_file_name(name, "adapter_name")
    path = folder_paths.get_full_path("ex4d", name) if "ex4d" in folder_paths.folder_names_and_paths else None
    if path is None and name.startswith(LORAS_PREFIX):
        path = folder_paths.get_full_path("loras", name[len(LORAS_PREFIX) :])
    if path is None or not os.path.isfile(path):
        raise ValueError(
            f"adapter_name: '{name}' was not found in models/ex4d or models/loras; put the EX-4D checkpoint there "
            "and refresh, or choose one from the list"
        )
    return Path(path)


def strength_input(name: str, tooltip: str) -> io.Float.Input:
    return io.Float.Input(name, default=1.0, min=-10.0, max=10.0, step=0.01, tooltip=tooltip)


class AdapterLoader(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DAdapterLoader",
            display_name="EX-4D Adapter Loader",
            category=CATEGORY,
            description="Load the EX-4D checkpoint (ex4d.ckpt or a safetensors copy): the LoRA for the Wan 2.1 "
            "I2V DiT and the camera encoder. Read weights-only; put it in models/ex4d (models/loras also works).",
            inputs=[
                io.Combo.Input(
                    "adapter_name",
                    options=adapter_files(),
                    tooltip="A file in models/ex4d, or in models/loras (shown as loras/...).",
                ),
            ],
            outputs=[Adapter.Output(display_name="adapter"), io.String.Output(display_name="info")],
        )

    @classmethod
    def validate_inputs(cls, adapter_name=None) -> bool | str:
        return check_file(resolve_adapter_file, adapter_name)

    @classmethod
    def fingerprint_inputs(cls, adapter_name) -> str:
        return file_fingerprint(resolve_adapter_file, adapter_name)

    @classmethod
    def execute(cls, adapter_name) -> io.NodeOutput:
        path = resolve_adapter_file(adapter_name)
        try:
            adapter = ex4d_adapter.load_adapter(path)
        except ex4d_adapter.AdapterError as e:
            raise ValueError(f"adapter_name: {e}") from e
        return io.NodeOutput(adapter, adapter.describe())


class SaveAdapterSafetensors(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DSaveAdapterSafetensors",
            display_name="EX-4D Save Adapter (safetensors)",
            category=CATEGORY,
            description="Write a safetensors copy of a loaded EX-4D checkpoint into ComfyUI's output folder "
            "(published names, rank and alpha in the metadata). Move it to models/ex4d to use it.",
            inputs=[
                Adapter.Input("adapter", tooltip="From EX-4D Adapter Loader."),
                io.String.Input(
                    "filename_prefix",
                    default="ex4d/ex4d",
                    tooltip="Where the copy goes, relative to the output folder.",
                ),
            ],
            outputs=[io.String.Output(display_name="path")],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, filename_prefix=None) -> bool | str:
        return check_output_prefix(filename_prefix)

    @classmethod
    def execute(cls, adapter, filename_prefix) -> io.NodeOutput:
        path = ex4d_adapter.save_safetensors(adapter, output_path(filename_prefix, "safetensors")[0])
        return io.NodeOutput(str(path))


class LoRA(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DLoRA",
            display_name="EX-4D LoRA",
            category=CATEGORY,
            description="Put the EX-4D LoRA on a Wan 2.1 I2V model (the host's LoRA patches, merged into the "
            "weights when the model loads). Feed its MODEL to EX-4D Apply. Kept apart from Apply so the merged "
            "weights stay loaded from one clip to the next; the input MODEL is not changed.",
            inputs=[
                io.Model.Input("model", tooltip="Wan2.1-I2V-14B-480P, loaded with any loader."),
                Adapter.Input("adapter", tooltip="From EX-4D Adapter Loader."),
                strength_input(
                    "strength",
                    "Scale of the EX-4D LoRA on the DiT's attention and FFN layers (0 leaves it out).",
                ),
            ],
            outputs=[io.Model.Output(display_name="model")],
        )

    @classmethod
    def execute(cls, model, adapter, strength: float) -> io.NodeOutput:
        return io.NodeOutput(with_ex4d_lora(model, adapter, strength))


NODES = [AdapterLoader, SaveAdapterSafetensors, LoRA]
