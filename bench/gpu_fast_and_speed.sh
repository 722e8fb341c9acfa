#!/usr/bin/env bash
# Issues 22 and 26 in one lease, most wanted first, each part's output in RESULTS_DIR (JSON lines and logs):
#   fast24   the fast recipe on the fp8 file at 24 GiB: as shipped (EX-4D FP8 Linear on), then without FP8 Linear,
#            side by side in one host process (first run as shipped, then one cached run each); with PROFILE_FAST=1
#            one more cached run under torch.profiler (its costliest GPU work printed)
#   pub      the published recipe on the bf16 file, whole GPU: FP8 Linear + Compile Blocks and as shipped on an
#            empty compile cache; then a new host on the cache the first left (its first run)
#   wan      bench_wan.py's whole-model step with FP8 Linear + Compile Blocks on this machine, the figure pub's step
#            is held to (the same host and kernels: comfy-kitchen's CUDA RoPE is carried only where it fits; its
#            weights built on the GPU and loaded whole, where pub loads files under dynamic VRAM)
#   fast12, fast16   the fast recipe at 12 and 16 GiB, as fast24 (the fp8 file written again)
#   depth    DepthCrafter at 512 x 512 x 49, fp16: as the library runs it against PyTorch's GroupNorm, with a profile
#   pub_none_first  a new host as shipped, its first run (measured before on an H100)
# Needs bench/gpu_env.sh sourced (it installs nvdiffrast, as a user's machine has it).
#   bench/gpu_fast_and_speed.sh RESULTS_DIR MODELS_DIR
# It outlasts one device call (17 minutes on an H100 in its earlier order, before fast16 and the fp8 file written
# twice): start it in the background from a copy of the tree and collect RESULTS_DIR in each call until
# RESULTS_DIR/DONE with bench/lease_poll.sh (one archive: a call brings back only a few files). With comfy-kitchen's
# CUDA kernels, as a user's CUDA 13 PyTorch has them (bench/make_gpu_carry.sh builds all three folders), three calls
# on one warm machine (it is given back after 30 s idle):
#   1. carry .whl .devhost:  . bench/gpu_env.sh        (installs into /tmp/site and /tmp/host, which stay)
#   2. carry .devhost-ck:    xz -dc .devhost-ck/_C.abi3.so.xz > /tmp/host/site/comfy_kitchen/backends/cuda/_C.abi3.so
#      export PYTHONPATH=/tmp/site:/tmp/host/site PYTHONUNBUFFERED=1 COMFYUI_PATH=/tmp/host/ComfyUI
#      cp -r . /tmp/snap && cd /tmp/snap && (setsid nohup bash bench/gpu_fast_and_speed.sh /tmp/res /tmp/models \
#        > /tmp/lease.log 2>&1 &); bench/lease_poll.sh /tmp/res 560 /tmp/lease.log
#   3. no carry, within the 30 s: bench/lease_poll.sh /tmp/res 560 /tmp/lease.log, again until /tmp/res/DONE
set -u
: "${COMFYUI_PATH:?source bench/gpu_env.sh first}"
res=${1:?results folder}
models=${2:?models folder}
mkdir -p "$res" "$models"
step() { echo "[lease $(date +%H:%M:%S)] $*"; }
graph() {  # NAME TIMEOUT ARGS...: one bench_full_graph process, its output in NAME.log
  local name=$1 limit=$2
  shift 2
  timeout "$limit" python3 bench/bench_full_graph.py --models "$models" "$@" > "$res/$name.log" 2>&1
  step "$name done (exit $?)"
}
python3 - <<'PY'  # the GPU kernel against the CPU's quantized product (tests/test_speed.py's GPU tests)
import torch
from ex4d import fp8
g = torch.Generator("cuda").manual_seed(3)
x = torch.randn(300, 512, generator=g, device="cuda", dtype=torch.float16)
w = (torch.randn(1024, 512, generator=g, device="cuda") * 0.02).to(fp8.E4M3)
b = torch.randn(1024, generator=g, device="cuda", dtype=torch.float16)
got = fp8.quantized_linear(x, w, fp8.unit_scale(w), b).cpu().float()
cpu = fp8.quantized_linear(x.cpu(), w.cpu(), fp8.unit_scale(w).cpu(), b.cpu()).float()
print("e4m3 weight at scale 1, GPU vs CPU quantized product: rel err %.2e" % ((got - cpu).norm() / cpu.norm()).item())
PY
dit() {  # fp8|bf16: that DiT file on the disk, the other one removed (the disk holds one beside the rest)
  local other=bf16
  [ "$1" = bf16 ] && other=fp8
  rm -f "$models"/diffusion_models/*"$other"*
  step "weights: the $1 DiT"
  python3 bench/full_weights.py --comfyui "$COMFYUI_PATH" --models "$models" --wan "$1" --only wan \
    >> "$res/weights.log" 2>&1 || tail -5 "$res/weights.log"
}
step "weights: VAE, text and image encoders, DepthCrafter, EX-4D, the distillation LoRA"
python3 bench/full_weights.py --comfyui "$COMFYUI_PATH" --models "$models" --wan none \
  --only vae,text_encoder,clip_vision,depthcrafter,ex4d > "$res/weights.log" 2>&1 || tail -5 "$res/weights.log"
python3 bench/distill_lora.py --models "$models" >> "$res/weights.log" 2>&1 || tail -5 "$res/weights.log"
dit fp8
graph fast24 480 --weights fp8 --budget-gb 24 --recipe fast --speed fp8,none ${PROFILE_FAST:+--gpu-profile 45} \
  --out "$res/fast24.jsonl"
dit bf16
cache=$(mktemp -d)
graph pub 560 --weights bf16 --speed fp8+compile,none --compile-cache "$cache" --out "$res/pub.jsonl"
graph pub_warm 300 --weights bf16 --speed fp8+compile --first-only --compile-cache "$cache" --out "$res/pub.jsonl"
timeout 300 python3 bench/bench_wan.py --config bf16 --steps 4 --settings cudnn+fp8+compile --profile \
  --out "$res/wan.jsonl" > "$res/wan.log" 2>&1
step "wan done (exit $?)"
dit fp8
graph fast12 420 --weights fp8 --budget-gb 12 --recipe fast --speed fp8,none --out "$res/fast12.jsonl"
graph fast16 420 --weights fp8 --budget-gb 16 --recipe fast --speed fp8,none --out "$res/fast16.jsonl"
timeout 300 python3 bench/bench_depth.py --sizes 512x512 --dtypes fp16 --attention sdpa \
  --variants published,torch-groupnorm --profile 14 --out "$res/depth.jsonl" > "$res/depth.log" 2>&1
step "depth done (exit $?)"
dit bf16
graph pub_none_first 300 --weights bf16 --speed none --first-only --out "$res/pub.jsonl"
touch "$res/DONE"
