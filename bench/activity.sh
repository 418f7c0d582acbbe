#!/usr/bin/env bash
# RecordActivity on PostgreSQL (issue "Profile intelligence"), recorded in
# docs/BENCHMARKS.md. Never run as a test. Needs PostgreSQL and psql.
#
#   bench/activity.sh
#
# `cx serve profile` on a fresh database; batches of 1,000 one-touchpoint
# records over 10,000 customers (the worst case: the journey service sends
# records already summed per customer, day and channel). A first run fills
# the tables, `ANALYZE` gives PostgreSQL their statistics (as autovacuum
# does in production), then 2 and 4 batches in flight are measured.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
. bench/lib.sh activity
addr="127.0.0.1:$(free_port)"
# Profile alone needs journey named not deployed (docs/CONFIGURATION.md).
CX_NOT_DEPLOYED=journey,survey,segmentation,kpi CX_LISTEN=$addr "$CX" serve profile > "$data/profile.log" 2>&1 &
pids+=("$!")
wait_serving "$addr"
token=$("$CX" token --tenant bench --roles writer)
load() {
  "$LOAD" --target "http://$addr" --call record-activity --token "$token" --connections 1 \
    --concurrency "$1" --batch 1000 --customers 10000 --duration "$DURATION" --warmup 2s
}
echo "fresh database, 4 in flight:"
load 4
psql -q "$base/$db" -c "ANALYZE"
for c in 2 4; do
  echo "after ANALYZE, $c in flight:"
  load "$c"
done
