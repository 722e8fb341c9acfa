#!/usr/bin/env bash
# The whole graph on the cards users own, in one lease: every weights file x budget given, each in a fresh host
# process (0.33, dynamic VRAM) that runs the fast recipe right after the start (models loaded on the way), then
# cached: fast, then published. Needs bench/gpu_env.sh sourced (ComfyUI-GGUF in the host for GGUF weights).
#   bench/gpu_budgets.sh RESULTS.jsonl MODELS_DIR "fp8:24 fp8:16 fp8:12 q4_k_m:24 ..."
# Files missing in MODELS_DIR are written first (bench/full_weights.py, bench/distill_lora.py); a DiT file not
# needed by a later combination is removed when its last combination has run (the disk holds about two).
# Each process's whole output goes to RESULTS_<weights>_<budget>.log; EX4D_RUN_TIMEOUT bounds it (default 420 s).
set -u
out=${1:?results file}
models=${2:?models folder}
combos=${3:?"weights:budget list, e.g. 'fp8:24 q4_k_m:12'"}
mkdir -p "$models"
python3 bench/full_weights.py --comfyui "$COMFYUI_PATH" --models "$models" --wan none \
  --only vae,text_encoder,clip_vision,depthcrafter,ex4d || exit 1
python3 bench/distill_lora.py --models "$models" || exit 1
last_use() {  # the index of the last combination that loads weights $1
  local i=0 last=-1
  for c in $combos; do [ "${c%%:*}" = "$1" ] && last=$i; i=$((i + 1)); done
  echo $last
}
i=0
for combo in $combos; do
  weights=${combo%%:*} budget=${combo##*:}
  t0=$(date +%s)
  python3 bench/full_weights.py --comfyui "$COMFYUI_PATH" --models "$models" --wan "$weights" --only wan || exit 1
  echo "[budgets] $weights at $budget GiB (files ready after $(( $(date +%s) - t0 )) s)"
  timeout "${EX4D_RUN_TIMEOUT:-420}" python3 bench/bench_full_graph.py --models "$models" --weights "$weights" \
    --budget-gb "$budget" --recipe fast,published --out "$out" > "${out%.jsonl}_${weights}_${budget}.log" 2>&1
  grep -E '^host|^[0-9]|rror|^device' "${out%.jsonl}_${weights}_${budget}.log" | cut -c1-400
  echo "[budgets] $weights at $budget GiB done in $(( $(date +%s) - t0 )) s"
  if [ "$(last_use "$weights")" -eq "$i" ]; then
    rm -f "$models/diffusion_models/$(python3 -c "from bench.bench_full_graph import WAN_FILES; print(WAN_FILES['$weights'])")"
  fi
  i=$((i + 1))
done
python3 bench/bench_full_graph.py --table "$out"
