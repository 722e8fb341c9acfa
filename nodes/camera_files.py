"""Camera path files: load and save the original EX-4D tool's npz or this pack's JSON."""

from __future__ import annotations

from comfy_api.latest import io

from ..ex4d import camera as ex4d_camera
from ._comfy import (
    check_choice,
    check_connected,
    check_input_file,
    check_numbers,
    check_output_prefix,
    input_file_fingerprint,
    input_files,
    output_path,
    resolve_input_file,
)
from ._types import CONNECT_CAMERA, Camera
from .camera import CAMERA_CATEGORY

CAMERA_FORMATS = ("ex4d npz", "json")
PATH_EXTENSIONS = (".npz", ".json")
CHOOSE_CAMERA_FILE = "choose an EX-4D camera .npz or .json (EX-4D Save Camera Path writes them)"


class LoadCameraPath(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        files = input_files(extensions=PATH_EXTENSIONS)
        return io.Schema(
            node_id="EX4DLoadCameraPath",
            display_name="EX-4D Load Camera Path",
            category=CAMERA_CATEGORY,
            description="Load a camera path from ComfyUI's input folder: the original EX-4D tool's "
            "camera_<preset>.npz (extrinsics + intrinsics) or this pack's JSON.",
            inputs=[
                io.Combo.Input("path", options=files,
                    tooltip="A .npz or .json file in ComfyUI's input folder."),
                io.Int.Input("width", default=0, min=0, max=16384,
                             tooltip="Image width for an npz file (which stores none); 0 = 2 * cx of its intrinsics."),
                io.Int.Input("height", default=0, min=0, max=16384,
                             tooltip="Image height for an npz file; 0 = 2 * cy of its intrinsics."),
            ],
            outputs=[Camera.Output(display_name="camera")],
        )

    @classmethod
    def validate_inputs(cls, path=None) -> bool | str:  # None: linked, or missing (the host says so)
        return check_input_file(path, "path", PATH_EXTENSIONS,
                                f"is neither an EX-4D .npz nor a camera .json; {CHOOSE_CAMERA_FILE}")

    @classmethod
    def fingerprint_inputs(cls, path, **kwargs) -> str:
        return input_file_fingerprint(path, "path")

    @classmethod
    def execute(cls, path, width, height) -> io.NodeOutput:
        check_numbers(cls, width=width, height=height)
        file = resolve_input_file(path, "path")
        try:
            if file.suffix.lower() == ".npz":
                camera = ex4d_camera.read_ex4d_npz(file, width=width or None, height=height or None)
            else:
                camera = ex4d_camera.read_json(file)
        except ex4d_camera.CameraFileError as e:
            raise ValueError(f"path: {e}; {CHOOSE_CAMERA_FILE}") from e
        return io.NodeOutput(camera)


class SaveCameraPath(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DSaveCameraPath",
            display_name="EX-4D Save Camera Path",
            category=CAMERA_CATEGORY,
            description="Save a camera path into ComfyUI's output folder, as the original EX-4D tool's npz "
            "(so it moves between the two) or as JSON.",
            inputs=[
                Camera.Input("camera",
                    tooltip="The camera path to use (from a Camera Path node, or loaded)."),
                io.String.Input("filename_prefix", default="ex4d/camera",
                    tooltip="File name prefix under ComfyUI's output folder (subfolders allowed)."),
                io.Combo.Input("format", options=list(CAMERA_FORMATS), default="ex4d npz",
                    tooltip="ex4d npz: the original EX-4D tool's camera file (extrinsics + intrinsics); "
                    "json: this pack's readable format."),
            ],
            outputs=[io.String.Output(display_name="path")],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, filename_prefix=None) -> bool | str:  # None: linked, or missing
        return check_output_prefix(filename_prefix)

    @classmethod
    def execute(cls, camera, filename_prefix, format) -> io.NodeOutput:
        check_connected(camera, ex4d_camera.CameraPath, "camera", CONNECT_CAMERA)
        ext = "npz" if check_choice(format, CAMERA_FORMATS, "format") == "ex4d npz" else "json"
        path, relative = output_path(filename_prefix, ext, camera.width, camera.height)
        if ext == "npz":
            ex4d_camera.write_ex4d_npz(camera, path)
        else:
            ex4d_camera.write_json(camera, path)
        return io.NodeOutput(relative, ui={"text": [relative]})


NODES = [LoadCameraPath, SaveCameraPath]
