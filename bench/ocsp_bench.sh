#!/usr/bin/env bash
# OCSP responses/s on loopback: femtoguard vs `openssl ocsp -index`, same run.
#
# Both responders serve the same CA and the same N device certificates (two of
# them revoked) inside a network namespace of our own (openssl's `-port`
# listens on all addresses), and are driven by the same wrk load: RFC 5019
# style POSTs (one SHA-1 CertID, no nonce) round-robin over the devices.
#
#   bench/ocsp_bench.sh [--devices N] [--duration S] [--connections C]
#                       [--wrk-threads T] [--server-threads T] [--rounds R]
#                       [--openssl-multi M] [--no-healthz]
#
# Defaults: 64 devices, 10 s per run, 64 connections, wrk -t2, femtoguard
# --threads 2, 2 interleaved rounds (best of each kept), an extra
# `openssl ocsp -multi 2` row (0 disables it), one /healthz reference run.
# Needs root (ip netns). Builds femtoguard (scripts/build femtoguard), cleans up
# after itself, exits non-zero when any correctness check fails.
# See BENCHMARKS.md for what the numbers mean.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
cd "$ROOT"

DEVICES=64
DURATION=10
CONNECTIONS=64
WRK_THREADS=2
SERVER_THREADS=2
ROUNDS=2
OPENSSL_MULTI=2
HEALTHZ=1
while [ $# -gt 0 ]; do
  case "$1" in
    --devices) DEVICES=${2:-}; shift 2 ;;
    --duration) DURATION=${2:-}; shift 2 ;;
    --connections) CONNECTIONS=${2:-}; shift 2 ;;
    --wrk-threads) WRK_THREADS=${2:-}; shift 2 ;;
    --server-threads) SERVER_THREADS=${2:-}; shift 2 ;;
    --rounds) ROUNDS=${2:-}; shift 2 ;;
    --openssl-multi) OPENSSL_MULTI=${2:-}; shift 2 ;;
    --no-healthz) HEALTHZ=0; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "ocsp_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
for v in DEVICES DURATION CONNECTIONS WRK_THREADS SERVER_THREADS ROUNDS OPENSSL_MULTI; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "ocsp_bench: --${v,,} needs a number" >&2; exit 2; }
done
[ "$DEVICES" -ge 4 ] && [ "$DEVICES" -le 5000 ] || { echo "ocsp_bench: --devices 4..5000" >&2; exit 2; }
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 10 ] || { echo "ocsp_bench: --rounds 1..10" >&2; exit 2; }
[ "$DURATION" -ge 1 ] && [ "$DURATION" -le 600 ] || { echo "ocsp_bench: --duration 1..600" >&2; exit 2; }
[ "$CONNECTIONS" -ge "$WRK_THREADS" ] && [ "$WRK_THREADS" -ge 1 ] || { echo "ocsp_bench: need connections >= wrk threads >= 1" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "ocsp_bench: needs root for ip netns" >&2; exit 2; }

if ! build_out=$(scripts/build femtoguard 2>&1); then
  printf '%s\n' "$build_out" | tail -40 >&2
  echo "ocsp_bench: FAIL: scripts/build femtoguard failed" >&2
  exit 1
fi
FG="$ROOT/${BUILD_DIR:-build}/src/cli/femtoguard"
for tool in wrk openssl curl ip ss ps awk; do
  command -v "$tool" >/dev/null || { echo "ocsp_bench: $tool missing (scripts/setup)" >&2; exit 2; }
done
TCK=$(getconf CLK_TCK)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

WORK=$(mktemp -d /tmp/fgbench.XXXXXX)
NS="fgbench-$$"
NS_CREATED=0
FG_PID=""
OS_PID=""
cleanup() {
  stop_tree "$OS_PID"
  stop_tree "$FG_PID"
  if [ "$NS_CREATED" = 1 ]; then
    # Anything still in our own namespace was started by this script.
    local p
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns delete "$NS" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "ocsp_bench: FAIL: $*" >&2; exit 1; }
log() { printf '== %s\n' "$*" >&2; }
inns() { ip netns exec "$NS" "$@"; }

ip netns add "$NS"
NS_CREATED=1
inns ip link set lo up

export FEMTOGUARD_CA_PASSPHRASE="femtoguard-bench-$$"
DATA="$WORK/data"
FG_PORT=18440
OS_PORT=18441
FG_URL="http://127.0.0.1:$FG_PORT/ocsp"
OS_URL="http://127.0.0.1:$OS_PORT/"

# ---------------------------------------------------------------- fleet
log "init, $DEVICES active devices, one P-256 key and certificate each (femtoguard CLI)"
"$FG" init --data "$DATA" --listen "127.0.0.1:$FG_PORT" >/dev/null
# The bearer-token API is on the TLS listener by default; this harness drives it with
# plain-HTTP load generators on loopback, so it keeps the lab switch on (docs/operations.md).
sed -i "s/plain_http: false/plain_http: true/" "$DATA"/config.yaml
METRICS_TOKEN=$("$FG" token create --data "$DATA" --role operator --label bench 2>/dev/null)
"$FG" ca cert --data "$DATA" --chain > "$WORK/chain.pem"
"$FG" ca cert --data "$DATA" > "$WORK/issuing.pem"
dev() { printf 'FGB-%05d' "$1"; }
: > "$WORK/index.txt"
for i in $(seq 1 "$DEVICES"); do
  d=$(dev "$i")
  "$FG" device add --data "$DATA" --device "$d" --status active --reason bench >>"$WORK/setup.log" 2>&1 \
    || { cat "$WORK/setup.log" >&2; fail "device add $d"; }
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/$d.key" \
    -out "$WORK/$d.csr" -subj "/CN=$d" 2>>"$WORK/setup.log" || fail "openssl req for $d"
  "$FG" cert issue --data "$DATA" --device "$d" --csr "$WORK/$d.csr" --reason bench > "$WORK/$d.pem" \
    2>>"$WORK/setup.log" || { cat "$WORK/setup.log" >&2; fail "cert issue $d"; }
  serial=$(openssl x509 -in "$WORK/$d.pem" -noout -serial | cut -d= -f2)
  enddate=$(openssl x509 -in "$WORK/$d.pem" -noout -enddate | cut -d= -f2)
  expiry=$(date -u -d "$enddate" +%y%m%d%H%M%SZ)
  echo "$serial" > "$WORK/$d.serial"
  # OpenSSL CA database: status, expiry, revocation, serial, file, subject.
  printf 'V\t%s\t\t%s\tunknown\t/CN=%s\n' "$expiry" "$serial" "$d" >> "$WORK/index.txt"
done

# Two revoked, in both responders: one keyCompromise, one cessationOfOperation.
REV1=$(dev 3); REV2=$(dev "$DEVICES")
revoke() {  # device reason
  local serial now
  serial=$(cat "$WORK/$1.serial")
  "$FG" cert revoke --data "$DATA" --serial "$serial" --reason "$2" --comment bench >>"$WORK/setup.log" 2>&1 \
    || { cat "$WORK/setup.log" >&2; fail "cert revoke $1"; }
  now=$(date -u +%y%m%d%H%M%SZ)
  awk -F'\t' -v OFS='\t' -v s="$serial" -v r="$now,$2" '$4 == s { $1 = "R"; $3 = r } { print }' \
    "$WORK/index.txt" > "$WORK/index.tmp" && mv "$WORK/index.tmp" "$WORK/index.txt"
}
revoke "$REV1" keyCompromise
revoke "$REV2" cessationOfOperation
[ "$(grep -c '^R' "$WORK/index.txt")" -eq 2 ] || fail "index.txt does not have 2 revoked lines"
expected() { if [ "$1" = "$REV1" ] || [ "$1" = "$REV2" ]; then echo revoked; else echo good; fi; }

# Request bodies: SHA-1 CertID (openssl's default), no nonce (RFC 5019).
for i in $(seq 1 "$DEVICES"); do
  d=$(dev "$i")
  openssl ocsp -issuer "$WORK/issuing.pem" -cert "$WORK/$d.pem" -no_nonce -reqout "$WORK/req$i.der" >/dev/null 2>&1
  [ -s "$WORK/req$i.der" ] || fail "could not build the OCSP request for $d"
done

# ---------------------------------------------------------------- responders
FG_CMD=(ip netns exec "$NS" "$FG" serve --data "$DATA" --threads "$SERVER_THREADS")
OS_ARGS=(-index "$WORK/index.txt" -rsigner "$DATA/ca/ocsp.crt" -rkey "$DATA/ca/ocsp.key"
         -passin env:FEMTOGUARD_CA_PASSPHRASE -CA "$DATA/ca/issuing.crt" -resp_key_id -nmin 60 -ignore_err)
os_cmd() {  # multi -> the openssl responder command line
  if [ "$1" -gt 1 ]; then
    echo ip netns exec "$NS" openssl ocsp -port "$OS_PORT" -multi "$1" "${OS_ARGS[@]}"
  else
    echo ip netns exec "$NS" openssl ocsp -port "$OS_PORT" "${OS_ARGS[@]}"
  fi
}

"${FG_CMD[@]}" > "$WORK/fg.log" 2>&1 &
FG_PID=$!
wait_listen "$FG_PORT" femtoguard "$WORK/fg.log"
for _ in $(seq 1 100); do
  inns curl -sf "http://127.0.0.1:$FG_PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
inns curl -sf "http://127.0.0.1:$FG_PORT/healthz" >/dev/null || { cat "$WORK/fg.log" >&2; fail "femtoguard /healthz"; }

# OpenSSL 3.0's responder is restarted for every measurement: a client that
# connects and closes without sending a request makes it spin on read() == 0
# for ever (see BENCHMARKS.md), and wrk's end of run can do exactly that.
start_openssl() {  # multi
  local cmd
  read -r -a cmd <<<"$(os_cmd "$1")"
  "${cmd[@]}" > "$WORK/openssl-$1.log" 2>&1 &
  OS_PID=$!
  wait_listen "$OS_PORT" "openssl ocsp" "$WORK/openssl-$1.log"
}
stop_openssl() {
  stop_tree "$OS_PID"
  OS_PID=""
  wait_gone "$OS_PORT"
}

# ---------------------------------------------------------------- correctness
# One `openssl ocsp` client per device: the response must verify against the
# chain and say good/revoked as expected.
check_one() {  # url device
  local out want
  want=$(expected "$2")
  out=$(inns timeout 10 openssl ocsp -url "$1" -issuer "$WORK/issuing.pem" -CAfile "$WORK/chain.pem" \
        -cert "$WORK/$2.pem" -no_nonce 2>&1) || { echo "$out" >&2; return 1; }
  grep -q '^Response verify OK' <<<"$out" || { echo "$out" >&2; return 1; }
  grep -q "^$WORK/$2.pem: $want\$" <<<"$out" || { echo "$out" >&2; return 1; }
}
check_all() {  # url name
  local i bad=0
  for i in $(seq 1 "$DEVICES"); do
    check_one "$1" "$(dev "$i")" || { echo "ocsp_bench: $2 wrong for $(dev "$i") (want $(expected "$(dev "$i")"))" >&2; bad=1; }
  done
  [ "$bad" = 0 ] || fail "$2 does not answer good/revoked correctly"
  log "$2: all $DEVICES devices answered correctly (2 revoked, $((DEVICES - 2)) good, signatures verify)"
}
check_all "$FG_URL" femtoguard
start_openssl 1
check_all "$OS_URL" "openssl ocsp"
stop_openssl
if [ "$OPENSSL_MULTI" -gt 1 ]; then
  start_openssl "$OPENSSL_MULTI"
  check_all "$OS_URL" "openssl ocsp -multi $OPENSSL_MULTI"
  stop_openssl
fi

# ---------------------------------------------------------------- load
cat > "$WORK/ocsp.lua" <<LUA
-- Generated by bench/ocsp_bench.sh: POSTs the $DEVICES request DERs round-robin.
local bodies = {}
for i = 1, $DEVICES do
  local f = assert(io.open("$WORK/req" .. i .. ".der", "rb"))
  bodies[i] = f:read("*a")
  f:close()
end
local reqs = {}
for i, b in ipairs(bodies) do
  reqs[i] = wrk.format("POST", wrk.path, { ["Content-Type"] = "application/ocsp-request" }, b)
end
local n = 0
request = function()
  n = n % #reqs + 1
  return reqs[n]
end
-- wrk's default resolve() opens and closes a probe connection without a
-- request; openssl ocsp 3.0 then spins on that connection for ever.
wrk.resolve = function(host, service)
  wrk.addrs = wrk.lookup(host, service)
end
LUA

WRK_BASE=(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency)
# CPU ticks "user sys" of a process and its direct children.
cpu_ticks() {
  local u=0 s=0 p t
  for p in $1 $(ps -o pid= --ppid "$1" 2>/dev/null || true); do
    t=$(awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$p/stat" 2>/dev/null || echo "0 0")
    u=$((u + ${t% *})); s=$((s + ${t#* }))
  done
  echo "$u $s"
}
# run_wrk label url pid [wrk args]: prints "rps|requests|non2xx|sockerr|p99|server_cores|wrk_cores"
run_wrk() {
  local label=$1 url=$2 pid=$3 out t0 t1
  shift 3
  t0=$(cpu_ticks "$pid")
  out=$( { TIMEFORMAT='WRKCPU %U %S %R'; time inns timeout $((DURATION + 30)) "${WRK_BASE[@]}" "$@" "$url"; } 2>&1 ) \
    || { echo "$out" >&2; fail "wrk failed ($label)"; }
  t1=$(cpu_ticks "$pid")
  echo "$out" > "$WORK/wrk-$label.log"
  local rps reqs non2xx sock p99 cores wcores
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  reqs=$(awk '/ requests in / { print $1 }' <<<"$out")
  non2xx=$(awk -F': *' '/Non-2xx or 3xx responses/ { print $2 }' <<<"$out")
  sock=$(sed -n 's/^ *Socket errors: *//p' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  cores=$(awk -v a="$t0" -v b="$t1" -v hz="$TCK" -v d="$DURATION" 'BEGIN {
    split(a, x, " "); split(b, y, " "); u = y[1] - x[1]; s = y[2] - x[2]
    printf "%.2f", (u + s) / hz / d; if (u + s > 0) printf " (sys %d%%)", 100 * s / (u + s) }')
  wcores=$(awk -v d="$DURATION" '$1 == "WRKCPU" { printf "%.2f", ($2 + $3) / d }' <<<"$out")
  [ -n "$rps" ] && [ -n "$reqs" ] || { echo "$out" >&2; fail "could not parse wrk output ($label)"; }
  echo "$rps|$reqs|${non2xx:-0}|${sock:-none}|${p99:-?}|$cores|${wcores:-?}"
}
hits() {
  local h
  h=$(inns curl -sf --max-time 10 -H "Authorization: Bearer $METRICS_TOKEN" "http://127.0.0.1:$FG_PORT/metrics" |
      awk '/^femtoguard_ocsp_cache_total\{result="hit"\}/ { print $2 }')
  [[ $h =~ ^[0-9]+$ ]] || { echo "ocsp_bench: FAIL: no femtoguard_ocsp_cache_total{result=\"hit\"} in /metrics" >&2; exit 1; }
  echo "$h"
}
better() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 >= b + 0) ? a : b }'; }
per_cpu() { awk -v r="$1" -v c="${2%% *}" 'BEGIN { if (c > 0) printf "%.0f", r / c; else print 0 }'; }
row() {  # name rps reqs non2xx sock p99 cores wcores [extra]
  printf '%-26s %8.0f resp/s  n=%-8s non2xx=%-3s sockerr=[%s] p99=%-8s server=%s cores -> %s resp/CPU-s; wrk=%s cores%s\n' \
    "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$(per_cpu "$2" "$7")" "$8" "${9:-}"
}

OS_MODES=(1)
[ "$OPENSSL_MULTI" -gt 1 ] && OS_MODES+=("$OPENSSL_MULTI")
FG_BEST=0; OS_BEST=0; OSM_BEST=0; HZ_RPS=""
FG_EFF=0; OS_EFF=0; OSM_EFF=0
ROWS=()
BAD=0
for r in $(seq 1 "$ROUNDS"); do
  log "round $r/$ROUNDS: femtoguard $FG_URL"
  h0=$(hits) || exit 1
  res=$(run_wrk "fg-$r" "$FG_URL" "$FG_PID" -s "$WORK/ocsp.lua") || exit 1
  IFS='|' read -r rps reqs non2xx sock p99 cores wcores <<<"$res"
  h1=$(hits) || exit 1
  dh=$((h1 - h0))
  ROWS+=("$(row "r$r femtoguard" "$rps" "$reqs" "$non2xx" "$sock" "$p99" "$cores" "$wcores" "  cache_hits+=$dh")")
  # wrk counts completed responses; requests in flight when it stops were
  # served (and counted as hits) too: allow a couple per connection.
  if [ "$dh" -lt "$reqs" ] || [ "$dh" -gt $((reqs + CONNECTIONS * 2)) ]; then
    echo "ocsp_bench: cache hits grew by $dh while wrk completed $reqs requests" >&2; BAD=1
  fi
  [ "$non2xx" = 0 ] || { echo "ocsp_bench: femtoguard answered $non2xx non-2xx" >&2; BAD=1; }
  [ "$sock" = none ] || echo "ocsp_bench: note: socket errors against femtoguard: $sock" >&2
  FG_BEST=$(better "$FG_BEST" "$rps"); FG_EFF=$(better "$FG_EFF" "$(per_cpu "$rps" "$cores")")

  for m in "${OS_MODES[@]}"; do
    if [ "$m" = 1 ]; then name="openssl ocsp"; else name="openssl ocsp -multi $m"; fi
    log "round $r/$ROUNDS: $name $OS_URL"
    start_openssl "$m"
    res=$(run_wrk "openssl-$m-$r" "$OS_URL" "$OS_PID" -s "$WORK/ocsp.lua") || exit 1
    IFS='|' read -r rps reqs non2xx sock p99 cores wcores <<<"$res"
    kill -0 "$OS_PID" 2>/dev/null || fail "$name died under load (log: $(tail -3 "$WORK/openssl-$m.log"))"
    stop_openssl
    ROWS+=("$(row "r$r $name" "$rps" "$reqs" "$non2xx" "$sock" "$p99" "$cores" "$wcores")")
    [ "$reqs" -gt 0 ] || fail "wrk got no response at all from $name"
    [ "$non2xx" = 0 ] || echo "ocsp_bench: note: $name answered $non2xx non-2xx" >&2
    if [ "$m" = 1 ]; then
      OS_BEST=$(better "$OS_BEST" "$rps"); OS_EFF=$(better "$OS_EFF" "$(per_cpu "$rps" "$cores")")
    else
      OSM_BEST=$(better "$OSM_BEST" "$rps"); OSM_EFF=$(better "$OSM_EFF" "$(per_cpu "$rps" "$cores")")
    fi
  done
done
if [ "$HEALTHZ" = 1 ]; then
  log "reference: femtoguard GET /healthz (HTTP server alone, no OCSP)"
  res=$(run_wrk healthz "http://127.0.0.1:$FG_PORT/healthz" "$FG_PID") || exit 1
  IFS='|' read -r rps reqs non2xx sock p99 cores wcores <<<"$res"
  HZ_RPS=$rps
  ROWS+=("$(row "ref femtoguard /healthz" "$rps" "$reqs" "$non2xx" "$sock" "$p99" "$cores" "$wcores")")
fi

# ---------------------------------------------------------------- after load
log "after load: femtoguard still answers every device correctly"
check_all "$FG_URL" femtoguard
kill -0 "$FG_PID" 2>/dev/null || fail "femtoguard died"
[ "$BAD" = 0 ] || fail "cache-hit counter does not match wrk's request count, or non-2xx answers"
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "inf" }'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 >= t + 0) ? "met" : "MISSED" }'; }
RATIO=$(ratio "$FG_BEST" "$OS_BEST")
W() { local s="$*"; echo "${s//$WORK/\$W}"; }

echo
echo "================ OCSP benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(openssl version | cut -d' ' -f1-2), load avg $LOAD_START -> $LOAD_END ================"
echo "$DEVICES devices (2 revoked); wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s; $ROUNDS interleaved rounds, best of each kept"
printf '%s\n' "${ROWS[@]}"
echo
printf 'femtoguard (keep-alive, --threads %s)      %8.0f responses/s   target >= 50000: %s\n' "$SERVER_THREADS" "$FG_BEST" "$(verdict "$FG_BEST" 50000)"
printf 'openssl ocsp -index (1 process, HTTP/1.0) %8.0f responses/s\n' "$OS_BEST"
printf 'ratio femtoguard / openssl ocsp           %8sx              target >= 20x:   %s\n' "$RATIO" "$(verdict "$RATIO" 20)"
if [ "$OPENSSL_MULTI" -gt 1 ]; then
  printf 'openssl ocsp -index -multi %-2s            %8.0f responses/s   ratio femtoguard / it: %sx\n' \
    "$OPENSSL_MULTI" "$OSM_BEST" "$(ratio "$FG_BEST" "$OSM_BEST")"
fi
[ -n "$HZ_RPS" ] && printf 'femtoguard GET /healthz (HTTP only)       %8.0f responses/s\n' "$HZ_RPS"
printf 'responses per CPU-second of the responder: femtoguard %s, openssl ocsp %s (ratio %sx)' \
  "$FG_EFF" "$OS_EFF" "$(ratio "$FG_EFF" "$OS_EFF")"
[ "$OPENSSL_MULTI" -gt 1 ] && printf ', openssl -multi %s %s' "$OPENSSL_MULTI" "$OSM_EFF"
echo
cat <<EOF

wrk POSTs the $DEVICES DER requests round-robin (Lua script), Content-Type application/ocsp-request.
wrk, the responders and the kernel share the same $(nproc) cores; "server=... cores" is the responder's
user+sys CPU during the run (/proc/PID/stat; sys = kernel share), "wrk=..." is wrk's.
Commands (network namespace $NS with lo up; \$W = temp dir; passphrase in FEMTOGUARD_CA_PASSPHRASE):
  $(W "${FG_CMD[@]}")
  $(W "$(os_cmd 1)")
EOF
[ "$OPENSSL_MULTI" -gt 1 ] && echo "  $(W "$(os_cmd "$OPENSSL_MULTI")")"
echo "  ${WRK_BASE[*]} -s \$W/ocsp.lua $FG_URL"
echo "  ${WRK_BASE[*]} -s \$W/ocsp.lua $OS_URL"
[ "$HEALTHZ" = 1 ] && echo "  ${WRK_BASE[*]} http://127.0.0.1:$FG_PORT/healthz"
echo "Correctness: every device checked with \`openssl ocsp -url ... -no_nonce -CAfile chain\` against each responder before load, and against femtoguard after load; femtoguard_ocsp_cache_total{result=\"hit\"} deltas shown per run."
exit 0
