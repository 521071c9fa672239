#!/usr/bin/env bash
# In-process admission decisions/s (admission::Engine, default chain of nine
# checks, 189,000-device registry) against same-run baselines: one
# unordered_map lookup + IpInAnyPrefix (what any gate must at least do), and
# the engine with an empty chain (its own overhead).
#
#   bench/admission_bench.sh [--min-time SECONDS]
#
# Rates per CPU-second (Google Benchmark cpu_time, 1 thread: "per core") and
# per wall-clock second; the machine is shared and noisy: compare the ratios.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

MIN_TIME=3
while [ $# -gt 0 ]; do
  case "$1" in
    --min-time) MIN_TIME=${2:-}; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "admission_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $MIN_TIME =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "admission_bench: --min-time needs a number" >&2; exit 2; }

if ! build_out=$(scripts/build admission_bench 2>&1); then
  printf '%s\n' "$build_out" | tail -40 >&2
  echo "admission_bench: FAIL: scripts/build admission_bench failed" >&2
  exit 1
fi
BUILD=${BUILD_DIR:-build}
[[ $BUILD = /* ]] || BUILD="$ROOT/$BUILD"
BIN="$BUILD/bench/admission_bench"
WORK=$(mktemp -d /tmp/fg-admission-bench-out.XXXXXX)
trap 'rm -rf "$WORK" /tmp/fg-admission-bench-*.jsonl' EXIT
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_CMD=("$BIN" "--benchmark_min_time=$MIN_TIME" "--benchmark_out=$WORK/bench.csv" --benchmark_out_format=csv)
echo "== ${BENCH_CMD[*]/$WORK/\$W}" >&2
timeout 1200 "${BENCH_CMD[@]}" >&2 || { echo "admission_bench: benchmark failed" >&2; exit 1; }
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
grep -q ',true,' "$WORK/bench.csv" && { echo "admission_bench: a benchmark reported an error" >&2; cat "$WORK/bench.csv" >&2; exit 1; }

# name -> "per-wall-second per-CPU-second items/s" from Google Benchmark's CSV
# (name,iterations,real_time,cpu_time,time_unit,bytes_per_second,items_per_second,...).
rate() {
  awk -F, -v want="\"$1\"" '
    $1 == want {
      m = ($5 == "ns") ? 1e9 : ($5 == "us") ? 1e6 : ($5 == "ms") ? 1e3 : 1
      printf "%.0f %.0f %.0f\n", m / $3, m / $4, $7; exit
    }' "$WORK/bench.csv"
}
read -r BL_W BL_C _ < <(rate "BM_Baseline_LookupAndPrefix")
read -r EC_W EC_C _ < <(rate "BM_Engine_EmptyChain")
read -r FC_W FC_C _ < <(rate "BM_Engine_FullChain")
read -r _ _ F2_ITEMS < <(rate "BM_Engine_FullChain/real_time/threads:2")
read -r FL_W FL_C _ < <(rate "BM_Engine_FullChain_Log")
read -r CL_W CL_C _ < <(rate "BM_Engine_Clone")
LOAD_MS=$(awk -F, '$1 == "\"BM_SnapshotLoad189k/iterations:3\"" { printf "%.0f ms wall, %.0f ms CPU", $3, $4 }' "$WORK/bench.csv")
[ -n "${FC_C:-}" ] && [ -n "${BL_C:-}" ] || { echo "admission_bench: missing results" >&2; cat "$WORK/bench.csv" >&2; exit 1; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
us() { awk -v r="$1" 'BEGIN { if (r > 0) printf "%.2f", 1e6 / r; else print "-" }'; }
line() { printf '  %-50s %9s/s wall  %9s/s CPU  (%s us CPU each)\n' "$1" "$2" "$3" "$(us "$3")"; }

echo
echo "================ Admission benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load avg $LOAD_START -> $LOAD_END ================"
echo "registry: 189,000 devices, one certificate and one /29 prefix each, 2 endpoints"
line "baseline: unordered_map lookup + IpInAnyPrefix" "$BL_W" "$BL_C"
line "engine, empty chain (overhead only)" "$EC_W" "$EC_C"
line "engine, default chain of 9 checks -> allow" "$FC_W" "$FC_C"
line "  same, decision log on" "$FL_W" "$FL_C"
line "  clone newcomer -> deny (cert.clone + more)" "$CL_W" "$CL_C"
printf '  %-50s %9s/s wall (total)\n' "engine, default chain, 2 threads" "$F2_ITEMS"
echo "  snapshot load of 189,000 devices + certificates: $LOAD_MS"
echo
printf 'decisions/s per core (default chain, 1 thread, CPU time): %s   (target >= 100,000)\n' "$FC_C"
printf 'ratio full chain / baseline (CPU):                       %s\n' "$(ratio "$FC_C" "$BL_C")"
printf 'ratio full chain / empty chain (CPU):                    %s\n' "$(ratio "$FC_C" "$EC_C")"
echo
echo "Command:"
echo "  ${BENCH_CMD[0]} --benchmark_min_time=$MIN_TIME"
