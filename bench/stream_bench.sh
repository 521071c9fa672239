#!/usr/bin/env bash
# Cluster-mode ingest (issue 16, docs/stream.md): POST /v1/events acknowledged
# once a 3-node JetStream cluster (R3, file store) has stored the batch
# (`serve --bus`), against the same node acknowledging once its local journal
# has it (the in-process bus, the default), in the same run, alternating, on
# the same data.
#
# What is compared is ingest up to the acknowledgement. The journal path also
# runs detection on the node; the JetStream path does not (consumption is not
# built yet), so per-CPU-second figures count every process involved: serve,
# and in JetStream mode the three nats-servers too (all share this machine's
# cores). events/s = serve's femtoguard_ingest_events_total{result="ok"} delta
# over the wrk run; CPU = utime+stime of those processes over the same run.
#
#   bench/stream_bench.sh [--runs 3] [--duration 10] [--connections 8] [--batch 500]
#                         [--devices 2000] [--server-threads 2] [--partitions 16]
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
PARTITIONS=16
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --devices) DEVICES=$2; shift 2 ;;
    --server-threads) THREADS=$2; shift 2 ;;
    --partitions) PARTITIONS=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "stream_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
fail() { echo "stream_bench: FAIL: $*" >&2; exit 1; }
log() { echo "stream_bench: $*" >&2; }

scripts/build femtoguard >/dev/null || fail "build"
FG="$ROOT/${BUILD_DIR:-build}/src/cli/femtoguard"
command -v wrk >/dev/null || fail "wrk is not installed (scripts/setup)"
[ -x /usr/sbin/nats-server ] || fail "nats-server is not installed (scripts/setup)"

W=$(mktemp -d /tmp/fg-stream-bench.XXXXXX)
SERVE_PID=""
NATS_PIDS=()
cleanup() {
  stop_tree "$SERVE_PID"
  for p in "${NATS_PIDS[@]}"; do stop_tree "$p"; done
  rm -rf "$W"
}
trap cleanup EXIT


"$FG" sim --scenario kt-2025 --devices "$DEVICES" --seed 5 --days 1 --out "$W/world" >/dev/null
total=$(wc -l < "$W/world/events.jsonl")
sed -n "$((total / 2)),$((total / 2 + BATCH - 1))p" "$W/world/events.jsonl" > "$W/batch.jsonl"

cat > "$W/post.lua" <<'LUA'
local body, token
local n = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  local f = assert(io.open(args[1], "rb")); body = f:read("*a"); f:close()
  token = args[2]
end
function request()
  n = n + 1
  local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/x-ndjson",
                   ["Idempotency-Key"] = string.format("wrk-%d-%d-%d", os.time(), tid, n)}
  return wrk.format("POST", "/v1/events", headers, body)
end
LUA

metric() {  # name{labels} -> value
  curl -s -H "Authorization: Bearer $OPER" "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}

one_run() {  # mode (journal | jetstream) -> "events/s events-per-cpu-s"
  local mode=$1 bus=()
  rm -rf "$W/data"
  if [ "$mode" = jetstream ]; then nats_start; bus=(--bus "$NATS_URLS"); fi
  PORT=$(free_port)
  "$FG" init --data "$W/data" --listen "127.0.0.1:$PORT" >/dev/null
  sed -i "s/plain_http: false/plain_http: true/; s/partitions: 16/partitions: $PARTITIONS/" "$W/data"/config.yaml
  "$FG" device import --data "$W/data" --registry "$W/world/registry.jsonl" >/dev/null
  cp "$W/world/cells.csv" "$W/data/cells.csv"
  local token
  token=$("$FG" token create --data "$W/data" --role ingest 2>/dev/null | grep -o 'fgt_[0-9a-f_]*' | head -1)
  OPER=$("$FG" token create --data "$W/data" --role operator 2>/dev/null | grep -o 'fgt_[0-9a-f_]*' | head -1)
  "$FG" serve --data "$W/data" --tls-listen off --threads "$THREADS" "${bus[@]}" > "$W/serve.log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  local e0 e1 c0 c1
  e0=$(metric 'femtoguard_ingest_events_total{result="ok"}'); e0=${e0:-0}
  c0=$(cpu_ticks "$SERVE_PID" "${NATS_PIDS[@]}")
  wrk -t 2 -c "$CONNS" -d "${DURATION}s" -s "$W/post.lua" "http://127.0.0.1:$PORT" -- "$W/batch.jsonl" "$token" \
    > "$W/wrk.out" 2>&1 || fail "wrk: $(cat "$W/wrk.out")"
  c1=$(cpu_ticks "$SERVE_PID" "${NATS_PIDS[@]}")
  e1=$(metric 'femtoguard_ingest_events_total{result="ok"}'); e1=${e1:-0}
  grep -q "Non-2xx" "$W/wrk.out" && log "$mode: $(grep Non-2xx "$W/wrk.out") (503s; not counted)"
  stop_tree "$SERVE_PID"; SERVE_PID=""
  [ "$mode" = jetstream ] && nats_stop
  awk -v e="$((e1 - e0))" -v d="$DURATION" -v c="$((c1 - c0))" -v hz="$HZ" \
    'BEGIN { cpu = c / hz; printf "%.0f %.0f %.1f\n", e / d, (cpu > 0 ? e / cpu : 0), cpu }'
}

best_js=0; best_js_cpu=0; best_j=0; best_j_cpu=0
for i in $(seq 1 "$RUNS"); do
  read -r rate per_cpu cpu < <(one_run jetstream)
  log "run $i jetstream (R3, 3 servers): $rate events/s, $per_cpu events/CPU-s ($cpu CPU-s)"
  [ "$rate" -gt "$best_js" ] && best_js=$rate && best_js_cpu=$per_cpu
  read -r rate per_cpu cpu < <(one_run journal)
  log "run $i journal (in-process bus):  $rate events/s, $per_cpu events/CPU-s ($cpu CPU-s)"
  [ "$rate" -gt "$best_j" ] && best_j=$rate && best_j_cpu=$per_cpu
done
echo "ingest via JetStream (R3, 3 local servers): best $best_js events/s, $best_js_cpu events per CPU-second"
echo "ingest via journal + in-process bus:        best $best_j events/s, $best_j_cpu events per CPU-second"
awk -v a="$best_js" -v b="$best_j" -v c="$best_js_cpu" -v d="$best_j_cpu" \
  'BEGIN { printf "ratio jetstream / journal: %.2f (events/s), %.2f (per CPU-second)\n", a / b, c / d }'
