#!/usr/bin/env bash
# The lifecycle sweep over 1,000,000 profiles on PostgreSQL (issue "Profile
# intelligence"), recorded in docs/BENCHMARKS.md. Never run as a test.
#   1. an ordinary day: 1 % of customers change lifecycle, 1 % intensity;
#   2. a full recompute: every customer due (as after a model change).
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
psql "$URL" -q -f bench/sweep-data.sql
echo "data: $(( $(date +%s) - start )) s to load 1,000,000 customers"
echo "ordinary day:"
target/release/cx-sweep
psql "$URL" -qc "UPDATE profile.customers SET dii_next_change = CURRENT_DATE"
echo "full recompute:"
timeout "${FULL_TIMEOUT:-600}" target/release/cx-sweep || echo "full recompute did not finish within ${FULL_TIMEOUT:-600} s"
