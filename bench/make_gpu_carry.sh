#!/usr/bin/env bash
# Builds, from pinned wheels and the 0.33 host archive, what a GPU machine without network needs beside the
# working tree (bench/gpu_env.sh sets it up there). Nothing built here is committed: the folders are listed
# in .git/info/exclude.
#
#   bench/make_gpu_carry.sh [COMFYUI_GGUF]
#
#   .whl/                           py3.12 manylinux wheels of the packages the GPU image lacks
#   .devhost/host033.tar.xz         ComfyUI/: the 0.33 host without tests, API nodes, blueprints and the
#                                   tokenizers Wan does not use; site/: comfy-kitchen (the host's pin) without
#                                   its compiled CUDA / HIP kernels (its eager backend runs)
#   .devpacks/ComfyUI-GGUF.tar.xz   ComfyUI-GGUF/ at HEAD of COMFYUI_GGUF (a checkout or a bare git dir of
#                                   city96/ComfyUI-GGUF); gpu_env.sh puts it into the host's custom_nodes
#   .devhost-ck/_C.abi3.so.xz       comfy-kitchen's CUDA kernels (21 MB): they do not fit the first call beside
#                                   the rest, so a second call on the same warm machine carries them (see
#                                   bench/gpu_fast_and_speed.sh)
#
# Env: EX4D_HOST (default ../shared/hosts/comfyui-0.33.0.tar.gz), PIP (default .venv/bin/pip). Prints the
# size of each folder and of everything that travels (tracked and untracked-not-ignored files included),
# and fails above the 64 MiB a device call carries.
set -euo pipefail
cd "$(dirname "$0")/.."
HOST_ARCHIVE=${EX4D_HOST:-../shared/hosts/comfyui-0.33.0.tar.gz}
PIP=${PIP:-.venv/bin/pip}
GGUF_SRC=${1:-}
LIMIT=$((64 * 1024 * 1024))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tar xzf "$HOST_ARCHIVE" -C "$work" ComfyUI
pin() {  # the host's own pin of a package, e.g. comfy-kitchen==0.2.31
  grep -E "^$1==" "$work/ComfyUI/requirements.txt" || { echo "no pin of $1 in $HOST_ARCHIVE" >&2; exit 1; }
}
download() {
  "$PIP" download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 "$@"
}

# Versions: the host's pins where it pins, else those the 0.33 test venv runs. The image has torch,
# transformers, safetensors, accelerate, huggingface-hub, aiohttp, scipy, psutil, pillow, regex, sentencepiece,
# protobuf, markupsafe.
wheels=(
  "$(pin comfy-aimdo)" torchsde==0.2.6 trampoline==0.1.2 blake3==1.0.11 simpleeval==1.0.8  # host start
  alembic==1.20.1 SQLAlchemy==2.1.9 Mako==1.4.3                                          # host database
  pydantic==2.14.4 pydantic-core==2.50.5 pydantic-settings==2.16.3 python-dotenv==1.2.4
  typing-inspection==0.4.5 annotated-types==0.8.0 typing-extensions==4.16.0  # pydantic 2.14 needs >= 4.16
  av==18.1.0                                  # the pack's video loading and saving
  diffusers==0.42.1  # DepthCrafter (on 3.12 it reads importlib.metadata: its importlib-metadata requirement idles)
  gguf==0.19.0                                # ComfyUI-GGUF and bench/full_weights.py --wan q8_0|q4_k_m
  "$(grep -o 'diffrp-nvdiffrast==[0-9.]*' pyproject.toml)" ninja==1.13.2  # Render Views' CUDA rasteriser (its JIT build)
)
rm -rf .whl && mkdir .whl
download -d .whl "${wheels[@]}"

# The host, trimmed, and comfy-kitchen without its kernels (176 MB CUDA + 59 MB HIP unpacked)
host="$work/ComfyUI"
rm -rf "$host"/{tests,tests-unit,comfy_api_nodes,blueprints,.ci,.github}
for t in t5 t5_pile qwen25 qwen35 llama byt5 hydit_clip ace_lyrics; do
  rm -rf "$host/comfy/text_encoders/${t}_tokenizer"
done
download -d "$work/kitchen" "$(pin comfy-kitchen)"
mkdir -p "$work/site"
python3 -m zipfile -e "$work"/kitchen/comfy_kitchen-*.whl "$work/site"
rm -rf .devhost-ck && mkdir .devhost-ck
xz -9 -T1 < "$work"/site/comfy_kitchen/backends/cuda/_C.abi3.so > .devhost-ck/_C.abi3.so.xz
rm -f "$work"/site/comfy_kitchen/backends/{cuda,hip}/_C.abi3.so
pack() {  # pack DIR... relative to $work into the file $1, the same bytes on every run
  local out=$1
  shift
  tar --sort=name --mtime='2026-01-01 00:00Z' --owner=0 --group=0 --numeric-owner -C "$work" -cf - "$@" \
    | xz -9 -T1 > "$out"
}
rm -rf .devhost && mkdir .devhost
pack .devhost/host033.tar.xz ComfyUI site

if [ -n "$GGUF_SRC" ]; then
  echo "ComfyUI-GGUF $(git -C "$GGUF_SRC" rev-parse HEAD)"
  git -C "$GGUF_SRC" archive --format=tar --prefix=ComfyUI-GGUF/ HEAD | tar x -C "$work"
  rm -rf .devpacks && mkdir .devpacks
  pack .devpacks/ComfyUI-GGUF.tar.xz ComfyUI-GGUF
fi

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
for d in /.whl/ /.devhost/ /.devpacks/ /.devhost-ck/; do
  grep -qxF "$d" "$exclude" 2>/dev/null || echo "$d" >> "$exclude"
done

carried=(.whl .devhost)
[ -d .devpacks ] && carried+=(.devpacks)
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null \
  | awk '{s += $1} END {print s + 0}')
total=$tree
mib() { awk -v b="$1" 'BEGIN {printf "%6.2f MiB", b / 1048576}'; }
echo "$(mib "$tree")  working tree (tracked and untracked-not-ignored)"
for d in "${carried[@]}"; do
  size=$(find "$d" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  total=$((total + size))
  echo "$(mib "$size")  $d/"
done
echo "$(mib "$total")  travels in all (limit 64 MiB); carry: ${carried[*]}"
echo "$(mib "$(stat -c %s .devhost-ck/_C.abi3.so.xz)")  .devhost-ck/ (a second call's carry)"
if [ "$total" -gt "$LIMIT" ]; then
  echo "over the 64 MiB a device call carries" >&2
  exit 1
fi
