#!/usr/bin/env bash
# The fleet simulator's write rate, and a fleet-scale world end to end.
#
#   bench/sim_bench.sh [--rate-devices N] [--devices N] [--days D] [--seed S]
#                      [--femtoguard PATH] [--skip-e2e]
#
# 1. Write rate: `femtoguard sim --scenario benign --devices 131000 --days 2`
#    (~10 M events); events/s per wall second and per CPU-second (user + sys
#    from /usr/bin/time; the simulator has a writer thread, so CPU can exceed
#    wall), peak RSS. Baseline in the same run: copying the events file it
#    just wrote (`cp`, into the page cache): the floor for producing those bytes.
# 2. End to end: `all` at 189,000 devices (--devices), 2 days: sim, replay
#    (shipped rules), score --json, each timed, with the score's headline
#    numbers. Baseline: `cp` of that events file.
# Needs ~8 GB free under /tmp; everything written is removed at exit.
# The machine is shared: the load average is printed with every result.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

RATE_DEVICES=131000
DEVICES=189000
DAYS=2
SEED=1
FG=""
SKIP_E2E=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rate-devices) RATE_DEVICES=${2:-}; shift 2 ;;
    --devices) DEVICES=${2:-}; shift 2 ;;
    --days) DAYS=${2:-}; shift 2 ;;
    --seed) SEED=${2:-}; shift 2 ;;
    --femtoguard) FG=${2:-}; shift 2 ;;
    --skip-e2e) SKIP_E2E=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "sim_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
for v in "$RATE_DEVICES" "$DEVICES" "$DAYS" "$SEED"; do
  [[ $v =~ ^[0-9]+$ ]] || { echo "sim_bench: numbers only" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "sim_bench: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

if [ -z "$FG" ]; then
  if ! build_out=$(scripts/build femtoguard 2>&1); then
    printf '%s\n' "$build_out" | tail -40 >&2
    echo "sim_bench: FAIL: scripts/build femtoguard failed" >&2
    exit 1
  fi
  BUILD=${BUILD_DIR:-build}
  [[ $BUILD = /* ]] || BUILD="$ROOT/$BUILD"
  FG="$BUILD/src/cli/femtoguard"
fi
[ -x "$FG" ] || { echo "sim_bench: no femtoguard binary at $FG" >&2; exit 1; }

WORK=$(mktemp -d /tmp/fg-sim-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

load() { cut -d' ' -f1-3 /proc/loadavg; }
# timed NAME CMD...: runs CMD under /usr/bin/time; sets T_WALL T_CPU T_RSS_MB.
timed() {
  local name=$1
  shift
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/$name.time" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" || {
    cat "$WORK/$name.err" >&2
    echo "sim_bench: FAIL: $name: $*" >&2
    exit 1
  }
  read -r wall user sys rss < "$WORK/$name.time"
  T_WALL=$wall
  T_CPU=$(echo "$user + $sys" | bc -l)
  T_RSS_MB=$(( rss / 1024 ))
}
rate() { echo "$1 / $2" | bc -l | xargs printf '%.0f'; }

echo "sim_bench: femtoguard $FG, $(nproc) cores, load $(load)"

# --- 1. write rate -----------------------------------------------------------
CMD=("$FG" sim --scenario benign --devices "$RATE_DEVICES" --days "$DAYS" --seed "$SEED" --out "$WORK/rate")
echo "sim_bench: ${CMD[*]}"
LOAD1=$(load)
timed sim_rate "${CMD[@]}"
EVENTS=$(wc -l < "$WORK/rate/events.jsonl")
BYTES=$(stat -c %s "$WORK/rate/events.jsonl")
SIM_WALL=$T_WALL SIM_CPU=$T_CPU SIM_RSS=$T_RSS_MB
timed copy_rate cp "$WORK/rate/events.jsonl" "$WORK/rate/copy.jsonl"
COPY_WALL=$T_WALL COPY_CPU=$T_CPU
rm -rf "$WORK/rate"
printf 'sim_bench: write rate: %s events (%.2f GB) in %s s wall, %.1f s CPU, peak RSS %s MB (load %s)\n' \
  "$EVENTS" "$(echo "$BYTES / 1000000000" | bc -l)" "$SIM_WALL" "$SIM_CPU" "$SIM_RSS" "$LOAD1"
printf 'sim_bench:   %s events/s wall, %s events/s per CPU-second\n' "$(rate "$EVENTS" "$SIM_WALL")" \
  "$(rate "$EVENTS" "$SIM_CPU")"
printf 'sim_bench:   baseline cp of the same file: %s s wall (%s events/s); sim / cp = %.1fx the time\n' \
  "$COPY_WALL" "$(rate "$EVENTS" "$COPY_WALL")" "$(echo "$SIM_WALL / $COPY_WALL" | bc -l)"

[ "$SKIP_E2E" = 1 ] && exit 0

# --- 2. all at fleet scale, end to end -----------------------------------------
W="$WORK/all"
LOAD2=$(load)
echo "sim_bench: $FG sim --scenario all --devices $DEVICES --days $DAYS --seed $SEED --out $W"
timed e2e_sim "$FG" sim --scenario all --devices "$DEVICES" --days "$DAYS" --seed "$SEED" --out "$W"
E_SIM_WALL=$T_WALL E_SIM_CPU=$T_CPU E_SIM_RSS=$T_RSS_MB
E_EVENTS=$(wc -l < "$W/events.jsonl")
echo "sim_bench: $FG replay --registry $W/registry.jsonl --cells $W/cells.csv --events $W/events.jsonl --alerts $W/alerts.jsonl"
timed e2e_replay "$FG" replay --registry "$W/registry.jsonl" --cells "$W/cells.csv" --events "$W/events.jsonl" \
  --alerts "$W/alerts.jsonl"
E_REPLAY_WALL=$T_WALL E_REPLAY_CPU=$T_CPU E_REPLAY_RSS=$T_RSS_MB
echo "sim_bench: $FG score --truth $W/truth.jsonl --alerts $W/alerts.jsonl --json"
timed e2e_score "$FG" score --truth "$W/truth.jsonl" --alerts "$W/alerts.jsonl" --json
E_SCORE_WALL=$T_WALL
timed e2e_copy cp "$W/events.jsonl" "$W/copy.jsonl"
E_COPY_WALL=$T_WALL
TOTAL=$(echo "$E_SIM_WALL + $E_REPLAY_WALL + $E_SCORE_WALL" | bc -l)
SCORE=$(tail -n 1 "$WORK/e2e_score.out")
headline=$(printf '%s' "$SCORE" | jq -c '{recall, precision, false_blocks, missed, fraud: .fraud_payments}')
printf 'sim_bench: all, %s devices, %s days: %s events (load %s, now %s)\n' "$DEVICES" "$DAYS" "$E_EVENTS" "$LOAD2" "$(load)"
printf 'sim_bench:   sim    %8.1f s wall %8.1f s CPU  %6s MB peak\n' "$E_SIM_WALL" "$E_SIM_CPU" "$E_SIM_RSS"
printf 'sim_bench:   replay %8.1f s wall %8.1f s CPU  %6s MB peak  (%s events/s wall)\n' "$E_REPLAY_WALL" \
  "$E_REPLAY_CPU" "$E_REPLAY_RSS" "$(rate "$E_EVENTS" "$E_REPLAY_WALL")"
printf 'sim_bench:   score  %8.1f s wall\n' "$E_SCORE_WALL"
printf 'sim_bench:   total  %8.1f s wall; baseline cp of events.jsonl %s s (total / cp = %.1fx)\n' "$TOTAL" \
  "$E_COPY_WALL" "$(echo "$TOTAL / $E_COPY_WALL" | bc -l)"
printf 'sim_bench:   score: %s\n' "$headline"
