#!/usr/bin/env bash
# AnalyzeJourney over 10,000,000 touchpoints (2,000,000 instances of 5 steps
# on 4 channels, two thirds scored), recorded in docs/BENCHMARKS.md. Never
# run as a test. Needs PostgreSQL (CX_BENCH_DATABASE_URL) and psql.
#
#   bench/analytics.sh
#
# Rows are generated inside PostgreSQL (INSERT … SELECT generate_series), the
# analytics roll-ups rebuilt from them (timed), then the journey service
# answers: the first call is cold (nothing cached), the load that follows
# reads the cached answer.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-12000000}  # 84 % kept: about 10.1 million touchpoints
. bench/lib.sh analytics
addr="127.0.0.1:$(free_port)"
export CX_LISTEN="$addr"
"$CX" migrate journey >/dev/null
map=0195f0a0-0000-7000-8000-000000000001
step() { echo "{\"key\": \"$1\", \"name\": \"$1\", \"phase\": \"$2\", \"expected_channels\": [], \"importance\": $3, \"target_score\": 8.0, \"moment_of_truth\": $4, \"conversion\": $5}"; }
steps="[$(step discover before 2 false false), $(step compare before 3 false false), $(step order before 5 true true), $(step delivery during 5 true false), $(step after_sales after 4 false false)]"
start=$(date +%s)
psql -q "$base/$db" <<SQL
INSERT INTO journey.journey_maps VALUES ('bench', '$map', 'Sofa', 'young family', 'chore', 1, now(), now());
INSERT INTO journey.journey_map_versions VALUES ('bench', '$map', 1, '$steps'::jsonb, now());
-- Instance g/5 runs through the 5 steps; a step is skipped now and then so
-- the funnel narrows; channels switch along the way; a third is unscored.
INSERT INTO journey.touchpoints (tenant_id, id, customer_id, channel, occurred_at, kind, initiator, phase,
  map_id, map_version, step_key, instance_id, score, recorded_at)
SELECT 'bench', 't' || g, md5(((g / 5) % 1000000)::text)::uuid,
  (ARRAY[1, 2, 9, 10])[1 + ((g / 5) + (g % 5) / 2) % 4]::int2,
  now() - interval '1 second' * (g / 5 % 15552000) + interval '1 minute' * (g % 5),
  1, 2, 1, '$map', 1, (ARRAY['discover', 'compare', 'order', 'delivery', 'after_sales'])[1 + g % 5],
  'i' || (g / 5), CASE WHEN g % 3 = 0 THEN NULL ELSE ((g * 7) % 11)::int2 END, now()
FROM generate_series(0, $ROWS - 1) AS g
WHERE (g % 5) < 2 OR (g / 5) % (g % 5 + 1) <> 0;
VACUUM ANALYZE journey.touchpoints;
SQL
echo "generated $(psql -tA "$base/$db" -c 'SELECT count(*) FROM journey.touchpoints') touchpoints in $(( $(date +%s) - start )) s"

# The rows went in behind the service's back: rebuild the roll-ups from them
# as the migration that introduced them does on an existing database.
psql -q "$base/$db" <<SQL
DROP TABLE journey.journey_rollups, journey.journey_instances;
DROP INDEX journey.touchpoints_by_instance;
DELETE FROM journey.seaql_migrations WHERE version = 'm0002_rollups';
SQL
start=$(date +%s%N)
"$CX" migrate journey >/dev/null
echo "roll-ups rebuilt in $(( ($(date +%s%N) - start) / 1000000 )) ms: $(psql -tA "$base/$db" -c 'SELECT count(*) FROM journey.journey_rollups') counters, $(psql -tA "$base/$db" -c 'SELECT count(*) FROM journey.journey_instances') instances"
psql -q "$base/$db" -c "VACUUM ANALYZE journey.journey_rollups" -c "VACUUM ANALYZE journey.journey_instances"

"$CX" serve journey > "$data/journey.log" 2>&1 &
pids+=("$!")
wait_serving "$addr"
token=$("$CX" token --tenant bench --roles reader)
"$LOAD" --target "http://$addr" --call analyze-journey --map-id "$map" --token "$token" \
  --connections 4 --concurrency 8 --duration 10s --warmup 1s
