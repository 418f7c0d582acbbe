#!/usr/bin/env bash
# GetScoreAggregates over 10,000,000 NPS responses against one SQL scan of
# the responses computing the same figures; recorded in docs/BENCHMARKS.md.
# Never run as a test. Needs PostgreSQL (CX_BENCH_DATABASE_URL) and psql.
#
#   bench/survey-aggregates.sh
#
# Rows are generated inside PostgreSQL and the daily roll-ups built from
# them (bench/lib.sh `load_responses`: surveys g % 20, 365 days, 4 channels,
# 5 steps of a map, score (g × 7) % 11), then the
# survey service answers: the first call cold (nothing cached, fresh
# process), then 4 connections × 8 in flight. The scan is timed twice with
# psql's \timing; the script stops if its figures differ from the RPC's.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-10000000}
. bench/lib.sh survey_aggregates
addr="127.0.0.1:$(free_port)"
export CX_LISTEN="$addr"
load_responses "$ROWS"

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
