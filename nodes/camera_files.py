"""Camera path files: load and save the original EX-4D tool's npz, this pack's JSON and glTF (Blender); load
nerfstudio's transforms.json and COLMAP's images.txt."""

from __future__ import annotations

from pathlib import Path

from comfy_api.latest import io

from ..ex4d import camera as ex4d_camera
from ..ex4d import mesh as ex4d_mesh
from ..ex4d.camera.colmap import IMAGES_SUFFIX, cameras_file
from ..ex4d.camera.formats import EXTENSIONS, read_camera_file
from ..ex4d.camera.gltf import write_glb
from ..ex4d.camera.imports import ImportSettings
from ._comfy import (
    check_input_file,
    check_output_prefix,
    input_file_fingerprint,
    input_files,
    output_path,
    resolve_input_file,
)
from ._types import Camera, DWMesh
from ._validation import CheckedNode
from .camera import CAMERA_CATEGORY

CAMERA_FORMATS = ("ex4d npz", "json", "glb")
PATH_EXTENSIONS = EXTENSIONS
CHOOSE_CAMERA_FILE = ("choose an EX-4D camera .npz / .json, a glTF camera animation (.glb / .gltf), a nerfstudio "
                      "transforms.json or a COLMAP images.txt (with its cameras.txt beside it)")


class LoadCameraPath(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        files = input_files(extensions=PATH_EXTENSIONS)
        return io.Schema(
            node_id="EX4DLoadCameraPath",
            display_name="EX-4D Load Camera Path",
            category=CAMERA_CATEGORY,
            description="Load a camera path from ComfyUI's input folder: the original EX-4D tool's "
            "camera_<preset>.npz (extrinsics + intrinsics), this pack's JSON, a glTF camera animation (.glb / "
            ".gltf, e.g. from Blender), nerfstudio's transforms.json or COLMAP's images.txt + cameras.txt. A "
            "glTF made on the scene Save Camera Path exports keeps its place and scale; a path from elsewhere is "
            "moved so that its first camera is the source camera, its distances times 'scale'.",
            inputs=[
                io.Combo.Input("path", options=files,
                    tooltip="A .npz, .json, .glb, .gltf or COLMAP images.txt in ComfyUI's input folder."),
                io.Int.Input("width", default=0, min=0, max=16384,
                             tooltip="Image width (the clip's); 0 = the file's (an npz: 2 * cx of its intrinsics)."),
                io.Int.Input("height", default=0, min=0, max=16384,
                             tooltip="Image height (the clip's); 0 = the file's (an npz: 2 * cy)."),
                io.Int.Input("frames", default=0, min=0, max=100000, optional=True,
                    tooltip="The clip's frame count: a glTF animation is sampled at this many frames, 'fps' "
                    "apart; 0 = its whole length. Other files hold one camera per frame (0 or their count)."),
                io.Float.Input("fps", default=0.0, min=0.0, max=240.0, step=0.5, optional=True,
                    tooltip="The clip's frame rate (link EX-4D Load Video's fps), to time a glTF animation; "
                    "0 = the rate this pack exported it at, or one frame per key."),
                io.Float.Input("focal", default=0.0, min=0.0, max=1e5, step=1.0, optional=True,
                    tooltip="glTF / transforms.json / COLMAP: the source camera's focal length in pixels (Build "
                    "DW-Mesh's); 0 = the file's (this pack's glb stores it; else its first camera's). Each frame keeps its own field of view."),
                io.Float.Input("scale", default=1.0, min=1e-4, max=1e4, step=0.01, optional=True,
                    tooltip="A path from elsewhere (not made on this pack's exported scene): its distances "
                    "times this, in depth units, after its first camera is put at the source camera."),
                io.String.Input("camera_name", default="", optional=True,
                    tooltip="glTF: the camera to read (node or camera name); empty = the first animated one."),
            ],
            outputs=[Camera.Output(display_name="camera")],
        )

    @classmethod
    def validate_inputs(cls, path=None) -> bool | str:  # None: linked, or missing (the host says so)
        return check_input_file(path, "path", PATH_EXTENSIONS,
                                f"is not a camera path file; {CHOOSE_CAMERA_FILE}")

    @classmethod
    def fingerprint_inputs(cls, path, **kwargs) -> str:
        fingerprint = input_file_fingerprint(path, "path")
        if isinstance(path, str) and path.lower().endswith(IMAGES_SUFFIX):  # COLMAP: its cameras.txt too
            fingerprint += input_file_fingerprint(cameras_file(Path(path)).as_posix(), "path")
        return fingerprint

    @classmethod
    def execute(cls, path, width, height, frames=0, fps=0.0, focal=0.0, scale=1.0,
                camera_name="") -> io.NodeOutput:
        if not isinstance(camera_name, str):
            raise ValueError(f"camera_name: got {type(camera_name).__name__}; give a camera's name, or nothing")
        file = resolve_input_file(path, "path")
        settings = ImportSettings(width, height, frames, fps, focal, scale, camera_name)
        try:
            camera = read_camera_file(file, settings)
        except ex4d_camera.CameraFileError as e:
            raise ValueError(f"path: {e}; {CHOOSE_CAMERA_FILE}") from e
        return io.NodeOutput(camera)


class SaveCameraPath(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DSaveCameraPath",
            display_name="EX-4D Save Camera Path",
            category=CAMERA_CATEGORY,
            description="Save a camera path into ComfyUI's output folder, as the original EX-4D tool's npz "
            "(so it moves between the two), as JSON, or as glb: an animated glTF camera (one key per frame, at "
            "'fps') with the mesh's frame-0 scene, to open in Blender and steer there.",
            inputs=[
                Camera.Input("camera",
                    tooltip="The camera path to use (from a Camera Path node, or loaded)."),
                io.String.Input("filename_prefix", default="ex4d/camera",
                    tooltip="File name prefix under ComfyUI's output folder (subfolders allowed)."),
                io.Combo.Input("format", options=list(CAMERA_FORMATS), default="ex4d npz",
                    tooltip="ex4d npz: the original EX-4D tool's camera file (extrinsics + intrinsics); "
                    "json: this pack's readable format; glb: glTF for Blender and other 3D tools."),
                DWMesh.Input("mesh", optional=True,
                    tooltip="glb: the DW-mesh whose frame 0 is saved as the scene the shot sits on (as Save "
                    "DW-Mesh writes it for Preview 3D); not connected, the camera alone."),
                io.Float.Input("fps", default=15.0, min=0.1, max=240.0, step=0.5, optional=True,
                    tooltip="glb: the clip's frame rate (link EX-4D Load Video's fps); frame i is keyed at i / "
                    "fps seconds."),
            ],
            outputs=[io.String.Output(display_name="path")],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, filename_prefix=None) -> bool | str:  # None: linked, or missing
        return check_output_prefix(filename_prefix)

    @classmethod
    def execute(cls, camera, filename_prefix, format, mesh=None, fps=15.0) -> io.NodeOutput:
        ext = {"ex4d npz": "npz", "json": "json", "glb": "glb"}[format]
        if ext == "glb" and mesh is not None:
            check_scene(mesh, camera)
        path, relative = output_path(filename_prefix, ext, camera.width, camera.height)
        if ext == "npz":
            ex4d_camera.write_ex4d_npz(camera, path)
        elif ext == "json":
            ex4d_camera.write_json(camera, path)
        else:
            write_glb(camera, path, fps, None if mesh is None else scene_of(mesh))
        return io.NodeOutput(relative, ui={"text": [relative]})


def scene_of(mesh: ex4d_mesh.DWMeshSpec | ex4d_mesh.DWMesh):
    """The shot's scene: the mesh's first frame as a viewer sees it."""
    try:
        return ex4d_mesh.preview_gltf(mesh, 0)
    except ex4d_mesh.NoVisibleFaces as e:
        raise ValueError(f"mesh: {e}; or leave mesh unconnected to save the camera alone") from e


def check_scene(mesh: ex4d_mesh.DWMeshSpec | ex4d_mesh.DWMesh, camera: ex4d_camera.CameraPath) -> None:
    """A scene the shot sits on: the mesh of the clip the path was made for."""
    if (mesh.width, mesh.height) != (camera.width, camera.height) or abs(mesh.focal - camera.focal) > 1e-3 * mesh.focal:
        raise ValueError(f"mesh: {mesh.width}x{mesh.height} at focal {mesh.focal:g}, but the camera is for "
                         f"{camera.width}x{camera.height} at focal {camera.focal:g}; connect the DW-mesh of the clip "
                         "the path was made from")


NODES = [LoadCameraPath, SaveCameraPath]
