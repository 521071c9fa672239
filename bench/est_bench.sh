#!/usr/bin/env bash
# EST simpleenroll/s with strongSwan's client (`pki --est`) against CMP ir/s
# with `openssl cmp`, both against one `femtoguard serve`, in the same run,
# rounds alternating (EST, CMP, EST, CMP, ...), best round of each kept.
#
# Both clients are what a device or an installer runs: one process per
# enrolment, one-time bootstrap token each (EST: HTTP Basic over TLS; CMP:
# PBM over plain HTTP, implicit confirmation), fresh P-256 key and request
# made before the timed loop (`pki --gen`/`--req`, `openssl genpkey`).
# Enrolments run one after another (a device enrols once), so this measures
# the latency of one enrolment end to end, client start included.
#
#   bench/est_bench.sh [--enrolments M] [--rounds R] [--femtoguard PATH]
#
# Defaults: M = 40 enrolments per round and protocol, R = 2 rounds.
# Needs 2 x R x M devices and tokens (one `femtoguard device token` CLI
# process each). Listens on free loopback ports only; stops what it started,
# by PID. Prints the rates and their ratio; exits non-zero when an
# enrolment fails. See BENCHMARKS.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

ENROLMENTS=40
ROUNDS=2
FG=""
while [ $# -gt 0 ]; do
  case "$1" in
    --enrolments) ENROLMENTS=${2:-}; shift 2 ;;
    --rounds) ROUNDS=${2:-}; shift 2 ;;
    --femtoguard) FG=${2:-}; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "est_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $ENROLMENTS =~ ^[0-9]+$ ]] && [ "$ENROLMENTS" -ge 5 ] && [ "$ENROLMENTS" -le 2000 ] ||
  { echo "est_bench: --enrolments 5..2000" >&2; exit 2; }
[[ $ROUNDS =~ ^[0-9]+$ ]] && [ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 10 ] ||
  { echo "est_bench: --rounds 1..10" >&2; exit 2; }
for tool in pki openssl curl python3; do
  command -v "$tool" >/dev/null || { echo "est_bench: needs $tool" >&2; exit 2; }
done
if [ -z "$FG" ]; then
  JOBS=${JOBS:-1} scripts/build femtoguard >/dev/null
  FG="$ROOT/${BUILD_DIR:-build}/src/cli/femtoguard"
fi
[ -x "$FG" ] || { echo "est_bench: $FG is not an executable" >&2; exit 2; }

WORK=$(mktemp -d /tmp/est_bench.XXXXXX)
SERVE_PID=""
cleanup() {
  if [ -n "$SERVE_PID" ]; then
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "est_bench: FAIL: $*" >&2; exit 1; }
log() { echo "est_bench: $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

PORT=$(free_port)
TLS_PORT=$(free_port)
while [ "$TLS_PORT" = "$PORT" ]; do TLS_PORT=$(free_port); done
DATA="$WORK/data"
export FEMTOGUARD_CA_PASSPHRASE="femtoguard-bench-$$"
"$FG" init --data "$DATA" --listen "127.0.0.1:$PORT" --tls-listen "127.0.0.1:$TLS_PORT" >"$WORK/setup.log" 2>&1 ||
  { cat "$WORK/setup.log" >&2; fail "init"; }
"$FG" ca cert --data "$DATA" --root > "$WORK/root.pem"
"$FG" ca cert --data "$DATA" > "$WORK/issuing.pem"

TOTAL=$((2 * ROUNDS * ENROLMENTS))
dev() { printf 'FG-BENCH-%06d' "$1"; }
for i in $(seq 1 "$TOTAL"); do printf '{"device":"%s","status":"provisioned"}\n' "$(dev "$i")"; done > "$WORK/registry.jsonl"
"$FG" device import --data "$DATA" --registry "$WORK/registry.jsonl" >>"$WORK/setup.log" 2>&1 ||
  { cat "$WORK/setup.log" >&2; fail "device import"; }
log "$TOTAL devices; making tokens, keys and requests (untimed)"
for i in $(seq 1 "$TOTAL"); do
  d=$(dev "$i")
  out=$("$FG" device token --data "$DATA" --device "$d")
  [[ $out =~ ^(tok-[0-9a-f]+)\ ([0-9a-f]+)$ ]] || fail "device token $d printed: $out"
  echo "$i ${BASH_REMATCH[1]} ${BASH_REMATCH[2]}" >> "$WORK/tokens"
done
# Device i: EST when i's block (of ENROLMENTS) is even, CMP when odd.
for i in $(seq 1 "$TOTAL"); do
  d=$(dev "$i")
  if [ $(( (i - 1) / ENROLMENTS % 2 )) -eq 0 ]; then
    pki --gen --type ecdsa --size 256 --outform pem > "$WORK/$d.key" 2>/dev/null
    pki --req --in "$WORK/$d.key" --type ecdsa --dn "CN=$d" --outform der > "$WORK/$d.req" 2>/dev/null
  else
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/$d.key" 2>/dev/null
  fi
done

"$FG" serve --data "$DATA" --threads 2 >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
  sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" || { cat "$WORK/serve.log" >&2; fail "serve did not start"; }

now() { date +%s.%N; }
rate() { python3 -c "import sys; print(f'{int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])):.2f}')" "$@"; }

est_round() {  # first device index -> rate
  local first=$1 i d ref secret t0 t1
  t0=$(now)
  for i in $(seq "$first" $((first + ENROLMENTS - 1))); do
    d=$(dev "$i")
    read -r _ ref secret < <(sed -n "${i}p" "$WORK/tokens")
    pki --est --url "https://127.0.0.1:$TLS_PORT" --in "$WORK/$d.req" --cacert "$WORK/root.pem" \
      --cacert "$WORK/issuing.pem" --userpass "$ref:$secret" --outform pem \
      > "$WORK/$d.pem" 2>>"$WORK/client.log" || fail "pki --est for $d (see client log)"
  done
  t1=$(now)
  rate "$ENROLMENTS" "$t0" "$t1"
}
cmp_round() {
  local first=$1 i d ref secret t0 t1
  t0=$(now)
  for i in $(seq "$first" $((first + ENROLMENTS - 1))); do
    d=$(dev "$i")
    read -r _ ref secret < <(sed -n "${i}p" "$WORK/tokens")
    openssl cmp -cmd ir -server "127.0.0.1:$PORT" -path pkix/ -ref "$ref" -secret "pass:$secret" \
      -newkey "$WORK/$d.key" -subject "/CN=$d" -certout "$WORK/$d.pem" -implicit_confirm \
      >>"$WORK/client.log" 2>&1 || fail "openssl cmp ir for $d (see client log)"
  done
  t1=$(now)
  rate "$ENROLMENTS" "$t0" "$t1"
}

BEST_EST=0
BEST_CMP=0
for r in $(seq 0 $((ROUNDS - 1))); do
  e=$(est_round $((2 * r * ENROLMENTS + 1)))
  c=$(cmp_round $(((2 * r + 1) * ENROLMENTS + 1)))
  log "round $((r + 1)): EST (pki --est) $e/s, CMP (openssl cmp) $c/s"
  BEST_EST=$(python3 -c "print(max($BEST_EST, $e))")
  BEST_CMP=$(python3 -c "print(max($BEST_CMP, $c))")
done
# Every enrolment produced a certificate of its own device.
issued=$("$FG" cert list --data "$DATA" | tail -n +2 | wc -l)
[ "$issued" -eq "$TOTAL" ] || fail "$issued certificates issued, expected $TOTAL"
RATIO=$(python3 -c "print(f'{$BEST_EST / $BEST_CMP:.2f}')")
echo "enrolments per round and protocol: $ENROLMENTS, rounds: $ROUNDS"
echo "EST simpleenroll/s (strongSwan pki --est, TLS + Basic token): $BEST_EST"
echo "CMP ir/s (openssl cmp, PBM token, implicit confirm):          $BEST_CMP"
echo "ratio EST/CMP: $RATIO"
