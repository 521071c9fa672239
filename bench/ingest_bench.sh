#!/usr/bin/env bash
# Event ingest throughput (POST /v1/events) with durable acknowledgement
# (journal + group commit, docs/durability.md) against a baseline binary
# that acknowledges before anything is on disk (a build of a commit before
# the journal), in the same run, alternating, on the same data.
#
# Each run: a fresh node (kt-2025 world, --devices), wrk with --connections
# keep-alive clients posting batches of --batch events for --duration
# seconds; events/s = serve's own femtoguard_ingest_events_total{result="ok"}
# delta over the wrk duration (refused 503s are not counted). Best of --runs.
#
#   bench/ingest_bench.sh --baseline /path/to/old/femtoguard [--runs 3] [--duration 10]
#                         [--connections 8] [--batch 500] [--devices 2000] [--server-threads 2]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/lib.sh

RUNS=3
DURATION=10
CONNS=8
BATCH=500
DEVICES=2000
THREADS=2
BASELINE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --devices) DEVICES=$2; shift 2 ;;
    --server-threads) THREADS=$2; shift 2 ;;
    --baseline) BASELINE=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "ingest_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
fail() { echo "ingest_bench: FAIL: $*" >&2; exit 1; }
log() { echo "ingest_bench: $*" >&2; }

scripts/build femtoguard >/dev/null || fail "build"
FG="$ROOT/${BUILD_DIR:-build}/src/cli/femtoguard"
command -v wrk >/dev/null || fail "wrk is not installed (scripts/setup)"

W=$(mktemp -d /tmp/fg-ingest-bench.XXXXXX)
SERVE_PID=""
cleanup() { stop_tree "$SERVE_PID"; rm -rf "$W"; }
trap cleanup EXIT

"$FG" sim --scenario kt-2025 --devices "$DEVICES" --seed 5 --days 1 --out "$W/world" >/dev/null
# A batch from the middle of the day: a realistic mix of event types.
total=$(wc -l < "$W/world/events.jsonl")
sed -n "$((total / 2)),$((total / 2 + BATCH - 1))p" "$W/world/events.jsonl" > "$W/batch.jsonl"

# wrk: every request posts the batch; with --key each one carries its own
# Idempotency-Key (the journal path remembers it), as `femtoguard feed` does.
cat > "$W/post.lua" <<'LUA'
local body, token, keyed
local n = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  local f = assert(io.open(args[1], "rb")); body = f:read("*a"); f:close()
  token = args[2]; keyed = args[3] == "key"
end
function request()
  n = n + 1
  local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/x-ndjson"}
  if keyed then headers["Idempotency-Key"] = string.format("wrk-%d-%d-%d", os.time(), tid, n) end
  return wrk.format("POST", "/v1/events", headers, body)
end
LUA

metric() {  # name{labels} -> value
  curl -s -H "Authorization: Bearer $OPER" "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}

one_run() {  # binary keyed -> events/s
  local bin=$1 keyed=$2
  rm -rf "$W/data"
  PORT=$(( 30000 + RANDOM % 20000 ))
  "$bin" init --data "$W/data" --listen "127.0.0.1:$PORT" >/dev/null
  # The bearer-token API is on the TLS listener by default; this harness drives it with
  # plain-HTTP load generators on loopback, so it keeps the lab switch on (docs/operations.md).
  sed -i "s/plain_http: false/plain_http: true/" "$W/data"/config.yaml
  "$bin" device import --data "$W/data" --registry "$W/world/registry.jsonl" >/dev/null
  cp "$W/world/cells.csv" "$W/data/cells.csv"
  local token
  token=$("$bin" token create --data "$W/data" --role ingest 2>/dev/null | grep -o 'fgt_[0-9a-f_]*' | head -1)
  OPER=$("$bin" token create --data "$W/data" --role operator 2>/dev/null | grep -o 'fgt_[0-9a-f_]*' | head -1)
  "$bin" serve --data "$W/data" --tls-listen off --threads "$THREADS" > "$W/serve.log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  local e0 e1
  e0=$(metric 'femtoguard_ingest_events_total{result="ok"}'); e0=${e0:-0}
  wrk -t 2 -c "$CONNS" -d "${DURATION}s" -s "$W/post.lua" "http://127.0.0.1:$PORT" -- "$W/batch.jsonl" "$token" \
    "$keyed" > "$W/wrk.out" 2>&1 || fail "wrk: $(cat "$W/wrk.out")"
  e1=$(metric 'femtoguard_ingest_events_total{result="ok"}'); e1=${e1:-0}
  grep -q "Non-2xx" "$W/wrk.out" && log "$(grep Non-2xx "$W/wrk.out") (503: the bus or journal was full; not counted)"
  local fsyncs
  fsyncs=$(metric 'femtoguard_journal_fsyncs_total'); fsyncs=${fsyncs:-0}
  stop_tree "$SERVE_PID"; SERVE_PID=""
  awk -v e="$((e1 - e0))" -v d="$DURATION" -v f="$fsyncs" -v r="$(awk '/Requests\/sec/ {print $2}' "$W/wrk.out")" \
    'BEGIN { printf "%.0f %s %.0f\n", e / d, f, r }'
}

best_new=0; best_base=0
for i in $(seq 1 "$RUNS"); do
  read -r rate fs rps < <(one_run "$FG" key)
  log "run $i durable:  $rate events/s ($rps requests/s, $fs fdatasyncs)"
  [ "$rate" -gt "$best_new" ] && best_new=$rate
  if [ -n "$BASELINE" ]; then
    read -r rate _ rps < <(one_run "$BASELINE" key)
    log "run $i baseline: $rate events/s ($rps requests/s)"
    [ "$rate" -gt "$best_base" ] && best_base=$rate
  fi
done
echo "ingest durable (journal, group commit): best $best_new events/s"
if [ -n "$BASELINE" ]; then
  echo "ingest baseline ($BASELINE): best $best_base events/s"
  awk -v a="$best_new" -v b="$best_base" 'BEGIN { printf "ratio durable / baseline: %.2f\n", a / b }'
fi
