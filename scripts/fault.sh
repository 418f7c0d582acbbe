#!/usr/bin/env bash
# The whole fault suite (docs/RELIABILITY.md): builds the release binary and
# runs every scenario against it on the embedded SQLite default and on
# PostgreSQL, then rewrites docs/RELIABILITY.md with the figures. Loopback
# only; every loop is bounded. CI runs the fast subset (`cargo nextest run -p
# cx --test fault`) as part of scripts/test.sh.
#
#   scripts/fault.sh
#
# Needs what scripts/test.sh ensures: PostgreSQL (CX_TEST_DATABASE_URL) and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p cx -p cx-fault
target=${CARGO_TARGET_DIR:-target}
"$target/release/cx-fault" --cx "$target/release/cx" --out docs/RELIABILITY.md --command "scripts/fault.sh" "$@"
