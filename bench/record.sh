#!/usr/bin/env bash
# RecordTouchpoint (issue "Journey service") at several calls in flight,
# recorded in docs/BENCHMARKS.md. Never run as a test. Needs PostgreSQL and
# psql.
#
#   bench/record.sh                     # 1, 4, 16, 32 and 64 in flight, 8 s each
#   IN_FLIGHT="16 64" DURATION=20s bench/record.sh
#   LIVE_PROFILE=1 bench/record.sh      # end to end: profile applies the activity
#   DEADLINE=5s bench/record.sh         # every call with a deadline (a checked transaction)
#
# The profile service runs to create the customers; journey has no profile
# endpoint, so the activity it writes to its outbox waits there (as in
# bench/journey.sh). The touchpoints name customers by profile id, so
# nothing is resolved.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-8s}
IN_FLIGHT=${IN_FLIGHT:-1 4 16 32 64}
. bench/lib.sh record
profile_addr="127.0.0.1:$(free_port)"
journey_addr="127.0.0.1:$(free_port)"
# Profile alone needs journey named not deployed (docs/CONFIGURATION.md).
CX_NOT_DEPLOYED=journey,survey,segmentation,kpi CX_LISTEN=$profile_addr "$CX" serve profile > "$data/profile.log" 2>&1 &
pids+=("$!")
wait_serving "$profile_addr"
# No profile endpoint unless LIVE_PROFILE (journey then checks no profile id).
live=${LIVE_PROFILE:+http://$profile_addr}
env ${live:+CX_PROFILE_ENDPOINT=$live} CX_NOT_DEPLOYED=survey,segmentation CX_LISTEN="$journey_addr" "$CX" serve journey \
  > "$data/journey.log" 2>&1 &
pids+=("$!")
wait_serving "$journey_addr"
token=$("$CX" token --tenant bench --roles writer)
for n in $IN_FLIGHT; do
  echo "$n in flight:"
  "$LOAD" --target "http://$journey_addr" --profile-target "http://$profile_addr" --call record-touchpoint \
    --token "$token" --customers 1000 --connections "$(( n < 4 ? n : 4 ))" --concurrency "$n" \
    --duration "$DURATION" --warmup 2s ${DEADLINE:+--deadline "$DEADLINE"}
done
echo "outbox rows not yet delivered: $(psql -tA "$base/$db" -c "SELECT count(*) FROM journey.outbox WHERE status = 'pending'")"
