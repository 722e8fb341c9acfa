"""Prompt embeddings stored on disk, so that the 11 GB umT5-XXL encoder is needed once, not every run."""

from __future__ import annotations

from pathlib import Path

import folder_paths
from comfy_api.latest import io

from ..ex4d import prompt as ex4d_prompt
from ._comfy import (
    CATEGORY,
    check_file,
    check_file_name,
    check_output_prefix,
    file_fingerprint,
    input_files,
    model_files,
    output_path,
    resolve_input_file,
)
from ._validation import CheckedNode

MODELS_EX4D_PREFIX = "models/ex4d/"


def prompt_files() -> list[str]:
    """Prompt-embedding files: .safetensors in the input folder, and in models/ex4d (prefixed)."""
    models = [f"{MODELS_EX4D_PREFIX}{n}" for n in model_files("ex4d") if n.endswith(".safetensors")]
    return input_files(extensions=(".safetensors",)) + sorted(models)


def resolve_prompt_file(name: str) -> Path:
    check_file_name(name, "embeddings")
    if name.startswith(MODELS_EX4D_PREFIX):
        path = folder_paths.get_full_path("ex4d", name[len(MODELS_EX4D_PREFIX) :])
        if path is None:
            raise ValueError(f"embeddings: '{name}' was not found in models/ex4d")
        return Path(path)
    return resolve_input_file(name, "embeddings")


class SavePromptEmbeddings(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DSavePromptEmbeddings",
            display_name="EX-4D Save Prompt Embeddings",
            category=CATEGORY,
            description="Store a CONDITIONING (e.g. the umT5-XXL encoding of the EX-4D prompt) as safetensors in "
            "the output folder, so later runs need no text encoder. Move the file to models/ex4d or input.",
            inputs=[
                io.Conditioning.Input(
                    "conditioning", tooltip="E.g. CLIPTextEncode with the umT5-XXL encoder."
                ),
                io.String.Input(
                    "filename_prefix",
                    default="ex4d/prompt_embeddings",
                    tooltip="Where the file goes, relative to the output folder.",
                ),
                io.String.Input(
                    "prompt",
                    default=ex4d_prompt.PUBLISHED_PROMPT,
                    multiline=True,
                    tooltip="Recorded in the file's metadata (the text that was encoded).",
                ),
            ],
            outputs=[io.String.Output(display_name="path")],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, filename_prefix=None) -> bool | str:
        return check_output_prefix(filename_prefix)

    @classmethod
    def execute(cls, conditioning, filename_prefix, prompt) -> io.NodeOutput:
        entries = [(c[0], c[1]) for c in conditioning]
        path = ex4d_prompt.save_prompt_embeddings(
            entries, output_path(filename_prefix, "safetensors")[0], prompt
        )
        return io.NodeOutput(str(path))


class LoadPromptEmbeddings(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DLoadPromptEmbeddings",
            display_name="EX-4D Load Prompt Embeddings",
            category=CATEGORY,
            description="Load a CONDITIONING saved by EX-4D Save Prompt Embeddings (input folder or models/ex4d). "
            "Embeddings of fewer than 512 tokens are padded with zeros to 512, as the umT5-XXL encoder's output is.",
            inputs=[
                io.Combo.Input(
                    "embeddings",
                    options=prompt_files(),
                    tooltip="A .safetensors file in the input folder, or in models/ex4d (shown as models/ex4d/...).",
                )
            ],
            outputs=[
                io.Conditioning.Output(display_name="conditioning"),
                io.String.Output(display_name="prompt"),
            ],
        )

    @classmethod
    def validate_inputs(cls, embeddings=None) -> bool | str:
        return check_file(resolve_prompt_file, embeddings)

    @classmethod
    def fingerprint_inputs(cls, embeddings) -> str:
        return file_fingerprint(resolve_prompt_file, embeddings)

    @classmethod
    def execute(cls, embeddings) -> io.NodeOutput:
        try:
            entries, prompt = ex4d_prompt.load_prompt_embeddings(resolve_prompt_file(embeddings))
        except ValueError as e:
            raise ValueError(f"embeddings: {e}") from e
        conditioning = [[cond, {"pooled_output": None, **extra}] for cond, extra in entries]
        return io.NodeOutput(conditioning, prompt)


NODES = [SavePromptEmbeddings, LoadPromptEmbeddings]
