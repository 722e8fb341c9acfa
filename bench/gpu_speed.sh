#!/usr/bin/env bash
# Issue 15's rows in one lease: the EX-4D DiT step at 512x512x49 (bf16 weights, EX-4D on, CFG 5) with each speed
# setting side by side, then their errors against the host's attention and Linear layers (one prediction and a
# 25-step latent), then the table. Results: $1 (JSON lines). Needs bench/gpu_env.sh sourced (or COMFYUI_PATH set).
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
for setting in "--attention cudnn" "--attention cudnn --compile" "--attention cudnn --fp8-linear --compile" \
                "--attention cudnn --fp8-linear"; do
  echo "== $setting"
  # shellcheck disable=SC2086
  timeout 240 python3 bench/bench_wan.py --config bf16 --steps 4 $setting --out "$out" 2>&1 \
    | grep -E "step [0-9]|loaded|Error|error|Traceback|^ +File" | tail -12
done
echo "== errors"
timeout "${EX4D_ERRORS_TIMEOUT:-240}" python3 bench/bench_wan.py --config bf16 --errors 25 \
  --error-settings cudnn+compile,cudnn+fp8+compile,cudnn --error-latents 2 --out "$out" 2>&1 \
  | grep -E "vs host|Error|Traceback|^ +File" | tail -12
python3 bench/bench_wan.py --table "$out"
