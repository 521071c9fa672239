#!/usr/bin/env bash
# Connection limits (issue 13, docs/limits.md), on loopback, one serve:
#  (a) admission p50/p99 as a SeGW sees it (POST /v1/admission with a
#      segw token, every femtocell of a benign fleet once), one request
#      every 5 ms, alternately on a new connection and on one keep-alive
#      connection, after a warm-up: with no load, then while IDLE silent
#      and SLOW trickling connections are held against the same listener
#      (reopened as soon as serve closes them; a phase outlasts the header
#      timeout, so that churn is inside it), then with no load again; the
#      flooded p99 over the baseline p99 is the figure;
#  (b) serve's RSS before, with and after TLS_IDLE idle TLS connections
#      (handshake done, one request, then keep-alive idle), and with
#      TLS_IDLE TCP connections to the TLS port that say nothing.
#
#   bench/limits_bench.sh [--idle N] [--slow N] [--requests N] [--tls-idle N] [--fg BINARY]
#
# Both sides raise their soft open-files limit to the hard one (serve does it
# itself; limits_bench too): 10,000 + 1,000 client sockets need ~11,100.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/lib.sh

IDLE=10000
SLOW=1000
REQUESTS=2000
TLS_IDLE=10000
FG=""
while [ $# -gt 0 ]; do
  case "$1" in
    --idle) IDLE=$2; shift 2 ;;
    --slow) SLOW=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --tls-idle) TLS_IDLE=$2; shift 2 ;;
    --fg) FG=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "limits_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
fail() { echo "limits_bench: FAIL: $*" >&2; exit 1; }
log() { echo "limits_bench: $*" >&2; }

scripts/build femtoguard limits_bench >/dev/null || fail "build"
BENCH="$ROOT/${BUILD_DIR:-build}/bench/limits_bench"
[ -n "$FG" ] || FG="$ROOT/${BUILD_DIR:-build}/src/cli/femtoguard"
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((IDLE + SLOW + 200)) ] || fail "the client needs $((IDLE + SLOW + 200)) open files (ulimit -Hn is $(ulimit -Hn))"

W=$(mktemp -d /tmp/fg-limits-bench.XXXXXX)
SERVE_PID=""
HOLD_PID=""
cleanup() { stop_tree "$HOLD_PID"; stop_tree "$SERVE_PID"; rm -rf "$W"; }
trap cleanup EXIT

PORT=$(( 30000 + RANDOM % 20000 ))
TLS_PORT=$(( PORT + 1 ))
DEVICES=$(( (REQUESTS * 3 + 200) * 2 ))
log "fleet of $DEVICES femtocells (femtoguard sim, benign world)"
"$FG" sim --scenario benign --devices "$DEVICES" --seed 13 --days 1 --out "$W/world" >/dev/null
"$FG" init --data "$W/data" --listen "127.0.0.1:$PORT" --tls-listen "127.0.0.1:$TLS_PORT" >/dev/null
# The bearer-token API is on the TLS listener by default; this harness drives it with
# plain-HTTP load generators on loopback, so it keeps the lab switch on (docs/operations.md).
sed -i "s/plain_http: false/plain_http: true/" "$W/data"/config.yaml
# The TLS listener must be allowed to hold the idle TLS connections of (b)
# (by default it gets a quarter of the open-files budget), and hold them
# idle for the length of the measurement.
sed -i -e "s/^  tls_max_connections: .*/  tls_max_connections: $((TLS_IDLE + 2000))/" \
  -e "s/^  idle_timeout_s: .*/  idle_timeout_s: 120/" "$W/data/config.yaml"
"$FG" device import --data "$W/data" --registry "$W/world/registry.jsonl" >/dev/null
SEGW=$("$FG" token create --data "$W/data" --role segw 2>/dev/null)
# One body per femtocell in service, from an address inside its prefix (as api_bench.sh).
jq -nc 'inputs | select(.status == "active" and .prefixes and (.prefixes|length) > 0) |
  (.prefixes[0] | split("/") | .[0] | split(".") | map(tonumber)) as $a |
  {device, session: ("lim-" + .device), cert_fp: "",
   src_ip: "\($a[0]).\($a[1]).\($a[2]).\($a[3] + 1)", endpoint: "segw1", segw: "segw1"}' \
  "$W/world/registry.jsonl" > "$W/bodies"
log "$(wc -l < "$W/bodies") admission bodies"

"$FG" serve --data "$W/data" --threads 2 >> "$W/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$W/serve.log"; fail "serve did not start"; }
grep -h "open files limit\|anonymous connections" "$W/serve.log" >&2 || true
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$SERVE_PID/status"; }
log "RSS of serve after start: $(rss) kB"

log "(a) admission: $REQUESTS requests per phase; flood: $IDLE idle + $SLOW slow connections"
"$BENCH" admission "$PORT" "$SEGW" "$W/bodies" "$REQUESTS" "$IDLE" "$SLOW" | tee "$W/admission.out"
ratio() {  # MODE: flooded/baseline p50 and p99 for the fresh or keepalive lines
  awk -v m="$1" '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[$1, kv[1]] = kv[2] } }
    END { printf "limits_bench: %s: flooded/baseline p50 %.2fx, p99 %.2fx\n", m,
            v["flooded-" m, "p50_us"] / v["baseline-" m, "p50_us"], v["flooded-" m, "p99_us"] / v["baseline-" m, "p99_us"] }' "$W/admission.out" >&2
}
ratio fresh
ratio keepalive
[ "$(grep -c "^flooded.*failures=0" "$W/admission.out")" -eq 2 ] || fail "admission requests failed under the flood"

sleep 2
log "(b) RSS of serve: before $(rss) kB"
mkfifo "$W/hold"
# Holds connections of one kind (limits_bench MODE) until they are all open,
# logs serve's RSS with them and again after the holder lets them go.
hold_and_measure() {  # mode out-file what
  "$BENCH" "$1" "$TLS_PORT" "$TLS_IDLE" < "$W/hold" > "$2" &
  HOLD_PID=$!
  exec 7> "$W/hold"
  for _ in $(seq 1 600); do grep -q held "$2" 2>/dev/null && break; sleep 0.2; done
  sleep 1
  log "(b) $(cat "$2") $3: RSS $(rss) kB"
  exec 7>&-
  wait "$HOLD_PID" || true
  HOLD_PID=""
  sleep 3
  log "(b) after they closed: RSS $(rss) kB"
}
hold_and_measure tls-idle "$W/tls.out" "idle TLS connections"
hold_and_measure tcp-idle "$W/tcp.out" "silent TCP connections to the TLS port"
