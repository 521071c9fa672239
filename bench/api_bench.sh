#!/usr/bin/env bash
# The node's HTTP API under load, on loopback, with wrk (keep-alive):
#  (a) reconnect storm: every registered femtocell of a fleet (default
#      189,000, the seed operator's size) asks POST /v1/admission once, from
#      inside its registered prefix; wall time for the whole fleet, and the
#      decisions counted by serve's own metrics;
#  (b) payment check latency (POST /v1/payment/check) p50/p99 under load
#      (16 connections), while a day of network events streams into the
#      same node (POST /v1/events);
#  baseline: the same client posting the same bodies to /healthz (405, the
#  HTTP layer alone) on the same server in the same run, as a ratio.
#
#   bench/api_bench.sh [--devices N] [--duration SECONDS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/lib.sh

DEVICES=189000
DURATION=10
while [ $# -gt 0 ]; do
  case "$1" in
    --devices) DEVICES=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "api_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
fail() { echo "api_bench: FAIL: $*" >&2; exit 1; }
inns() { "$@"; }
log() { echo "api_bench: $*" >&2; }

scripts/build femtoguard http_storm >/dev/null || fail "build"
STORM="$ROOT/${BUILD_DIR:-build}/bench/http_storm"
FG="$ROOT/${BUILD_DIR:-build}/src/cli/femtoguard"
command -v wrk >/dev/null || fail "wrk is not installed (scripts/setup)"

W=$(mktemp -d /tmp/fg-api-bench.XXXXXX)
SERVE_PID=""
FEED_PID=""
cleanup() { stop_tree "$FEED_PID"; stop_tree "$SERVE_PID"; rm -rf "$W"; }
trap cleanup EXIT

PORT=$(( 30000 + RANDOM % 20000 ))
log "fleet of $DEVICES femtocells (femtoguard sim, benign world)"
"$FG" sim --scenario benign --devices "$DEVICES" --seed 11 --days 1 --out "$W/world" >/dev/null
"$FG" init --data "$W/data" --listen "127.0.0.1:$PORT" >/dev/null
# The bearer-token API is on the TLS listener by default; this harness drives it with
# plain-HTTP load generators on loopback, so it keeps the lab switch on (docs/operations.md).
sed -i "s/plain_http: false/plain_http: true/" "$W/data"/config.yaml
t0=$(date +%s.%N)
"$FG" device import --data "$W/data" --registry "$W/world/registry.jsonl" >/dev/null
log "registry imported in $(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }') s"
SEGW=$("$FG" token create --data "$W/data" --role segw 2>/dev/null)
PAY=$("$FG" token create --data "$W/data" --role payments 2>/dev/null)
INGEST=$("$FG" token create --data "$W/data" --role ingest 2>/dev/null)
printf '%s' "$INGEST" > "$W/ingest.token"
OPER=$("$FG" token create --data "$W/data" --role operator 2>/dev/null)

# One admission request per registered device, from an address of its own
# inside its first registered prefix (every broadband line has its own
# address; devices of one ISP block share the prefix, not the address, so
# the per-line rate limit must not see them as one line). The storm is the
# fleet in service (active); the other registry entries (suspended,
# decommissioned, provisioned) ask separately, afterwards: each is refused
# and raises an alert.
bodies() {
  jq -nc --arg want "$1" 'foreach (inputs | select(.prefixes and (.prefixes|length) > 0)) as $d (0; . + 1;
    ($d.prefixes[0] | split("/")) as $p |
    ($p[0] | split(".") | map(tonumber) | .[0] * 16777216 + .[1] * 65536 + .[2] * 256 + .[3]) as $base |
    (pow(2; 32 - ($p[1] | tonumber)) | floor) as $size |
    ($base + 1 + (. % ([$size - 2, 1] | max))) as $ip |
    if (($d.status == "active") == ($want == "active")) then
      {device: $d.device, session: ("storm-" + $d.device), cert_fp: "",
       src_ip: "\($ip / 16777216 | floor).\($ip / 65536 | floor % 256).\($ip / 256 | floor % 256).\($ip % 256)",
       endpoint: "segw1", segw: "segw1"}
    else empty end)' "$W/world/registry.jsonl"
}
bodies active > "$W/storm.bodies"
bodies other > "$W/refused.bodies"
N=$(wc -l < "$W/storm.bodies")
NREF=$(wc -l < "$W/refused.bodies")

cat > "$W/pay.lua" <<LUA
local n = 0
function request()
  n = n + 1
  local imsi = string.format("45008990%07d", (n * 7919) % 300000)
  return wrk.format("POST", "/v1/payment/check", {["Authorization"] = "Bearer $PAY", ["Content-Type"] = "application/json"},
    '{"imsi":"' .. imsi .. '","merchant":"m1","amount":1000,"channel":"sms_otp"}')
end
LUA

start_serve() {
  "$FG" serve --data "$W/data" --tls-listen off --threads 2 >> "$W/serve.log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$W/serve.log"; fail "serve did not start"; }
}
start_serve
metric() { curl -sf -H "Authorization: Bearer $OPER" "http://127.0.0.1:$PORT/metrics" | awk -v k="$1" 'index($1, k) == 1 { s += $2 } END { print s + 0 }'; }

# ask_all BODIES DECISION: every body once through POST /v1/admission; sets
# asked (http_storm's line), asked_secs, asked_rate and asked_count (how
# many DECISIONs serve's own metrics counted meanwhile).
ask_all() {
  local key="femtoguard_admission_decisions_total{decision=\"$2\"}" before after
  before=$(metric "$key")
  asked=$("$STORM" 127.0.0.1 "$PORT" /v1/admission "$SEGW" "$1" 64) || fail "$(basename "$1"): $asked"
  after=$(metric "$key")
  asked_secs=$(awk '{ print $4 }' <<<"$asked")
  asked_rate=$(awk '{ print $6 }' <<<"$asked")
  asked_count=$((after - before))
}

log "(a) reconnect storm: the $N femtocells in service ask at once (http_storm, 64 keep-alive connections)"
ask_all "$W/storm.bodies" allow
storm_secs=$asked_secs
storm_rate=$asked_rate
log "storm: $asked; serve metrics: allow +$asked_count"
# Every device in service asked from inside its own line: each must be let in.
[ "$asked_count" -eq "$N" ] || { grep -o '"reasons":\[[^]]*\]' "$W/data/log/admission.jsonl" | sort | uniq -c | sort -rn | head >&2; fail "storm: $asked_count allowed, expected $N"; }

log "(a') the $NREF registry entries not in service ask too"
ask_all "$W/refused.bodies" deny
refused_secs=$asked_secs
refused_rate=$asked_rate
[ "$asked_count" -eq "$NREF" ] || fail "refused: $asked_count denied, expected $NREF"
alerts=0
for _ in $(seq 1 300); do
  alerts=$(metric 'femtoguard_alerts_total')
  [ "$alerts" -ge "$NREF" ] && break
  sleep 0.2
done

log "baseline: the same client and bodies against POST /healthz (405: the HTTP layer alone)"
base=$("$STORM" 127.0.0.1 "$PORT" /healthz "$SEGW" "$W/storm.bodies" 64 || true)
base_rate=$(awk '{ print $6 }' <<<"$base")

# The storm's sessions never end (no SeGW reports them down), and the day of
# events below brings the same devices up from other addresses: on the same
# node that is, rightly, a fleet of clones. A restart drops the live sessions.
stop_tree "$SERVE_PID"
SERVE_PID=""
start_serve
log "(b) payment checks under load for ${DURATION}s (wrk -t2 -c16 --latency) while events stream in"
e0=$(metric 'femtoguard_ingest_events_total')
"$FG" feed --data "$W/data" --server "127.0.0.1:$PORT" --token-file "$W/ingest.token" \
  --events "$W/world/events.jsonl" --duration "$DURATION" --quiet > "$W/feed.log" 2>&1 &
FEED_PID=$!
# The feed reads and sorts its file first; measure once events are flowing.
for _ in $(seq 1 600); do
  [ "$(metric 'femtoguard_ingest_events_total')" -gt "$e0" ] && break
  kill -0 "$FEED_PID" 2>/dev/null || { cat "$W/feed.log" >&2; fail "feed ended before sending"; }
  sleep 0.2
done
e0=$(metric 'femtoguard_ingest_events_total')
pay=$(wrk -t2 -c16 -d"${DURATION}s" --latency -s "$W/pay.lua" "http://127.0.0.1:$PORT/")
# The feed is load, not the subject: stop it with wrk.
e1=$(metric 'femtoguard_ingest_events_total')
stop_tree "$FEED_PID"
FEED_PID=""
pay_rate=$(awk '/^Requests\/sec/ { print $2 }' <<<"$pay")
p50=$(awk '/^ +50%/ { print $2 }' <<<"$pay")
p99=$(awk '/^ +99%/ { print $2 }' <<<"$pay")
fed="$((e1 - e0)) events ingested by serve (POST /v1/events)"

cat <<OUT
api_bench ($(date -u +%FT%TZ), $(nproc) CPUs, serve --threads 2, clients on the same machine)
  (a) reconnect storm: the $N femtocells in service (of $DEVICES registered) through POST /v1/admission in $storm_secs s = $storm_rate/s, all allowed
  baseline (same client, same bodies, POST /healthz -> 405): $base_rate/s -> admission at $(awk -v a="$storm_rate" -v b="$base_rate" 'BEGIN { printf "%.2f", a / b }')x of the bare HTTP rate
  (a') the other $NREF registry entries (suspended, decommissioned, provisioned): $refused_secs s = $refused_rate/s, all denied; $alerts alerts stored
  (b) payment check under load: $pay_rate/s, latency p50 $p50, p99 $p99 (16 connections; $fed at the same time)
OUT
