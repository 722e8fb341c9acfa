"""The pack's own socket types. Everything a user may plug elsewhere uses the host's stock types."""

from comfy_api.latest import io

Depth = io.Custom("EX4D_DEPTH")  # ex4d.depth.DepthVideo
DWMesh = io.Custom("EX4D_DWMESH")  # ex4d.mesh.DWMeshSpec (or a built ex4d.mesh.DWMesh)
Camera = io.Custom("EX4D_CAMERA")  # ex4d.camera.CameraPath
DepthModel = io.Custom("EX4D_DEPTH_MODEL")  # nodes.depth_models.LoadedDepthModel
Adapter = io.Custom("EX4D_ADAPTER")  # ex4d.adapter.EX4DAdapter

# what to connect to an input that got a value where a link belongs (``_validation.links``)
CONNECT_FRAMES = "video frames (an IMAGE batch, e.g. from EX-4D Load Video)"
CONNECT_DEPTH = "a depth (EX-4D Estimate Depth, Load Depth or Depth From Image)"
CONNECT_LATENT = "a LATENT (EX-4D Apply's latent output)"
CONNECT_CAMERA = "a camera path (an EX-4D Camera Path node, or Load Camera Path)"
CONNECT_MESH = "a DW-mesh (EX-4D Build DW-Mesh)"
CONNECT_MODEL = "a MODEL (a Wan 2.1 I2V model from a loader, or EX-4D LoRA's output)"
CONNECT_ADAPTER = "the EX-4D adapter (EX-4D Adapter Loader)"
CONNECT_DEPTH_MODEL = "a depth model (EX-4D Depth Model Loader)"
CONNECT_VAE = "the Wan 2.1 VAE (a VAE loader)"
CONNECT_CONDITIONING = "a CONDITIONING (a text encode node, e.g. CLIP Text Encode)"
CONNECT_CLIP_VISION = "a CLIP_VISION_OUTPUT (CLIP Vision Encode of the first rendered frame)"
CONNECT_IMAGE = "an IMAGE batch (e.g. Render Views' colour output)"
CONNECT_MASK = "a MASK batch (e.g. Render Views' mask output)"
