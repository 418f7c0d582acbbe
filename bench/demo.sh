#!/usr/bin/env bash
# Times `cx demo` at its default size (4,500 customers, over 100,000
# touchpoints) with a release build, on the embedded default it starts itself
# (SQLite in a temporary directory). Never run as a test; the aim is ≤ 60 s on
# a 2-core machine, load and dashboard included (docs/DEMO.md).
#
#   bench/demo.sh                 # default size
#   SIZE=large bench/demo.sh      # or small
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-default}
cargo build --release -q -p cx
CX=${CARGO_TARGET_DIR:-target}/release/cx
start=$(date +%s.%N)
NO_COLOR=1 "$CX" demo --size "$SIZE" | tee "${TMPDIR:-/tmp}/cx-demo-$SIZE.txt"
end=$(date +%s.%N)
python3 -c "print(f'cx demo --size $SIZE: {float($end) - float($start):.1f} s wall clock')"
