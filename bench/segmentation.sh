#!/usr/bin/env bash
# Segmentation over 1,000,000 customers on PostgreSQL, against hand-written
# SQL and COPY in the same run; recorded in docs/BENCHMARKS.md. Never run as a
# test. Needs PostgreSQL (CX_BENCH_DATABASE_URL) and psql.
#
#   bench/segmentation.sh
#
# The fact table is generated inside PostgreSQL (customer g: lifecycle
# g mod 5 of prospect, active, at_risk, lost, reactivated; RFM monetary
# g mod 1000 EUR; email consent granted unless g mod 10 = 0; an email address
# unless g mod 20 = 1), then `cx serve segmentation` answers:
# 1. Recompute the reactivation segment (lost, spent ≥ 500, email consent:
#    100,000 members) with RefreshSegment, first (all enter) and again (no
#    change), against the same recompute written by hand in psql into tables
#    shaped like segment_changes and segment_members; EvaluateSegment
#    against a hand-written count.
# 2. Export a segment of every customer by email (850,000 exported, 100,000
#    without consent, 50,000 without an address) with ExportSegment, read to
#    the end by cx-segment, against psql's \copy of the same rows.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-1000000}
. bench/lib.sh segmentation
SEGMENT=${CARGO_TARGET_DIR:-target}/release/cx-segment
addr="127.0.0.1:$(free_port)"
export CX_LISTEN="$addr"
"$CX" migrate segmentation >/dev/null
sql() { psql -q "$base/$db" "$@"; }
start=$(date +%s)
sql <<SQL
SET search_path TO segmentation;
INSERT INTO segment_facts (tenant_id, customer_id, lifecycle, digital_category, consent_email,
  rfm_day, rfm_monetary_micros, touchpoints_90d)
SELECT 'bench', md5('c' || g)::uuid, (ARRAY['prospect', 'active', 'at_risk', 'lost', 'reactivated'])[1 + g % 5],
  (ARRAY['traditional', 'hybrid', 'connected', 'digital_native'])[1 + g % 4], g % 10 <> 0,
  floor(extract(epoch FROM now()) / 86400)::int, (g % 1000)::bigint * 1000000, g % 50
FROM generate_series(0, $ROWS - 1) AS g;
INSERT INTO segment_consents (tenant_id, customer_id, purpose, granted, occur_time, record_time)
SELECT 'bench', md5('c' || g)::uuid, 'email', g % 10 <> 0, now(), now() FROM generate_series(0, $ROWS - 1) AS g;
INSERT INTO segment_contacts (tenant_id, customer_id, kind, value)
SELECT 'bench', md5('c' || g)::uuid, 1, 'c' || g || '@example.com' FROM generate_series(0, $ROWS - 1) AS g
WHERE g % 20 <> 1;
CREATE TABLE bench_changes (LIKE segment_changes INCLUDING ALL);
CREATE TABLE bench_members (LIKE segment_members INCLUDING ALL);
VACUUM ANALYZE;
SQL
echo "generated $ROWS customers' facts, consents and contacts in $(( $(date +%s) - start )) s"

"$CX" serve segmentation > "$data/segmentation.log" 2>&1 &
pids+=("$!")
wait_serving "$addr"
export CX_TOKEN
CX_TOKEN=$("$CX" token --tenant bench --roles writer)
target="http://$addr"

echo "== 1. recompute: the reactivation segment"
reactivation=$("$SEGMENT" --target "$target" create --rule 'profile.lifecycle = "lost" AND rfm.monetary >= 500 AND consent.email')
"$SEGMENT" --target "$target" refresh --segment "$reactivation" --times 3
"$SEGMENT" --target "$target" evaluate --segment "$reactivation" --times 3
hand="f.tenant_id = 'bench' AND f.lifecycle = 'lost' AND f.rfm_monetary_micros >= 500000000 AND f.consent_email"
recompute() { # the four statements of a refresh, written by hand for this rule
  cat <<SQL
BEGIN;
INSERT INTO bench_changes (tenant_id, segment_id, customer_id, entered, change_time, run_id)
SELECT f.tenant_id, '$reactivation', f.customer_id, true, now(), '$1' FROM segment_facts f WHERE $hand
AND NOT EXISTS (SELECT 1 FROM bench_members m WHERE m.tenant_id = f.tenant_id AND m.segment_id = '$reactivation'
  AND m.customer_id = f.customer_id) ORDER BY f.customer_id;
INSERT INTO bench_changes (tenant_id, segment_id, customer_id, entered, change_time, run_id)
SELECT m.tenant_id, m.segment_id, m.customer_id, false, now(), '$1' FROM bench_members m
WHERE m.tenant_id = 'bench' AND m.segment_id = '$reactivation' AND NOT EXISTS (SELECT 1 FROM segment_facts f
  WHERE f.tenant_id = m.tenant_id AND f.customer_id = m.customer_id AND $hand) ORDER BY m.customer_id;
DELETE FROM bench_members WHERE tenant_id = 'bench' AND segment_id = '$reactivation'
  AND customer_id IN (SELECT customer_id FROM bench_changes WHERE run_id = '$1' AND NOT entered);
INSERT INTO bench_members (tenant_id, segment_id, customer_id, entered_at)
SELECT tenant_id, segment_id, customer_id, change_time FROM bench_changes WHERE run_id = '$1' AND entered;
COMMIT;
SQL
}
echo "-- the same recompute by hand: first (all enter), then twice again (no change)"
for run in 1 2 3; do
  t0=$(date +%s%N)
  recompute "$(python3 -c 'import uuid; print(uuid.uuid4())')" | sql -c "SET search_path TO segmentation" -f -
  echo "hand-written recompute $(( ($(date +%s%N) - t0) / 1000000 )) ms (psql, one transaction)"
done
echo "-- a hand-written count, three times"
sql <<SQL
SET search_path TO segmentation;
\timing on
SELECT count(*) FROM segment_facts f WHERE $hand;
SELECT count(*) FROM segment_facts f WHERE $hand;
SELECT count(*) FROM segment_facts f WHERE $hand;
SQL

echo "== 2. export: every customer by email"
everyone=$("$SEGMENT" --target "$target" create --rule 'profile.lifecycle EXISTS')
"$SEGMENT" --target "$target" refresh --segment "$everyone" --times 1
sql -c "VACUUM ANALYZE segmentation.segment_members"
"$SEGMENT" --target "$target" export --segment "$everyone" --page-size 10000 --times 3
echo "-- the same rows by \\copy, three times"
copy="\\copy (SELECT m.customer_id, k.value FROM segment_members m JOIN segment_consents c
  ON c.tenant_id = m.tenant_id AND c.customer_id = m.customer_id AND c.purpose = 'email' AND c.granted
  JOIN segment_contacts k ON k.tenant_id = m.tenant_id AND k.customer_id = m.customer_id AND k.kind = 1
  WHERE m.tenant_id = 'bench' AND m.segment_id = '$everyone' ORDER BY m.customer_id, k.value) TO '/dev/null'"
copy=$(echo "$copy" | tr '\n' ' ')
for _ in 1 2 3; do
  t0=$(date +%s%N)
  sql -c "SET search_path TO segmentation" -c "$copy"
  echo "\\copy of the export's rows $(( ($(date +%s%N) - t0) / 1000000 )) ms"
done
