#!/usr/bin/env bash
# What a transaction-mode pooler costs the write path, recorded in
# docs/BENCHMARKS.md (Cluster readiness). Never run as a test. Needs
# PostgreSQL (CX_BENCH_DATABASE_URL), psql and pgbouncer (Debian package).
#
#   bench/pooler.sh
#
# SubmitResponse (anonymous NPS answers, `cx serve survey` alone, 4
# connections × 16 in flight) three times on one database:
#   1. direct, the service's own pool of 16: the floor;
#   2. direct with CX_DB_POOLER=transaction: what the handle adds (the
#      schema set per transaction, lone statements in transactions, no
#      statement cache);
#   3. through PgBouncer in transaction mode (16 server connections) with
#      CX_DB_POOLER=transaction: the above plus the pooler's hop.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20s}
. bench/lib.sh pooler
direct_url=$CX_DATABASE_URL

bouncer_dir=$(mktemp -d)
chmod 755 "$bouncer_dir"
bouncer_port=$(free_port)
host_port=${base#*@}
cat > "$bouncer_dir/pgbouncer.ini" <<INI
[databases]
* = host=${host_port%:*} port=${host_port#*:} user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 16
max_client_conn = 200
INI
chmod 644 "$bouncer_dir/pgbouncer.ini"
user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
/usr/sbin/pgbouncer "${user[@]}" "$bouncer_dir/pgbouncer.ini" > "$bouncer_dir/log" 2>&1 &
pids+=("$!")
pooled_url="postgres://postgres@127.0.0.1:$bouncer_port/$db"

run() { # label, then env settings for the server
  local label=$1 addr
  shift
  addr="127.0.0.1:$(free_port)"
  env "$@" CX_NOT_DEPLOYED=segmentation CX_PROFILE_ENDPOINT=http://127.0.0.1:9 CX_LISTEN="$addr" \
    "$CX" serve survey > "$data/survey-$label.log" 2>&1 &
  local server=$!
  wait_serving "$addr"
  echo "== $label"
  "$LOAD" --target "http://$addr" --call submit-response --token "$token" --connections 4 --concurrency 16 \
    --duration "$DURATION" --warmup 2s | grep -v '^survey: '
  kill "$server"
  wait "$server" 2>/dev/null || true
}

# Migrated once, directly, so every run finds the schema ready.
CX_NOT_DEPLOYED=segmentation "$CX" migrate survey > /dev/null
token=$("$CX" token --tenant bench --roles admin)
run direct CX_DATABASE_URL="$direct_url"
run "direct, per transaction" CX_DATABASE_URL="$direct_url" CX_DB_POOLER=transaction
run "through PgBouncer" CX_DATABASE_URL="$pooled_url" CX_DB_POOLER=transaction
echo "responses stored: $(psql -tA "$base/$db" -c "SELECT count(*) FROM survey.survey_responses")"
