"""ComfyUI-EX4D: EX-4D extreme-viewpoint 4D video synthesis as ComfyUI nodes.

The host imports this file at start-up; it stays cheap: the node modules are imported when the
host asks for the extension, and heavy libraries (diffusers, transformers, nvdiffrast) only when a
node first needs them.
"""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes import EX4DExtension, _routes

    _routes.register()  # the camera editor's route, before the server starts serving
    return EX4DExtension()


__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
