#!/usr/bin/env bash
# Brings a background lease script's results back from a device call: RESULTS_DIR (and LOG) packed into one
# archive, $OUT/results.tar.gz, every few seconds until RESULTS_DIR/DONE or SECONDS have passed. One archive,
# because a call brings back only a few files (8 seen) and leaves the rest out; it is replaced whole each time,
# so a call cut off at its limit still brings back the last complete one.
#   bench/lease_poll.sh RESULTS_DIR SECONDS [LOG]
set -u
: "${OUT:?run it in a device call (OUT is where the files that come back go)}"
res=${1:?results folder}
limit=${2:?seconds to keep collecting}
log=${3:-}
start=$SECONDS
pack() {
  local extra=()
  [ -n "$log" ] && [ -f "$log" ] && extra=(-C "$(dirname "$log")" "$(basename "$log")")
  tar czf "$OUT/.results.tar.gz" -C "$res" . "${extra[@]}" 2>/dev/null && mv "$OUT/.results.tar.gz" "$OUT/results.tar.gz"
}
while :; do
  pack
  [ -f "$res/DONE" ] && break
  [ $((SECONDS - start)) -ge "$limit" ] && break
  sleep 5
done
if [ -n "$log" ] && [ -f "$log" ]; then tail -30 "$log"; fi
