#!/usr/bin/env bash
# Peak resident memory of the release server for one request of each kind
# (issue 13, item 4), recorded in docs/BENCHMARKS.md. Never run as a test.
# Each case gets a fresh `cx serve all` on PostgreSQL, so VmHWM is that
# request's peak. Needs PostgreSQL and psql.
#
#   bench/input.sh
#   CASES="empty-items8mb valid100k" bench/input.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CASES=${CASES:-empty-items8mb empty100k valid100k attributes8mb long-id15mb}
. bench/lib.sh input
INPUT=${CARGO_TARGET_DIR:-target}/release/cx-input
for case in $CASES; do
  addr="127.0.0.1:$(free_port)"
  CX_LISTEN=$addr "$CX" serve all > "$data/$case.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_serving "$addr"
  token=$("$CX" token --tenant bench --roles writer)
  "$INPUT" --target "http://$addr" --token "$token" --pid "$pid" --case "$case"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done
