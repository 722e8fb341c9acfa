"""Depth nodes: model loader, Estimate Depth, Depth From Image, Load / Save Depth, Depth Preview."""

from __future__ import annotations

import comfy.model_management as mm
import torch
from comfy_api.latest import io

from ..ex4d import depth as ex4d_depth
from ..ex4d.camera import Lens
from ..ex4d.depth.limits import depthcrafter_too_small
from ._comfy import (
    CATEGORY,
    Progress,
    cancel_requested,
    check_fits,
    check_input_file,
    check_output_prefix,
    input_file_fingerprint,
    input_files,
    library_stage,
    output_path,
    resolve_input_file,
)
from ._types import CONNECT_FRAMES, Depth, DepthModel
from ._validation import CheckedNode
from .depth_geometry import DepthFromGeometry
from .depth_models import (
    NONE_INSTALLED,
    LoadedDepthModel,
    depth_model_patcher,
    installed_depth_models,
    unavailable_model,
)

DEPTH_CATEGORY = f"{CATEGORY}/depth"
PRECISIONS = {"auto": None, "fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
MAP_KINDS = {"disparity (bright = near)": False, "depth (bright = far)": True}
DEPTH_RANGES = ("published", "near_far", "metric")
ATTENTION_KINDS = ("sdpa", "classic")
COLORMAPS = ("turbo", "inferno", "gray")


class DepthModelLoader(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        options = list(installed_depth_models()) or [NONE_INSTALLED]
        return io.Schema(
            node_id="EX4DDepthModelLoader",
            display_name="EX-4D Depth Model Loader",
            category=DEPTH_CATEGORY,
            description="Load DepthCrafter (published: temporally consistent, slow) or Depth Anything V2 (fast, "
            "per frame) from models/depthcrafter or models/depth_anything. Nothing is downloaded.",
            inputs=[
                io.Combo.Input("model", options=options,
                               tooltip="Installed depth models. DepthCrafter: models/depthcrafter/DepthCrafter/unet "
                               "+ models/depthcrafter/stable-video-diffusion-img2vid-xt/{vae,image_encoder,"
                               "feature_extractor,scheduler}. Depth Anything V2: models/depth_anything/<name>/ "
                               "(a *-hf transformers repository)."),
                io.Combo.Input("precision", options=list(PRECISIONS), default="auto",
                               tooltip="auto: fp16 on a GPU (published), fp32 on the CPU."),
                io.Combo.Input("attention", options=list(ATTENTION_KINDS), default="sdpa",
                               tooltip="DepthCrafter only: PyTorch SDPA, or diffusers' classic attention."),
            ],
            outputs=[DepthModel.Output(display_name="depth_model")],
        )

    @classmethod
    def validate_inputs(cls, model=None) -> bool | str:  # None: linked, or missing (the host says so)
        return True if model is None else unavailable_model(model) or True

    @classmethod
    def execute(cls, model, precision, attention) -> io.NodeOutput:
        problem = unavailable_model(model)
        if problem:
            raise ValueError(problem)
        kind, folder = installed_depth_models()[model]
        load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
        dtype = PRECISIONS[precision] or (torch.float32 if mm.is_device_cpu(load_device) else torch.float16)
        if kind == "depthcrafter":
            lib = ex4d_depth.DepthCrafter.from_pretrained(folder, dtype=dtype, device=offload_device,
                                                          attention=attention)
        else:
            lib = ex4d_depth.DepthAnything.from_pretrained(folder, dtype=dtype, device=offload_device)
        patcher = depth_model_patcher(torch.nn.ModuleDict(lib.modules()), load_device, offload_device)
        return io.NodeOutput(LoadedDepthModel(model, kind, lib, patcher))


class EstimateDepth(CheckedNode):
    what_to_connect = {"frames": CONNECT_FRAMES}

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DEstimateDepth",
            display_name="EX-4D Estimate Depth",
            category=DEPTH_CATEGORY,
            description="Video depth for the DW-mesh: the model's relative disparity, normalised over the whole "
            "clip, converted as published (depth = 10000 / (3900 r)).",
            inputs=[
                DepthModel.Input("depth_model", tooltip="From EX-4D Depth Model Loader."),
                io.Image.Input("frames",
                    tooltip="The video frames (IMAGE batch), e.g. from EX-4D Load Video."),
                io.Int.Input("steps", default=5, min=1, max=100,
                    tooltip="DepthCrafter: denoising steps (published 5)."),
                io.Float.Input("guidance", default=1.0, min=1.0, max=20.0, step=0.1,
                               tooltip="DepthCrafter: classifier-free guidance above 1 (published 1.0 = off)."),
                io.Int.Input("window", default=110, min=2, max=1000,
                             tooltip="DepthCrafter: frames per window (published 110)."),
                io.Int.Input("overlap", default=25, min=0, max=999,
                             tooltip="DepthCrafter: frames shared by neighbouring windows, blended (published 25)."),
                io.Int.Input("seed", default=42, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=False,
                             tooltip="DepthCrafter: noise seed (published 42)."),
                io.Int.Input("batch_size", default=8, min=1, max=256,
                             tooltip="Depth Anything: frames per forward pass."),
                io.Float.Input("smoothing", default=1.0, min=0.01, max=1.0, step=0.01,
                               tooltip="Depth Anything: weight of the current frame in a running average of "
                               "disparity over frames; 1 = off, lower = less flicker, more lag."),
            ],
            outputs=[Depth.Output(display_name="depth")],
        )

    @classmethod
    def execute(cls, depth_model, frames, steps, guidance, window, overlap, seed, batch_size,
                smoothing) -> io.NodeOutput:
        if frames.shape[0] == 0:
            raise ValueError(f"frames: got an IMAGE batch of shape {list(frames.shape)}; connect video frames "
                             "[T, H, W, 3], e.g. from EX-4D Load Video")
        if depth_model.kind == "depthcrafter" and overlap >= window:
            raise ValueError(f"overlap: {overlap} must be smaller than window ({window}); lower overlap or raise "
                             "window")
        frames = frames[..., :3].float()
        t, h, w = frames.shape[:3]
        lib = depth_model.model
        if depth_model.kind == "depthcrafter":
            starts, frames_per_window, _ = ex4d_depth.window_starts(t, window, overlap)
            too_small = depthcrafter_too_small(lib.unet, min(frames_per_window, t - starts[-1]), h, w)
            if too_small:
                raise ValueError(f"frames: {too_small}, e.g. Load Video's resize; or use Depth Anything V2")
            windows = len(starts)
            progress = Progress(windows * steps)
            memory = lib.inference_memory(t, h, w, window)
            knob, lower = "window", f"lower 'window' ({window}: the frames denoised at once)"
            lower += ", load the model in bf16" if lib.dtype != torch.bfloat16 else ""
            run = lambda: lib.estimate(frames, steps=steps, guidance=guidance, window=window,  # noqa: E731
                                       overlap=overlap, seed=seed, progress=progress, cancel=cancel_requested)
        else:
            progress = Progress(-(-t // batch_size))
            memory = lib.inference_memory(t, h, w, batch_size)
            knob, lower = "batch_size", f"lower 'batch_size' ({batch_size})"
            lower += ", load the model in fp16 / bf16" if lib.dtype == torch.float32 else ""
            run = lambda: lib.estimate(frames, batch_size=batch_size, smoothing=smoothing,  # noqa: E731
                                       progress=progress, cancel=cancel_requested)
        check_fits(memory, depth_model.patcher.model_size(), depth_model.patcher.load_device,
                   f"{knob}: {depth_model.name} on {t} frames of {w}x{h}", f"{lower}, or load fewer / smaller frames.")
        depth_model.load(memory)
        message = (f"{knob}: out of GPU memory estimating depth for {t} frames of {w}x{h} with {depth_model.name} "
                   f"(it needs about {memory / 2**30:.1f} GiB beside its weights); {lower}, or load fewer / "
                   "smaller frames.")
        try:
            with library_stage(message):
                result = run()
        finally:
            depth_model.release()
        return io.NodeOutput(result.to(mm.intermediate_device()))


class DepthFromImage(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DDepthFromImage",
            display_name="EX-4D Depth From Image",
            category=DEPTH_CATEGORY,
            description="Turn a depth or disparity map from any other node (IMAGE or MASK batch) into EX-4D depth.",
            inputs=[
                io.Image.Input("image", optional=True,
                    tooltip="A depth / disparity IMAGE batch (channels averaged)."),
                io.Mask.Input("mask", optional=True,
                    tooltip="Or a MASK batch; connect exactly one of the two."),
                io.Combo.Input("map", options=list(MAP_KINDS), default="disparity (bright = near)",
                               tooltip="Most depth nodes (MiDaS, Depth Anything, ZoeDepth previews) output "
                               "disparity-like maps: bright = near."),
                io.Combo.Input("range", options=list(DEPTH_RANGES), default="published",
                               tooltip="published: the EX-4D conversion of relative disparity (nearest surface at "
                               "depth 2.56); near_far: spread the clip between near and far; metric: values are "
                               "depth (or 1/depth) in scene units already."),
                io.Float.Input("near", default=1.0, min=1e-4, max=1e4, step=0.01,
                    tooltip="near_far: nearest depth."),
                io.Float.Input("far", default=100.0, min=1e-4, max=1e4, step=0.1,
                    tooltip="near_far: farthest depth."),
                io.Float.Input("focal", default=0.0, min=0.0, max=1e5, step=1.0, optional=True,
                    tooltip="The source camera's focal length in pixels at this map's size (e.g. MoGe's "
                    "'Get FoV from MoGe Geometry' focal_pixels): the depth then carries this lens to the DW-mesh and "
                    "the camera nodes. 0: no lens (500, as published)."),
            ],
            outputs=[Depth.Output(display_name="depth")],
        )

    @classmethod
    def execute(cls, map, range, near, far, image=None, mask=None, focal=0.0) -> io.NodeOutput:
        # two inputs decide this, so it is checked here rather than at queue time (a validator taking near,
        # far and range would attach its message to all three and switch off the host's checks of them)
        if range == "near_far" and not near < far:
            raise ValueError(f"far: {far} must be larger than near ({near}) for range 'near_far'; raise far or "
                             "lower near")
        if image is None and mask is None:
            raise ValueError("image: connect a depth or disparity map: an IMAGE batch here, or a MASK batch to "
                             "'mask'")
        if image is not None and mask is not None:
            raise ValueError("mask: connect one map only; disconnect 'mask' or 'image'")
        name, values = ("image", image) if image is not None else ("mask", mask)
        if values.ndim not in (3, 4) or 0 in values.shape:
            raise ValueError(f"{name}: got a batch of shape {list(values.shape)}; connect a non-empty map batch")
        if not torch.isfinite(values).all():
            raise ValueError(f"{name}: the map contains NaN or infinite values; fix the node that made it")
        result = ex4d_depth.depth_from_map(values, invert=MAP_KINDS[map], mode=range, near=near, far=far)
        if focal > 0:
            result = result.with_lens(Lens.centred(result.width, result.height, focal), metric=range == "metric")
        return io.NodeOutput(result)


def selected_lens(lens: Lens, path: str, frames: int, selected: slice, count: int) -> Lens:
    """A depth file's lens for the frames Load Depth keeps (``count`` of the ``selected`` ones)."""
    if lens.focals is None:
        return lens
    if len(lens.focals) != frames:
        raise ValueError(f"path: '{path}' holds {len(lens.focals)} focal lengths for {frames} depth frames; save the "
                         "depth again (EX-4D Save Depth)")
    return Lens(lens.width, lens.height, lens.intrinsics, lens.focals[selected][:count])


class LoadDepth(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DLoadDepth",
            display_name="EX-4D Load Depth",
            category=DEPTH_CATEGORY,
            description="Depth saved earlier (EX-4D Save Depth), true depth from a renderer, or DepthCrafter's own "
            ".npz output, from ComfyUI's input folder.",
            inputs=[
                io.Combo.Input("path", options=input_files(extensions=ex4d_depth.DEPTH_FILE_EXTENSIONS),
                               tooltip="A file in ComfyUI's input folder: .npz (array 'depth', or its only array) or .npy, "
                               "[T, H, W] or [H, W]."),
                io.Combo.Input("content", options=list(ex4d_depth.DEPTH_CONTENTS), default="depth",
                               tooltip="depth: z-depth in scene units; disparity: relative disparity (DepthCrafter's "
                               "saved .npz), converted as published."),
                io.Int.Input("frame_load_cap", default=0, min=0, max=100000, tooltip="0 = all frames."),
                io.Int.Input("skip_first_frames", default=0, min=0, max=100000,
                    tooltip="Frames to drop from the start of the file."),
                io.Int.Input("select_every_nth", default=1, min=1, max=1000,
                    tooltip="Keep every nth frame (match the video loader's setting)."),
            ],
            outputs=[Depth.Output(display_name="depth")],
        )

    @classmethod
    def validate_inputs(cls, path=None) -> bool | str:  # None: linked, or missing (the host says so)
        return check_input_file(path, "path", ex4d_depth.DEPTH_FILE_EXTENSIONS,
                                "is not an .npz or .npy file; choose a depth file (EX-4D Save Depth writes them)")

    @classmethod
    def fingerprint_inputs(cls, path, **_) -> str:
        return input_file_fingerprint(path, "path")

    @classmethod
    def execute(cls, path, content, frame_load_cap, skip_first_frames, select_every_nth) -> io.NodeOutput:
        file = resolve_input_file(path, "path")
        try:
            values = ex4d_depth.read_depth_array(file)
            lens, metric = ex4d_depth.read_depth_lens(file, values.shape[2], values.shape[1])
        except ex4d_depth.DepthFileError as e:
            raise ValueError(f"path: {e}") from e
        selected = values[skip_first_frames::select_every_nth]
        if frame_load_cap:
            selected = selected[:frame_load_cap]
        if selected.shape[0] == 0:
            raise ValueError(f"skip_first_frames: {skip_first_frames} skips all {values.shape[0]} frames of "
                             f"'{path}'; set it below {values.shape[0]}")
        try:
            depth = ex4d_depth.depth_from_values(selected, content, name=f"'{path}'", meta={"file": path})
        except ex4d_depth.DepthFileError as e:
            raise ValueError(f"path: {e}") from e
        return io.NodeOutput(depth if lens is None else depth.with_lens(selected_lens(lens, path, values.shape[0],
                             slice(skip_first_frames, None, select_every_nth), len(selected)), metric))


class SaveDepth(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DSaveDepth",
            display_name="EX-4D Save Depth",
            category=DEPTH_CATEGORY,
            description="Write depth (and its disparity) as .npz into the output folder, to reuse an expensive "
            "estimate: move it to the input folder and load it with EX-4D Load Depth.",
            inputs=[Depth.Input("depth",
                tooltip="The depth to save (.npz: depth, and disparity where the estimate has it)."),
                    io.String.Input("filename_prefix", default="ex4d/depth",
                                    tooltip="File name prefix under ComfyUI's output folder (subfolders allowed).")],
            outputs=[io.String.Output(display_name="path")],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, filename_prefix=None) -> bool | str:  # None: linked, or missing
        return check_output_prefix(filename_prefix)

    @classmethod
    def execute(cls, depth, filename_prefix) -> io.NodeOutput:
        path, relative = output_path(filename_prefix, "npz", depth.width, depth.height)
        ex4d_depth.write_depth_file(depth, path)
        return io.NodeOutput(relative, ui={"text": [relative]})


class DepthPreview(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DDepthPreview",
            display_name="EX-4D Depth Preview",
            category=DEPTH_CATEGORY,
            description="Colour-mapped depth (near = hot), one scale for the whole clip so flicker shows.",
            inputs=[Depth.Input("depth", tooltip="The depth to show."),
                    io.Combo.Input("colormap", options=list(COLORMAPS),
                                   tooltip="Colours for near to far, one scale for the whole clip.")],
            outputs=[io.Image.Output(display_name="image")],
        )

    @classmethod
    def execute(cls, depth, colormap) -> io.NodeOutput:
        return io.NodeOutput(ex4d_depth.depth_preview(depth, colormap))


NODES = [DepthModelLoader, EstimateDepth, DepthFromImage, DepthFromGeometry, LoadDepth, SaveDepth, DepthPreview]
