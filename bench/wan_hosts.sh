#!/usr/bin/env bash
# EX-4D on vs off, bf16 and fp8 files, the DiT loaded from a file as a user loads it (dynamic VRAM where
# the host has it), one process a run, on each host folder given; appends to RESULTS and prints the table.
#   bench/wan_hosts.sh RESULTS.jsonl /path/to/ComfyUI-0.3.75 /path/to/ComfyUI-0.33 ...
# Needs a CUDA GPU and about 50 GB of disk for the random weight files (EX4D_WEIGHTS_DIR, reused).
set -euo pipefail
cd "$(dirname "$0")/.."
results="$1"; shift
weights="${EX4D_WEIGHTS_DIR:-.bench-weights}"
for host in "$@"; do
  for config in bf16 fp8; do
    for ex4d in "" --no-ex4d; do
      python3 bench/bench_wan.py --comfyui "$host" --config "$config" --load file --weights-dir "$weights" \
        --steps "${EX4D_STEPS:-4}" $ex4d --out "$results"
    done
  done
done
python3 bench/bench_wan.py --table "$results"
