#!/usr/bin/env bash
# CMP initial enrolments (ir) per second: `femtoguard serve` vs `openssl cmp
# -port` (OpenSSL's mock CMP server), same run, same client, and the ECDSA
# P-256 ceiling from `openssl speed ecdsap256` measured in the same run.
#
# The client is build/bench/cmp_bench (OpenSSL's CMP client API in process,
# one complete ir transaction per enrolment: PBM-protected, signature POPO
# with a fresh P-256 key generated before the timed region, implicit
# confirmation, so one HTTP round trip). Against femtoguard every enrolment
# uses its own one-time bootstrap token for its own pre-registered device;
# the mock server checks no token and returns one fixed certificate.
#
#   bench/cmp_bench.sh [--enrolments M] [--threads N] [--server-threads T]
#                      [--rounds R] [--speed-seconds S] [--perf DIR]
#                      [--femtoguard PATH] [--store sqlite|postgresql]
#
# Defaults: M = 1000 enrolments per run, client --threads 2, femtoguard
# --threads 2, 2 interleaved rounds (best of each kept), openssl speed 3 s.
# Needs R x M devices and bootstrap tokens: devices are imported in one go,
# but tokens come from `femtoguard device token`, one CLI process (~60 ms)
# each, so setup takes about R x M x 30 ms (two at a time).
# --perf DIR: one more femtoguard run (M more tokens) under
# `perf record --call-graph dwarf -p PID`, not counted; data kept in DIR.
# --femtoguard PATH: benchmark that femtoguard binary (e.g. one built from
# another commit) instead of building the working tree's.
# --store postgresql: the node's store is a PostgreSQL 15 server started by
# the harness in its namespace (fsync on, bench/lib.sh pg_bench_start);
# default sqlite (the embedded file).
# Needs root (ip netns). Builds femtoguard and cmp_bench, cleans up after
# itself, exits non-zero when any check fails. See BENCHMARKS.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
cd "$ROOT"

ENROLMENTS=1000
THREADS=2
SERVER_THREADS=2
ROUNDS=2
SPEED_SECONDS=3
PERF_DIR=""
FG_SRC=""
FG_REV="given with --femtoguard"
STORE=sqlite
while [ $# -gt 0 ]; do
  case "$1" in
    --enrolments) ENROLMENTS=${2:-}; shift 2 ;;
    --threads) THREADS=${2:-}; shift 2 ;;
    --server-threads) SERVER_THREADS=${2:-}; shift 2 ;;
    --rounds) ROUNDS=${2:-}; shift 2 ;;
    --speed-seconds) SPEED_SECONDS=${2:-}; shift 2 ;;
    --perf) PERF_DIR=${2:-}; shift 2 ;;
    --femtoguard) FG_SRC=${2:-}; shift 2 ;;
    --store) STORE=${2:-}; shift 2 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "cmp_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
for v in ENROLMENTS THREADS SERVER_THREADS ROUNDS SPEED_SECONDS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "cmp_bench: --${v,,} needs a number" >&2; exit 2; }
done
[ "$ENROLMENTS" -ge 10 ] && [ "$ENROLMENTS" -le 5000 ] || { echo "cmp_bench: --enrolments 10..5000" >&2; exit 2; }
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 10 ] || { echo "cmp_bench: --rounds 1..10" >&2; exit 2; }
[ "$THREADS" -ge 1 ] && [ "$THREADS" -le 64 ] || { echo "cmp_bench: --threads 1..64" >&2; exit 2; }
[ "$SERVER_THREADS" -ge 1 ] || { echo "cmp_bench: --server-threads >= 1" >&2; exit 2; }
[ "$SPEED_SECONDS" -ge 1 ] && [ "$SPEED_SECONDS" -le 60 ] || { echo "cmp_bench: --speed-seconds 1..60" >&2; exit 2; }
[ "$STORE" = sqlite ] || [ "$STORE" = postgresql ] || { echo "cmp_bench: --store sqlite|postgresql" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "cmp_bench: needs root for ip netns" >&2; exit 2; }
if [ -n "$PERF_DIR" ]; then
  command -v perf >/dev/null || { echo "cmp_bench: --perf needs perf" >&2; exit 2; }
  mkdir -p "$PERF_DIR"
  PERF_DIR=$(cd "$PERF_DIR" && pwd)
fi

if [ -n "$FG_SRC" ]; then
  [ -x "$FG_SRC" ] || { echo "cmp_bench: --femtoguard $FG_SRC is not an executable" >&2; exit 2; }
  BUILD_TARGETS=(cmp_bench)
else
  FG_SRC="$ROOT/${BUILD_DIR:-build}/src/cli/femtoguard"
  BUILD_TARGETS=(femtoguard cmp_bench)
  FG_REV=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
fi
if ! build_out=$(scripts/build "${BUILD_TARGETS[@]}" 2>&1); then
  printf '%s\n' "$build_out" | tail -40 >&2
  echo "cmp_bench: FAIL: scripts/build ${BUILD_TARGETS[*]} failed" >&2
  exit 1
fi
for tool in openssl curl ip ss ps awk timeout; do
  command -v "$tool" >/dev/null || { echo "cmp_bench: $tool missing (scripts/setup)" >&2; exit 2; }
done
TCK=$(getconf CLK_TCK)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

WORK=$(mktemp -d /tmp/fgcmpbench.XXXXXX)
NS="fgcmp-$$"
NS_CREATED=0
FG_PID=""
MOCK_PID=""
PERF_PID=""
TOKEN_PIDS=""
cleanup() {
  local p
  for p in $TOKEN_PIDS; do stop_tree "$p"; done
  if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID" 2>/dev/null || true; wait "$PERF_PID" 2>/dev/null || true; fi
  stop_tree "$MOCK_PID"
  stop_tree "$FG_PID"
  pg_bench_stop "$WORK/pg"
  if [ "$NS_CREATED" = 1 ]; then
    # Anything still in our own namespace was started by this script.
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns delete "$NS" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "cmp_bench: FAIL: $*" >&2; exit 1; }
log() { printf '== %s\n' "$*" >&2; }
inns() { ip netns exec "$NS" "$@"; }

# The build dir is shared with other people's builds: run private copies.
mkdir -p "$WORK/bin"
cp "$FG_SRC" "$ROOT/${BUILD_DIR:-build}/bench/cmp_bench" "$WORK/bin/"
FG="$WORK/bin/femtoguard"
CLIENT="$WORK/bin/cmp_bench"

ip netns add "$NS"
NS_CREATED=1
inns ip link set lo up

export FEMTOGUARD_CA_PASSPHRASE="femtoguard-bench-$$"
DATA="$WORK/data"
FG_PORT=18440
TLS_PORT=18443
MOCK_PORT=18442
MOCK_REF=mock-ref
MOCK_SECRET="mock-secret-$$"

# ---------------------------------------------------------------- fleet
RUNS=$ROUNDS
[ -n "$PERF_DIR" ] && RUNS=$((ROUNDS + 1))
TOTAL=$((RUNS * ENROLMENTS))
log "init; $TOTAL provisioned devices (device import), one bootstrap token each"
STORE_ARGS=()
if [ "$STORE" = postgresql ]; then
  STORE_URL=$(pg_bench_start "$WORK/pg" 18450) || fail "PostgreSQL did not start"
  STORE_ARGS=(--store "$STORE_URL")
  log "store: PostgreSQL 15 at 127.0.0.1:18450 (fsync on)"
fi
inns "$FG" init --data "$DATA" --listen "127.0.0.1:$FG_PORT" --tls-listen "127.0.0.1:$TLS_PORT" "${STORE_ARGS[@]}" >/dev/null
# The bearer-token API is on the TLS listener by default; this harness drives it with
# plain-HTTP load generators on loopback, so it keeps the lab switch on (docs/operations.md).
sed -i "s/plain_http: false/plain_http: true/" "$DATA"/config.yaml
METRICS_TOKEN=$(inns "$FG" token create --data "$DATA" --role operator --label bench 2>/dev/null)
dev() { printf 'FGC-%06d' "$1"; }
for i in $(seq 1 "$TOTAL"); do printf '{"device":"%s","status":"provisioned"}\n' "$(dev "$i")"; done > "$WORK/registry.jsonl"
inns "$FG" device import --data "$DATA" --registry "$WORK/registry.jsonl" --reason bench >"$WORK/setup.log" 2>&1 \
  || { cat "$WORK/setup.log" >&2; fail "device import"; }
grep -q ": $TOTAL added, 0 updated, 0 unchanged, 0 rejected" "$WORK/setup.log" || { cat "$WORK/setup.log" >&2; fail "device import did not add $TOTAL devices"; }

log "creating $TOTAL bootstrap tokens with \`femtoguard device token\` (one CLI process each, ~60 ms; two at a time: about $((TOTAL * 35 / 1000)) s)"
T0=$(date +%s)
token() {  # i -> "i DEVICE REF SECRET"
  local d out
  d=$(dev "$1")
  out=$(inns "$FG" device token --data "$DATA" --device "$d") || { echo "device token $d failed" >&2; return 1; }
  [[ $out =~ ^(tok-[0-9a-f]+)\ ([0-9a-f]+)$ ]] || { echo "device token $d printed: $out" >&2; return 1; }
  echo "$1 $d ${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
}
tokens_part() {  # part(0/1) -> WORK/tokens.partN: devices 2.., alternately
  local i
  for i in $(seq $((2 + $1)) 2 "$TOTAL"); do token "$i" || return 1; done > "$WORK/tokens.part$1"
}
# The first token creates the node's token key: alone, then two at a time.
token 1 > "$WORK/tokens.first" 2>>"$WORK/setup.log" || { tail -5 "$WORK/setup.log" >&2; fail "creating bootstrap tokens"; }
tokens_part 0 2>>"$WORK/setup.log" & TP0=$!
tokens_part 1 2>>"$WORK/setup.log" & TP1=$!
TOKEN_PIDS="$TP0 $TP1"
TOK_OK=1
wait "$TP0" || TOK_OK=0
wait "$TP1" || TOK_OK=0
TOKEN_PIDS=""
[ "$TOK_OK" = 1 ] || { tail -5 "$WORK/setup.log" >&2; fail "creating bootstrap tokens"; }
TOKEN_SECONDS=$(( $(date +%s) - T0 ))
# Run r gets devices (r-1)*M+1 .. r*M.
sort -n "$WORK/tokens.first" "$WORK/tokens.part0" "$WORK/tokens.part1" > "$WORK/tokens.all"
[ "$(wc -l < "$WORK/tokens.all")" -eq "$TOTAL" ] || fail "expected $TOTAL tokens"
for r in $(seq 1 "$RUNS"); do
  awk -v lo=$(((r - 1) * ENROLMENTS + 1)) -v hi=$((r * ENROLMENTS)) '$1 >= lo && $1 <= hi { print $2, $3, $4 }' \
    "$WORK/tokens.all" > "$WORK/tokens.$r"
  [ "$(wc -l < "$WORK/tokens.$r")" -eq "$ENROLMENTS" ] || fail "token file $r"
done
log "tokens: $TOTAL in $TOKEN_SECONDS s"

# The mock server's fixed answer: a P-256 device certificate (CN=device) from
# a throwaway CA, which also goes out as extraCerts and caPubs, as
# femtoguard's ip carries its issuing CA and root. The client enrols that
# certificate's key every time (it checks the returned key is its own).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/mockca.key" \
  -out "$WORK/mockca.pem" -subj "/CN=Mock CMP CA" -days 30 -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>>"$WORK/setup.log" || fail "mock CA"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/mockdev.key" \
  -out "$WORK/mockdev.csr" -subj "/CN=device" 2>>"$WORK/setup.log" || fail "mock device key"
openssl x509 -req -in "$WORK/mockdev.csr" -CA "$WORK/mockca.pem" -CAkey "$WORK/mockca.key" -CAcreateserial \
  -days 30 -out "$WORK/mockdev.pem" 2>>"$WORK/setup.log" || fail "mock device certificate"

# ---------------------------------------------------------------- servers
TLS_OFF=()
"$FG" serve --help 2>&1 | grep -q "'off' disables" && TLS_OFF=(--tls-listen off)
FG_CMD=(ip netns exec "$NS" "$FG" serve --data "$DATA" --threads "$SERVER_THREADS" "${TLS_OFF[@]}")
MOCK_CMD=(ip netns exec "$NS" openssl cmp -port "$MOCK_PORT" -srv_ref "$MOCK_REF" -srv_secret "pass:$MOCK_SECRET"
          -rsp_cert "$WORK/mockdev.pem" -rsp_extracerts "$WORK/mockca.pem" -rsp_capubs "$WORK/mockca.pem"
          -grant_implicitconf)

"${FG_CMD[@]}" > "$WORK/fg.log" 2>&1 &
FG_PID=$!
wait_listen "$FG_PORT" femtoguard "$WORK/fg.log"
for _ in $(seq 1 100); do
  inns curl -sf "http://127.0.0.1:$FG_PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
inns curl -sf "http://127.0.0.1:$FG_PORT/healthz" >/dev/null || { cat "$WORK/fg.log" >&2; inns curl -sv "http://127.0.0.1:$FG_PORT/healthz" >&2; fail "femtoguard /healthz"; }

start_mock() {
  "${MOCK_CMD[@]}" > "$WORK/mock.log" 2>&1 &
  MOCK_PID=$!
  wait_listen "$MOCK_PORT" "openssl cmp -port" "$WORK/mock.log"
}
stop_mock() {
  stop_tree "$MOCK_PID"
  MOCK_PID=""
  wait_gone "$MOCK_PORT"
}

# ---------------------------------------------------------------- load
# CPU ticks "user sys" of a process and its direct children.
cpu_ticks() {
  local u=0 s=0 p t
  for p in $1 $(ps -o pid= --ppid "$1" 2>/dev/null || true); do
    t=$(awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$p/stat" 2>/dev/null || echo "0 0")
    u=$((u + ${t% *})); s=$((s + ${t#* }))
  done
  echo "$u $s"
}
# femtoguard_cmp_requests_total: "ok total" (0 0 before the first request).
cmp_counts() {
  inns curl -sf --max-time 10 -H "Authorization: Bearer $METRICS_TOKEN" "http://127.0.0.1:$FG_PORT/metrics" |
    awk '/^femtoguard_cmp_requests_total/ { t += $2; if ($1 ~ /result="ok"/) ok += $2 } END { print ok + 0, t + 0 }'
}
kv() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) { print substr($i, length(k) + 2); exit } }' <<<"$2"; }
# Client command lines (no spaces in any of the words: mktemp paths, fixed names).
fg_client() { echo "$CLIENT --threads $THREADS --server 127.0.0.1:$FG_PORT --tokens $WORK/tokens.$1 --label femtoguard"; }
mock_client() {
  echo "$CLIENT --threads $THREADS --server 127.0.0.1:$MOCK_PORT --ref $MOCK_REF --secret $MOCK_SECRET --newkey $WORK/mockdev.key --enrolments $ENROLMENTS --label mock"
}
# run_client label pid cmd... -> "per_s|ok|failures|p50|p99|server_cores|client_cores|wall|distinct|round_trips"
run_client() {
  local label=$1 pid=$2 out t0 t1 rc=0
  shift 2
  t0=$(cpu_ticks "$pid")
  out=$(inns timeout 900 "$@" 2>"$WORK/client-$label.err") || rc=$?
  t1=$(cpu_ticks "$pid")
  echo "$out" > "$WORK/client-$label.out"
  if [ "$rc" != 0 ] || [ -z "$out" ]; then
    echo "$out" >&2; head -40 "$WORK/client-$label.err" >&2
    fail "cmp_bench client failed against $label (exit $rc)"
  fi
  local wall cores
  wall=$(kv wall_s "$out")
  cores=$(awk -v a="$t0" -v b="$t1" -v hz="$TCK" -v d="$wall" 'BEGIN {
    split(a, x, " "); split(b, y, " "); u = y[1] - x[1]; s = y[2] - x[2]
    printf "%.2f", (u + s) / hz / d; if (u + s > 0) printf " (sys %d%%)", 100 * s / (u + s) }')
  echo "$(kv per_s "$out")|$(kv ok "$out")|$(kv failures "$out")|$(kv p50_ms "$out")|$(kv p99_ms "$out")|$cores|$(kv client_cores "$out")|$wall|$(kv distinct_certs "$out")|$(kv round_trips "$out")"
}
better() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 >= b + 0) ? a : b }'; }
per_cpu() { awk -v r="$1" -v c="${2%% *}" 'BEGIN { if (c > 0) printf "%.0f", r / c; else print 0 }'; }
row() {  # name per_s ok fail p50 p99 cores client_cores [extra]
  printf '%-22s %7.1f ir/s  ok=%-5s fail=%-3s p50=%6sms p99=%7sms server=%s cores -> %s ir/CPU-s; client=%s cores%s\n' \
    "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$(per_cpu "$2" "$7")" "$8" "${9:-}"
}

FG_BEST=0; MOCK_BEST=0; FG_EFF=0; MOCK_EFF=0; FG_CLIENT=""; MOCK_CLIENT=""
ROWS=()
for r in $(seq 1 "$ROUNDS"); do
  log "round $r/$ROUNDS: femtoguard, $ENROLMENTS enrolments"
  read -r ok0 all0 < <(cmp_counts) || fail "femtoguard /metrics"
  res=$(run_client "fg-$r" "$FG_PID" $(fg_client "$r")) || exit 1
  IFS='|' read -r rate ok nfail p50 p99 cores ccores wall distinct trips <<<"$res"
  read -r ok1 all1 < <(cmp_counts) || fail "femtoguard /metrics"
  ROWS+=("$(row "r$r femtoguard" "$rate" "$ok" "$nfail" "$p50" "$p99" "$cores" "$ccores" "  cmp_requests_total{ok}+=$((ok1 - ok0)) (all +$((all1 - all0)))")")
  [ "$ok" = "$ENROLMENTS" ] && [ "$nfail" = 0 ] || fail "femtoguard: $ok of $ENROLMENTS enrolments succeeded"
  [ "$distinct" = "$ENROLMENTS" ] || fail "femtoguard: $distinct distinct certificate serials for $ENROLMENTS enrolments"
  [ "$trips" = "$ENROLMENTS" ] || fail "femtoguard: $trips message exchanges for $ENROLMENTS enrolments (implicit confirmation?)"
  [ $((ok1 - ok0)) = "$ENROLMENTS" ] && [ $((all1 - all0)) = "$ENROLMENTS" ] \
    || fail "femtoguard_cmp_requests_total grew by ok +$((ok1 - ok0)), all +$((all1 - all0)); expected +$ENROLMENTS"
  FG_BEST=$(better "$FG_BEST" "$rate"); FG_EFF=$(better "$FG_EFF" "$(per_cpu "$rate" "$cores")")
  FG_CLIENT="$FG_CLIENT $ccores"

  log "round $r/$ROUNDS: openssl cmp -port (mock), $ENROLMENTS enrolments"
  start_mock
  res=$(run_client "mock-$r" "$MOCK_PID" $(mock_client)) || exit 1
  IFS='|' read -r rate ok nfail p50 p99 cores ccores wall distinct trips <<<"$res"
  kill -0 "$MOCK_PID" 2>/dev/null || fail "openssl cmp -port died under load (log: $(tail -3 "$WORK/mock.log"))"
  stop_mock
  ROWS+=("$(row "r$r openssl cmp -port" "$rate" "$ok" "$nfail" "$p50" "$p99" "$cores" "$ccores")")
  [ "$ok" = "$ENROLMENTS" ] && [ "$nfail" = 0 ] || fail "mock: $ok of $ENROLMENTS enrolments succeeded"
  [ "$trips" = "$ENROLMENTS" ] || fail "mock: $trips message exchanges for $ENROLMENTS enrolments (implicit confirmation?)"
  MOCK_BEST=$(better "$MOCK_BEST" "$rate"); MOCK_EFF=$(better "$MOCK_EFF" "$(per_cpu "$rate" "$cores")")
  MOCK_CLIENT="$MOCK_CLIENT $ccores"
done

if [ -n "$PERF_DIR" ]; then
  r=$RUNS
  log "perf run (not counted): perf record --call-graph dwarf -p $FG_PID -> $PERF_DIR/perf-femtoguard.data"
  perf record -q --call-graph dwarf -F 999 -p "$FG_PID" -o "$PERF_DIR/perf-femtoguard.data" \
    > "$WORK/perf.log" 2>&1 &
  PERF_PID=$!
  sleep 1
  res=$(run_client "fg-perf" "$FG_PID" $(fg_client "$r")) || exit 1
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true
  PERF_PID=""
  IFS='|' read -r rate ok nfail p50 p99 cores ccores wall distinct trips <<<"$res"
  ROWS+=("$(row "perf femtoguard" "$rate" "$ok" "$nfail" "$p50" "$p99" "$cores" "$ccores" "  (under perf, not counted)")")
  [ "$ok" = "$ENROLMENTS" ] || fail "femtoguard under perf: $ok of $ENROLMENTS enrolments succeeded"
fi

# ---------------------------------------------------------------- after load
log "after load: femtoguard cert list"
kill -0 "$FG_PID" 2>/dev/null || fail "femtoguard died"
inns "$FG" cert list --data "$DATA" > "$WORK/certs.txt" || fail "femtoguard cert list"
CERTS=$(awk 'NR > 1 && NF' "$WORK/certs.txt" | wc -l)
CERT_SERIALS=$(awk 'NR > 1 && NF { print $1 }' "$WORK/certs.txt" | sort -u | wc -l)
CERT_DEVICES=$(awk 'NR > 1 && NF && $2 ~ /^FGC-/ { print $2 }' "$WORK/certs.txt" | sort -u | wc -l)
[ "$CERTS" = "$TOTAL" ] && [ "$CERT_SERIALS" = "$TOTAL" ] && [ "$CERT_DEVICES" = "$TOTAL" ] \
  || fail "cert list: $CERTS certificates, $CERT_SERIALS distinct serials, $CERT_DEVICES devices; expected $TOTAL each"

log "openssl speed -seconds $SPEED_SECONDS ecdsap256"
SPEED_CMD=(openssl speed -seconds "$SPEED_SECONDS" ecdsap256)
speed_out=$(timeout $((SPEED_SECONDS * 4 + 30)) "${SPEED_CMD[@]}" 2>&1) || { echo "$speed_out" >&2; fail "openssl speed"; }
read -r SIGN VERIFY < <(awk '/ecdsa \(nistp256\)/ { print $(NF-1), $NF }' <<<"$speed_out")
[ -n "${SIGN:-}" ] && [ -n "${VERIFY:-}" ] || { echo "$speed_out" >&2; fail "could not parse openssl speed"; }
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

NPROC=$(nproc)
SERVING=$(( SERVER_THREADS < NPROC ? SERVER_THREADS : NPROC ))
CEIL_CORE=$(awk -v s="$SIGN" -v v="$VERIFY" 'BEGIN { printf "%.0f", 1 / (1 / s + 1 / v) }')
CEIL=$((CEIL_CORE * SERVING))
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "-" }'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 >= t + 0) ? "met" : "MISSED" }'; }
us() { awk -v r="$1" 'BEGIN { if (r > 0) printf "%.0f", 1e6 / r; else print "-" }'; }
W() { local s="$*"; echo "${s//$WORK/\$W}"; }

echo
echo "================ CMP ir benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ), $NPROC cores, $(openssl version | cut -d' ' -f1-2), load avg $LOAD_START -> $LOAD_END ================"
echo "femtoguard: $(W "$FG_SRC") ($FG_REV), store: $STORE"
echo "$ENROLMENTS enrolments per run, client --threads $THREADS, femtoguard --threads $SERVER_THREADS; $ROUNDS interleaved rounds, best of each kept"
echo "setup: $TOTAL devices imported, $TOTAL bootstrap tokens from the CLI in $TOKEN_SECONDS s (one process per token: the slow part)"
printf '%s\n' "${ROWS[@]}"
echo
printf 'femtoguard serve (--threads %s)      %8.1f ir/s  %6s ir per CPU-second (%s us CPU each)\n' \
  "$SERVER_THREADS" "$FG_BEST" "$FG_EFF" "$(us "$FG_EFF")"
printf 'openssl cmp -port (mock, 1 process) %8.1f ir/s  %6s ir per CPU-second (%s us CPU each)\n' \
  "$MOCK_BEST" "$MOCK_EFF" "$(us "$MOCK_EFF")"
printf 'ratio femtoguard / mock             %8sx (wall)  %sx (per CPU-second)   target > 1: %s\n' \
  "$(ratio "$FG_BEST" "$MOCK_BEST")" "$(ratio "$FG_EFF" "$MOCK_EFF")" "$(verdict "$(ratio "$FG_BEST" "$MOCK_BEST")" 1.0001)"
printf 'openssl speed ecdsap256             sign %s/s, verify %s/s per CPU-second (%s + %s us)\n' \
  "$SIGN" "$VERIFY" "$(us "$SIGN")" "$(us "$VERIFY")"
printf 'ceiling, server ECDSA per ir        1 verify (POPO) + 1 sign (certificate) = %s ir/s per core, x %s cores = %s ir/s\n' \
  "$CEIL_CORE" "$SERVING" "$CEIL"
printf 'femtoguard / ceiling                %8s (wall, %s cores)  %s (per CPU-second / per core)   target >= 50%%: %s\n' \
  "$(pct "$FG_BEST" "$CEIL")" "$SERVING" "$(pct "$FG_EFF" "$CEIL_CORE")" "$(verdict "$(awk -v a="$FG_BEST" -v b="$CEIL" 'BEGIN { print a / b }')" 0.5)"
cat <<EOF

Checks passed: every enrolment returned status accepted, our own public key and CN=<device> after one
message exchange; femtoguard issued $TOTAL distinct certificates to $TOTAL devices (\`femtoguard cert list\`),
and femtoguard_cmp_requests_total{result="ok"} grew by exactly $ENROLMENTS per run.
The client, both servers and the kernel share the same $NPROC cores: "server=... cores" is the server's
user+sys CPU over the run (/proc/PID/stat), "client=..." the client's (getrusage); the client's CPU per
enrolment (PBM twice, POPO signature, decoding 3 certificates) is of the same order as a server's.
The mock verifies PBM and the POPO signature but signs no certificate and stores nothing.
Commands (network namespace $NS with lo up; \$W = temp dir, \$W/bin = copies of $(W "$FG_SRC")
and build/bench/cmp_bench; CA passphrase in FEMTOGUARD_CA_PASSPHRASE):
  $(W "$FG") init --data \$W/data --listen 127.0.0.1:$FG_PORT --tls-listen 127.0.0.1:$TLS_PORT ${STORE_ARGS[*]}
  $(W "$FG") device import --data \$W/data --registry \$W/registry.jsonl   # {"device":"FGC-000001","status":"provisioned"} ...
  $(W "$FG") device token --data \$W/data --device FGC-000001              # x $TOTAL -> \$W/tokens.R ("DEVICE REF SECRET")
  $(W "${FG_CMD[@]}")
  $(W "${MOCK_CMD[@]}")
  ip netns exec $NS $(W "$(fg_client 1)")
  ip netns exec $NS $(W "$(mock_client)")
  $(W "$FG") cert list --data \$W/data
  ${SPEED_CMD[*]}
EOF
[ -n "$PERF_DIR" ] && echo "perf data: $PERF_DIR/perf-femtoguard.data (perf report -i ... --no-children)"
exit 0
