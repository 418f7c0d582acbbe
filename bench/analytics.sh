#!/usr/bin/env bash
# AnalyzeJourney over 10,000,000 touchpoints (2,000,000 instances of 5 steps
# on 4 channels, two thirds scored), recorded in docs/BENCHMARKS.md. Never
# run as a test. Needs PostgreSQL (CX_BENCH_DATABASE_URL) and psql.
#
#   bench/analytics.sh
#
# Rows are generated inside PostgreSQL and the analytics roll-ups rebuilt
# from them, timed (bench/lib.sh `load_touchpoints`), then the journey service
# answers: the first call is cold (nothing cached), the load that follows
# reads the cached answer.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-12000000}  # 84 % kept: about 10.1 million touchpoints
. bench/lib.sh analytics
addr="127.0.0.1:$(free_port)"
export CX_LISTEN="$addr"
map=0195f0a0-0000-7000-8000-000000000001
load_touchpoints "$ROWS" "$map"

"$CX" serve journey > "$data/journey.log" 2>&1 &
pids+=("$!")
wait_serving "$addr"
token=$("$CX" token --tenant bench --roles reader)
"$LOAD" --target "http://$addr" --call analyze-journey --map-id "$map" --token "$token" \
  --connections 4 --concurrency 8 --duration 10s --warmup 1s
