#!/usr/bin/env bash
# Issue 15's rows in one lease: the EX-4D DiT step at 512x512x49 (bf16 weights, EX-4D on, CFG 5) with each speed
# setting side by side in one process, each with a profile of one CFG step, then their errors against the host's
# attention and Linear layers and against float32 attention (one prediction, a 25-step latent), then the table. Results: $1 (JSON lines). Needs bench/gpu_env.sh sourced (or COMFYUI_PATH set).
set -u
out=${1:?results file}
python3 - <<'PY'  # the GPU kernel against the CPU's quantized product (tests/test_speed.py's GPU test)
import torch
from ex4d import fp8
g = torch.Generator("cuda").manual_seed(2)
x = torch.randn(300, 512, generator=g, device="cuda", dtype=torch.bfloat16)
w = torch.randn(1024, 512, generator=g, device="cuda", dtype=torch.bfloat16) * 0.02
b = torch.randn(1024, generator=g, device="cuda", dtype=torch.bfloat16)
got, cpu = fp8.scaled_linear(x, w, b).cpu().float(), fp8.scaled_linear(x.cpu(), w.cpu(), b.cpu()).float()
print("fp8 GPU vs CPU quantized product: rel err %.2e" % ((got - cpu).norm() / cpu.norm()).item())
PY
python3 -c "import comfy_kitchen as ck; print('comfy-kitchen backends:', ck.list_backends())" 2>&1 | tail -1
# the settings side by side on one model (one process), each with a profiled CFG step; then the errors: one
# prediction of each against the host's and against float32 attention (exact32), a 25-step latent for the first 3
timeout "${EX4D_SPEED_TIMEOUT:-540}" python3 bench/bench_wan.py --config bf16 --steps 4 --profile \
  --settings "${EX4D_SETTINGS:-cudnn,cudnn+compile,cudnn+fp8,cudnn+fp8+compile}" \
  --errors 25 --error-settings "${EX4D_ERROR_SETTINGS:-cudnn+compile,cudnn+fp8+compile,cudnn,cudnn+fp8,efficient,exact32}" \
  --error-latents "${EX4D_ERROR_LATENTS:-3}" \
  --out "$out" 2>&1 | grep -vE "^\s*$|USDT|it/s\]"
python3 bench/bench_wan.py --table "$out"
