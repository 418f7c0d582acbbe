#!/usr/bin/env bash
# Fact freshness in segmentation under journey ingest; recorded in
# docs/BENCHMARKS.md. Never run as a test. Needs PostgreSQL
# (CX_BENCH_DATABASE_URL) and psql.
#
#   bench/segmentation-freshness.sh      # ROUNDS=30 DURATION=90s by default
#   RATE=10 bench/segmentation-freshness.sh   # ingest paced at 10 batches/s
#
# Profile, journey and segmentation run as three processes (survey not
# deployed). A probe customer of her own tenant has her `sms` consent
# granted and withdrawn in turn through profile, and a purchase recorded
# through journey after each; cx-segment times how long until an
# EvaluateSegment shows each (consent.sms matching her, or not; her
# journey.touchpoints_90d grown by one), polling every 10 ms. First with
# nothing else running, then while cx-load ingests touchpoints for another
# tenant as fast as it can (IngestTouchpoints, batches of 1,000, 2 × 2 in
# flight), which journey offers to segmentation: the rate it reached is
# printed with the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-30}
DURATION=${DURATION:-90s}
. bench/lib.sh seg_freshness
SEGMENT=${CARGO_TARGET_DIR:-target}/release/cx-segment
profile_addr="127.0.0.1:$(free_port)"
journey_addr="127.0.0.1:$(free_port)"
segmentation_addr="127.0.0.1:$(free_port)"
export CX_NOT_DEPLOYED=survey,kpi CX_PROFILE_ENDPOINT="http://$profile_addr" CX_JOURNEY_ENDPOINT="http://$journey_addr" \
  CX_SEGMENTATION_ENDPOINT="http://$segmentation_addr"
for service in profile segmentation journey; do
  addr_var="${service}_addr"
  CX_LISTEN=${!addr_var} "$CX" serve "$service" > "$data/$service.log" 2>&1 &
  pids+=("$!")
  wait_serving "${!addr_var}"
done
probe=$("$CX" token --tenant probe --roles writer)
token=$("$CX" token --tenant bench --roles admin)
fresh() {
  "$SEGMENT" --target "http://$segmentation_addr" --token "$probe" freshness --profile "http://$profile_addr" \
    --journey "http://$journey_addr" --rounds "$1"
}

echo "== idle"
fresh 10
echo "== under ingest"
"$LOAD" --target "http://$journey_addr" --profile-target "http://$profile_addr" --call ingest-touchpoints \
  --token "$token" --batch 1000 --customers 10000 --connections 2 --concurrency 2 --duration "$DURATION" \
  ${RATE:+--rate "$RATE"} --warmup 3s > "$data/load.txt" &
load=$!
pids+=("$load")
sleep 8
fresh "$ROUNDS"
wait "$load"
echo "ingest during the probe: $(cat "$data/load.txt")"
