#!/usr/bin/env bash
# Journey ingest with the survey service deployed and inviting, against the
# same ingest with survey not deployed; recorded in docs/BENCHMARKS.md.
# Never run as a test. Needs PostgreSQL (CX_BENCH_DATABASE_URL) and psql.
#
#   bench/survey-ingest.sh
#
# Profile, journey and survey run as three processes on the machine's cores.
# Journey asks profile about the customers' ids and delivers their activity
# to it (in both runs alike); survey asks it for consent once per offered
# batch.
# 1. Without: journey started with survey named in CX_NOT_DEPLOYED, so the
#    ingest writes no offers. IngestTouchpoints, batches of 1,000, 2 × 2 in
#    flight.
# 2. With: journey restarted offering every batch to survey, which runs
#    during the measured window, matching 3 triggers (sampling 100 %) that
#    match about half of the touchpoints; half the customers granted the
#    `survey` consent. Then how far survey's inbox lags, and how long it
#    takes to catch up once the load stops.
# Each run prints the CPU seconds each process used over it.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20s}
. bench/lib.sh survey_ingest
profile_addr="127.0.0.1:$(free_port)"
journey_addr="127.0.0.1:$(free_port)"
survey_addr="127.0.0.1:$(free_port)"
sql() { psql -tA "$base/$db" -c "$1"; }

CX_NOT_DEPLOYED=segmentation,kpi CX_LISTEN=$profile_addr CX_JOURNEY_ENDPOINT="http://$journey_addr" \
  CX_SURVEY_ENDPOINT="http://$survey_addr" \
  "$CX" serve profile > "$data/profile.log" 2>&1 &
profile=$!
pids+=("$profile")
wait_serving "$profile_addr"
# SURVEY_POOL: survey's pooled connections (CX_DB_MAX_CONNECTIONS, default 16).
CX_NOT_DEPLOYED=segmentation CX_DB_MAX_CONNECTIONS=${SURVEY_POOL:-16} CX_LISTEN=$survey_addr CX_PROFILE_ENDPOINT="http://$profile_addr" CX_JOURNEY_ENDPOINT="http://$journey_addr" \
  "$CX" serve survey > "$data/survey.log" 2>&1 &
survey=$!
pids+=("$survey")
wait_serving "$survey_addr"
token=$("$CX" token --tenant bench --roles admin)

# Journey checks profile ids with the profile service (once per id and
# cache epoch), so it reaches the live one, which also applies its activity.
start_journey() {
  CX_NOT_DEPLOYED=segmentation${1:+,$1} CX_LISTEN=$journey_addr CX_PROFILE_ENDPOINT="http://$profile_addr" \
    CX_SURVEY_ENDPOINT="http://$survey_addr" "$CX" serve journey >> "$data/journey.log" 2>&1 &
  journey=$!
  pids+=("$journey")
  wait_serving "$journey_addr"
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU of every process on the machine (PostgreSQL's backends included), in ticks.
busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
ingest() {
  local before=() after=() t0 t1 b0 b1 hz
  hz=$(getconf CLK_TCK)
  for p in "$profile" "$journey" "$survey"; do before+=("$(ticks "$p")"); done
  b0=$(busy)
  t0=$(date +%s%N)
  "$LOAD" --target "http://$journey_addr" --profile-target "http://$profile_addr" --call ingest-touchpoints \
    --token "$token" --batch 1000 --customers 10000 --connections 2 --concurrency 2 --duration "$DURATION" \
    --warmup 3s --json "$@"
  t1=$(date +%s%N)
  b1=$(busy)
  for p in "$profile" "$journey" "$survey"; do after+=("$(ticks "$p")"); done
  awk -v w="$(( (t1 - t0) / 1000000 ))" -v hz="$hz" -v p="$(( after[0] - before[0] ))" \
    -v j="$(( after[1] - before[1] ))" -v s="$(( after[2] - before[2] ))" -v m="$(( b1 - b0 ))" \
    'BEGIN { printf "CPU over the %.1f s of cx-load (cores busy on average): journey %.2f, survey %.2f, profile %.2f, whole machine %.2f\n", w / 1000, j / hz / (w / 1000), s / hz / (w / 1000), p / hz / (w / 1000), m / hz / (w / 1000) }'
}

# Triggers and consents first: with survey not deployed journey offers
# nothing, so they cost the runs without nothing. A short ingest creates the
# customers.
start_journey survey
"$LOAD" --target "http://$journey_addr" --profile-target "http://$profile_addr" --call ingest-touchpoints \
  --token "$token" --batch 1000 --customers 10000 --connections 1 --concurrency 1 --duration 1s --warmup 0s --json \
  --survey-target "http://$survey_addr" --consent-every 2
for _ in $(seq 1 300); do
  [ "$(sql "SELECT count(*) FROM profile.outbox WHERE destination = 'survey' AND delivered_at IS NULL")" = 0 ] && break
  sleep 0.2
done
echo "consent decisions survey holds: $(sql "SELECT count(*) FROM survey.survey_consents WHERE granted")"

pending="SELECT count(*) FROM journey.outbox WHERE destination = 'survey' AND delivered_at IS NULL"
oldest="SELECT coalesce(round(extract(epoch FROM now() - min(created_at))::numeric, 1), 0) FROM journey.outbox
  WHERE destination = 'survey' AND delivered_at IS NULL"
# Both runs ROUNDS times in turn, so that other load on the machine falls on both.
for round in $(seq 1 "${ROUNDS:-2}"); do
  echo "== round $round, 1. survey not deployed: journey writes no offers"
  ingest
  kill "$journey" && wait "$journey" 2>/dev/null || true
  echo "== round $round, 2. survey deployed: every batch offered, 3 triggers"
  start_journey ""
  ingest
  echo "at the end: offers waiting for survey $(sql "$pending") (oldest $(sql "$oldest") s),\
 invitation rows $(sql "SELECT count(*) FROM survey.survey_invitations")"
  start=$(date +%s%N)
  for _ in $(seq 1 3000); do
    [ "$(sql "$pending")" = 0 ] && break
    sleep 0.2
  done
  echo "survey caught up $(( ($(date +%s%N) - start) / 1000000 )) ms after the load stopped; offers waiting $(sql "$pending")"
  kill "$journey" && wait "$journey" 2>/dev/null || true
  start_journey survey
done
psql -q "$base/$db" <<SQL
SELECT count(*) AS touchpoints FROM journey.touchpoints;
SELECT state, reason, count(*) FROM survey.survey_invitations GROUP BY state, reason ORDER BY state, reason;
SQL
# What went wrong on the way (CX_LOG=warn): deliveries refused or timed out.
for log in journey survey profile; do
  echo "$log.log: $(wc -l < "$data/$log.log") lines, by message and error:"
  sed -n 's/.*"error":"\([^"]\{0,90\}\).*"message":"\([^"]*\)".*/\2: \1/p' "$data/$log.log" | sort | uniq -c
done
