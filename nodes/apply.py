"""EX-4D Apply: the rendered colour and mask videos as camera latents added after the Wan 2.1 DiT's patch
embedding (on a clone of EX-4D LoRA's MODEL), and the host's standard I2V conditioning from the first frame."""

from __future__ import annotations

import comfy.model_management
import torch
from comfy_api.latest import io

from ..ex4d import camera_inputs as ex4d_camera_inputs
from ..ex4d import masks as ex4d_masks
from ..ex4d import resize as ex4d_resize
from ..ex4d import sampling as ex4d_sampling
from ._comfy import CATEGORY
from ._types import Adapter
from ._validation import CheckedNode
from .camera_embedding import with_camera
from .ex4d_lora import ex4d_lora_strength, strength_input
from .wan_checks import check_adapter_fits, check_wan_i2v, check_wan_vae

MAX_SIZE = 8192


class Apply(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DApply",
            display_name="EX-4D Apply",
            category=CATEGORY,
            description="Condition a Wan 2.1 I2V model that went through EX-4D LoRA on the rendered colour and "
            "mask videos (the camera encoder, added after the patch embedding) and build the standard I2V "
            "conditioning from the masked first frame. The input MODEL is not changed; sample the outputs with "
            "EX-4D Wan Sampler (published schedule) or a stock sampler.",
            inputs=[
                io.Model.Input("model", tooltip="The MODEL output of EX-4D LoRA (Wan2.1-I2V-14B-480P)."),
                Adapter.Input("adapter", tooltip="From EX-4D Adapter Loader (the one EX-4D LoRA used)."),
                io.Vae.Input("vae", tooltip="The Wan 2.1 VAE."),
                io.Conditioning.Input("positive", tooltip="The encoded prompt (umT5-XXL)."),
                io.Conditioning.Input("negative", tooltip="The encoded negative prompt (umT5-XXL)."),
                io.Image.Input("colour", tooltip="Rendered colour video (frame 0: the source frame)."),
                io.Mask.Input(
                    "mask", tooltip="Visibility mask video (1 visible, 0 hole), the colour's size."
                ),
                io.Int.Input(
                    "width",
                    default=ex4d_sampling.PUBLISHED_SIZE,
                    min=16,
                    max=MAX_SIZE,
                    step=16,
                    tooltip="render aspect: the width of the box the generation size fits in. stretch and "
                    "crop: the generation width.",
                ),
                io.Int.Input(
                    "height",
                    default=ex4d_sampling.PUBLISHED_SIZE,
                    min=16,
                    max=MAX_SIZE,
                    step=16,
                    tooltip="render aspect: the height of the box the generation size fits in. stretch and "
                    "crop: the generation height.",
                ),
                io.Int.Input(
                    "length",
                    default=ex4d_sampling.PUBLISHED_FRAMES,
                    min=1,
                    max=MAX_SIZE,
                    step=ex4d_sampling.TEMPORAL_COMPRESSION,
                    tooltip="Frames (4k + 1). EX-4D was trained on 49.",
                ),
                io.Int.Input(
                    "mask_erosion",
                    default=ex4d_masks.DEFAULT_EROSION,
                    min=0,
                    max=64,
                    tooltip="fixed erosion_mode: the square erosion kernel applied to every mask frame "
                    "before binarising at 0.5; 0 or 1 disables it.",
                ),
                strength_input(
                    "adapter_strength",
                    "Scale of the camera encoder's output added after the patch embedding.",
                ),
                io.Combo.Input(
                    "resize",
                    options=list(ex4d_resize.RESIZE_MODES),
                    default=ex4d_resize.RESIZE_RENDER_ASPECT,
                    tooltip="render aspect: generate at the render's own aspect, the largest size that fits "
                    "in width x height, sides rounded to multiples of 16 (a 512x320 render in 512x512 stays "
                    "512x320). stretch (published): squeeze the render to width x height as the published "
                    "script does. crop: cut the render to the aspect of width x height around its centre.",
                ),
                io.Combo.Input(
                    "erosion_mode",
                    options=list(ex4d_masks.EROSION_MODES),
                    default=ex4d_masks.EROSION_FIXED,
                    tooltip="fixed: mask_erosion on every frame. random per frame (published): a kernel "
                    "drawn in 2..8 for every frame, as the published script does, from erosion_seed.",
                ),
                io.Int.Input(
                    "erosion_seed",
                    default=ex4d_sampling.PUBLISHED_SEED,
                    min=0,
                    max=0xFFFFFFFFFFFFFFFF,
                    tooltip="random per frame: the seed of the kernel draw (the same seed, the same kernels).",
                ),
                io.ClipVisionOutput.Input(
                    "clip_vision_output",
                    optional=True,
                    tooltip="CLIP-vision features of the first colour frame.",
                ),
            ],
            outputs=[
                io.Model.Output(display_name="model"),
                io.Conditioning.Output(display_name="positive"),
                io.Conditioning.Output(display_name="negative"),
                io.Latent.Output(display_name="latent"),
            ],
        )

    @classmethod
    def execute(
        cls,
        model,
        adapter,
        vae,
        positive,
        negative,
        colour: torch.Tensor,
        mask: torch.Tensor,
        width: int,
        height: int,
        resize: str,
        length: int,
        mask_erosion: int,
        erosion_mode: str,
        erosion_seed: int,
        adapter_strength: float,
        clip_vision_output=None,
    ) -> io.NodeOutput:
        info = check_wan_i2v(model)
        check_adapter_fits(model, info, adapter)
        if ex4d_lora_strength(model) is None:
            raise ValueError(
                "model: this model has not been through EX-4D LoRA. Connect the Wan model to EX-4D LoRA and "
                "its MODEL output here (strength 0 there leaves the LoRA out on purpose)."
            )
        check_wan_vae(vae)
        colour, mask = _videos_at_generation_size(colour, mask, width, height, resize, length, vae.device)
        kernels = ex4d_masks.erosion_kernels(length, erosion_mode, mask_erosion, erosion_seed)
        inputs = ex4d_camera_inputs.prepare_camera_inputs(colour, mask, erosion=kernels)
        latent_format = model.get_model_object("latent_format")

        def encode(video_pm1: torch.Tensor) -> torch.Tensor:
            # The published VAE returns normalised latents; the camera encoder was trained on those.
            return latent_format.process_in(vae_encode_pm1(vae, video_pm1))

        camera_latents = ex4d_camera_inputs.camera_latents(inputs, encode)
        patched = with_camera(model, adapter, camera_latents, adapter_strength)

        # Standard I2V conditioning from the first (source) frame: the host's own WanImageToVideo
        from comfy_extras.nodes_wan import WanImageToVideo

        positive, negative, latent = WanImageToVideo.execute(
            positive=positive,
            negative=negative,
            vae=vae,
            width=colour.shape[2],
            height=colour.shape[1],
            length=length,
            batch_size=1,
            start_image=ex4d_camera_inputs.first_frame(colour, inputs).to(comfy.model_management.intermediate_device()),
            clip_vision_output=clip_vision_output,
        ).args
        return io.NodeOutput(patched, positive, negative, latent)


def _videos_at_generation_size(
    colour: torch.Tensor, mask: torch.Tensor, width: int, height: int, resize: str, length: int, device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``length`` colour [T, H, W, 3] and mask [T, H, W] frames on ``device``, resized as ``resize``
    says. On the VAE's device, the masks' per-frame erosion next takes milliseconds where on the CPU it takes
    about half a second (49 frames of 512 x 512), and the VAE takes the videos from there."""
    if (length - 1) % ex4d_sampling.TEMPORAL_COMPRESSION:
        raise ValueError(f"length: must be 4k + 1 (e.g. 49), got {length}")
    if mask.ndim == 2:
        mask = mask[None]
    for name, video in (("colour", colour), ("mask", mask)):
        if video.shape[0] < length:
            raise ValueError(
                f"{name}: has {video.shape[0]} frames, length asks for {length}; lower length or render more frames"
            )
    if mask.shape[1:3] != colour.shape[1:3]:
        raise ValueError(
            f"mask: is {mask.shape[2]}x{mask.shape[1]} but colour is {colour.shape[2]}x{colour.shape[1]}; "
            "connect the colour and mask outputs of the same EX-4D Render Views"
        )
    colour, mask = colour[:length, ..., :3].to(device), mask[:length].to(device)
    try:
        colour = ex4d_resize.resize_video(colour.float(), width, height, resize)
    except ex4d_resize.GenerationSizeError as e:
        raise ValueError(
            f"width and height: must be positive multiples of {ex4d_resize.SIZE_MULTIPLE}, "
            f"got {width}x{height}; use e.g. {e.nearest[0]}x{e.nearest[1]}"
        ) from e
    mask = ex4d_resize.resize_video(mask.float(), width, height, resize)
    return colour, mask


def vae_encode_pm1(vae, video: torch.Tensor) -> torch.Tensor:
    """Raw VAE latents of a [T, H, W, 3] video given in the VAE's [-1, 1] input space.

    ComfyUI's VAE.encode takes [0, 1] images and maps them with ``x * 2 - 1`` without clamping (0.3.75,
    Wan 2.1 VAE), so values outside [-1, 1], such as the published {-3, +1} mask, pass through as
    ``(x + 1) / 2``. Should a VAE's input mapping differ, the model's own encoder is called directly
    on the [-1, 1]-space tensor.
    """
    probe = vae.process_input(torch.tensor([0.0, 1.0, -1.0]))
    if torch.allclose(probe.float(), torch.tensor([-1.0, 1.0, -3.0])):
        return vae.encode((video + 1.0) / 2.0)
    vae.throw_exception_if_invalid()
    comfy.model_management.load_models_gpu([vae.patcher])
    pixels = video.movedim(-1, 0).unsqueeze(0).to(vae.device, vae.vae_dtype)
    with torch.no_grad():
        out = vae.first_stage_model.encode(pixels)
    return out.to(comfy.model_management.intermediate_device()).float()


NODES = [Apply]
