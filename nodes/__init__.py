"""ComfyUI adapters over the ``ex4d`` library (V3 schema). Each module lists its nodes in ``NODES``."""

from comfy_api.latest import ComfyExtension, io

from . import (
    _comfy,
    apply,
    camera,
    camera_files,
    depth,
    ex4d_lora,
    mesh,
    prompt_embeddings,
    render,
    sampler,
    speed,
    video,
)


class EX4DExtension(ComfyExtension):
    async def on_load(self) -> None:
        _comfy.register_model_folders()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [*video.NODES, *depth.NODES, *camera.NODES, *camera_files.NODES, *mesh.NODES, *render.NODES,
                *ex4d_lora.NODES, *speed.NODES, *apply.NODES, *sampler.NODES, *prompt_embeddings.NODES]
