# Sourced by the benchmark scripts: the release build, a fresh PostgreSQL
# database for the run (dropped at exit with the servers started), free
# loopback ports and a wait for a server's health.
#
#   . bench/lib.sh NAME    # database cx_NAME_<time>; sets CX, LOAD, ADMIN_URL, base, db, data, pids

ADMIN_URL=${CX_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# CX_BENCH_BIN: a directory of release binaries built before (a target
# directory shared with other builds may hold another branch's by now).
if [ -n "${CX_BENCH_BIN:-}" ]; then
  bin=$CX_BENCH_BIN
else
  cargo build --release -q -p cx -p cx-bench
  bin=${CARGO_TARGET_DIR:-target}/release
fi
CX=$bin/cx
LOAD=$bin/cx-load

db="cx_$1_$(date +%s)"
base=${ADMIN_URL%/*}
psql -q "$ADMIN_URL" -c "CREATE DATABASE $db"
data=$(mktemp -d)
export CX_DATA_DIR="$data" CX_DATABASE_URL="$base/$db" CX_LOG=warn \
  CX_JWT_SECRET=bench-secret-0123456789abcdef-0123456789 \
  CX_SERVICE_SECRET=bench-service-secret-0123456789abcdef-01
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  rm -rf "$data"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_serving() {
  for _ in $(seq 1 500); do "$CX" health --addr "http://$1" >/dev/null 2>&1 && return 0; sleep 0.02; done
  echo "no SERVING on $1" >&2
  return 1
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(psql -tA "$ADMIN_URL" -c 'SHOW server_version')"

# Bulk loaders shared by the benches: rows generated inside PostgreSQL
# (INSERT … SELECT generate_series) straight into the owner's own schema for
# tenant $tenant (default bench), then the roll-ups the product would have
# kept had they come through its API. Each migrates its service first.
tenant=${tenant:-bench}
bench_sql() { psql -q -v ON_ERROR_STOP=1 "$base/$db" "$@"; }
elapsed_ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# load_responses ROWS [mixed]: answer g of survey g % 20, day (g / 7) % 365
# + 1 days ago, channel web, app, email or store, step one of 5 of map
# $BENCH_MAP. NPS only, score (g × 7) % 11; with `mixed`, surveys 10–14 are
# CSAT (score 1 + (g / 20) % 5) and 15–19 CES (1 + (g / 20) % 7). Then the
# daily roll-ups, counted as survey's store/rollups.rs `add` does (the
# migration has no rebuild path; no map: the nil UUID, no step: '').
BENCH_MAP=0195f0a0-0000-7000-8000-000000000003
load_responses() {
  local rows=$1 mixed=false start
  [ "${2:-}" = mixed ] && mixed=true
  "$CX" migrate survey >/dev/null
  start=$(date +%s%N)
  bench_sql <<SQL
INSERT INTO survey.survey_responses (tenant_id, id, survey_id, survey_version, survey_type, customer_id,
  map_id, step_key, channel, score, answers, language, responded_at, recorded_at, content_digest)
SELECT '$tenant', 'r' || g, md5('survey' || (g % 20))::uuid, 1, t, md5(((g / 20) % 1000000)::text)::uuid,
  '$BENCH_MAP', (ARRAY['discover', 'compare', 'order', 'delivery', 'after_sales'])[1 + (g / 3) % 5],
  (ARRAY[1, 2, 3, 9])[1 + (g / 11) % 4]::int2,
  (CASE t WHEN 1 THEN (g * 7) % 11 WHEN 2 THEN 1 + (g / 20) % 5 ELSE 1 + (g / 20) % 7 END)::int2, '\\x', 'en',
  date_trunc('day', now()) - interval '1 day' * ((g / 7) % 365 + 1) + interval '1 second' * (g % 86400),
  now(), '\\x'
FROM (SELECT g, (CASE WHEN NOT $mixed OR g % 20 < 10 THEN 1 WHEN g % 20 < 15 THEN 2 ELSE 3 END)::int2 AS t
  FROM generate_series(0, $rows - 1) AS g) s;
VACUUM ANALYZE survey.survey_responses;
SQL
  echo "generated $(psql -tA "$base/$db" -c 'SELECT count(*) FROM survey.survey_responses') responses in $(elapsed_ms "$start") ms"
  start=$(date +%s%N)
  bench_sql <<SQL
INSERT INTO survey.survey_rollups (tenant_id, day, survey_id, map_id, step_key, channel, survey_type,
  n, promoters, passives, detractors, satisfied, score_sum, low_effort, score_squares)
SELECT tenant_id, floor(extract(epoch FROM responded_at) / 86400)::int, survey_id,
  coalesce(map_id, '00000000-0000-0000-0000-000000000000'), coalesce(step_key, ''), channel, survey_type,
  count(*), count(*) FILTER (WHERE survey_type = 1 AND score >= 9),
  count(*) FILTER (WHERE survey_type = 1 AND score BETWEEN 7 AND 8),
  count(*) FILTER (WHERE survey_type = 1 AND score <= 6), count(*) FILTER (WHERE survey_type = 2 AND score >= 4),
  sum(score), count(*) FILTER (WHERE survey_type = 3 AND score >= 5), sum(score * score)
FROM survey.survey_responses
GROUP BY 1, 2, 3, 4, 5, 6, 7;
VACUUM ANALYZE survey.survey_rollups;
SQL
  echo "roll-ups built in $(elapsed_ms "$start") ms: $(psql -tA "$base/$db" -c 'SELECT count(*) FROM survey.survey_rollups') cells"
}

# load_cases: a follow-up case for every NPS detractor whose answer number g
# is a multiple of 100, opened when answered and due 2 days later (as
# survey's store/cases.rs opens them); g % 3 = 0 resolved after a first
# action 3 days in (late), else g % 2 = 0 acted on after 1 day, else open.
load_cases() {
  local start
  start=$(date +%s%N)
  bench_sql <<SQL
INSERT INTO survey.survey_cases (tenant_id, id, response_id, survey_id, survey_type, customer_id, score, state,
  respond_at, due_at, created_at, first_action_at, resolved_at, first_action_micros, resolution_micros, reopen_count)
SELECT tenant_id, md5('case' || id)::uuid, id, survey_id, survey_type, customer_id, score,
  CASE WHEN g % 3 = 0 THEN 3 WHEN g % 2 = 0 THEN 2 ELSE 1 END, responded_at, responded_at + interval '2 days',
  responded_at, responded_at + interval '1 day' * acted, CASE WHEN g % 3 = 0 THEN responded_at + interval '4 days' END,
  86400000000 * acted, CASE WHEN g % 3 = 0 THEN 345600000000 END, 0
FROM (SELECT r.*, substr(id, 2)::bigint AS g,
    CASE WHEN substr(id, 2)::bigint % 3 = 0 THEN 3 WHEN substr(id, 2)::bigint % 2 = 0 THEN 1 END AS acted
  FROM survey.survey_responses r WHERE tenant_id = '$tenant' AND survey_type = 1 AND score <= 6) r
WHERE g % 100 = 0;
VACUUM ANALYZE survey.survey_cases;
SQL
  echo "opened $(psql -tA "$base/$db" -c 'SELECT count(*) FROM survey.survey_cases') cases in $(elapsed_ms "$start") ms"
}

# load_touchpoints ROWS MAP [STEP]: 84 % of ROWS touchpoints on journey map
# MAP (steps discover, compare, order — the conversion —, delivery,
# after_sales): instance g / 5 runs through the 5 steps, a step skipped now
# and then so the funnel narrows, channels switching along the way, a third
# unscored; instance i starts i × STEP seconds ago (default 1), modulo 180
# days. Then the analytics roll-ups rebuilt from
# them as the migration that last replaced them (m0004) does on an existing
# database.
load_touchpoints() {
  local rows=$1 map=$2 every=${3:-1} start steps
  "$CX" migrate journey >/dev/null
  step() { echo "{\"key\": \"$1\", \"name\": \"$1\", \"phase\": \"$2\", \"expected_channels\": [], \"importance\": $3, \"target_score\": 8.0, \"moment_of_truth\": $4, \"conversion\": $5}"; }
  steps="[$(step discover before 2 false false), $(step compare before 3 false false), $(step order before 5 true true), $(step delivery during 5 true false), $(step after_sales after 4 false false)]"
  start=$(date +%s%N)
  bench_sql <<SQL
INSERT INTO journey.journey_maps VALUES ('$tenant', '$map', 'Sofa', 'young family', 'chore', 1, now(), now());
INSERT INTO journey.journey_map_versions VALUES ('$tenant', '$map', 1, '$steps'::jsonb, now());
INSERT INTO journey.touchpoints (tenant_id, id, customer_id, channel, occurred_at, kind, initiator, phase,
  map_id, map_version, step_key, instance_id, score, recorded_at)
SELECT '$tenant', 't' || g, md5(((g / 5) % 1000000)::text)::uuid,
  (ARRAY[1, 2, 9, 10])[1 + ((g / 5) + (g % 5) / 2) % 4]::int2,
  now() - interval '1 second' * (g / 5 * $every % 15552000) + interval '1 minute' * (g % 5),
  1, 2, 1, '$map', 1, (ARRAY['discover', 'compare', 'order', 'delivery', 'after_sales'])[1 + g % 5],
  'i' || (g / 5), CASE WHEN g % 3 = 0 THEN NULL ELSE ((g * 7) % 11)::int2 END, now()
FROM generate_series(0, $rows - 1) AS g
WHERE (g % 5) < 2 OR (g / 5) % (g % 5 + 1) <> 0;
VACUUM ANALYZE journey.touchpoints;
SQL
  echo "generated $(psql -tA "$base/$db" -c 'SELECT count(*) FROM journey.touchpoints') touchpoints in $(elapsed_ms "$start") ms"
  bench_sql <<SQL
DROP TABLE journey.journey_step_sets;
DELETE FROM journey.seaql_migrations WHERE version = 'm0004_instances_per_customer';
SQL
  start=$(date +%s%N)
  "$CX" migrate journey >/dev/null
  echo "roll-ups rebuilt in $(elapsed_ms "$start") ms: $(psql -tA "$base/$db" -c 'SELECT count(*) FROM journey.journey_rollups') counters, $(psql -tA "$base/$db" -c 'SELECT count(*) FROM journey.journey_instances') instances"
  bench_sql -c "VACUUM ANALYZE journey.journey_rollups" -c "VACUUM ANALYZE journey.journey_instances"
}

# load_customers N SINCE SPREAD: bench/sweep-data.sql for N customers of
# $tenant, each with one purchase SINCE to SINCE + SPREAD days ago. Then
# profile's lifecycle and purchase roll-ups rebuilt from them by their
# migrations (m0010, m0011), run again as docs/UPGRADING.md says after a
# rollout.
load_customers() {
  local start
  "$CX" migrate profile >/dev/null
  start=$(date +%s%N)
  bench_sql -v customers="$1" -v since="$2" -v spread="$3" -v tenant="$tenant" -f bench/sweep-data.sql
  echo "generated $1 customers in $(elapsed_ms "$start") ms: $(psql -tA "$base/$db" -c 'SELECT count(*) FROM profile.purchase_days') purchase days"
  bench_sql -c "DELETE FROM profile.seaql_migrations WHERE version IN ('m0010_purchase_spans', 'm0011_purchase_totals')"
  start=$(date +%s%N)
  "$CX" migrate profile >/dev/null
  echo "roll-ups rebuilt in $(elapsed_ms "$start") ms: $(psql -tA "$base/$db" -c 'SELECT count(*) FROM profile.purchase_spans') spans, $(psql -tA "$base/$db" -c 'SELECT count(*) FROM profile.purchase_totals') days"
  bench_sql -c "VACUUM ANALYZE profile.purchase_spans" -c "VACUUM ANALYZE profile.purchase_totals"
}
