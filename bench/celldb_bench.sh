#!/usr/bin/env bash
# Cell-database load: time and peak memory of loading N rows (default
# 40,000,000, the size of OpenCellID's world export) in the published layout
# (headerless country-dump style, or --gzip), through `femtoguard replay`
# with no devices and no events, against reading the same file alone
# (`cat`, or `zcat` for --gzip) in the same run.
#
#   bench/celldb_bench.sh [--rows N] [--gzip] [--data DIR]
#
# The generated file is kept in --data DIR (default /tmp/fg-celldb-bench)
# and reused when its row count matches. Memory: /usr/bin/time -v maximum
# resident set size, minus an empty database's, per row.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROWS=40000000
GZIP=0
DATA=/tmp/fg-celldb-bench
while [ $# -gt 0 ]; do
  case $1 in
    --rows) ROWS=$2; shift 2 ;;
    --gzip) GZIP=1; shift ;;
    --data) DATA=$2; shift 2 ;;
    *) echo "usage: $0 [--rows N] [--gzip] [--data DIR]" >&2; exit 2 ;;
  esac
done
FG=${FG:-$ROOT/build/src/cli/femtoguard}
[ -x "$FG" ] || { echo "build first: $FG missing" >&2; exit 1; }
mkdir -p "$DATA"
CSV="$DATA/cells-$ROWS.csv"
if [ ! -s "$CSV" ]; then
  echo "generating $ROWS rows in $CSV ..." >&2
  # Spread over the globe, LTE/GSM/UMTS/NR mix, unique cell ids, as in the export.
  awk -v n="$ROWS" 'BEGIN {
    srand(1); split("LTE GSM UMTS LTE NR LTE", radio, " ");
    for (i = 0; i < n; i++) {
      lat = -60 + rand() * 130; lon = -180 + rand() * 360;
      printf "%s,%d,%d,%d,%d,%d,%.6f,%.6f,%d,%d,1,1459813000,1600000000,0\n",
        radio[i % 6 + 1], 200 + i % 700, i % 100, i % 65000, 100000 + i, i % 504, lon, lat, 500 + i % 5000, 1 + i % 90
    } }' > "$CSV.tmp"
  mv "$CSV.tmp" "$CSV"
fi
INPUT=$CSV
READER=(cat "$CSV")
if [ "$GZIP" = 1 ]; then
  [ -s "$CSV.gz" ] || gzip -1 -k -c "$CSV" > "$CSV.gz"
  INPUT=$CSV.gz
  READER=(zcat "$CSV.gz")
fi
TMP=$(mktemp -d /tmp/fg-celldb-run.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
: > "$TMP/registry.jsonl"
: > "$TMP/events.jsonl"
printf 'radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n' > "$TMP/empty.csv"

run() {  # label cells-file -> prints "seconds max_rss_kb"
  /usr/bin/time -v "$FG" replay --registry "$TMP/registry.jsonl" --events "$TMP/events.jsonl" \
    --alerts "$TMP/alerts.jsonl" --cells "$2" > "$TMP/$1.out" 2> "$TMP/$1.err" ||
    { cat "$TMP/$1.err" >&2; exit 1; }
  local rss wall
  rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$TMP/$1.err")
  wall=$(awk -F': ' '/Elapsed \(wall/ {print $2}' "$TMP/$1.err" | awk -F: '{ if (NF == 3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  echo "$wall $rss"
}
t0=$(date +%s.%N); "${READER[@]}" > /dev/null; t1=$(date +%s.%N)
read -r _ empty_rss < <(run empty "$TMP/empty.csv")
read -r load_s load_rss < <(run full "$INPUT")
read_s=$(echo "$t1 - $t0" | bc -l)
printf 'rows: %d (%s, %d MB)\n' "$ROWS" "$(basename "$INPUT")" "$(( $(stat -c %s "$INPUT") >> 20 ))"
printf 'read alone (%s): %.1f s\n' "${READER[0]}" "$read_s"
printf 'femtoguard load:  %.1f s (%.2f x reading alone, %.0f rows/s)\n' "$load_s" "$(echo "$load_s / $read_s" | bc -l)" \
  "$(echo "$ROWS / $load_s" | bc -l)"
printf 'peak RSS: %d MB (empty database %d MB); %.1f bytes per row\n' "$(( load_rss >> 10 ))" "$(( empty_rss >> 10 ))" \
  "$(echo "($load_rss - $empty_rss) * 1024 / $ROWS" | bc -l)"
