#!/usr/bin/env bash
# SubmitResponse at 16 in flight against pgbench writing the same rows at 16
# clients, recorded in docs/BENCHMARKS.md. Never run as a test. Needs
# PostgreSQL (CX_BENCH_DATABASE_URL), psql and pgbench.
#
#   bench/survey-respond.sh
#
# 1. SubmitResponse: anonymous NPS answers (scores 0 to 10 in turn), each
#    with a new client id, to one survey; `cx serve survey` alone, 4
#    connections × 16 in flight.
# 2. pgbench, 16 clients, one transaction each: the two writes of the
#    service's transaction for an anonymous answer (store/responses.rs
#    `insert`, store/rollups.rs `ADD`) into the same tables and indexes, the
#    same day's roll-up cell included; latencies from its per-transaction log.
# 3. pgbench again with the service's reads as well: the lookup of the
#    client id before the transaction, the survey and its version inside it.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20s}
. bench/lib.sh survey_respond
addr="127.0.0.1:$(free_port)"
# Profile is not run: its scores wait in the outbox, written as in production.
CX_NOT_DEPLOYED=segmentation CX_PROFILE_ENDPOINT=http://127.0.0.1:9 CX_LISTEN=$addr "$CX" serve survey > "$data/survey.log" 2>&1 &
pids+=("$!")
wait_serving "$addr"
token=$("$CX" token --tenant bench --roles admin)

out=$("$LOAD" --target "http://$addr" --call submit-response --token "$token" --connections 4 --concurrency 16 \
  --duration "$DURATION" --warmup 2s)
echo "$out"
survey=$(echo "$out" | sed -n 's/^survey: //p')
echo "responses stored: $(psql -tA "$base/$db" -c "SELECT count(*) FROM survey.survey_responses")"

# What the service writes for one anonymous answer now: a web response
# without invitation, customer, map or step, language en (ts_config
# english), and +1 on today's web cell of the survey.
cat > "$data/write.sql" <<SQL
\set score random(0, 10)
BEGIN;
INSERT INTO survey.survey_responses (tenant_id, id, survey_id, survey_version, survey_type, invitation_id,
  customer_id, touchpoint_id, map_id, step_key, channel, score, verbatim, answers, language, responded_at,
  recorded_at, case_id, content_digest, ts_config)
VALUES ('bench', 'pgbench-' || gen_random_uuid(), '$survey', 1, 1, NULL, NULL, NULL, NULL, NULL, 1, :score, NULL,
  '\\x', 'en', now(), now(), NULL, sha256(gen_random_uuid()::text::bytea), 'english'::regconfig);
INSERT INTO survey.survey_rollups (tenant_id, day, survey_id, map_id, step_key, channel, survey_type,
  n, promoters, passives, detractors, satisfied, score_sum, low_effort, score_squares)
VALUES ('bench', floor(extract(epoch FROM now()) / 86400)::int, '$survey', '00000000-0000-0000-0000-000000000000', '',
  1, 1, 1, (:score >= 9)::int, (:score BETWEEN 7 AND 8)::int, (:score <= 6)::int, 0, :score, 0, :score * :score)
ON CONFLICT (tenant_id, day, survey_id, map_id, step_key, channel) DO UPDATE SET
  n = survey_rollups.n + excluded.n, promoters = survey_rollups.promoters + excluded.promoters,
  passives = survey_rollups.passives + excluded.passives, detractors = survey_rollups.detractors + excluded.detractors,
  satisfied = survey_rollups.satisfied + excluded.satisfied, score_sum = survey_rollups.score_sum + excluded.score_sum,
  low_effort = survey_rollups.low_effort + excluded.low_effort,
  score_squares = survey_rollups.score_squares + excluded.score_squares;
END;
SQL
{
  # A constant id (a volatile one would be compared row by row): never found.
  echo "\\set missing random(1, 1000000000)"
  echo "SELECT * FROM survey.survey_responses WHERE tenant_id = 'bench' AND id = 'missing-' || :missing;"
  sed -n '1,2p' "$data/write.sql"
  echo "SELECT * FROM survey.surveys WHERE tenant_id = 'bench' AND id = '$survey';"
  echo "SELECT * FROM survey.survey_versions WHERE tenant_id = 'bench' AND survey_id = '$survey' AND version = 1;"
  sed -n '3,$p' "$data/write.sql"
} > "$data/read-write.sql"

pgbench_run() {
  rm -f "$data"/pgbench_log.*
  pgbench -n -M prepared -c 16 -j 2 -T "${DURATION%s}" -f "$1" -l --log-prefix="$data/pgbench_log" "$base/$db" |
    grep -E '^(number of transactions actually processed|latency average|tps)'
  # Field 3 of the log is the transaction's latency in µs.
  cat "$data"/pgbench_log.* | awk '{print $3}' | sort -n |
    awk '{v[NR] = $1} END {printf "pgbench latency ms p50 %.3f p99 %.3f max %.3f (%d transactions)\n", v[int(NR * 0.5)] / 1000, v[int(NR * 0.99)] / 1000, v[NR] / 1000, NR}'
}
echo "== pgbench, the writes only: 16 clients"
pgbench_run "$data/write.sql"
echo "== pgbench, the service's reads and writes: 16 clients"
pgbench_run "$data/read-write.sql"
psql -q "$base/$db" -c "SELECT day, n, promoters, passives, detractors FROM survey.survey_rollups"
