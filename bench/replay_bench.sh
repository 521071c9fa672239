#!/usr/bin/env bash
# femtoguard replay at fleet scale: throughput (events/s on one core) and
# peak memory per device and per subscriber, against the ceiling of only
# reading and parsing the same events file with simdjson, in the same run.
#
#   bench/replay_bench.sh [--events N] [--devices N] [--subscribers N]
#                         [--data DIR] [--runs N] [--baseline FEMTOGUARD]
#                         [--thp]
#
# Defaults: 10,000,000 events over 189,000 devices and 1,000,000
# subscribers (bench/gen_events.cc, seed 1). The generated inputs are kept
# in --data DIR (default /tmp/fg-replay-bench-data) and reused when their
# parameters match. Memory comes from /usr/bin/time -v (maximum resident
# set size) of three replays:
#   empty    - no devices, no events (the process and the cell grid)
#   devices  - the devices with device-side events only, no subscribers
#   full     - devices and subscribers, the whole event mix
# per device = (devices - empty) / devices; per subscriber =
# (full - devices) / subscribers (this includes the CSG lists).
# Rates are per CPU-second of the single-threaded loop (per core), and per
# wall second; --runs N repeats the timed runs and reports each.
# --baseline BIN: a femtoguard binary of another commit (e.g. built from a
# `git worktree` of it), replayed on the same input alternately with this
# one, --runs times each; the ratio compares the best run of each (this
# machine is shared: memory latency swings by tens of % from minute to
# minute, and the best of several interleaved runs is the least disturbed).
# --thp: also replays this build with GLIBC_TUNABLES=glibc.malloc.hugetlb=1
# (malloc's memory advised as transparent huge pages: fewer TLB misses on
# the random lines every event touches), alternately, best run reported.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

EVENTS=10000000
DEVICES=189000
SUBSCRIBERS=1000000
DATA=/tmp/fg-replay-bench-data
RUNS=1
BASELINE=
THP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --events) EVENTS=${2:-}; shift 2 ;;
    --devices) DEVICES=${2:-}; shift 2 ;;
    --subscribers) SUBSCRIBERS=${2:-}; shift 2 ;;
    --data) DATA=${2:-}; shift 2 ;;
    --runs) RUNS=${2:-}; shift 2 ;;
    --baseline) BASELINE=${2:-}; shift 2 ;;
    --thp) THP=1; shift ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "replay_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
for v in "$EVENTS" "$DEVICES" "$SUBSCRIBERS" "$RUNS"; do
  [[ $v =~ ^[0-9]+$ ]] || { echo "replay_bench: numbers only" >&2; exit 2; }
done
[ "$DEVICES" -ge 1 ] && [ "$SUBSCRIBERS" -ge 1 ] && [ "$RUNS" -ge 1 ] || { echo "replay_bench: devices, subscribers, runs >= 1" >&2; exit 2; }
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || { echo "replay_bench: --baseline $BASELINE is not an executable" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "replay_bench: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

if ! build_out=$(scripts/build femtoguard gen_events replay_parse_bench 2>&1); then
  printf '%s\n' "$build_out" | tail -40 >&2
  echo "replay_bench: FAIL: build failed" >&2
  exit 1
fi
BUILD="$ROOT/${BUILD_DIR:-build}"
FG="$BUILD/src/cli/femtoguard"
GEN="$BUILD/bench/gen_events"
PARSE="$BUILD/bench/replay_parse_bench"
OUT=$(mktemp -d /tmp/fg-replay-bench-out.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
mkdir -p "$DATA"

gen() {  # name subscribers
  local dir="$DATA/$1" stamp="$EVENTS $DEVICES $2 seed1 $(sha256sum "$ROOT/bench/gen_events.cc" | cut -c1-16)"
  if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$stamp" ]; then return 0; fi
  rm -rf "$dir"; mkdir -p "$dir"
  echo "generating $1: $EVENTS events, $DEVICES devices, $2 subscribers ..." >&2
  "$GEN" --out "$dir" --devices "$DEVICES" --subscribers "$2" --events "$EVENTS" --seed 1
  echo "$stamp" > "$dir/stamp"
}
gen full "$SUBSCRIBERS"
gen devices 0
mkdir -p "$DATA/empty"
: > "$DATA/empty/registry.jsonl"
: > "$DATA/empty/events.jsonl"
cp "$DATA/full/cells.csv" "$DATA/empty/cells.csv"

# Warm the page cache so that every run reads from memory.
cat "$DATA/full/events.jsonl" "$DATA/devices/events.jsonl" > /dev/null

replay() {  # name events-dir [binary [tunables]] -> prints "events/s per CPU-second, events/s wall, max RSS kB"
  local name=$1 dir=$2 bin=${3:-$FG} log="$OUT/$1.log"
  GLIBC_TUNABLES=${4:-} /usr/bin/time -v "$bin" replay --registry "$dir/registry.jsonl" --cells "$dir/cells.csv" \
    --events "$dir/events.jsonl" --alerts "$OUT/$name.alerts.jsonl" > "$log" 2>&1 \
    || { cat "$log" >&2; echo "replay_bench: FAIL: replay $name" >&2; exit 1; }
  local line rss
  line=$(grep '^events:' "$log")
  rss=$(grep 'Maximum resident set size' "$log" | awk '{print $NF}')
  local wall cpu
  wall=$(sed -E 's/.*\(([0-9]+) events\/s;.*/\1/' <<< "$line")
  cpu=$(sed -E 's/.*, ([0-9]+) events per CPU-second.*/\1/' <<< "$line")
  echo "$cpu $wall $rss"
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "input: $(wc -c < "$DATA/full/events.jsonl") bytes, $EVENTS events, $DEVICES devices, $SUBSCRIBERS subscribers"
echo
echo "ceiling (same file, same reader, one core):"
for mode in read parse decode; do
  for r in $(seq 1 "$RUNS"); do
    echo "  $("$PARSE" --events "$DATA/full/events.jsonl" --mode "$mode")"
  done
done
echo
BEST=0 BEST_BASE=0 BEST_THP=0
for r in $(seq 1 "$RUNS"); do
  if [ -n "$BASELINE" ]; then
    read -r BASE_RATE BASE_WALL _ < <(replay baseline "$DATA/full" "$BASELINE")
    echo "baseline full:  ${BASE_RATE} events per CPU-second, ${BASE_WALL} events/s wall ($BASELINE)"
    if [ "$BASE_RATE" -gt "$BEST_BASE" ]; then BEST_BASE=$BASE_RATE; fi
  fi
  read -r CPU_RATE WALL_RATE RSS_FULL < <(replay full "$DATA/full")
  echo "replay full:    ${CPU_RATE} events per CPU-second, ${WALL_RATE} events/s wall, max RSS ${RSS_FULL} kB"
  grep -E '^(alerts|state):' "$OUT/full.log" | sed 's/^/    /'
  if [ "$CPU_RATE" -gt "$BEST" ]; then BEST=$CPU_RATE; fi
  if [ "$THP" = 1 ]; then
    read -r THP_RATE THP_WALL RSS_THP < <(replay thp "$DATA/full" "$FG" glibc.malloc.hugetlb=1)
    echo "replay full, huge pages: ${THP_RATE} events per CPU-second, ${THP_WALL} events/s wall, max RSS ${RSS_THP} kB"
    if [ "$THP_RATE" -gt "$BEST_THP" ]; then BEST_THP=$THP_RATE; fi
  fi
done
CPU_RATE=$BEST
if [ -n "$BASELINE" ]; then
  awk -v a="$BEST" -v b="$BEST_BASE" 'BEGIN { printf "best of %s: this build %d, baseline %d events per CPU-second: %.3fx\n", "'"$RUNS"'", a, b, a / b }'
fi
if [ "$THP" = 1 ]; then
  awk -v a="$BEST_THP" -v b="$BEST" 'BEGIN { printf "best of %s: with huge pages %d, without %d events per CPU-second: %.3fx\n", "'"$RUNS"'", a, b, a / b }'
fi
read -r _ _ RSS_DEV < <(replay devices "$DATA/devices")
echo "replay devices: max RSS ${RSS_DEV} kB (device-side events only, no CSG)"
grep -E '^state:' "$OUT/devices.log" | sed 's/^/    /'
read -r _ _ RSS_EMPTY < <(replay empty "$DATA/empty")
echo "replay empty:   max RSS ${RSS_EMPTY} kB"
echo
PARSE_RATE=$("$PARSE" --events "$DATA/full/events.jsonl" --mode parse | sed -E 's/.*lines_per_cpu_s=([0-9]+).*/\1/')
awk -v full="$RSS_FULL" -v dev="$RSS_DEV" -v empty="$RSS_EMPTY" -v d="$DEVICES" -v s="$SUBSCRIBERS" \
    -v rate="$CPU_RATE" -v parse="$PARSE_RATE" 'BEGIN {
  printf "per device:     %.0f bytes   (target <= 2048)\n", (dev - empty) * 1024 / d
  printf "per subscriber: %.0f bytes   (target <= 300)\n", (full - dev) * 1024 / s
  printf "replay (best run) / parse-only ceiling: %.3f (%d vs %d events per CPU-second; target >= 1000000)\n", rate / parse, rate, parse
}'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
