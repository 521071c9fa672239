#!/usr/bin/env bash
# Device-certificate signing latency, issuing CA key in SoftHSM2 (PKCS#11,
# libp11's engine) against the key in a file, alternating in one run
# (bench/hsm_bench.cc). The token lives in a temp dir made for the run with
# its own SOFTHSM2_CONF; the system's tokens are never touched.
#
#   bench/hsm_bench.sh [--rounds R] [--batch B]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROUNDS=20
BATCH=25
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=${2:-}; shift 2 ;;
    --batch) BATCH=${2:-}; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "hsm_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $ROUNDS =~ ^[0-9]+$ && $BATCH =~ ^[0-9]+$ ]] || { echo "hsm_bench: --rounds and --batch take numbers" >&2; exit 2; }
MODULE=/usr/lib/softhsm/libsofthsm2.so
[ -f "$MODULE" ] || { echo "hsm_bench: SoftHSM2 not installed ($MODULE)" >&2; exit 1; }
if ! build_out=$(JOBS=${JOBS:-1} scripts/build hsm_bench 2>&1); then
  printf '%s\n' "$build_out" | tail -40 >&2
  echo "hsm_bench: FAIL: scripts/build hsm_bench failed" >&2
  exit 1
fi
WORK=$(mktemp -d /tmp/fg-hsm-bench-token.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$WORK/tokens" > "$WORK/softhsm2.conf"
export SOFTHSM2_CONF="$WORK/softhsm2.conf"
softhsm2-util --init-token --free --label fgbench --pin 1234 --so-pin 5678 >/dev/null
( umask 077; printf '1234\n' > "$WORK/pin" )
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$ROOT/${BUILD_DIR:-build}/bench/hsm_bench" --module "$MODULE" --uri 'pkcs11:token=fgbench;object=fg-issuing' \
  --pin-file "$WORK/pin" --rounds "$ROUNDS" --batch "$BATCH"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
