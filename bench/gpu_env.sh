# Sourced on a GPU machine that has PyTorch but no ComfyUI (the workplace's device image), from the repo root:
#   . bench/gpu_env.sh   ->  $COMFYUI_PATH is a ComfyUI 0.33 tree, the host's missing packages are importable
# It expects what a device call carries: .whl/ (py3.12 manylinux wheels of the packages the image lacks: torchsde,
# trampoline, comfy-aimdo, blake3, simpleeval, and for the whole graph av, alembic, sqlalchemy, mako, pydantic,
# pydantic-core, pydantic-settings, python-dotenv, typing-inspection, annotated-types) and .devhost/host033.tar.xz
# (ComfyUI/: the 0.33 tree without tests/, comfy_api_nodes/, blueprints/ and the tokenizers Wan does not use;
# site/: comfy-kitchen 0.2.31 without its compiled CUDA/HIP kernels, 235 MB unpacked, which the host imports but the
# EX-4D paths do not use: its eager backend stays). Optional, where carried: .whl-video/ (av, for the whole graph's
# video nodes) and .devhost-ck/_C.abi3.so.xz (comfy-kitchen's CUDA kernels, 21 MB packed: with them the host's Wan
# RoPE runs its CUDA kernel, as on a user's machine with a CUDA 13 PyTorch). The carry limit (64 MiB) takes one of
# the two with the rest.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  $(ls .whl-video/*.whl 2>/dev/null) || return 1
mkdir -p /tmp/host && tar xJf .devhost/host033.tar.xz -C /tmp/host || return 1
if [ -f .devhost-ck/_C.abi3.so.xz ]; then
  xz -dc .devhost-ck/_C.abi3.so.xz > /tmp/host/site/comfy_kitchen/backends/cuda/_C.abi3.so || return 1
fi
export PYTHONPATH=/tmp/site:/tmp/host/site PYTHONUNBUFFERED=1
export COMFYUI_PATH=/tmp/host/ComfyUI
# the harness installs the host's requirements unless this stamp names this interpreter (nothing can be fetched here)
python3 -c "import sys; print(sys.executable, end='')" > "$COMFYUI_PATH/.ex4d-prepared"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
