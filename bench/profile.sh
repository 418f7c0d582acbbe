#!/usr/bin/env bash
# Benchmarks of the profile service (issue "Foundation and the profile
# service"), recorded in docs/BENCHMARKS.md. Never run as a test.
#
#   bench/profile.sh            # embedded SQLite, in-process cache
#   CX_REDIS_URL=redis://127.0.0.1:6379 bench/profile.sh   # cache hits from Redis
#
# Measures, on one server and with one load generator:
#   1. time from process start to health SERVING, and idle RSS;
#   2. Health/Check (the bare tonic baseline) and GetProfile on a cache hit,
#      at 8 and 64 calls in flight over 4 connections.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
cargo build --release -q -p cx -p cx-bench
CX=target/release/cx
LOAD=target/release/cx-load

data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
addr="127.0.0.1:$port"
export CX_DATA_DIR="$data" CX_LISTEN="$addr" CX_LOG=warn
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$data"; }
trap cleanup EXIT

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
start=$(date +%s%N)
# Profile alone needs journey named not deployed (docs/CONFIGURATION.md).
CX_NOT_DEPLOYED=journey,survey,segmentation,kpi "$CX" serve profile > "$data/server.log" 2>&1 &
server=$!
for _ in $(seq 1 500); do
  "$CX" health --addr "http://$addr" >/dev/null 2>&1 && break
  sleep 0.01
done
ready=$(date +%s%N)
echo "start to SERVING (SQLite, fresh data dir): $(( (ready - start) / 1000000 )) ms"
sleep 2
echo "idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$server/status)"

token=$("$CX" token --tenant bench --roles writer)
for inflight in 8 64; do
  "$LOAD" --target "http://$addr" --call health --connections 4 --concurrency $inflight --duration "$DURATION"
  "$LOAD" --target "http://$addr" --call get-profile --token "$token" --connections 4 --concurrency $inflight --duration "$DURATION"
done
echo "RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$server/status)"
