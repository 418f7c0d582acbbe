#!/usr/bin/env bash
# Starts the suite exactly as README.md tells a newcomer (`cargo run -p cx --
# serve all`, embedded default) and checks it from the outside with grpcurl:
# health, reflection, an authenticated call, a refused one, and a clean exit
# on SIGTERM. Needs grpcurl on PATH (scripts/test.sh provides it).
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port
passed=0
server=""
cleanup() {
  [ -n "$server" ] && kill -9 "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "smoke: FAILED: $1" >&2
  tail -n 20 "$work/server.log" >&2 || true
  echo "smoke: $passed passed, 1 failed"
  exit 1
}
pass() { passed=$((passed + 1)); echo "ok - $1"; }

cargo build -q -p cx
# The README command, run from a fresh directory so ./data is new.
(cd "$work" && CX_LISTEN=$addr exec cargo run -q --manifest-path "$OLDPWD/Cargo.toml" -p cx -- serve all) \
  > "$work/server.log" 2>&1 &
server=$!

for _ in $(seq 1 120); do
  grpcurl -plaintext "$addr" grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"' && break
  sleep 0.25
done
grpcurl -plaintext "$addr" grpc.health.v1.Health/Check | grep -q '"SERVING"' || fail "health is not SERVING"
pass "health check answers SERVING"

services=$(grpcurl -plaintext "$addr" list)
grep -qx 'cx.profile.v1.ProfileService' <<<"$services" || fail "reflection does not list the profile service"
grep -qx 'cx.journey.v1.JourneyService' <<<"$services" || fail "reflection does not list the journey service"
grep -qx 'cx.survey.v1.SurveyService' <<<"$services" || fail "reflection does not list the survey service"
grep -qx 'cx.segmentation.v1.SegmentationService' <<<"$services" \
  || fail "reflection does not list the segmentation service"
grep -qx 'cx.kpi.v1.KpiService' <<<"$services" || fail "reflection does not list the kpi service"
grep -qx 'grpc.health.v1.Health' <<<"$services" || fail "reflection does not list health"
pass "grpcurl list shows the services"

grpcurl -plaintext "$addr" describe cx.profile.v1.ProfileService.ResolveProfile | grep -q 'ResolveProfileRequest' \
  || fail "describe does not show ResolveProfile"
pass "grpcurl describe reads the service through reflection"

token=$(cd "$work" && cargo run -q --manifest-path "$OLDPWD/Cargo.toml" -p cx -- token --tenant smoke --roles writer)
request='{"identity": {"kind": "IDENTITY_KIND_EMAIL", "value": " Smoke@Example.com "}, "create_if_missing": true}'
resolved=$(grpcurl -plaintext -H "authorization: Bearer $token" -d "$request" "$addr" \
  cx.profile.v1.ProfileService/ResolveProfile) || fail "ResolveProfile with a token"
grep -q '"value": "smoke@example.com"' <<<"$resolved" || fail "ResolveProfile did not normalise the email"
pass "ResolveProfile with a cx token creates a normalised profile"
profile_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["profile"]["id"])' <<<"$resolved")

# The journey service, its call to profile and the outbox, all in one process.
when=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
touchpoints='{"touchpoints": [{"id": "smoke-1", "identity": {"kind": "IDENTITY_KIND_EMAIL", "value": "smoke@example.com"},
  "channel": "CHANNEL_WEB", "occur_time": "'$when'", "kind": "INTERACTION_KIND_INFORMATIVE",
  "initiator": "INITIATOR_PULL"}]}'
grpcurl -plaintext -H "authorization: Bearer $token" -d "$touchpoints" "$addr" \
  cx.journey.v1.JourneyService/IngestTouchpoints | grep -q '"accepted": 1' || fail "IngestTouchpoints"
grpcurl -plaintext -H "authorization: Bearer $token" -d '{"profile_id": "'$profile_id'"}' "$addr" \
  cx.journey.v1.JourneyService/ListTimeline | grep -q '"id": "smoke-1"' || fail "the touchpoint is not on the timeline"
pass "IngestTouchpoints resolves the email to the profile and ListTimeline shows it"

touched=""
for _ in $(seq 1 40); do
  if grpcurl -plaintext -H "authorization: Bearer $token" -d '{"id": "'$profile_id'"}' "$addr" \
    cx.profile.v1.ProfileService/GetProfile | grep -q '"lastTouchTime": "'$when'"'; then touched=yes; break; fi
  sleep 0.25
done
[ -n "$touched" ] || fail "the profile never showed the touchpoint (outbox delivery)"
pass "the outbox brings the touchpoint to the profile's last touch"

# The README's segment rule with two mistakes: both reported, with the nearest names.
rule='{"rule": "profile.lifecycle = \"lsot\" and rfm.monetry >= 500"}'
checked=$(grpcurl -plaintext -H "authorization: Bearer $token" -d "$rule" "$addr" \
  cx.segmentation.v1.SegmentationService/ValidateRule) || fail "ValidateRule"
grep -q 'did you mean \\"lost\\"?' <<<"$checked" || fail "ValidateRule did not suggest lost: $checked"
grep -q 'did you mean rfm.monetary?' <<<"$checked" || fail "ValidateRule did not suggest rfm.monetary: $checked"
pass "ValidateRule reports every error of a rule with the nearest names"

# The kpi service asks survey's roll-ups as itself: no answer yet, n 0.
kpi='{"metric": "METRIC_NPS", "start_day": "2026-03-01", "end_day": "2026-03-31"}'
got=$(grpcurl -plaintext -H "authorization: Bearer $token" -d "$kpi" "$addr" cx.kpi.v1.KpiService/GetKpi) \
  || fail "GetKpi"
grep -q '"intervalMethod": "nps-margin"' <<<"$got" || fail "GetKpi did not answer an NPS: $got"
pass "GetKpi reads survey's aggregates through the kpi service"

# The dashboard in one call: every headline KPI, from survey and profile.
got=$(grpcurl -plaintext -H "authorization: Bearer $token" "$addr" cx.kpi.v1.KpiService/GetDashboard) \
  || fail "GetDashboard"
grep -q '"metric": "METRIC_CLOSED_LOOP_SLA"' <<<"$got" || fail "GetDashboard has no closed loop: $got"
grep -q '"metric": "METRIC_CHURN"' <<<"$got" || fail "GetDashboard has no churn: $got"
pass "GetDashboard answers every headline KPI in one call"

if out=$(grpcurl -plaintext -d "$request" "$addr" cx.profile.v1.ProfileService/ResolveProfile 2>&1); then
  fail "a call without a token was accepted"
fi
grep -q 'Unauthenticated' <<<"$out" || fail "a call without a token is not UNAUTHENTICATED: $out"
pass "a call without a token is UNAUTHENTICATED"

CX_LISTEN=$addr target/debug/cx health >/dev/null || fail "cx health does not exit 0"
pass "cx health exits 0"

kill -TERM "$server"
for _ in $(seq 1 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.25; done
kill -0 "$server" 2>/dev/null && fail "still running 25 s after SIGTERM"
status=0
wait "$server" || status=$?
server=""
[ "$status" -eq 0 ] || fail "exit status $status after SIGTERM"
pass "SIGTERM stops it cleanly"

echo "smoke: $passed passed, 0 failed"
