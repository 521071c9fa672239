#!/usr/bin/env bash
# femtoguard tap throughput: S1AP/NGAP messages per second from a capture,
# against `tshark -T fields` alone on the same file in the same run, so that
# the adapter's own cost (tshark's -T ek output, its JSON parsing, the UE
# contexts, pseudonymization, writing events) shows as the ratio.
#
#   bench/tap_bench.sh [--copies N] [--runs N] [--captures DIR]   (default 200 copies)
#
# The input is the lab captures (../shared/captures, or --captures DIR,
# or $FEMTOGUARD_CAPTURES_DIR) concatenated N times with
# mergecap into one file in a temp dir (default 200). Messages = S1AP/NGAP procedure codes
# tshark counts in it. Each side runs --runs times (default 3), alternately;
# the best run of each is reported (the machine is shared).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
COPIES=200
RUNS=3
CAPTURES=${FEMTOGUARD_CAPTURES_DIR:-$ROOT/../shared/captures}
while [ $# -gt 0 ]; do
  case $1 in
    --copies) COPIES=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --captures) CAPTURES=$2; shift 2 ;;
    *) echo "usage: $0 [--copies N] [--runs N] [--captures DIR]" >&2; exit 2 ;;
  esac
done
FG=${FG:-$ROOT/build/src/cli/femtoguard}
[ -x "$FG" ] || { echo "build first: $FG missing" >&2; exit 1; }
[ -d "$CAPTURES" ] || { echo "no captures at $CAPTURES" >&2; exit 1; }
TMP=$(mktemp -d /tmp/fg-tap-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
head -c 32 /dev/urandom > "$TMP/key"
chmod 600 "$TMP/key"

# One capture of every lab file (pcapng: the link types differ; merged in time
# order), then appended to itself COPIES times.
mergecap -F pcapng -w "$TMP/one.pcapng" "$CAPTURES"/*.pcap
files=()
for _ in $(seq 1 "$COPIES"); do files+=("$TMP/one.pcapng"); done
mergecap -F pcapng -a -w "$TMP/big.pcapng" "${files[@]}"
FILTER='sctp && (s1ap || ngap)'
# The copies repeat the same SCTP TSNs: with TSN analysis on (the default
# here), tshark takes them for retransmissions and skips their payload.
# Off on both sides, so that every copy is decoded.
PREF=sctp.tsn_analysis:FALSE
MSGS=$(tshark -o "$PREF" -r "$TMP/big.pcapng" -n -Y "$FILTER" -T fields -e s1ap.procedureCode -e ngap.procedureCode 2>/dev/null |
  tr '\t,' '\n\n' | grep -c .)
PKTS=$(tshark -o "$PREF" -r "$TMP/big.pcapng" -n -Y "$FILTER" -T fields -e frame.number 2>/dev/null | grep -c .)

now() { date +%s.%N; }
best_tshark=999999 best_tap=999999
for r in $(seq 1 "$RUNS"); do
  t0=$(now)
  tshark -o "$PREF" -r "$TMP/big.pcapng" -n -Y "$FILTER" -T fields -e frame.number -e s1ap.procedureCode -e ngap.procedureCode \
    -e s1ap.ENB_UE_S1AP_ID -e e212.imsi > "$TMP/fields.txt" 2>/dev/null
  t1=$(now)
  "$FG" tap --tshark-pref "$PREF" --pcap "$TMP/big.pcapng" --out "$TMP/events.jsonl" --pseudonym-key "$TMP/key" --quiet
  t2=$(now)
  a=$(echo "$t1 - $t0" | bc -l); b=$(echo "$t2 - $t1" | bc -l)
  printf 'run %d: tshark -T fields %.2f s, femtoguard tap %.2f s\n' "$r" "$a" "$b"
  best_tshark=$(echo "if ($a < $best_tshark) $a else $best_tshark" | bc -l)
  best_tap=$(echo "if ($b < $best_tap) $b else $best_tap" | bc -l)
done
EVENTS=$(wc -l < "$TMP/events.jsonl")
printf 'input: %d copies of the lab captures, %d S1AP/NGAP packets, %d messages; %d events out\n' \
  "$COPIES" "$PKTS" "$MSGS" "$EVENTS"
printf 'tshark -T fields alone: %.0f messages/s (%.2f s)\n' "$(echo "$MSGS / $best_tshark" | bc -l)" "$best_tshark"
printf 'femtoguard tap:         %.0f messages/s (%.2f s)\n' "$(echo "$MSGS / $best_tap" | bc -l)" "$best_tap"
printf 'ratio tap/tshark time:  %.2f (adapter cost per message: %.1f us)\n' "$(echo "$best_tap / $best_tshark" | bc -l)" \
  "$(echo "($best_tap - $best_tshark) * 1000000 / $MSGS" | bc -l)"
