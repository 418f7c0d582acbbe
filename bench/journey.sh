#!/usr/bin/env bash
# Benchmarks of the journey service's ingest, recorded in docs/BENCHMARKS.md.
# Never run as a test. Needs PostgreSQL (CX_BENCH_DATABASE_URL, default the
# local server) and psql.
#
#   bench/journey.sh
#
# 1. IngestTouchpoints, batches of 1,000 new touchpoints of known profiles,
#    2 connections × 2 in flight; journey runs alone (`cx serve journey`) so
#    the profile service's share of the machine is not counted: the activity
#    messages are written to the outbox in the same transactions, and
#    delivered later.
# 2. The same rows loaded with PostgreSQL COPY into a copy of the table (same
#    key and index): ingest as a share of COPY.
# 3. RecordTouchpoint, one touchpoint a call, 4 connections × 16 in flight.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20s}
. bench/lib.sh journey
profile_addr="127.0.0.1:$(free_port)"
journey_addr="127.0.0.1:$(free_port)"

# Profile runs only to create the customers, then stops; alone, it needs
# journey named not deployed (docs/CONFIGURATION.md).
CX_NOT_DEPLOYED=journey,survey,segmentation,kpi CX_LISTEN=$profile_addr "$CX" serve profile > "$data/profile.log" 2>&1 &
profile=$!
pids+=("$profile")
wait_serving "$profile_addr"
token=$("$CX" token --tenant bench --roles writer)
# Journey alone, with no profile endpoint: the activity it writes to its
# outbox waits there instead of loading the machine, and the profile ids it
# is sent are not checked (one that answers nothing would fail every call).
CX_NOT_DEPLOYED=survey,segmentation CX_LISTEN=$journey_addr "$CX" serve journey \
  > "$data/journey.log" 2>&1 &
pids+=("$!")
wait_serving "$journey_addr"

"$LOAD" --target "http://$journey_addr" --profile-target "http://$profile_addr" --call ingest-touchpoints \
  --token "$token" --batch 1000 --customers 10000 --connections 2 --concurrency 2 --duration "$DURATION" --warmup 3s
rows=$(psql -tA "$base/$db" -c "SELECT count(*) FROM journey.touchpoints")
echo "touchpoints stored: $rows"

psql -q "$base/$db" <<SQL
CREATE TABLE journey.touchpoints_copy (LIKE journey.touchpoints INCLUDING ALL);
\copy journey.touchpoints TO '$data/touchpoints.copy'
SQL
start=$(date +%s%N)
psql -q "$base/$db" -c "\\copy journey.touchpoints_copy FROM '$data/touchpoints.copy'"
end=$(date +%s%N)
ms=$(( (end - start) / 1000000 ))
echo "COPY of the same $rows rows into a table with the same key and index: $ms ms ($(( rows * 1000 / (ms > 0 ? ms : 1) )) rows/s)"

# The same load with every touchpoint on a journey map's step and instance:
# ingest then also keeps the analytics roll-ups of the instances it touches.
map=0195f0a0-0000-7000-8000-000000000002
step() { echo "{\"key\": \"$1\", \"name\": \"$1\", \"phase\": \"$2\", \"expected_channels\": [], \"importance\": 3, \"target_score\": 8.0, \"moment_of_truth\": false, \"conversion\": false}"; }
steps="[$(step discover before), $(step compare before), $(step order before), $(step delivery during), $(step after_sales after)]"
psql -q "$base/$db" <<SQL
INSERT INTO journey.journey_maps VALUES ('bench', '$map', 'Sofa', 'young family', 'chore', 1, now(), now());
INSERT INTO journey.journey_map_versions VALUES ('bench', '$map', 1, '$steps'::jsonb, now());
SQL
"$LOAD" --target "http://$journey_addr" --profile-target "http://$profile_addr" --call ingest-touchpoints \
  --map-id "$map" --token "$token" --batch 1000 --customers 10000 --connections 2 --concurrency 2 \
  --duration "$DURATION" --warmup 3s
echo "instances rolled up: $(psql -tA "$base/$db" -c "SELECT count(*) FROM journey.journey_instances")"

"$LOAD" --target "http://$journey_addr" --profile-target "http://$profile_addr" --call record-touchpoint \
  --token "$token" --customers 1000 --connections 4 --concurrency 16 --duration 10s --warmup 2s
echo "outbox rows waiting for profile: $(psql -tA "$base/$db" -c "SELECT count(*) FROM journey.outbox")"
