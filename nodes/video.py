"""Video nodes: EX-4D Load Video."""

from __future__ import annotations

from comfy_api.latest import io

from ..ex4d import video as ex4d_video
from ._comfy import (
    CATEGORY,
    Progress,
    cancel_requested,
    check_input_file,
    input_file_fingerprint,
    input_files,
    library_stage,
    resolve_input_file,
)
from ._validation import CheckedNode

RESIZE_MODES = ["published (multiple of 64, long side capped)", "multiple of", "native"]


class LoadVideo(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DLoadVideo",
            display_name="EX-4D Load Video",
            category=CATEGORY,
            description="Decode a video from ComfyUI's input folder into IMAGE frames, "
            "sized the way the EX-4D reconstruction expects.",
            inputs=[
                io.Combo.Input("video", options=input_files("video"), upload=io.UploadType.video,
                               tooltip="A video in ComfyUI's input folder (use the upload button)."),
                io.Int.Input("frame_load_cap", default=49, min=0, max=10000,
                             tooltip="Frames to keep; 0 keeps all. EX-4D was trained on 49."),
                io.Int.Input("skip_first_frames", default=0, min=0, max=100000,
                             tooltip="Frames dropped from the start before selecting."),
                io.Int.Input("select_every_nth", default=1, min=1, max=1000,
                             tooltip="Keep one frame in n (after skipping)."),
                io.Float.Input("target_fps", default=0.0, min=0.0, max=240.0, step=0.5,
                               tooltip="0 keeps the native rate; otherwise keep every round(native/target)-th "
                               "frame, as the published reader does (multiplies select_every_nth)."),
                io.Combo.Input("resize", options=RESIZE_MODES, default=RESIZE_MODES[0],
                               tooltip="published: each side rounded to 64, long side capped at "
                               "max_resolution (aspect kept). 'multiple of' uses your multiple."),
                io.Int.Input("max_resolution", default=1024, min=64, max=8192, step=64,
                             tooltip="Cap on the long side (published: 1024)."),
                io.Int.Input("multiple", default=64, min=8, max=256, step=8,
                             tooltip="Side multiple for the 'multiple of' mode."),
            ],
            outputs=[
                io.Image.Output(display_name="frames"),
                io.Float.Output(display_name="fps"),
                io.Int.Output(display_name="frame_count"),
            ],
        )

    @classmethod
    def validate_inputs(cls, video=None) -> bool | str:  # None: linked, or missing (the host says so)
        return check_input_file(video, "video")

    @classmethod
    def fingerprint_inputs(cls, video, **kwargs) -> str:
        return input_file_fingerprint(video, "video")

    @classmethod
    def execute(cls, video, frame_load_cap, skip_first_frames, select_every_nth, target_fps, resize,
                max_resolution, multiple) -> io.NodeOutput:
        path = resolve_input_file(video, "video")
        mode = RESIZE_MODES.index(resize)
        step_multiple = {0: 64, 1: multiple, 2: 0}[mode]
        try:
            with library_stage():
                clip = ex4d_video.load_video(
                    path, max_frames=frame_load_cap, skip_first=skip_first_frames, every_nth=select_every_nth,
                    target_fps=target_fps or None, max_resolution=max_resolution, multiple=step_multiple,
                    progress=Progress(frame_load_cap or 1), cancel=cancel_requested,
                )
        except ex4d_video.NoFramesSelected as e:
            raise ValueError(f"skip_first_frames: {skip_first_frames} skips all {e.available} frames of "
                             f"'{video}'; set it below {e.available}") from e
        except ex4d_video.VideoError as e:
            raise ValueError(f"video: {e}") from e
        return io.NodeOutput(clip.frames, clip.fps, int(clip.frames.shape[0]))


NODES = [LoadVideo]
