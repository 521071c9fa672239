#!/usr/bin/env bash
# Cluster-mode detection over JetStream (issue 16, docs/stream.md), in one
# run on one machine, against single-process replay (the in-process engine)
# on the same events:
#
#  1. Producer to alert through JetStream with W = 1, 2, 3, 4 consumer
#     processes (`replay --bus --workers W`: the leader publishes the log
#     while the workers, which take partition leases as serve nodes do, run
#     the device and keyed stages and write the alerts): events/s (wall,
#     from the first publish to the last worker done) and events per
#     CPU-second (workers + publisher + the three nats-servers, which share
#     the machine's cores); the alert set compared with replay's.
#  2. Event-to-action latency under load: one `serve --bus` node, fed by
#     `feed --bus` at 50 % of the 1-worker capacity measured in 1, while
#     probes (a subscriber attaching to a counterfeit femtocell) are posted
#     every 250 ms; latency = POST acknowledged -> the payment check on the
#     node denies that subscriber (the keyed stage has judged it and the
#     exposure bucket has it). p50 / p99 over the probes.
#
#   bench/stream_detect_bench.sh [--devices 20000] [--days 13] [--partitions 16]
#                                [--workers "1 2 3 4"] [--probes 60] [--skip-latency]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/lib.sh

DEVICES=20000
DAYS=13
PARTITIONS=16
WORKERS="1 2 3 4"
PROBES=60
LATENCY=1
while [ $# -gt 0 ]; do
  case "$1" in
    --devices) DEVICES=$2; shift 2 ;;
    --days) DAYS=$2; shift 2 ;;
    --partitions) PARTITIONS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --probes) PROBES=$2; shift 2 ;;
    --skip-latency) LATENCY=0; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "stream_detect_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
fail() { echo "stream_detect_bench: FAIL: $*" >&2; exit 1; }
log() { echo "stream_detect_bench: $*" >&2; }

scripts/build femtoguard >/dev/null || fail "build"
FG="$ROOT/${BUILD_DIR:-build}/src/cli/femtoguard"
[ -x /usr/sbin/nats-server ] || fail "nats-server is not installed (scripts/setup)"

W=$(mktemp -d /tmp/fg-stream-detect-bench.XXXXXX)
SERVE_PID=""
FEED_PID=""
NATS_PIDS=()
cleanup() {
  stop_tree "$FEED_PID"
  stop_tree "$SERVE_PID"
  for p in "${NATS_PIDS[@]}"; do stop_tree "$p"; done
  rm -rf "$W"
}
trap cleanup EXIT

"$FG" init --data "$W/d" >/dev/null
"$FG" sim --scenario kt-2025 --devices "$DEVICES" --seed 5 --days "$DAYS" --out "$W/world" >/dev/null
EVENTS=$(wc -l < "$W/world/events.jsonl")
log "$EVENTS events ($DEVICES devices, $DAYS days of kt-2025)"
ids() { python3 -c 'import json,sys
print("\n".join(sorted(json.loads(l)["id"] for l in open(sys.argv[1]) if l.strip())))' "$1"; }

# ---- baseline: single-process replay ----
"$FG" replay --data "$W/d" --registry "$W/world/registry.jsonl" --cells "$W/world/cells.csv" \
  --events "$W/world/events.jsonl" --alerts "$W/replay.jsonl" > "$W/replay.out"
base_cpu=$(grep -o '[0-9.]* CPU s' "$W/replay.out" | awk '{ print $1 }')
base_rate=$(awk -v e="$EVENTS" -v c="$base_cpu" 'BEGIN { printf "%.0f", e / c }')
ids "$W/replay.jsonl" > "$W/replay.ids"
log "replay (one process): $base_rate events per CPU-second, $(wc -l < "$W/replay.ids") alerts"
echo "| consumers | wall s | events/s | CPU-s (workers + publisher + NATS) | events per CPU-second | vs replay per CPU-second | alerts = replay |"
echo "|---|---|---|---|---|---|---|"
echo "| replay, one process (in-process engine) | - | - | $base_cpu | $base_rate | 1.00 | - |"

# ---- 1. producer to alert through JetStream ----
cap1=0
for n in $WORKERS; do
  nats_start
  c0=$(cpu_ticks "${NATS_PIDS[@]}")
  t0=$(date +%s.%N)
  "$FG" replay --data "$W/d" --bus "$NATS_URLS" --workers "$n" --partitions "$PARTITIONS" \
    --registry "$W/world/registry.jsonl" --cells "$W/world/cells.csv" --events "$W/world/events.jsonl" \
    --alerts "$W/bus-$n.jsonl" > "$W/bus-$n.out" 2> "$W/bus-$n.err" || fail "replay --bus --workers $n: $(tail -5 "$W/bus-$n.err")"
  t1=$(date +%s.%N)
  c1=$(cpu_ticks "${NATS_PIDS[@]}")
  nats_stop
  wcpu=$(sed -n 's/^cpu: workers \([0-9.]*\) s, publisher \([0-9.]*\) s.*/\1 \2/p' "$W/bus-$n.out")
  read -r workers_cpu pub_cpu <<< "$wcpu"
  ids "$W/bus-$n.jsonl" > "$W/bus-$n.ids"
  same=no; cmp -s "$W/replay.ids" "$W/bus-$n.ids" && same=yes
  awk -v e="$EVENTS" -v t0="$t0" -v t1="$t1" -v w="$workers_cpu" -v p="$pub_cpu" -v nc="$((c1 - c0))" -v hz="$HZ" \
      -v n="$n" -v base="$base_rate" -v same="$same" 'BEGIN {
    wall = t1 - t0; cpu = w + p + nc / hz
    printf "| %d | %.1f | %.0f | %.1f (%.1f + %.1f + %.1f) | %.0f | %.3f | %s |\n", n, wall, e / wall, cpu, w, p, nc / hz, e / cpu, (e / cpu) / base, same }'
  [ "$n" = 1 ] && cap1=$(awk -v e="$EVENTS" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", e / (t1 - t0) }')
  [ "$same" = yes ] || log "W=$n: alert set differs from replay's"
done

[ "$LATENCY" = 1 ] || exit 0
[ "$cap1" -gt 0 ] || fail "no 1-worker capacity measured (run with --workers including 1)"

# ---- 2. event-to-action latency at 50 % of the 1-worker capacity ----
nats_start
PORT=$(free_port)
"$FG" init --data "$W/s" --listen "127.0.0.1:$PORT" >/dev/null
sed -i "s/plain_http: false/plain_http: true/; s/partitions: 16/partitions: $PARTITIONS/" "$W/s"/config.yaml
"$FG" device import --data "$W/s" --registry "$W/world/registry.jsonl" >/dev/null
cp "$W/world/cells.csv" "$W/s/cells.csv"
INGEST=$("$FG" token create --data "$W/s" --role ingest 2>/dev/null | grep -o 'fgt_[0-9a-f_]*' | head -1)
PAY=$("$FG" token create --data "$W/s" --role payments 2>/dev/null | grep -o 'fgt_[0-9a-f_]*' | head -1)
"$FG" serve --data "$W/s" --tls-listen off --threads 2 --bus "$NATS_URLS" > "$W/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
rate=$((cap1 / 2))
# A load of about 60 s at that rate (the first lines of the world).
lines=$((rate * 60)); [ "$lines" -gt "$EVENTS" ] && lines=$EVENTS
head -n "$lines" "$W/world/events.jsonl" > "$W/load.jsonl"
last_ts=$(tail -1 "$W/load.jsonl" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["ts"])')
duration=$(awk -v l="$lines" -v r="$rate" 'BEGIN { printf "%.1f", l / r }')
log "latency: background load $rate events/s (50 % of $cap1) for ${duration} s, $PROBES probes"
"$FG" feed --data "$W/s" --bus "$NATS_URLS" --events "$W/load.jsonl" --duration "$duration" --quiet \
  > "$W/feed.log" 2>&1 &
FEED_PID=$!
sleep 3
python3 - "$PORT" "$INGEST" "$PAY" "$PROBES" "$last_ts" > "$W/latency.txt" <<'PY'
import json, sys, time, urllib.request, datetime
port, ingest, pay, probes, last_ts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
base = "http://127.0.0.1:" + port
def post(path, token, body, ctype):
    req = urllib.request.Request(base + path, data=body.encode(), method="POST",
                                 headers={"Authorization": "Bearer " + token, "Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.read().decode()
# Probe time: in the load's event time (its first hour), so that the keyed
# stage's gate sees it as part of the stream.
t = datetime.datetime.fromisoformat(last_ts.replace("Z", "+00:00"))
lat = []
for i in range(probes):
    imsi = "45008998%07d" % i
    ts = (t + datetime.timedelta(seconds=i)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    line = json.dumps({"ts": ts, "type": "ue.attach", "device": "FG-PROBE-%d" % i, "imsi": imsi})
    st, _ = post("/v1/events", ingest, line + "\n", "application/x-ndjson")
    acked = time.monotonic()
    while True:
        st, body = post("/v1/payment/check", pay, json.dumps({"imsi": imsi, "channel": "sms_otp", "ts": ts}),
                        "application/json")
        if json.loads(body)["decision"] != "allow":
            lat.append(time.monotonic() - acked)
            break
        if time.monotonic() - acked > 30:
            lat.append(float("inf"))
            break
        time.sleep(0.005)
    time.sleep(0.25)
lat.sort()
def q(p): return lat[min(len(lat) - 1, int(p * len(lat)))]
print("%d probes: p50 %.3f s, p99 %.3f s, max %.3f s" % (len(lat), q(0.50), q(0.99), lat[-1]))
PY
stop_tree "$FEED_PID"; FEED_PID=""
echo
echo "event-to-action latency at $rate events/s (50 % of the 1-worker capacity): $(cat "$W/latency.txt")"
