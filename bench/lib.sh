# Sourced by the benchmark scripts: the release build, a fresh PostgreSQL
# database for the run (dropped at exit with the servers started), free
# loopback ports and a wait for a server's health.
#
#   . bench/lib.sh NAME    # database cx_NAME_<time>; sets CX, LOAD, ADMIN_URL, base, db, data, pids

ADMIN_URL=${CX_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cargo build --release -q -p cx -p cx-bench
CX=${CARGO_TARGET_DIR:-target}/release/cx
LOAD=${CARGO_TARGET_DIR:-target}/release/cx-load

db="cx_$1_$(date +%s)"
base=${ADMIN_URL%/*}
psql -q "$ADMIN_URL" -c "CREATE DATABASE $db"
data=$(mktemp -d)
export CX_DATA_DIR="$data" CX_DATABASE_URL="$base/$db" CX_LOG=warn \
  CX_JWT_SECRET=bench-secret-0123456789abcdef-0123456789 \
  CX_SERVICE_SECRET=bench-service-secret-0123456789abcdef-01
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  rm -rf "$data"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_serving() {
  for _ in $(seq 1 500); do "$CX" health --addr "http://$1" >/dev/null 2>&1 && return 0; sleep 0.02; done
  echo "no SERVING on $1" >&2
  return 1
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(psql -tA "$ADMIN_URL" -c 'SHOW server_version')"
