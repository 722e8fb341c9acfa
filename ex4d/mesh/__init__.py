"""The Depth Watertight Mesh (EX-4D reference, section 2), batched over frames, plus PLY / GLB export; one
module per job:

- :mod:`.grid`: one vertex per pixel on its ray (border pushed back), the published face list;
- :mod:`.stretched`: the face filters ("angle", "boundary") and the vertices a watertight mesh hides;
- :mod:`.build`: :class:`DWMesh` (built), :class:`DWMeshSpec` (built where it is used), :func:`build_dw_mesh`;
- :mod:`.preview`: one frame as a viewer should see it; :mod:`.export`: PLY, GLB and Preview 3D's document;
- :mod:`.scene`: the downsampled mesh of one frame for the browser's camera editor.

The names below are the package's public face, each defined once in its module.
"""

from .build import DWMesh, DWMeshSpec, build_dw_mesh
from .export import preview_gltf, save_glb, save_ply
from .grid import BORDER_DEPTH, grid_faces, unproject
from .preview import NoVisibleFaces, border_wall_faces, preview_arrays, srgb_to_linear
from .scene import SCENE_MAGIC, SCENE_MAX_VERTICES, SceneAsset, depth_shade, sample_indices, scene_asset
from .stretched import FILTERS, hidden_vertices, stretched_faces

__all__ = ["BORDER_DEPTH", "FILTERS", "SCENE_MAGIC", "SCENE_MAX_VERTICES", "DWMesh", "DWMeshSpec", "NoVisibleFaces",
           "SceneAsset",
           "border_wall_faces", "build_dw_mesh", "depth_shade", "grid_faces", "hidden_vertices", "preview_arrays",
           "preview_gltf", "sample_indices", "save_glb", "save_ply", "scene_asset", "srgb_to_linear",
           "stretched_faces", "unproject"]
