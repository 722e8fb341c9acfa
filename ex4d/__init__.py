"""EX-4D as a plain PyTorch library: one module per stage.

``video`` (decode), ``depth`` (DepthCrafter, Depth Anything, conversions), ``mesh`` (the Depth
Watertight Mesh), ``camera`` (camera paths), ``raster`` (rasterise, interpolate, antialias: nvdiffrast or
its PyTorch twin ``raster_torch``), ``render`` (DW-mesh + camera path -> colour and visibility mask),
``adapter`` (EX-4D checkpoint, camera encoder, LoRA) and ``sampling`` (flow-matching schedule).

Nothing here imports ComfyUI; submodules are imported on use so that ``import ex4d`` stays cheap.
"""

__version__ = "0.1.0"
