#!/usr/bin/env bash
# GetScoreAggregates over 10,000,000 NPS responses (20 surveys, 365 days, 4
# channels, 5 steps of a map) against one SQL scan of the responses
# computing the same figures; recorded in docs/BENCHMARKS.md. Never run as a
# test. Needs PostgreSQL (CX_BENCH_DATABASE_URL) and psql.
#
#   bench/survey-aggregates.sh
#
# Rows are generated inside PostgreSQL (INSERT … SELECT generate_series),
# the daily roll-ups built from them by one INSERT … SELECT that counts as
# store/rollups.rs `add` does (the migration has no rebuild path), then the
# survey service answers: the first call cold (nothing cached, fresh
# process), then 4 connections × 8 in flight. The scan is timed twice with
# psql's \timing; the script stops if its figures differ from the RPC's.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-10000000}
. bench/lib.sh survey_aggregates
addr="127.0.0.1:$(free_port)"
export CX_LISTEN="$addr"
"$CX" migrate survey >/dev/null
map=0195f0a0-0000-7000-8000-000000000003
start=$(date +%s)
psql -q "$base/$db" <<SQL
-- Answer g: survey g % 20, day (g / 7) % 365 + 1 days ago, channel web,
-- app, email or store, step one of 5, score (g × 7) % 11.
INSERT INTO survey.survey_responses (tenant_id, id, survey_id, survey_version, survey_type, customer_id,
  map_id, step_key, channel, score, answers, language, responded_at, recorded_at, content_digest)
SELECT 'bench', 'r' || g, md5('survey' || (g % 20))::uuid, 1, 1, md5(((g / 20) % 1000000)::text)::uuid,
  '$map', (ARRAY['discover', 'compare', 'order', 'delivery', 'after_sales'])[1 + (g / 3) % 5],
  (ARRAY[1, 2, 3, 9])[1 + (g / 11) % 4]::int2, ((g * 7) % 11)::int2, '\\x', 'en',
  date_trunc('day', now()) - interval '1 day' * ((g / 7) % 365 + 1) + interval '1 second' * (g % 86400),
  now(), '\\x'
FROM generate_series(0, $ROWS - 1) AS g;
VACUUM ANALYZE survey.survey_responses;
SQL
echo "generated $(psql -tA "$base/$db" -c 'SELECT count(*) FROM survey.survey_responses') responses in $(( $(date +%s) - start )) s"

# The rows went in behind the service's back: their roll-ups, as
# store/rollups.rs adds them one answer at a time (no map: the nil UUID,
# no step: '').
start=$(date +%s%N)
psql -q "$base/$db" <<SQL
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
echo "roll-ups built in $(( ($(date +%s%N) - start) / 1000000 )) ms: $(psql -tA "$base/$db" -c 'SELECT count(*) FROM survey.survey_rollups') cells"

first=$(date -u -d '366 days ago' +%F)
last=$(date -u +%F)
range="responded_at >= '$first' AND responded_at < '$last'::date + 1"
scan="SELECT count(*) AS n, count(*) FILTER (WHERE score >= 9) AS promoters,
  count(*) FILTER (WHERE score BETWEEN 7 AND 8) AS passives, count(*) FILTER (WHERE score <= 6) AS detractors,
  round(100.0 * (count(*) FILTER (WHERE score >= 9) - count(*) FILTER (WHERE score <= 6)) / count(*), 4) AS nps
  FROM survey.survey_responses WHERE tenant_id = 'bench' AND survey_type = 1 AND $range"
echo "== the scan of the responses, twice"
psql "$base/$db" <<SQL
\timing on
$scan;
$scan;
SQL
expected=$(psql -tA -F ' ' "$base/$db" -c "$scan")

CX_NOT_DEPLOYED=segmentation CX_PROFILE_ENDPOINT=http://127.0.0.1:9 "$CX" serve survey > "$data/survey.log" 2>&1 &
pids+=("$!")
wait_serving "$addr"
token=$("$CX" token --tenant bench --roles reader)
out=$("$LOAD" --target "http://$addr" --call score-aggregates --start-day "$first" --end-day "$last" --token "$token" \
  --connections 4 --concurrency 8 --duration 10s --warmup 1s)
echo "$out"
got=$(echo "$out" | sed -n 's/.*; n \([0-9]*\) promoters \([0-9]*\) passives \([0-9]*\) detractors \([0-9]*\) nps \(.*\)$/\1 \2 \3 \4 \5/p')
if [ "$got" != "$expected" ]; then
  echo "MISMATCH: GetScoreAggregates says '$got', the scan '$expected'" >&2
  exit 1
fi
echo "the RPC's figures equal the scan's: $got"
