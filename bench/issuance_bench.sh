#!/usr/bin/env bash
# Certificate issuance/s through the policy (in process) against the ECDSA
# P-256 sign rate of `openssl speed ecdsap256` on the same machine, measured
# in the same run (the machine is shared and noisy: compare the ratios).
#
#   bench/issuance_bench.sh [--min-time SECONDS] [--speed-seconds SECONDS]
#
# Both rates are given per CPU-second (what `openssl speed` reports by
# default: it divides by user CPU time) and per wall-clock second
# (`openssl speed -elapsed`; Google Benchmark real time).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

MIN_TIME=2
SPEED_SECONDS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --min-time) MIN_TIME=${2:-}; shift 2 ;;
    --speed-seconds) SPEED_SECONDS=${2:-}; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "issuance_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $MIN_TIME =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "issuance_bench: --min-time needs a number" >&2; exit 2; }
[[ $SPEED_SECONDS =~ ^[0-9]+$ ]] && [ "$SPEED_SECONDS" -ge 1 ] && [ "$SPEED_SECONDS" -le 60 ] \
  || { echo "issuance_bench: --speed-seconds 1..60" >&2; exit 2; }

if ! build_out=$(scripts/build issuance_bench 2>&1); then
  printf '%s\n' "$build_out" | tail -40 >&2
  echo "issuance_bench: FAIL: scripts/build issuance_bench failed" >&2
  exit 1
fi
BIN="$ROOT/${BUILD_DIR:-build}/bench/issuance_bench"
WORK=$(mktemp -d /tmp/fg-issuance-bench-out.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

SPEED_CMD=(openssl speed -seconds "$SPEED_SECONDS" ecdsap256)
SPEED_WALL_CMD=(openssl speed -elapsed -seconds "$SPEED_SECONDS" ecdsap256)
BENCH_CMD=("$BIN" "--benchmark_min_time=$MIN_TIME" "--benchmark_out=$WORK/bench.csv" --benchmark_out_format=csv)

speed() {  # cmd... -> "sign/s verify/s"
  local out
  out=$(timeout $((SPEED_SECONDS * 4 + 30)) "$@" 2>&1) || { echo "$out" >&2; echo "issuance_bench: openssl speed failed" >&2; exit 1; }
  awk '/ecdsa \(nistp256\)/ { print $(NF-1), $NF }' <<<"$out"
}

echo "== ${SPEED_CMD[*]}" >&2
read -r SIGN_CPU VERIFY_CPU < <(speed "${SPEED_CMD[@]}")
echo "== ${BENCH_CMD[*]/$WORK/\$W}" >&2
timeout 900 "${BENCH_CMD[@]}" >&2 || { echo "issuance_bench: benchmark failed" >&2; exit 1; }
echo "== ${SPEED_WALL_CMD[*]}" >&2
read -r SIGN_WALL VERIFY_WALL < <(speed "${SPEED_WALL_CMD[@]}")
[ -n "${SIGN_CPU:-}" ] && [ -n "${SIGN_WALL:-}" ] || { echo "issuance_bench: could not parse openssl speed" >&2; exit 1; }
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# name -> "per-wall-second per-CPU-second" from Google Benchmark's CSV
# (name,iterations,real_time,cpu_time,time_unit,...; error_occurred column set on failure).
rate() {
  awk -F, -v want="\"$1\"" '
    $1 == want {
      m = ($5 == "ns") ? 1e9 : ($5 == "us") ? 1e6 : ($5 == "ms") ? 1e3 : 1
      if ($9 == "true") { print "ERROR ERROR"; exit }
      printf "%.0f %.0f\n", m / $3, m / $4; exit
    }' "$WORK/bench.csv"
}
grep -q '"true"\|,true,' "$WORK/bench.csv" && { echo "issuance_bench: a benchmark reported an error" >&2; cat "$WORK/bench.csv" >&2; exit 1; }

read -r IK_W IK_C < <(rate "BM_IssueForKey/real_time/threads:1")
read -r IK2_W IK2_C < <(rate "BM_IssueForKey/real_time/threads:2")
read -r IC_W IC_C < <(rate "BM_IssueFromCsr/real_time")
read -r CS_W CS_C < <(rate "BM_CaSignDeviceCert")
read -r SR_W SR_C < <(rate "BM_StoreRecordIssued/real_time")
read -r IKN_W IKN_C < <(rate "BM_IssueForKeyNormalSync/real_time")
read -r SRN_W SRN_C < <(rate "BM_StoreRecordIssuedNormalSync/real_time")
read -r RV_W RV_C < <(rate "BM_StoreRevoke/real_time")
read -r RVN_W RVN_C < <(rate "BM_StoreRevokeNormalSync/real_time")
read -r KF_W KF_C < <(rate "BM_KeyFingerprint")
read -r XP_W XP_C < <(rate "BM_X509SetPubkey")
read -r X0_W X0_C < <(rate "BM_X509PubkeySet0Param")
read -r ES_W ES_C < <(rate "BM_EcdsaP256Sign")
read -r EV_W EV_C < <(rate "BM_EcdsaP256Verify")
[ -n "${IK_W:-}" ] && [ -n "${IC_W:-}" ] || { echo "issuance_bench: missing results" >&2; cat "$WORK/bench.csv" >&2; exit 1; }

pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "-" }'; }
us() { awk -v r="$1" 'BEGIN { if (r > 0) printf "%.1f", 1e6 / r; else print "-" }'; }
line() { printf '  %-44s %9s/s wall  %9s/s CPU  (%s us CPU each)\n' "$1" "$2" "$3" "$(us "$3")"; }

echo
echo "================ Issuance benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(openssl version | cut -d' ' -f1-2), load avg $LOAD_START -> $LOAD_END ================"
echo "ceiling: openssl speed ecdsap256"
printf '  %-44s %9s/s wall  %9s/s CPU\n' "ECDSA P-256 sign" "$SIGN_WALL" "$SIGN_CPU"
printf '  %-44s %9s/s wall  %9s/s CPU\n' "ECDSA P-256 verify" "$VERIFY_WALL" "$VERIFY_CPU"
echo "in process (build/bench/issuance_bench, one CA + one SQLite store in a temp dir)"
line "IssueForKey, 1 thread" "$IK_W" "$IK_C"
line "IssueForKey, 2 threads (total)" "$IK2_W" "$IK2_C"
line "IssueFromCsr (PEM CSR, verifies its signature)" "$IC_W" "$IC_C"
line "  CA SignDeviceCertificate alone" "$CS_W" "$CS_C"
line "  Store RecordIssuedCertificate alone" "$SR_W" "$SR_C"
line "  Store RevokeCertificate alone" "$RV_W" "$RV_C"
echo "the same with synchronous=NORMAL (before issue 13; a power loss can roll back an acknowledged write)"
line "IssueForKey, 1 thread, NORMAL" "$IKN_W" "$IKN_C"
line "  Store RecordIssuedCertificate, NORMAL" "$SRN_W" "$SRN_C"
line "  Store RevokeCertificate, NORMAL" "$RVN_W" "$RVN_C"
line "  ossl::KeyFingerprint (2 per issuance)" "$KF_W" "$KF_C"
line "  X509_set_pubkey (1 per issuance)" "$XP_W" "$XP_C"
line "  X509_PUBKEY_set0_param (same bytes)" "$X0_W" "$X0_C"
line "  EVP_DigestSign P-256, 400-byte TBS" "$ES_W" "$ES_C"
line "  EVP_DigestVerify P-256, 400-byte TBS" "$EV_W" "$EV_C"
echo
printf 'issuance/s (IssueForKey, 1 thread):   %s wall, %s per CPU-second\n' "$IK_W" "$IK_C"
printf 'openssl speed ecdsap256 sign/s:       %s wall (-elapsed), %s per CPU-second\n' "$SIGN_WALL" "$SIGN_CPU"
printf 'ratio issuance / sign:                %s (wall/wall), %s (CPU/CPU)\n' "$(pct "$IK_W" "$SIGN_WALL")" "$(pct "$IK_C" "$SIGN_CPU")"
printf 'ratio IssueFromCsr / sign:            %s (wall/wall), %s (CPU/CPU)\n' "$(pct "$IC_W" "$SIGN_WALL")" "$(pct "$IC_C" "$SIGN_CPU")"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
printf 'synchronous FULL / NORMAL, per wall-second: IssueForKey %s, RecordIssued %s, Revoke %s\n' \
  "$(ratio "$IK_W" "$IKN_W")" "$(ratio "$SR_W" "$SRN_W")" "$(ratio "$RV_W" "$RVN_W")"
echo
echo "Commands:"
echo "  ${SPEED_CMD[*]}"
echo "  ${SPEED_WALL_CMD[*]}"
echo "  $BIN --benchmark_min_time=$MIN_TIME"
