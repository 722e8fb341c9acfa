"""The pack's own socket types. Everything a user may plug elsewhere uses the host's stock types."""

from comfy_api.latest import io

Depth = io.Custom("EX4D_DEPTH")  # ex4d.depth.DepthVideo
DWMesh = io.Custom("EX4D_DWMESH")  # ex4d.mesh.DWMeshSpec (or a built ex4d.mesh.DWMesh)
Camera = io.Custom("EX4D_CAMERA")  # ex4d.camera.CameraPath
DepthModel = io.Custom("EX4D_DEPTH_MODEL")  # nodes.depth.LoadedDepthModel
Adapter = io.Custom("EX4D_ADAPTER")  # ex4d.adapter.EX4DAdapter
