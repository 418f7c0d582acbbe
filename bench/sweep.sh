#!/usr/bin/env bash
# The lifecycle sweep over 1,000,000 profiles on PostgreSQL (issue "Profile
# intelligence"), recorded in docs/BENCHMARKS.md. Never run as a test.
#   1. an ordinary day: 1 % of customers change lifecycle, 1 % intensity;
#   2. a change of the tenant's intensity model: nothing is rewritten; the
#      distribution and a filtered page are read under the new model;
#   3. a full refresh: every customer due at once (as after the sweep has not
#      run for half a year), the worst case.
set -euo pipefail
cd "$(dirname "$0")/.."
ADMIN=${CX_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=cx_sweep_bench
URL="${ADMIN%/*}/$DB"
cargo build --release -q -p cx-bench
psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
trap 'psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
export CX_DATABASE_URL=$URL CX_DATA_DIR=$(mktemp -d)
target/release/cx-sweep >/dev/null # creates the schema (nothing due yet)
start=$(date +%s)
psql "$URL" -q -v customers=1000000 -v since=80 -v spread=20 -v tenant=bench -f bench/sweep-data.sql
echo "data: $(( $(date +%s) - start )) s to load 1,000,000 customers"
echo "ordinary day:"
target/release/cx-sweep
echo "model change:"
target/release/cx-sweep --model-change bench
psql "$URL" -qc "UPDATE profile.customers SET dii_next_change = CURRENT_DATE"
echo "full refresh:"
timeout "${FULL_TIMEOUT:-600}" target/release/cx-sweep || echo "full refresh did not finish within ${FULL_TIMEOUT:-600} s"
