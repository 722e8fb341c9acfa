# Sourced on a GPU machine that has PyTorch but no ComfyUI (the workplace's device image), from the repo root:
#   . bench/gpu_env.sh   ->  $COMFYUI_PATH is a ComfyUI 0.33 tree, the host's missing packages are importable
# Build what it needs once, on a machine with the package index (not committed; about 56 MiB of the 64 a device
# call carries, with the repo's own files):
#   bench/make_gpu_carry.sh [COMFYUI_GGUF_CHECKOUT]      -> .whl/ .devhost/ [.devpacks/]
# and name those folders in the call's carry. .whl/: py3.12 manylinux wheels of the packages the image lacks
# (torchsde, trampoline, comfy-aimdo, blake3, simpleeval, alembic, sqlalchemy, mako, pydantic, pydantic-core,
# pydantic-settings, python-dotenv, typing-inspection, annotated-types, typing-extensions; av for the video nodes,
# diffusers for DepthCrafter, gguf for ComfyUI-GGUF and GGUF weight files, diffrp-nvdiffrast and ninja for the
# CUDA rasteriser, built at its first use).
# .devhost/host033.tar.xz: ComfyUI/ (the 0.33 tree without tests/, comfy_api_nodes/, blueprints/ and the tokenizers
# Wan does not use) and site/ (comfy-kitchen 0.2.31 without its compiled CUDA/HIP kernels, which the host imports
# but the EX-4D paths do not use: its eager backend stays). .devpacks/ComfyUI-GGUF.tar.xz, where carried: city96's
# ComfyUI-GGUF, put into the host's custom_nodes (its UnetLoaderGGUF loads GGUF DiT files). Optional, where
# carried: .devhost-ck/_C.abi3.so.xz (comfy-kitchen's CUDA kernels, 21 MB packed: with them the host's Wan RoPE
# runs its CUDA kernel, as on a user's machine with a CUDA 13 PyTorch; it fits only without av, or in a second
# call on the same warm machine: bench/gpu_fast_and_speed.sh says how).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || return 1
mkdir -p /tmp/host && tar xJf .devhost/host033.tar.xz -C /tmp/host || return 1
if [ -f .devhost-ck/_C.abi3.so.xz ]; then
  xz -dc .devhost-ck/_C.abi3.so.xz > /tmp/host/site/comfy_kitchen/backends/cuda/_C.abi3.so || return 1
fi
export PYTHONPATH=/tmp/site:/tmp/host/site PYTHONUNBUFFERED=1
export COMFYUI_PATH=/tmp/host/ComfyUI
if [ -f .devpacks/ComfyUI-GGUF.tar.xz ]; then
  tar xJf .devpacks/ComfyUI-GGUF.tar.xz -C "$COMFYUI_PATH/custom_nodes" || return 1
fi
# the harness installs the host's requirements unless this stamp names this interpreter (nothing can be fetched here)
python3 -c "import sys; print(sys.executable, end='')" > "$COMFYUI_PATH/.ex4d-prepared"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
