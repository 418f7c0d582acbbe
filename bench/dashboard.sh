#!/usr/bin/env bash
# GetDashboard over 10,000,000 survey responses, 10,000,000 journey
# touchpoints and 1,000,000 customers of one tenant (issue 17): cold ≤ 2 s
# and ≥ 10× faster than the same headline figures computed by scans of the
# raw tables; warm (cached) p99 ≤ 5 ms at 16 calls in flight, against
# grpc.health.v1.Health/Check on the same server. Never run as a test.
# Needs PostgreSQL (CX_BENCH_DATABASE_URL), Redis (CX_BENCH_REDIS_URL), psql
# and curl.
#
#   bench/dashboard.sh
#   RESPONSES=100000 TOUCHPOINTS=100000 CUSTOMERS=10000 DURATION=5s bench/dashboard.sh
#
# 1. Load, straight into each owner's schema with its roll-ups (bench/lib.sh):
#    responses of NPS, CSAT and CES surveys over 365 days with a case for
#    1 % of NPS detractors; touchpoints of one 5-step map, instances
#    started evenly over 180 days;
#    customers with one purchase each over the last 2 years.
# 2. The scan floor: hand-written SQL over the raw tables for the headline
#    of the dashboard's days (the 30 ending yesterday) and the 30 before —
#    the responses for NPS/CSAT/CES, the purchases for churn, retention,
#    reactivation and CLV's purchases, the cases for the closed loop and the
#    open ones, the touchpoints of the map for its conversion — timed with
#    psql, twice (the second on warm buffers is the floor).
# 3. profile, survey, journey and kpi as four `cx serve` processes on
#    PostgreSQL and Redis. The first GetDashboard (cold: nothing cached),
#    then 16 in flight on the cached answer against Health/Check; then one
#    SubmitResponse (a new survey generation) and the first call after it.
#    Each cold call's time in each owner (its /metrics) is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

RESPONSES=${RESPONSES:-10000000}
TOUCHPOINTS=${TOUCHPOINTS:-10000000}
CUSTOMERS=${CUSTOMERS:-1000000}
DURATION=${DURATION:-10s}
# A tenant of its own: nothing an earlier run left in Redis is read.
tenant="dash$(date +%s)"
. bench/lib.sh dashboard
export CX_REDIS_URL=${CX_BENCH_REDIS_URL:-redis://127.0.0.1:6379}
load_avg() { echo "load $(cut -d' ' -f1-3 /proc/loadavg)"; }
map=0195f0a0-0000-7000-8000-000000000002

echo "== 1. load ($RESPONSES responses, $TOUCHPOINTS touchpoints, $CUSTOMERS customers; $(load_avg))"
load_responses "$RESPONSES" mixed
load_cases
# 84 % of the rows are kept; instances spread evenly over 180 days.
rows=$(( TOUCHPOINTS * 100 / 84 ))
load_touchpoints "$rows" "$map" "$(( 15552000 * 5 / rows > 0 ? 15552000 * 5 / rows : 1 ))"
load_customers "$CUSTOMERS" 0 730
"$CX" migrate kpi >/dev/null

# The dashboard's days (UTC): the 30 ending yesterday, and the 30 before.
first=$(date -u -d '30 days ago' +%F) last=$(date -u -d '1 day ago' +%F)
before=$(date -u -d '60 days ago' +%F) before_last=$(date -u -d '31 days ago' +%F)
lost_after=365  # profile's LOST_AFTER_DAYS
# Profile's lifecycle counts of first..last, written against purchase_days.
lifecycle() {
  cat <<SQL
SELECT '$1' AS period, count(*) FILTER (WHERE last_before >= '$1'::date - $lost_after) AS at_start,
  count(*) FILTER (WHERE last_before >= '$1'::date - $lost_after AND last_end <= '$2'::date - $lost_after) AS lost_by_end,
  count(*) FILTER (WHERE last_before < '$1'::date - $lost_after) AS lost_at_start,
  count(*) FILTER (WHERE last_before < '$1'::date - $lost_after AND last_end >= '$1') AS reactivated
FROM (SELECT max(day) FILTER (WHERE day < '$1') AS last_before, max(day) AS last_end FROM profile.purchase_days
  WHERE tenant_id = '$tenant' AND day <= '$2' GROUP BY customer_id) c;
SELECT '$1' AS period, sum(purchases) AS purchases, sum(amount_micros) AS micros FROM profile.purchase_days
  WHERE tenant_id = '$tenant' AND currency = 'EUR' AND day BETWEEN '$1' AND '$2';
SQL
}
scan() {
  cat <<SQL
SET timezone = 'UTC';
SELECT responded_at >= '$first' AS days, survey_type, count(*) AS n, count(*) FILTER (WHERE score >= 9) AS promoters,
  count(*) FILTER (WHERE score <= 6) AS detractors, count(*) FILTER (WHERE score >= 4) AS satisfied,
  sum(score) AS score_sum, sum(score * score) AS squares
FROM survey.survey_responses WHERE tenant_id = '$tenant' AND responded_at >= '$before' AND responded_at < '$last'::date + 1
GROUP BY 1, 2 ORDER BY 1, 2;
$(lifecycle "$before" "$before_last")
$(lifecycle "$first" "$last")
SELECT created_at >= '$first' AS days, count(*) AS opened, count(*) FILTER (WHERE first_action_at <= due_at) AS acted
FROM survey.survey_cases WHERE tenant_id = '$tenant' AND created_at >= '$before' AND created_at < '$last'::date + 1
GROUP BY 1 ORDER BY 1;
SELECT count(*) AS open, count(*) FILTER (WHERE due_at < now()) AS overdue FROM survey.survey_cases
WHERE tenant_id = '$tenant' AND state <> 3;
SELECT count(*) AS started, count(*) FILTER (WHERE converted) AS converted
FROM (SELECT min(occurred_at) AS started_at, bool_or(step_key = 'order') AS converted FROM journey.touchpoints
  WHERE tenant_id = '$tenant' AND map_id = '$map' GROUP BY instance_id) i
WHERE started_at >= '$first' AND started_at < '$last'::date + 1;
SQL
}
echo "== 2. the scan floor: days $first to $last and $before to $before_last ($(load_avg))"
for run in 1 2; do
  t0=$(date +%s%N)
  scan | psql -q -A -F ' ' -P footer=off -v ON_ERROR_STOP=1 "$base/$db" -f - > "$data/scan$run.txt"
  scan_ms=$(elapsed_ms "$t0")
  echo "scan $run: $scan_ms ms (one psql session, $(load_avg))"
done
cat "$data/scan2.txt"

echo "== 3. the services"
for s in profile survey journey kpi; do
  port=$(free_port) metrics=$(free_port)
  declare "addr_$s=127.0.0.1:$port" "metrics_$s=127.0.0.1:$metrics"
  export "CX_${s^^}_ENDPOINT=http://127.0.0.1:$port"
done
export CX_NOT_DEPLOYED=segmentation
for s in profile survey journey kpi; do
  a="addr_$s" m="metrics_$s"
  CX_LISTEN=${!a} CX_METRICS_LISTEN=${!m} "$CX" serve "$s" > "$data/$s.log" 2>&1 &
  pids+=("$!")
done
for s in profile survey journey kpi; do a="addr_$s"; wait_serving "${!a}"; done
# Past the first cache-epoch checks against Redis (every 250 ms), which move
# a fresh database's epoch once and would drop what the first call cached.
sleep 2
kpi="http://$addr_kpi"
token=$("$CX" token --tenant "$tenant" --roles reader)
admin=$("$CX" token --tenant "$tenant" --roles admin)  # creates the survey the write answers
# Each owner's calls so far: service method count seconds.
owner_calls() {
  for s in profile survey journey; do
    m="metrics_$s"
    curl -s "http://${!m}/metrics" | sed -n 's/^grpc_server_handling_seconds_\(sum\|count\){grpc_service="\([^"]*\)",grpc_method="\([^"]*\)"} \(.*\)$/\2 \3 \1 \4/p'
  done | sort
}
# What the owners spent between two owner_calls listings (GetDataGeneration apart).
owner_time() {
  python3 - "$1" "$2" <<'PY'
import sys
def read(path):
    out = {}
    for line in open(path):
        service, method, kind, value = line.split()
        out.setdefault((service.split(".")[1], method), {})[kind] = float(value)
    return out
before, after = read(sys.argv[1]), read(sys.argv[2])
for key, now in sorted(after.items()):
    was = before.get(key, {})
    calls = now.get("count", 0) - was.get("count", 0)
    if calls and key[1] != "GetDataGeneration":
        print(f"  {key[0]} {key[1]}: {calls:.0f} calls, {1000 * (now['sum'] - was.get('sum', 0)):.0f} ms")
PY
}

# The first call alone (cold), then the cached answer under load.
cold() {
  owner_calls > "$data/before"
  "$LOAD" --target "$kpi" --call dashboard --token "$token" --connections 1 --concurrency 1 --duration 1ms --warmup 0s \
    | grep '^first call' | tee "$1"
  owner_calls > "$data/after"
  echo "its time in the owners (their /metrics; they answer in parallel):"
  owner_time "$data/before" "$data/after"
}
echo "-- GetDashboard: the first call after the load ($(load_avg))"
cold "$data/cold.txt"
echo "-- GetDashboard: $DURATION at 16 in flight on 4 connections ($(load_avg))"
owner_calls > "$data/warm0"
# JSON: the errors by code.
"$LOAD" --target "$kpi" --call dashboard --token "$token" --connections 4 --concurrency 16 --duration "$DURATION" \
  --warmup 1s --json | grep -v '^first call'
owner_calls > "$data/warm1"
echo "owners asked during it (none when every call was a cache hit):"
owner_time "$data/warm0" "$data/warm1"
# The headline the dashboard gave against the scan's figures.
checked=0
python3 - "$data/scan2.txt" "$data/cold.txt" <<'PY' || checked=1
import re, sys
tables, rows = [], None
for line in open(sys.argv[1]):
    fields = line.split()
    if fields and not re.match(r"^(t|f|[0-9-]+)$", fields[0]):
        rows = []
        tables.append(rows)
    elif fields:
        rows.append([int(x) if re.match(r"^-?[0-9]+$", x) else x for x in fields])
scores, _, _, life, bought, cases, opened, conversion = tables
now = {r[1]: r for r in scores if r[0] == "t"}
life, cases = life[0], {r[0]: r for r in cases}.get("t", ["t", 0, 0])
ratio = lambda k, n: k / n if n else 0.0
nps = now.get(1, [0] * 8); csat = now.get(2, [0] * 8); ces = now.get(3, [0] * 8)
expected = {
    "nps": (nps[2], 100 * ratio(nps[3] - nps[4], nps[2])),
    "csat": (csat[2], ratio(csat[5], csat[2])),
    "ces": (ces[2], ratio(ces[6], ces[2])),
    "churn": (life[1], ratio(life[2], life[1])),
    "retention": (life[1], ratio(life[1] - life[2], life[1])),
    "reactivation": (life[3], ratio(life[4], life[3])),
    "closed_loop_sla": (cases[1], ratio(cases[2], cases[1])),
    "map conversion": (conversion[0][0], ratio(conversion[0][1], conversion[0][0])),
}
line = next(l for l in open(sys.argv[2]) if l.startswith("first call"))
got = {m[0]: (int(m[1]), float(m[2])) for m in re.findall(r"(?:; |: )([a-z_ ]+) n=([0-9]+) v=(-?[0-9.]+)", line)}
bad = [f"{k}: the dashboard {got.get(k)}, the scan {v}" for k, v in expected.items()
       if k not in got or got[k][0] != v[0] or abs(got[k][1] - v[1]) > 1e-4]
cases_now = f"open {opened[0][0]} overdue {opened[0][1]}"
if cases_now not in line:
    bad.append(f"cases: the scan {cases_now}")
for b in bad:
    print("MISMATCH", b)
if bad:
    sys.exit(1)
print("the headline's n and values (CLV apart) and the open cases equal the scan's")
PY

echo "-- Health/Check, the floor: $DURATION at 16 in flight on 4 connections ($(load_avg))"
"$LOAD" --target "$kpi" --call health --connections 4 --concurrency 16 --duration "$DURATION" --warmup 1s --json

echo "-- a write that advances survey's generation (SubmitResponse), then the first call after it ($(load_avg))"
"$LOAD" --target "http://$addr_survey" --call submit-response --token "$admin" --connections 1 --concurrency 1 \
  --duration 100ms --warmup 0s
cold "$data/after-write.txt"
echo "done ($(load_avg))"
exit "$checked"
